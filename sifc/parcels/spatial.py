"""Spatial questions about current parcels.

At a point, in a box, intersecting a shape, within a distance, the k nearest, a parcel's neighbours.

Every answer is a GeoJSON FeatureCollection written by PostGIS. Inputs are bound parameters,
never formatted into SQL; sizes are capped so that no question can ask for the whole country.
"""

from __future__ import annotations

import math
from typing import Any

import shapely
from shapely.geometry import shape
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth.principal import ANONYMOUS
from sifc.crs import STORAGE_SRID, in_domain, point_sql, to_storage_sql
from sifc.db import Statement
from sifc.errors import InvalidInput
from sifc.geojson import crs_member, finite, geometry_sql
from sifc.parcels.service import COORDINATE_LIMITS, _parse_id, get

MAX_FEATURES = 1000
MAX_DISTANCE_M = 10_000.0
MAX_NEAREST = 100
MAX_VERTICES = 10_000
MAX_QUERY_AREA_KM2 = 2_500.0


def _properties(extra: str = "") -> str:
    return f"""json_build_object(
        'id', p.parcel_id, 'version', p.version, 'nicad', p.nicad, 'nicad_status', p.nicad_status,
        'commune_code', p.commune_code, 'section', p.section, 'local_number', p.local_number,
        'area_m2', round(p.area_m2::numeric, 2), 'land_use', p.land_use, 'tenure_regime', p.tenure_regime
        {extra})"""


def _collection(session: Session, where: str, params: dict[str, Any], *, crs: int, order: str = "p.parcel_id",
                limit: int = MAX_FEATURES, offset: int = 0, extra: str = "", extra_select: str = "") -> bytes:
    """The current parcels matching ``where`` (bound parameters only) as a FeatureCollection."""
    statement = _collection_statement(where, params, crs=crs, order=order, limit=limit, offset=offset, extra=extra,
                                      extra_select=extra_select)
    return str(statement.row(session)[0]).encode()


def _collection_statement(where: str, params: dict[str, Any], *, crs: int, order: str = "p.parcel_id",
                          limit: int = MAX_FEATURES, offset: int = 0, extra: str = "",
                          extra_select: str = "") -> Statement:
    """The statement writing, in one text value, the FeatureCollection of the current parcels matching ``where``."""
    return Statement(f"""
        WITH hits AS (
            SELECT p.*{extra_select} FROM parcel p WHERE {where} ORDER BY {order} OFFSET :offset LIMIT :limit
        )
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'numberReturned', count(*),
            'features', coalesce(json_agg(json_build_object(
                'type', 'Feature', 'id', p.parcel_id,
                'geometry', {geometry_sql("p.geom", crs)},
                'properties', {_properties(extra)}) ORDER BY {order}),
                '[]'::json)
            {crs_member(crs)})::text
        FROM hits p
    """, {**params, "limit": limit, "offset": offset})


def _point(lon: float, lat: float) -> dict[str, float]:
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput("spatial.bad_point", lon=lon, lat=lat)
    return {"lon": lon, "lat": lat}


POINT_SQL = point_sql()  # empty outside the domain: nothing there is near a parcel
# Inside the domain the clipping changes nothing and costs about a quarter of a point lookup.
DIRECT_POINT_SQL = f"ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), {STORAGE_SRID})"


def _point_sql(lon: float, lat: float) -> str:
    return DIRECT_POINT_SQL if in_domain(lon, lat) else POINT_SQL


def at_point(session: Session, *, lon: float, lat: float, crs: int = 4326) -> bytes:
    """The current parcels that cover a WGS 84 point (several where parcels overlap)."""
    return str(at_point_statement(lon=lon, lat=lat, crs=crs).row(session)[0]).encode()


def at_point_statement(*, lon: float, lat: float, crs: int = 4326) -> Statement:
    """The statement of :func:`at_point` (one text value), for the read pool of ``GET /parcels/at``."""
    return _collection_statement(covers(_point_sql(lon, lat)), _point(lon, lat), crs=crs)


def covers(point: str) -> str:
    """The condition "the parcel ``p`` covers ``point``" (an SQL expression of one point), as the index is used.

    ``&&`` beside ST_Covers: PostGIS estimates ``~`` (what ST_Covers expands to) at a flat 0.1 % of the rows,
    ``&&`` from the column's statistics (about one row). With ST_Covers alone, at 10,000,000 parcels the point
    was planned for 10,000 rows: a parallel scan with JIT compilation, 100 ms where 0.1 ms do (bench/README.md).
    """
    return f"p.geom && {point} AND ST_Covers(p.geom, {point})"


