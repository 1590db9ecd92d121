"""Territorial reference: poles, regions, departments, arrondissements, communes, /locate."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api.deps import SessionDep, SettingsDep
from api.problems import language
from api.responses import GeoJSONResponse, geojson
from api.schemas.features import TerritoryCollection, TerritoryFeature
from sifc.errors import InvalidInput
from sifc.i18n import translate
from sifc.territories import service
from sifc.territories.service import GeometryOptions, ListQuery

PLURAL = {"pole": "poles", "region": "regions", "department": "departments",
          "arrondissement": "arrondissements", "commune": "communes"}
FILTER_COLUMNS = {"pole": "pole_code", "region": "region_code", "department": "department_code",
                  "arrondissement": "arrondissement_code"}

router = APIRouter(tags=["Référentiel territorial"])


def geometry_options(
    settings: SettingsDep,
    geometry: Annotated[bool, Query(description="Inclure les géométries (false : attributs seuls).")] = True,
    simplify: Annotated[float | None, Query(
        gt=0, description="Tolérance de simplification en mètres (clients légers).")] = None,
    crs: Annotated[Literal["EPSG:4326", "EPSG:32628"], Query(
        description="CRS des coordonnées : WGS 84 (par défaut, RFC 7946) ou UTM 28N.")] = "EPSG:4326",
) -> GeometryOptions:
    if simplify is not None and simplify > settings.max_simplify_tolerance_m:
        raise InvalidInput("http.validation")
    return GeometryOptions(include=geometry, crs=int(crs.split(":")[1]), simplify_m=simplify)  # type: ignore[arg-type]


def list_query(
    settings: SettingsDep,
    q: Annotated[str | None, Query(
        max_length=100, description="Recherche par nom (accents, casse et tirets ignorés ; alias compris).")] = None,
    pole: Annotated[str | None, Query(max_length=20)] = None,
    region: Annotated[str | None, Query(max_length=20)] = None,
    department: Annotated[str | None, Query(max_length=20)] = None,
    arrondissement: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> ListQuery:
    given = {"pole": pole, "region": region, "department": department,
             "arrondissement": arrondissement}
    parents = {FILTER_COLUMNS[k]: v for k, v in given.items() if v}
    return ListQuery(q=q, parents=parents, limit=min(limit, settings.list_page_max), offset=offset)


GeometryDep = Annotated[GeometryOptions, Depends(geometry_options)]
ListDep = Annotated[ListQuery, Depends(list_query)]
Code = Annotated[str, Path(max_length=100)]



def _check_filters(level: str, query: ListQuery) -> None:
    allowed = service.LEVELS[level].parent_filters
    for column in query.parents:
        if column not in allowed:
            raise InvalidInput("http.validation")


def _add_level_routes(level: str) -> None:
    plural = PLURAL[level]

    @router.get(f"/{plural}", response_model=TerritoryCollection, response_class=GeoJSONResponse,
                summary=f"Lister les {plural}", operation_id=f"list_{plural}")
    def list_level(session: SessionDep, query: ListDep, geometry: GeometryDep) -> Response:
        _check_filters(level, query)
        return geojson(service.list_units(session, level=level, query=query, geometry=geometry))

    @router.get(f"/{plural}/{{code}}", response_model=TerritoryFeature, response_class=GeoJSONResponse,
                summary=f"Un(e) {level}", operation_id=f"get_{level}")
    def get_level(code: Code, session: SessionDep, geometry: GeometryDep) -> Response:
        return geojson(service.get_unit(session, level=level, code=code, geometry=geometry))

    child_level = service.LEVELS[level].child
    if child_level:
        child = PLURAL[child_level]

        @router.get(f"/{plural}/{{code}}/children", response_model=TerritoryCollection,
                    response_class=GeoJSONResponse, summary=f"Les {child} d'un(e) {level}",
                    operation_id=f"children_of_{level}")
        def children_of(code: Code, session: SessionDep, query: ListDep,
                        geometry: GeometryDep) -> Response:
            return geojson(service.children(session, level=level, code=code, query=query,
                                             geometry=geometry))


for _level in PLURAL:
    _add_level_routes(_level)


class LocatedUnitOut(BaseModel):
    code: str
    name: str | None
    boundary_status: Literal["official", "provisional"]
    collectivite_territoriale: bool


class LocationOut(BaseModel):
    lon: float
    lat: float
    pole: LocatedUnitOut | None
    region: LocatedUnitOut | None
    department: LocatedUnitOut | None
    arrondissement: LocatedUnitOut | None
    commune: LocatedUnitOut | None
    provisional: bool
    reasons: list[str]


@router.get("/locate", response_model=LocationOut, summary="Hiérarchie territoriale d'un point",
            responses={404: {"description": "Point hors du Sénégal"},
                       422: {"description": "Coordonnées hors limites"}})
def locate(
    request: Request,
    session: SessionDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude WGS 84")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude WGS 84")],
) -> LocationOut:
    found = service.locate(session, lon=lon, lat=lat)
    lang = language(request)
    return LocationOut(
        lon=lon, lat=lat, provisional=found.provisional,
        reasons=[translate(key, lang) for key in found.reasons],
        **{level: (None if unit is None else LocatedUnitOut(**unit.__dict__))
           for level, unit in ((lvl, getattr(found, lvl)) for lvl in PLURAL)},
    )
