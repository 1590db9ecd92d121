"""GeoJSON written by PostGIS: the one serialization path for geometries (RFC 7946)."""

from __future__ import annotations

COORDINATE_DIGITS = {4326: 7, 32628: 2}  # about 1 cm either way


def geometry_sql(column: str, crs: int, *, simplify_param: str | None = None) -> str:
    """SQL rendering ``column`` (stored in EPSG:32628) as GeoJSON in ``crs``, optionally simplified."""
    geom = column
    if simplify_param:
        geom = f"ST_SimplifyPreserveTopology({geom}, :{simplify_param})"
    if crs != 32628:
        geom = f"ST_Transform({geom}, {int(crs)})"
    return f"ST_AsGeoJSON({geom}, {COORDINATE_DIGITS[crs]})::json"


def crs_member(crs: int) -> str:
    """SQL fragment adding the (2008-style) ``crs`` member for a CRS other than WGS 84, or nothing."""
    if crs == 4326:
        return ""
    return (", 'crs', json_build_object('type', 'name', 'properties', "
            f"json_build_object('name', 'urn:ogc:def:crs:EPSG::{int(crs)}'))")
