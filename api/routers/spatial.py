"""Spatial and quality questions about current parcels, and statistics (GeoJSON in WGS 84 by default)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import Response
from geojson_pydantic.geometries import Geometry

from api.deps import ReaderDep, SessionDep
from api.limits import AnalysisRateLimited
from api.responses import GeoJSONResponse, described, geojson
from api.schemas.features import (
    BoundaryIssueCollection,
    GapCollection,
    OverlapCollection,
    SpatialParcelCollection,
)
from api.schemas.figures import UnitStatistics, UnitStatisticsOut
from sifc.parcels import quality, spatial

router = APIRouter(tags=["Questions spatiales"])

CrsParam = Annotated[Literal["EPSG:4326", "EPSG:32628"], Query(
    description="SCR des coordonnées servies : WGS 84 (défaut) ou UTM 28N.")]
Lon = Annotated[float, Query(ge=-180, le=180, description="Longitude WGS 84.")]
Lat = Annotated[float, Query(ge=-90, le=90, description="Latitude WGS 84.")]
Limit = Annotated[int, Query(ge=1, le=spatial.MAX_FEATURES)]
Distance = Annotated[float, Query(ge=0, le=spatial.MAX_DISTANCE_M, description="Distance en mètres.")]


def _srid(crs: str) -> int:
    return int(crs.split(":")[1])


@router.get("/parcels/at", response_model=SpatialParcelCollection, response_class=GeoJSONResponse,
            summary="Parcelle(s) en vigueur en un point")
async def parcels_at(reader: ReaderDep, lon: Lon, lat: Lat, crs: CrsParam = "EPSG:4326") -> Response:
    """Plusieurs parcelles si elles se chevauchent en ce point ; aucune hors du cadastre."""
    # Hot path: the read pool on the event loop, no session, no thread (bench/serve_bench).
    statement = spatial.at_point_statement(lon=lon, lat=lat, crs=_srid(crs))
    return geojson(str((await reader.row(statement))[0]).encode())


@router.get("/parcels/in-bbox", response_model=SpatialParcelCollection, response_class=GeoJSONResponse,
            summary="Parcelles en vigueur dans une emprise")
def parcels_in_bbox(session: SessionDep,
                    bbox: Annotated[str, Query(max_length=200, description="minx,miny,maxx,maxy")],
                    bbox_crs: Annotated[Literal["EPSG:4326", "EPSG:32628"], Query(alias="bbox-crs")] = "EPSG:4326",
                    limit: Limit = 100, offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                    crs: CrsParam = "EPSG:4326") -> Response:
    """Triées par identifiant, paginées (`limit`, `offset`) ; au plus 2 500 km² par question."""
    box = spatial.parse_bbox(bbox, _srid(bbox_crs))
    return geojson(spatial.in_bbox(session, bbox=box, bbox_crs=_srid(bbox_crs), limit=limit, offset=offset,
                                   crs=_srid(crs)))


async def vertices_first(request: Request) -> None:
    """Refuse a posted geometry of too many vertices on its parsed JSON, before a model or a shape is built.

    Dependencies run before the body is validated: a million-vertex polygon is refused after counting
    ``MAX_VERTICES`` positions, instead of after seconds spent building its model and its shape.
    """
    try:
        posted = await request.json()  # parsed once: FastAPI reads the same cached body
    except ValueError:
        return  # not JSON: the body's own validation answers
    spatial.refuse_detailed(posted)


@router.post("/parcels/intersecting", dependencies=[AnalysisRateLimited, Depends(vertices_first)],
             response_model=SpatialParcelCollection, response_class=GeoJSONResponse,
             summary="Parcelles en vigueur qui rencontrent une géométrie")
def parcels_intersecting(session: SessionDep, geometry: Annotated[Geometry, Body()],
                         geometry_crs: Annotated[Literal["EPSG:4326", "EPSG:32628"],
                                                 Query(alias="geometry-crs")] = "EPSG:4326",
                         limit: Limit = 100, crs: CrsParam = "EPSG:4326") -> Response:
    """La géométrie (GeoJSON) est dans le SCR `geometry-crs` ; au plus 10 000 sommets."""
    return geojson(spatial.intersecting(session, geometry=geometry.model_dump(exclude_none=True),
                                        input_crs=_srid(geometry_crs), crs=_srid(crs), limit=limit))


@router.get("/parcels/near", response_model=SpatialParcelCollection, response_class=GeoJSONResponse,
            summary="Parcelles en vigueur à moins d'une distance d'un point")
def parcels_near(session: SessionDep, lon: Lon, lat: Lat, distance: Distance, limit: Limit = 100,
                 crs: CrsParam = "EPSG:4326") -> Response:
    """Les plus proches d'abord, avec `distance_m`."""
    return geojson(spatial.within_distance(session, lon=lon, lat=lat, distance_m=distance, crs=_srid(crs),
                                           limit=limit))


