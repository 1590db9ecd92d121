"""Bornes: create, read, update (a new version), retire, list by commune, versions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import Response
from geojson_pydantic import Feature, Point
from pydantic import BaseModel, Field

from api.bounded import BornePrecision, SurveyDate
from api.deps import PrincipalDep, SessionDep, allow
from api.preconditions import PRECONDITION_RESPONSES, IfMatch, etag, expected
from api.responses import GeoJSONResponse, geojson
from api.schemas.features import BorneCollection, BorneVersionCollection
from api.schemas.features import BorneFeature as BorneFeatureOut
from sifc.auth.principal import Action, Principal
from sifc.bornes import service
from sifc.bornes.service import BorneInput

router = APIRouter(tags=["Bornes"])

CrsParam = Annotated[Literal["EPSG:4326", "EPSG:32628"], Query(
    description="SCR des coordonnées (entrée et sortie) : WGS 84 (défaut) ou UTM 28N.")]
# Bornes belong to the cadastre: who writes parcels writes bornes, in scope (checked in the service).
Writer = Annotated[Principal, allow(Action.WRITE_PARCELS)]
BorneId = Annotated[str, Path(max_length=64)]
SurveyMethod = Literal["gnss_rtk", "gnss", "station_totale", "ruban", "numerisation", "inconnu"]


class BorneProperties(BaseModel):
    label: str | None = Field(default=None, max_length=64, description="Numéro du géomètre (« B12 »).")
    code: str | None = Field(default=None, max_length=64)
    commune_code: str | None = Field(default=None, max_length=100)
    precision_m: BornePrecision | None = None
    survey_method: SurveyMethod | None = None
    surveyed_on: SurveyDate | None = None
    source: str | None = Field(default=None, max_length=500, description="Plan, levé ou fichier d'origine.")
    reason: str | None = Field(default=None, max_length=500)


BorneFeature = Feature[Point, BorneProperties]
BornePatch = BorneFeature  # geometry may be null: attributes-only change


class RetireBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _srid(crs: str) -> int:
    return int(crs.split(":")[1])


def _input(feature: Any, crs: str, *, partial: bool) -> BorneInput:
    properties = feature.properties or BorneProperties()
    given: dict[str, Any] = properties.model_dump(exclude_unset=partial, exclude={"reason"})
    if not partial:
        given = {k: v for k, v in given.items() if v is not None}
    geometry = feature.geometry.model_dump(exclude_none=True) if feature.geometry is not None else None
    return BorneInput(geometry=geometry, input_crs=_srid(crs), values=given, reason=properties.reason)


def _answer(session: SessionDep, borne_id: str, crs: str, status: int = 200) -> Response:
    body, version = service.get_with_version(session, borne_id=borne_id, crs=_srid(crs))
    headers = {"ETag": etag("borne", borne_id, version)}
    if status == 201:
        headers["Location"] = f"/bornes/{borne_id}"
    return geojson(body, status, headers)


@router.post("/bornes", status_code=201, response_model=BorneFeatureOut, response_class=GeoJSONResponse,
             summary="Créer une borne")
def create_borne(feature: Annotated[BorneFeature, Body()], session: SessionDep, principal: Writer,
                 crs: CrsParam = "EPSG:4326") -> Response:
    """Agent foncier ou administrateur, dans son périmètre (la commune de la borne). La précision
    (`precision_m`, en mètres) est obligatoire ; une borne à moins d'1 cm d'une borne en vigueur est refusée (409)."""
    borne_id = service.create(session, data=_input(feature, crs, partial=False), author=principal.name, by=principal)
    return _answer(session, borne_id, crs, 201)


@router.get("/bornes/{borne_id}", response_model=BorneFeatureOut, response_class=GeoJSONResponse,
            summary="Une borne (version en vigueur)")
def get_borne(borne_id: BorneId, session: SessionDep, crs: CrsParam = "EPSG:4326") -> Response:
    """Public : ni l'auteur ni le motif (données personnelles). L'`ETag` est à renvoyer dans `If-Match`."""
    return _answer(session, borne_id, crs)


@router.get("/bornes/{borne_id}/versions", response_model=BorneVersionCollection, response_class=GeoJSONResponse,
            summary="Toutes les versions d'une borne")
def borne_versions(borne_id: BorneId, session: SessionDep, principal: PrincipalDep,
                   crs: CrsParam = "EPSG:4326") -> Response:
    """De la plus ancienne à la plus récente. Auteurs, motifs, sources et clôtures seulement si toutes les
    communes de l'historique sont dans le périmètre d'un rôle connecté ; chaque lecture est inscrite au
    journal des accès."""
    return geojson(service.versions(session, borne_id=borne_id, reader=principal, crs=_srid(crs)))


@router.patch("/bornes/{borne_id}", responses=PRECONDITION_RESPONSES, response_model=BorneFeatureOut,
              response_class=GeoJSONResponse, summary="Modifier une borne (nouvelle version)")
def update_borne(borne_id: BorneId, feature: Annotated[BornePatch, Body()], session: SessionDep, principal: Writer,
                 crs: CrsParam = "EPSG:4326", if_match: IfMatch = None) -> Response:
    """`If-Match` : l'ETag de la version lue (412 si elle a changé, 428 s'il manque) ; `reason` obligatoire."""
    version = expected(if_match, "borne", borne_id)
    service.update(session, borne_id=borne_id, data=_input(feature, crs, partial=True), author=principal.name,
                   expected_version=version, by=principal)
    return _answer(session, borne_id, crs)


@router.post("/bornes/{borne_id}/retire", status_code=204, responses=PRECONDITION_RESPONSES,
             summary="Retirer une borne (rien n'est effacé)")
def retire_borne(borne_id: BorneId, body: RetireBody, session: SessionDep, principal: Writer,
                 if_match: IfMatch = None) -> Response:
    version = expected(if_match, "borne", borne_id)
    service.retire(session, borne_id=borne_id, author=principal.name, reason=body.reason, by=principal,
                   expected_version=version)
    return Response(status_code=204)


@router.get("/communes/{code}/bornes", response_model=BorneCollection, response_class=GeoJSONResponse,
            summary="Les bornes en vigueur d'une commune (paginées)")
def commune_bornes(code: Annotated[str, Path(max_length=100)], session: SessionDep,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
                   crs: CrsParam = "EPSG:4326") -> Response:
    """Points levés avec leur précision (m), méthode et date ; public, sans auteur."""
    return geojson(service.list_commune(session, commune_code=code, limit=limit, offset=offset, crs=_srid(crs)))