def refuse_detailed(geometry: Any, limit: int = MAX_VERTICES) -> Any:
    """``geometry`` (GeoJSON as parsed JSON) if it has at most ``limit`` positions, else a refusal.

    Counted on the plain lists, before a model or a shape is built from them: a million-vertex
    polygon is refused after ``limit`` positions, not after seconds of validation (the limit is
    the one :func:`intersecting` applies).
    """
    count = 0
    pending = [geometry]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(value for key, value in item.items() if key in ("coordinates", "geometries"))
        elif isinstance(item, list):
            if item and not isinstance(item[0], (list, dict)):
                count += 1
                if count > limit:
                    raise InvalidInput("spatial.too_many_vertices", limit=limit)
            else:
                pending.extend(item)
    return geometry


def bbox_values(raw: str) -> tuple[float, float, float, float]:
    """The four finite numbers of a ``minx,miny,maxx,maxy`` text, or a refusal naming it."""
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError as error:
        raise InvalidInput("spatial.bad_bbox", bbox=raw[:100]) from error
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidInput("spatial.bad_bbox", bbox=raw[:100])
    return values[0], values[1], values[2], values[3]


def parse_bbox(raw: str, bbox_crs: int) -> tuple[float, float, float, float]:
    """``minx,miny,maxx,maxy`` in ``bbox_crs`` (lon/lat order for EPSG:4326), checked."""
    minx, miny, maxx, maxy = bbox_values(raw)
    lo_x, lo_y, hi_x, hi_y = COORDINATE_LIMITS[bbox_crs]
    if not (lo_x <= minx < maxx <= hi_x and lo_y <= miny < maxy <= hi_y):
        raise InvalidInput("spatial.bad_bbox", bbox=raw[:100])
    return minx, miny, maxx, maxy


def in_bbox(session: Session, *, bbox: tuple[float, float, float, float], bbox_crs: int = 4326,
            limit: int = 100, offset: int = 0, crs: int = 4326) -> bytes:
    """The current parcels intersecting a box, in id order, paged."""
    envelope = to_storage_sql("ST_MakeEnvelope(:x0, :y0, :x1, :y1, CAST(:bbox_srid AS integer))",
                              "CAST(:bbox_srid AS integer)")
    area_km2 = session.execute(text(f"SELECT ST_Area({envelope}) / 1e6"), {
        "x0": bbox[0], "y0": bbox[1], "x1": bbox[2], "y1": bbox[3], "bbox_srid": bbox_crs}).scalar_one()
    if area_km2 > MAX_QUERY_AREA_KM2:
        raise InvalidInput("spatial.area_too_large", area=round(area_km2), limit=MAX_QUERY_AREA_KM2)
    return _collection(session, f"p.geom && {envelope} AND ST_Intersects(p.geom, {envelope})",
                       {"x0": bbox[0], "y0": bbox[1], "x1": bbox[2], "y1": bbox[3], "bbox_srid": bbox_crs},
                       crs=crs, limit=min(limit, MAX_FEATURES), offset=offset)


def intersecting(session: Session, *, geometry: dict[str, Any], input_crs: int = 4326, crs: int = 4326,
                 limit: int = 100) -> bytes:
    """The current parcels whose interiors or boundaries meet a posted GeoJSON geometry."""
    try:
        shaped = shape(finite(geometry))
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise InvalidInput("spatial.bad_geometry", reason=str(error)[:200]) from error
    if shapely.get_num_coordinates(shaped) > MAX_VERTICES:
        raise InvalidInput("spatial.too_many_vertices", limit=MAX_VERTICES)
    if shaped.is_empty or not all(math.isfinite(v) for v in shaped.bounds):
        raise InvalidInput("spatial.bad_geometry", reason="vide ou non fini")
    lo_x, lo_y, hi_x, hi_y = COORDINATE_LIMITS[input_crs]
    minx, miny, maxx, maxy = shaped.bounds
    if not (lo_x <= minx and maxx <= hi_x and lo_y <= miny and maxy <= hi_y):
        raise InvalidInput("spatial.bad_geometry", reason="coordonnées hors limites")
    shape_sql = to_storage_sql("ST_SetSRID(ST_GeomFromWKB(:wkb), CAST(:srid AS integer))", "CAST(:srid AS integer)")
    area_km2 = session.execute(text(f"SELECT ST_Area(ST_Envelope({shape_sql})) / 1e6"),
                               {"wkb": shapely.to_wkb(shaped), "srid": input_crs}).scalar_one()
    if area_km2 > MAX_QUERY_AREA_KM2:
        raise InvalidInput("spatial.area_too_large", area=round(area_km2), limit=MAX_QUERY_AREA_KM2)
    return _collection(session, f"ST_Intersects(p.geom, {shape_sql})",
                       {"wkb": shapely.to_wkb(shaped), "srid": input_crs}, crs=crs, limit=min(limit, MAX_FEATURES))


