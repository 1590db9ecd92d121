"""Parcels: create, read, update (a new version), retire, list by commune, by NICAD, versions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import Response
from geojson_pydantic import Feature, MultiPolygon, Polygon
from pydantic import BaseModel, Field

from api.bounded import DeclaredArea
from api.deps import PrincipalDep, SessionDep, allow
from api.preconditions import PRECONDITION_RESPONSES, AtParam, IfMatch, etag, expected
from api.responses import GeoJSONResponse, geojson
from api.schemas.features import ParcelCollection
from api.schemas.features import ParcelFeature as ParcelFeatureOut
from sifc.auth.principal import ANONYMOUS, Action, Principal
from sifc.parcels import service
from sifc.parcels.service import ParcelInput
from sifc.versioning import instant

router = APIRouter(tags=["Parcelles"])

CrsParam = Annotated[Literal["EPSG:4326", "EPSG:32628"], Query(
    description="SCR des coordonnées (entrée et sortie) : WGS 84 (défaut) ou UTM 28N.")]
# The write's author is the authenticated caller; role checked here, communes in the service's transaction.
Writer = Annotated[Principal, allow(Action.WRITE_PARCELS)]
ParcelId = Annotated[str, Path(max_length=64)]


class ParcelProperties(BaseModel):
    nicad: str | None = Field(default=None, max_length=64)
    commune_code: str | None = Field(default=None, max_length=100)
    section: str | None = Field(default=None, max_length=64)
    local_number: str | None = Field(default=None, max_length=64)
    declared_area_m2: DeclaredArea | None = None
    land_use: str | None = Field(default=None, max_length=100)
    tenure_regime: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=500)


ParcelFeature = Feature[Polygon | MultiPolygon, ParcelProperties]
ParcelPatch = ParcelFeature  # geometry may be null: attributes-only change


class RetireBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _srid(crs: str) -> int:
    return int(crs.split(":")[1])


def _input(feature: Any, crs: str, *, partial: bool) -> ParcelInput:
    properties = feature.properties or ParcelProperties()
    given = properties.model_dump(exclude_unset=partial, exclude={"reason"})
    if not partial:
        given = {k: v for k, v in given.items() if v is not None}
    geometry = feature.geometry.model_dump(exclude_none=True) if feature.geometry is not None else None
    return ParcelInput(geometry=geometry, input_crs=_srid(crs), values=given, reason=properties.reason)


@router.post("/parcels", status_code=201, response_model=ParcelFeatureOut, response_class=GeoJSONResponse,
             summary="Créer une parcelle")
def create_parcel(feature: Annotated[ParcelFeature, Body()], session: SessionDep, principal: Writer,
                  crs: CrsParam = "EPSG:4326") -> Response:
    """Agent foncier ou administrateur, dans son périmètre (la commune de la parcelle)."""
    data = _input(feature, crs, partial=False)
    parcel_id = service.create(session, data=data, author=principal.name, by=principal)
    # The public representation, as every write answers (the authors are read through GET, logged).
    body, version = service.get_with_version(session, parcel_id=parcel_id, reader=ANONYMOUS, crs=_srid(crs))
    return geojson(body, 201, {"Location": f"/parcels/{parcel_id}", "ETag": etag("parcel", parcel_id, version)})


@router.get("/parcels/by-nicad/{nicad}", response_model=ParcelFeatureOut, response_class=GeoJSONResponse,
            summary="La parcelle en vigueur portant un NICAD")
def parcel_by_nicad(nicad: Annotated[str, Path(max_length=64)], session: SessionDep, principal: PrincipalDep,
                    crs: CrsParam = "EPSG:4326") -> Response:
    parcel_id = service.id_by_nicad(session, nicad=nicad)
    return _one(session, principal, parcel_id, crs)


@router.get("/parcels/{parcel_id}", response_model=ParcelFeatureOut, response_class=GeoJSONResponse,
            summary="Une parcelle (version en vigueur)")
def get_parcel(parcel_id: ParcelId, session: SessionDep, principal: PrincipalDep,
               crs: CrsParam = "EPSG:4326", at: AtParam = None) -> Response:
    """Les auteurs des versions (données personnelles) seulement aux rôles connectés, dans leur périmètre.

    L'en-tête `ETag` est à renvoyer dans `If-Match` pour modifier ou retirer la parcelle ; `at` donne la
    version en vigueur au registre à une date passée."""
    return _one(session, principal, parcel_id, crs, at)


def _one(session: SessionDep, principal: Principal, parcel_id: str, crs: str,
         at: date | datetime | None = None) -> Response:
    body, version = service.get_with_version(session, parcel_id=parcel_id, reader=principal, crs=_srid(crs),
                                             at=instant(at))
    return geojson(body, headers=None if at is not None else {"ETag": etag("parcel", parcel_id, version)})


@router.patch("/parcels/{parcel_id}", responses=PRECONDITION_RESPONSES, response_model=ParcelFeatureOut,
              response_class=GeoJSONResponse, summary="Modifier une parcelle (nouvelle version)")
def update_parcel(parcel_id: ParcelId, feature: Annotated[ParcelPatch, Body()], session: SessionDep,
                  principal: Writer, crs: CrsParam = "EPSG:4326", if_match: IfMatch = None) -> Response:
    """La commune avant et la commune après doivent être dans le périmètre ; sinon 403 et rien n'est écrit.
    `If-Match` : l'ETag de la version lue (412 si elle a changé, 428 s'il manque)."""
    version = expected(if_match, "parcel", parcel_id)
    data = _input(feature, crs, partial=True)
    service.update(session, parcel_id=parcel_id, data=data, author=principal.name, expected_version=version,
                   by=principal)
    body, current = service.get_with_version(session, parcel_id=parcel_id, reader=ANONYMOUS, crs=_srid(crs))
    return geojson(body, headers={"ETag": etag("parcel", parcel_id, current)})


@router.post("/parcels/{parcel_id}/retire", status_code=204, responses=PRECONDITION_RESPONSES,
             summary="Retirer une parcelle (rien n'est effacé)")
def retire_parcel(parcel_id: ParcelId, body: RetireBody, session: SessionDep, principal: Writer,
                  if_match: IfMatch = None) -> Response:
    version = expected(if_match, "parcel", parcel_id)
    service.retire(session, parcel_id=parcel_id, author=principal.name, reason=body.reason, by=principal,
                   expected_version=version)
    return Response(status_code=204)


@router.get("/parcels/{parcel_id}/versions", response_model=ParcelCollection, response_class=GeoJSONResponse,
            summary="Toutes les versions d'une parcelle")
def parcel_versions(parcel_id: ParcelId, session: SessionDep, principal: PrincipalDep,
                    crs: CrsParam = "EPSG:4326") -> Response:
    """Auteurs et clôtures (`author`, `closed_by`) seulement si toutes les communes de l'historique sont
    dans le périmètre d'un rôle connecté ; chaque lecture est inscrite au journal des accès."""
    return geojson(service.versions(session, parcel_id=parcel_id, reader=principal, crs=_srid(crs)))


@router.get("/communes/{code}/parcels", response_model=ParcelCollection, response_class=GeoJSONResponse,
            summary="Les parcelles en vigueur d'une commune (paginées)")
def commune_parcels(code: Annotated[str, Path(max_length=100)], session: SessionDep, principal: PrincipalDep,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0, crs: CrsParam = "EPSG:4326",
                    at: AtParam = None) -> Response:
    """`at` : les parcelles que le registre comptait à cette date (avant ou après une mutation)."""
    return geojson(service.list_commune(session, commune_code=code, limit=limit, offset=offset, reader=principal,
                                        crs=_srid(crs), at=instant(at)))
