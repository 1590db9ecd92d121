"""Parcels: create, read, update (a new version), retire, list by commune, by NICAD, versions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query
from fastapi.responses import Response
from geojson_pydantic import Feature, MultiPolygon, Polygon
from pydantic import BaseModel, Field

from api.deps import SessionDep
from api.responses import CREATED_RESPONSE, GEOJSON_RESPONSE, geojson
from sifc.parcels import service
from sifc.parcels.service import ParcelInput

router = APIRouter(tags=["Parcelles"])

CrsParam = Annotated[Literal["EPSG:4326", "EPSG:32628"], Query(
    description="SCR des coordonnées (entrée et sortie) : WGS 84 (défaut) ou UTM 28N.")]
Author = Annotated[str | None, Header(
    alias="X-SIFC-User", max_length=100,
    description="Auteur de la modification (en attendant l'authentification).")]
ParcelId = Annotated[str, Path(max_length=64)]


class ParcelProperties(BaseModel):
    nicad: str | None = Field(default=None, max_length=64)
    commune_code: str | None = Field(default=None, max_length=100)
    section: str | None = Field(default=None, max_length=64)
    local_number: str | None = Field(default=None, max_length=64)
    declared_area_m2: float | None = Field(default=None, ge=0)
    land_use: str | None = Field(default=None, max_length=100)
    tenure_regime: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=500)
    expected_version: int | None = Field(default=None, ge=1)


ParcelFeature = Feature[Polygon | MultiPolygon, ParcelProperties]
ParcelPatch = ParcelFeature  # geometry may be null: attributes-only change


class RetireBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _srid(crs: str) -> int:
    return int(crs.split(":")[1])


def _input(feature: Any, crs: str, *, partial: bool) -> tuple[ParcelInput, int | None]:
    properties = feature.properties or ParcelProperties()
    given = properties.model_dump(exclude_unset=partial, exclude={"reason", "expected_version"})
    if not partial:
        given = {k: v for k, v in given.items() if v is not None}
    geometry = feature.geometry.model_dump(exclude_none=True) if feature.geometry is not None else None
    return (ParcelInput(geometry=geometry, input_crs=_srid(crs), values=given, reason=properties.reason),
            properties.expected_version)



@router.post("/parcels", status_code=201, responses=CREATED_RESPONSE, response_class=Response,
             summary="Créer une parcelle")
def create_parcel(feature: Annotated[ParcelFeature, Body()], session: SessionDep, author: Author = None,
                  crs: CrsParam = "EPSG:4326") -> Response:
    data, _ = _input(feature, crs, partial=False)
    parcel_id = service.create(session, data=data, author=author or "api")
    return geojson(service.get(session, parcel_id=parcel_id, crs=_srid(crs)), 201,
                    {"Location": f"/parcels/{parcel_id}"})


@router.get("/parcels/by-nicad/{nicad}", responses=GEOJSON_RESPONSE, response_class=Response,
            summary="La parcelle en vigueur portant un NICAD")
def parcel_by_nicad(nicad: Annotated[str, Path(max_length=64)], session: SessionDep,
                    crs: CrsParam = "EPSG:4326") -> Response:
    return geojson(service.get_by_nicad(session, nicad=nicad, crs=_srid(crs)))


@router.get("/parcels/{parcel_id}", responses=GEOJSON_RESPONSE, response_class=Response,
            summary="Une parcelle (version en vigueur)")
def get_parcel(parcel_id: ParcelId, session: SessionDep, crs: CrsParam = "EPSG:4326") -> Response:
    return geojson(service.get(session, parcel_id=parcel_id, crs=_srid(crs)))


@router.patch("/parcels/{parcel_id}", responses=GEOJSON_RESPONSE, response_class=Response,
              summary="Modifier une parcelle (nouvelle version)")
def update_parcel(parcel_id: ParcelId, feature: Annotated[ParcelPatch, Body()], session: SessionDep,
                  author: Author = None, crs: CrsParam = "EPSG:4326") -> Response:
    data, expected = _input(feature, crs, partial=True)
    service.update(session, parcel_id=parcel_id, data=data, author=author or "api", expected_version=expected)
    return geojson(service.get(session, parcel_id=parcel_id, crs=_srid(crs)))


@router.post("/parcels/{parcel_id}/retire", status_code=204, summary="Retirer une parcelle (rien n'est effacé)")
def retire_parcel(parcel_id: ParcelId, body: RetireBody, session: SessionDep, author: Author = None) -> Response:
    service.retire(session, parcel_id=parcel_id, author=author or "api", reason=body.reason)
    return Response(status_code=204)


@router.get("/parcels/{parcel_id}/versions", responses=GEOJSON_RESPONSE, response_class=Response,
            summary="Toutes les versions d'une parcelle")
def parcel_versions(parcel_id: ParcelId, session: SessionDep, crs: CrsParam = "EPSG:4326") -> Response:
    return geojson(service.versions(session, parcel_id=parcel_id, crs=_srid(crs)))


@router.get("/communes/{code}/parcels", responses=GEOJSON_RESPONSE, response_class=Response,
            summary="Les parcelles en vigueur d'une commune (paginées)")
def commune_parcels(code: Annotated[str, Path(max_length=100)], session: SessionDep,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0, crs: CrsParam = "EPSG:4326") -> Response:
    return geojson(service.list_commune(session, commune_code=code, limit=limit, offset=offset, crs=_srid(crs)))
