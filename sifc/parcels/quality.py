"""Quality questions about a commune's current parcels, and statistics per territorial unit.

Overlaps between parcels (with the shared geometry and area), parcels outside or straddling
their commune's boundary, gaps narrower than a width between neighbouring parcels; counts
and areas per commune, department or pole.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.errors import InvalidInput, NotFound
from sifc.geojson import crs_member, geometry_sql

MAX_GAP_WIDTH_M = 5.0
MAX_GAP_PARCELS = 50_000
NOISE_M2 = 0.01  # below a hundredth of a square metre, a shared area is floating-point noise
STATS_LEVELS = {"commune": "c.code", "department": "c.department_code", "pole": "r.pole_code"}


def _commune(session: Session, code: str) -> None:
    if session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": code}).first() is None:
        raise NotFound("territory.not_found", level="commune", code=code)


def overlaps(session: Session, *, commune: str, crs: int = 4326, limit: int = 1000) -> bytes:
    """Pairs of current parcels of ``commune`` whose interiors overlap, with the overlap and its area."""
    _commune(session, commune)
    # The commune's parcels are read first, through its index: ordered by id under the LIMIT, the
    # planner would walk every current parcel of the registry in id order and filter the commune.
    row = session.execute(text(f"""
        WITH unit AS MATERIALIZED (
            SELECT parcel_id, nicad, geom FROM parcel WHERE commune_code = :commune
        ), pairs AS (
            SELECT a.parcel_id AS a_id, a.nicad AS a_nicad, b.parcel_id AS b_id, b.nicad AS b_nicad,
                   ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS geom
            FROM unit a JOIN parcel b ON b.geom && a.geom AND b.parcel_id > a.parcel_id
            WHERE overlap_area(a.geom, b.geom) > :noise
            ORDER BY a.parcel_id, b.parcel_id LIMIT :limit
        )
        SELECT json_build_object('type', 'FeatureCollection', 'numberReturned', count(*),
            'features', coalesce(json_agg(json_build_object(
                'type', 'Feature', 'geometry', {geometry_sql("p.geom", crs)},
                'properties', json_build_object('parcel_a', p.a_id, 'nicad_a', p.a_nicad, 'parcel_b', p.b_id,
                                                'nicad_b', p.b_nicad, 'area_m2', round(ST_Area(p.geom)::numeric, 2)))
                ORDER BY p.a_id, p.b_id), '[]'::json) {crs_member(crs)})::text
        FROM pairs p
    """), {"commune": commune, "noise": NOISE_M2, "limit": limit}).scalar_one()
    return str(row).encode()


def boundary_issues(session: Session, *, commune: str, crs: int = 4326, tolerance_m2: float = 1.0,
                    tolerance_ratio: float = 0.01, limit: int = 1000) -> bytes:
    """Current parcels of ``commune`` not inside its boundary beyond the tolerance.

    Each is ``outside`` (nothing inside) or ``straddling``, with its area outside.
    """
    _commune(session, commune)
    row = session.execute(text(f"""
        WITH candidates AS (
            SELECT p.*, p.area_m2 - coalesce(ST_Area(ST_Intersection(p.geom, c.geom)), 0) AS outside_m2
            FROM parcel p JOIN commune c ON c.code = p.commune_code
            WHERE p.commune_code = :commune AND (c.geom IS NULL OR NOT ST_CoveredBy(p.geom, c.geom))
        ), issues AS (
            SELECT * FROM candidates
            WHERE outside_m2 > greatest(:m2, :ratio * area_m2) ORDER BY parcel_id LIMIT :limit
        )
        SELECT json_build_object('type', 'FeatureCollection', 'numberReturned', count(*),
            'features', coalesce(json_agg(json_build_object(
                'type', 'Feature', 'id', p.parcel_id, 'geometry', {geometry_sql("p.geom", crs)},
                'properties', json_build_object(
                    'id', p.parcel_id, 'nicad', p.nicad, 'commune_code', p.commune_code,
                    'area_m2', round(p.area_m2::numeric, 2), 'outside_m2', round(p.outside_m2::numeric, 2),
                    'issue', CASE WHEN p.area_m2 - p.outside_m2 <= :m2 THEN 'outside' ELSE 'straddling' END))
                ORDER BY p.parcel_id), '[]'::json) {crs_member(crs)})::text
        FROM issues p
    """), {"commune": commune, "m2": tolerance_m2, "ratio": tolerance_ratio, "limit": limit}).scalar_one()
    return str(row).encode()


def gaps(session: Session, *, commune: str, width_m: float, crs: int = 4326, limit: int = 1000) -> bytes:
    """Gaps narrower than ``width_m`` between a commune's current parcels (closing the parcels' union)."""
    if not (math.isfinite(width_m) and 0 < width_m <= MAX_GAP_WIDTH_M):
        raise InvalidInput("quality.bad_width", width=width_m, limit=MAX_GAP_WIDTH_M)
    _commune(session, commune)
    count = session.execute(text("SELECT count(*) FROM parcel WHERE commune_code = :c"), {"c": commune}).scalar_one()
    if count > MAX_GAP_PARCELS:
        raise InvalidInput("quality.too_many_parcels", count=count, limit=MAX_GAP_PARCELS)
    row = session.execute(text(f"""
        WITH merged AS (
            SELECT ST_Union(geom) AS geom FROM parcel WHERE commune_code = :commune
        ), closed AS (
            SELECT ST_Buffer(ST_Buffer(geom, :half, 'join=mitre'), -:half, 'join=mitre') AS geom, geom AS parcels
            FROM merged
        ), pieces AS (
            SELECT (ST_Dump(ST_Difference(geom, parcels))).geom AS geom FROM closed WHERE geom IS NOT NULL
        ), found AS (
            SELECT geom FROM pieces WHERE ST_Area(geom) > :noise ORDER BY ST_Area(geom) DESC LIMIT :limit
        )
        SELECT json_build_object('type', 'FeatureCollection', 'numberReturned', count(*),
            'features', coalesce(json_agg(json_build_object(
                'type', 'Feature', 'geometry', {geometry_sql("p.geom", crs)},
                'properties', json_build_object('area_m2', round(ST_Area(p.geom)::numeric, 2),
                                                'width_below_m', CAST(:width AS double precision)))
                ORDER BY ST_Area(p.geom) DESC), '[]'::json) {crs_member(crs)})::text
        FROM found p
    """), {"commune": commune, "half": width_m / 2, "noise": NOISE_M2, "limit": limit,
           "width": width_m}).scalar_one()
    return str(row).encode()


def statistics(session: Session, *, level: str, code: str) -> dict[str, Any]:
    """Parcel counts and areas of a commune, department or pole: totals, by land use and tenure regime."""
    unit = STATS_LEVELS[level]
    table = {"commune": "commune", "department": "department", "pole": "pole"}[level]
    name = session.execute(text(f"SELECT name FROM {table} WHERE code = :code"), {"code": code}).scalar()
    if name is None:
        raise NotFound("territory.not_found", level=level, code=code)
    base = f"""
        FROM parcel p JOIN commune c ON c.code = p.commune_code JOIN region r ON r.code = c.region_code
        WHERE {unit} = :code"""
    totals = session.execute(text(f"""
        SELECT count(*) AS parcels, coalesce(sum(p.area_m2), 0) AS total_area_m2, avg(p.area_m2) AS mean_area_m2,
               count(*) FILTER (WHERE p.nicad IS NOT NULL) AS with_nicad, count(DISTINCT p.commune_code) AS communes
        {base}"""), {"code": code}).mappings().one()

    def breakdown(column: str) -> list[dict[str, Any]]:
        rows = session.execute(text(f"""
            SELECT coalesce(p.{column}, '') AS value, count(*) AS parcels, sum(p.area_m2) AS area_m2
            {base} GROUP BY 1 ORDER BY 2 DESC, 1"""), {"code": code}).mappings().all()
        return [{"value": r["value"] or None, "parcels": r["parcels"], "area_m2": round(r["area_m2"], 2)}
                for r in rows]

    parcels = int(totals["parcels"])
    return {
        "level": level, "code": code, "name": name, "parcels": parcels,
        "communes_with_parcels": int(totals["communes"]),
        "total_area_m2": round(float(totals["total_area_m2"]), 2),
        "mean_area_m2": round(float(totals["mean_area_m2"]), 2) if parcels else None,
        "with_nicad": int(totals["with_nicad"]),
        "share_with_nicad": round(totals["with_nicad"] / parcels, 4) if parcels else None,
        "by_land_use": breakdown("land_use"), "by_tenure_regime": breakdown("tenure_regime"),
    }
