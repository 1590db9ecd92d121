"""Localités (villages, quartiers): list by commune, read, create, move or rename (a new version), retire, history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import Response
from geojson_pydantic import Feature, FeatureCollection, Point
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, SessionDep, allow
from api.preconditions import PRECONDITION_RESPONSES, IfMatch, etag, expected
from api.responses import GeoJSONResponse, geojson
from sifc.auth.principal import Action, Principal
from sifc.localites import service
from sifc.localites.service import LocaliteInput

router = APIRouter(tags=["Localités"])

CrsParam = Annotated[Literal["EPSG:4326", "EPSG:32628"], Query(
    description="SCR des coordonnées (entrée et sortie) : WGS 84 (défaut) ou UTM 28N.")]
# Localités are placed on the map by who writes the cadastre, in scope (checked in the service).
Writer = Annotated[Principal, allow(Action.WRITE_PARCELS)]
LocaliteId = Annotated[str, Path(max_length=64)]
Kind = Literal["ville", "village", "hameau", "quartier", "lieu_dit", "habitation_isolee"]


class LocaliteProperties(BaseModel):
    """What an officer writes: the name, the kind, the commune (else the one containing the point), why."""

    name: str | None = Field(default=None, max_length=200, description="Nom en usage (« Ndiaye Bop »).")
    kind: Kind | None = None
    commune_code: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=500, description="Obligatoire pour une modification.")


class LocaliteOut(BaseModel):
    """A localité as the public sees it: no author, no reason."""

    id: str
    version: int
    name: str
    kind: Kind
    origin: Literal["osm", "agent"] = Field(
        description="osm : point d'OpenStreetMap (ODbL) ; agent : placé par un agent.")
    osm_node_id: int | None = None
    commune_code: str
    valid_from: datetime


class LocaliteVersionOut(LocaliteOut):
    """A version in the history: authors and reasons for a reader in scope only."""

    valid_to: datetime | None = None
    author: str | None = None
    reason: str | None = None
    closed_by: str | None = None
    close_reason: str | None = None


LocaliteFeatureIn = Feature[Point, LocaliteProperties]
LocalitePatch = LocaliteFeatureIn  # geometry may be null: attributes-only change


class LocaliteFeature(Feature[Point, LocaliteOut]):
    """A localité (its current version)."""


class LocaliteCollection(FeatureCollection[LocaliteFeature]):
    """A commune's current localités."""

    attribution: str | None = None
    numberReturned: int | None = None  # noqa: N815 - the OGC name


class LocaliteVersionCollection(FeatureCollection[Feature[Point, LocaliteVersionOut]]):
    """Every version of a localité."""


class RetireBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _srid(crs: str) -> int:
    return int(crs.split(":")[1])


def _input(feature: Any, crs: str, *, partial: bool) -> LocaliteInput:
    properties = feature.properties or LocaliteProperties()
    given: dict[str, Any] = properties.model_dump(exclude_unset=partial, exclude={"reason"})
    if not partial:
        given = {k: v for k, v in given.items() if v is not None}
    geometry = feature.geometry.model_dump(exclude_none=True) if feature.geometry is not None else None
    return LocaliteInput(geometry=geometry, input_crs=_srid(crs), values=given, reason=properties.reason)


def _answer(session: SessionDep, localite_id: str, crs: str, status: int = 200) -> Response:
    body, version = service.get_with_version(session, localite_id=localite_id, crs=_srid(crs))
    headers = {"ETag": etag("localite", localite_id, version)}
    if status == 201:
        headers["Location"] = f"/localites/{localite_id}"
    return geojson(body, status, headers)


@router.get("/communes/{code}/localites", response_model=LocaliteCollection, response_class=GeoJSONResponse,
            summary="Les localités en vigueur d'une commune")
def commune_localites(code: Annotated[str, Path(max_length=100)], session: SessionDep,
                      kind: Annotated[Kind | None, Query()] = None, crs: CrsParam = "EPSG:4326") -> Response:
    """Public : nom, type, point et origine (« © les contributeurs d'OpenStreetMap, ODbL 1.0 » pour les points
    d'OpenStreetMap), sans auteur ni motif."""
    return geojson(service.list_commune(session, commune_code=code, crs=_srid(crs), kind=kind))


@router.get("/localites/{localite_id}", response_model=LocaliteFeature, response_class=GeoJSONResponse,
            summary="Une localité (version en vigueur)")
def get_localite(localite_id: LocaliteId, session: SessionDep, crs: CrsParam = "EPSG:4326") -> Response:
    """Public. L'`ETag` est à renvoyer dans `If-Match` pour la modifier ou la retirer ; 410 si retirée."""
    return _answer(session, localite_id, crs)


@router.get("/localites/{localite_id}/history", response_model=LocaliteVersionCollection,
            response_class=GeoJSONResponse, summary="Toutes les versions d'une localité")
def localite_history(localite_id: LocaliteId, session: SessionDep, principal: PrincipalDep,
                     crs: CrsParam = "EPSG:4326") -> Response:
    """De la plus ancienne à la plus récente ; auteurs et motifs pour un rôle connecté dont le périmètre couvre
    les communes de l'historique, chaque lecture inscrite au journal des accès."""
    return geojson(service.history(session, localite_id=localite_id, reader=principal, crs=_srid(crs)))


@router.post("/localites", status_code=201, response_model=LocaliteFeature, response_class=GeoJSONResponse,
             summary="Placer une localité")
def create_localite(feature: Annotated[LocaliteFeatureIn, Body()], session: SessionDep, principal: Writer,
                    crs: CrsParam = "EPSG:4326") -> Response:
    """Agent foncier ou administrateur, dans son périmètre. `name` et `kind` obligatoires ; le point doit être
    dans la limite en vigueur de la commune (422 sinon)."""
    localite_id = service.create(session, data=_input(feature, crs, partial=False), by=principal,
                                 author=principal.name)
    return _answer(session, localite_id, crs, 201)


@router.patch("/localites/{localite_id}", responses=PRECONDITION_RESPONSES, response_model=LocaliteFeature,
              response_class=GeoJSONResponse, summary="Déplacer, renommer ou requalifier une localité")
def update_localite(localite_id: LocaliteId, feature: Annotated[LocalitePatch, Body()], session: SessionDep,
                    principal: Writer, crs: CrsParam = "EPSG:4326", if_match: IfMatch = None) -> Response:
    """Une nouvelle version ; `If-Match` obligatoire (412 si la version a changé, 428 s'il manque) ; `reason`
    obligatoire ; `geometry` nulle : le point ne bouge pas."""
    version = expected(if_match, "localite", localite_id)
    service.update(session, localite_id=localite_id, data=_input(feature, crs, partial=True),
                   expected_version=version, by=principal, author=principal.name)
    return _answer(session, localite_id, crs)


@router.delete("/localites/{localite_id}", status_code=204, responses=PRECONDITION_RESPONSES,
               summary="Retirer une localité (rien n'est effacé)")
def retire_localite(localite_id: LocaliteId, body: RetireBody, session: SessionDep, principal: Writer,
                    if_match: IfMatch = None) -> Response:
    """La version en vigueur est close avec le motif ; l'historique reste lisible."""
    version = expected(if_match, "localite", localite_id)
    service.retire(session, localite_id=localite_id, reason=body.reason, expected_version=version, by=principal,
                   author=principal.name)
    return Response(status_code=204)
