"""Parcel mutations: split, lotissement, merge, boundary correction, and the lineage.

Each is one transaction (a refused one changes nothing), needs ``agent_foncier`` or
``administrateur`` whose scope covers the parcels, and the ``If-Match`` of every parcel it
retires (a merge: one ETag per parcel, comma-separated).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from geojson_pydantic import Feature, MultiPolygon, Polygon
from pydantic import BaseModel, Field

from api.bounded import CarryIndex, DeclaredArea, MutationDate
from api.deps import PrincipalDep, SessionDep, allow
from api.preconditions import PRECONDITION_RESPONSES, IfMatch, etag, expected, version_from_etag
from api.responses import answer
from api.schemas.records import LineageOut, MutationResultOut
from sifc import mutations
from sifc.auth.principal import Action, Principal
from sifc.errors import InvalidInput, PreconditionRequired
from sifc.parcels import service as parcel_service

router = APIRouter(tags=["Mutations"])
Writer = Annotated[Principal, allow(Action.WRITE_TENURE)]
Id = Annotated[str, Path(max_length=64)]
CrsParam = Annotated[Literal["EPSG:4326", "EPSG:32628"], Query(
    description="SCR des géométries envoyées : WGS 84 (défaut) ou UTM 28N.")]
Decision = Literal["close"] | dict[Literal["carry"], list[CarryIndex]]


class ChildProperties(BaseModel):
    nicad: str | None = Field(default=None, max_length=64, description="Le NICAD donné par le cadastre, s'il l'est.")
    section: str | None = Field(default=None, max_length=64)
    local_number: str | None = Field(default=None, max_length=64)
    declared_area_m2: DeclaredArea | None = None
    land_use: str | None = Field(default=None, max_length=100, description=(
        "Domaine public d'un lotissement : voirie, equipement, espace_vert, place_publique, servitude_publique."))
    tenure_regime: str | None = Field(default=None, max_length=100)
    source_id: str | None = Field(default=None, max_length=100)


ChildFeature = Feature[Polygon | MultiPolygon, ChildProperties]


class MutationBase(BaseModel):
    occurred_on: MutationDate = Field(description="Date de la mutation (plan, délibération).")
    source_ids: list[str] = Field(min_length=1, max_length=20, description="Documents : plan, délibération…")
    reason: str = Field(min_length=1, max_length=500)


class SplitIn(MutationBase):
    children: list[ChildFeature] = Field(min_length=2, max_length=500)
    rights: dict[str, Decision] = Field(default_factory=dict, description=(
        "Pour chaque droit en vigueur : `\"close\"`, ou `{\"carry\": [numéros des parcelles issues]}`."))


class LotissementIn(MutationBase):
    lots: list[ChildFeature] = Field(min_length=1, max_length=2000)
    public_land: list[ChildFeature] = Field(default_factory=list, max_length=500, description=(
        "Voies et équipements (domaine public) ; numérotés après les lots."))
    rights: dict[str, Decision] = Field(default_factory=dict)


class MergeIn(MutationBase):
    parcel_ids: list[Annotated[str, Field(max_length=64)]] = Field(min_length=2, max_length=50)
    properties: ChildProperties = Field(default_factory=ChildProperties)
    end_rights: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=200, description=(
        "Les droits qui prennent fin avec la fusion (ceux que les parcelles ne partagent pas)."))


class BoundaryIn(MutationBase):
    geometry: Polygon | MultiPolygon


def _children(features: list[Any]) -> list[mutations.Child]:
    missing = [index for index, f in enumerate(features, start=1) if f.geometry is None]
    if missing:
        raise InvalidInput("mutation.child_without_geometry", index=missing[0])
    return [mutations.Child(geometry=f.geometry.model_dump(exclude_none=True),
                            values=(f.properties or ChildProperties()).model_dump(exclude_none=True))
            for f in features]


def _data(body: MutationBase, crs: str) -> mutations.MutationInput:
    return mutations.MutationInput(occurred_on=body.occurred_on, source_ids=body.source_ids, reason=body.reason,
                                   input_crs=int(crs.split(":")[1]))


def _decisions(rights: dict[str, Any]) -> dict[str, Any]:
    # ``{}`` passes the schema (a dict whose only key may be "carry"): the service refuses it as a bad decision.
    return {rid: decision if decision == "close" else {"carry": decision.get("carry")}
            for rid, decision in rights.items()}


@router.post("/parcels/{parcel_id}/split",
             response_model=MutationResultOut, status_code=201, responses=PRECONDITION_RESPONSES,
             summary="Morceler une parcelle (morcellement)")
def split_parcel(parcel_id: Id, body: SplitIn, session: SessionDep, principal: Writer, crs: CrsParam = "EPSG:4326",
                 if_match: IfMatch = None) -> Response:
    """Les parcelles issues recouvrent la mère (écart ≤ 0,1 %), sans chevauchement ni débord ; la mère est
    retirée avec son NICAD ; chaque droit en vigueur est reporté ou clos selon `rights`."""
    version = expected(if_match, "parcel", parcel_id)
    result = mutations.split(session, parcel_id=parcel_id, children=_children(body.children),
                             rights=_decisions(body.rights), data=_data(body, crs), expected_version=version,
                             by=principal, author=principal.name)
    return answer(result, status=201)


@router.post("/parcels/{parcel_id}/lotissement",
             response_model=MutationResultOut, status_code=201, responses=PRECONDITION_RESPONSES,
             summary="Lotir une parcelle : lots et domaine public")
def lotir(parcel_id: Id, body: LotissementIn, session: SessionDep, principal: Writer, crs: CrsParam = "EPSG:4326",
          if_match: IfMatch = None) -> Response:
    """Lots et domaine public (voirie, équipements) recouvrent ensemble la parcelle mère (écart ≤ 0,1 %)."""
    version = expected(if_match, "parcel", parcel_id)
    result = mutations.lotissement(session, parcel_id=parcel_id, lots=_children(body.lots),
                                   public_land=_children(body.public_land), rights=_decisions(body.rights),
                                   data=_data(body, crs), expected_version=version, by=principal,
                                   author=principal.name)
    return answer(result, status=201)


@router.post("/parcels/merge", response_model=MutationResultOut, status_code=201, responses=PRECONDITION_RESPONSES,
             summary="Fusionner des parcelles contiguës")
def merge_parcels(body: MergeIn, session: SessionDep, principal: Writer, if_match: IfMatch = None) -> Response:
    """`If-Match` porte l'ETag lu de chaque parcelle, séparés par des virgules ; tous les NICAD sont retirés."""
    if if_match is None or not if_match.strip() or if_match.strip() == "*":
        raise PreconditionRequired("mutation.if_match_each")
    versions = {}
    for parcel_id in body.parcel_ids:
        version = version_from_etag(if_match, "parcel", parcel_id)
        if version < 0:
            raise PreconditionRequired("mutation.if_match_each")
        versions[str(parcel_service._parse_id(parcel_id))] = version  # the service looks parents up by UUID
    child = mutations.Child(geometry={}, values=body.properties.model_dump(exclude_none=True))
    result = mutations.merge(session, parcel_ids=body.parcel_ids, child=child, end_rights=body.end_rights,
                             data=_data(body, "EPSG:4326"), expected_versions=versions, by=principal,
                             author=principal.name)
    return answer(result, status=201)