@router.get("/parcels/nearest", response_model=SpatialParcelCollection, response_class=GeoJSONResponse,
            summary="Les k parcelles en vigueur les plus proches d'un point")
def parcels_nearest(session: SessionDep, lon: Lon, lat: Lat,
                    k: Annotated[int, Query(ge=1, le=spatial.MAX_NEAREST)] = 5,
                    crs: CrsParam = "EPSG:4326") -> Response:
    """Recherche des plus proches voisins par l'index spatial, avec `distance_m`."""
    return geojson(spatial.nearest(session, lon=lon, lat=lat, k=k, crs=_srid(crs)))


@router.get("/parcels/{parcel_id}/neighbours", response_model=SpatialParcelCollection, response_class=GeoJSONResponse,
            summary="Les voisines d'une parcelle")
def parcel_neighbours(session: SessionDep, parcel_id: Annotated[str, Path(max_length=64)],
                      distance: Distance = 0.0, crs: CrsParam = "EPSG:4326") -> Response:
    """Celles qui la touchent (`distance=0`) ou sont à moins de `distance` mètres, avec `distance_m`."""
    return geojson(spatial.neighbours(session, parcel_id=parcel_id, distance_m=distance, crs=_srid(crs)))


CommuneCode = Annotated[str, Path(max_length=100)]


@router.get("/communes/{code}/overlaps", dependencies=[AnalysisRateLimited],
            response_model=OverlapCollection, response_class=GeoJSONResponse,
            summary="Chevauchements entre parcelles en vigueur d'une commune")
def commune_overlaps(session: SessionDep, code: CommuneCode, limit: Limit = 1000,
                     crs: CrsParam = "EPSG:4326") -> Response:
    """Une entité par paire : la géométrie partagée et sa surface (`area_m2`)."""
    return geojson(quality.overlaps(session, commune=code, crs=_srid(crs), limit=limit))


@router.get("/communes/{code}/boundary-issues", dependencies=[AnalysisRateLimited],
            response_model=BoundaryIssueCollection, response_class=GeoJSONResponse,
            summary="Parcelles hors de leur commune ou à cheval sur sa limite")
def commune_boundary_issues(session: SessionDep, code: CommuneCode, limit: Limit = 1000,
                            crs: CrsParam = "EPSG:4326") -> Response:
    """`issue` : `outside` ou `straddling`, avec la surface hors de la commune (`outside_m2`)."""
    return geojson(quality.boundary_issues(session, commune=code, crs=_srid(crs), limit=limit))


@router.get("/communes/{code}/gaps", dependencies=[AnalysisRateLimited],
            response_model=GapCollection, response_class=GeoJSONResponse,
            summary="Interstices plus étroits qu'une largeur entre parcelles voisines")
def commune_gaps(session: SessionDep, code: CommuneCode,
                 width: Annotated[float, Query(gt=0, le=quality.MAX_GAP_WIDTH_M, description="Largeur (m).")] = 0.5,
                 limit: Limit = 1000, crs: CrsParam = "EPSG:4326") -> Response:
    """Les vides entre parcelles que referme une largeur `width` (les plus grands d'abord)."""
    return geojson(quality.gaps(session, commune=code, width_m=width, crs=_srid(crs), limit=limit))


@router.get("/stats/{level}/{code}", dependencies=[AnalysisRateLimited], responses=described(UnitStatisticsOut),
            summary="Statistiques des parcelles d'une commune, d'un département, d'un pôle")
def unit_statistics(session: SessionDep, level: Literal["commune", "department", "pole"],
                    code: Annotated[str, Path(max_length=100)]) -> UnitStatistics:
    """Nombre, surfaces totale et moyenne, répartition par usage et par régime foncier, part avec NICAD."""
    return quality.statistics(session, level=level, code=code)