def within_distance(session: Session, *, lon: float, lat: float, distance_m: float, crs: int = 4326,
                    limit: int = 100) -> bytes:
    """The current parcels within ``distance_m`` metres of a point, nearest first, with their distance."""
    if not (math.isfinite(distance_m) and 0 <= distance_m <= MAX_DISTANCE_M):
        raise InvalidInput("spatial.bad_distance", distance=distance_m, limit=MAX_DISTANCE_M)
    params = {**_point(lon, lat), "distance": distance_m}
    point = _point_sql(lon, lat)
    return _collection(session, f"ST_DWithin(p.geom, {point}, :distance)", params, crs=crs,
                       order="distance_m, parcel_id", limit=min(limit, MAX_FEATURES),
                       extra=", 'distance_m', round(p.distance_m::numeric, 2)",
                       extra_select=f", ST_Distance(p.geom, {point}) AS distance_m")


def nearest(session: Session, *, lon: float, lat: float, k: int, crs: int = 4326) -> bytes:
    """The ``k`` current parcels nearest a point (index-driven KNN), nearest first, with their distance."""
    if not 1 <= k <= MAX_NEAREST:
        raise InvalidInput("spatial.bad_k", k=k, limit=MAX_NEAREST)
    params = {**_point(lon, lat), "k": k}
    if not in_domain(lon, lat):
        # Far from Senegal, distances in the storage CRS mean nothing (or fail): refuse rather than rank.
        raise InvalidInput("locate.outside_senegal", lon=lon, lat=lat)
    point = DIRECT_POINT_SQL
    row = session.execute(text(f"""
        WITH hits AS (
            SELECT p.*, ST_Distance(p.geom, {point}) AS distance_m
            FROM parcel p ORDER BY p.geom <-> {point} LIMIT :k
        )
        SELECT json_build_object(
            'type', 'FeatureCollection', 'numberReturned', count(*),
            'features', coalesce(json_agg(json_build_object(
                'type', 'Feature', 'id', p.parcel_id, 'geometry', {geometry_sql("p.geom", crs)},
                'properties', {_properties(", 'distance_m', round(p.distance_m::numeric, 2)")})
                ORDER BY p.distance_m, p.parcel_id), '[]'::json)
            {crs_member(crs)})::text
        FROM hits p
    """), params).scalar_one()
    return str(row).encode()


def neighbours(session: Session, *, parcel_id: str, distance_m: float = 0.0, crs: int = 4326) -> bytes:
    """The current parcels touching a parcel (``distance_m`` = 0) or within ``distance_m`` metres of it."""
    if not (math.isfinite(distance_m) and 0 <= distance_m <= MAX_DISTANCE_M):
        raise InvalidInput("spatial.bad_distance", distance=distance_m, limit=MAX_DISTANCE_M)
    pid = _parse_id(parcel_id)
    get(session, parcel_id=str(pid), reader=ANONYMOUS)  # 404 / 410 as for the parcel itself (its public form)
    subject = "(SELECT geom FROM parcel WHERE parcel_id = :pid)"
    return _collection(session, f"p.parcel_id <> :pid AND ST_DWithin(p.geom, {subject}, :distance)",
                       {"pid": pid, "distance": distance_m}, crs=crs,
                       extra=", 'distance_m', round(p.distance_m::numeric, 2)",
                       extra_select=f", ST_Distance(p.geom, {subject}) AS distance_m",
                       order="distance_m, parcel_id")