@router.post("/parcels/{parcel_id}/boundary-correction",
             response_model=MutationResultOut, responses=PRECONDITION_RESPONSES,
             summary="Rectifier la limite d'une parcelle (nouvelle version, NICAD à réattribuer)")
def correct_boundary(parcel_id: Id, body: BoundaryIn, session: SessionDep, principal: Writer,
                     crs: CrsParam = "EPSG:4326", if_match: IfMatch = None) -> Response:
    """Les voisins sont vérifiés : un nouveau chevauchement refuse la rectification (409, parcelles nommées)."""
    version = expected(if_match, "parcel", parcel_id)
    result = mutations.correct_boundary(session, parcel_id=parcel_id, geometry=body.geometry.model_dump(
        exclude_none=True), data=_data(body, crs), expected_version=version, by=principal, author=principal.name)
    return answer(result, tag=etag("parcel", result["children"][0], result["version"]))


@router.get("/parcels/{parcel_id}/lineage", response_model=LineageOut,
            summary="La filiation d'une parcelle : d'où elle vient, ce qu'elle devient")
def parcel_lineage(parcel_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    """Mutations ascendantes et descendantes (de proche en proche), avec leurs parcelles, dates et documents ;
    auteurs et motifs seulement aux rôles connectés du périmètre."""
    return answer(mutations.lineage(session, parcel_id=parcel_id, reader=principal))
