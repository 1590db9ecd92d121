"""GeoJSON written by PostGIS: the one serialization path for geometries (RFC 7946); posted GeoJSON's numbers."""

from __future__ import annotations

import math
from typing import Any

from sifc.crs import STORAGE_SRID
from sifc.errors import InvalidInput

COORDINATE_DIGITS = {4326: 7, STORAGE_SRID: 2}  # about 1 cm either way


def geometry_sql(column: str, crs: int, *, simplify_param: str | None = None) -> str:
    """SQL rendering ``column`` (stored in EPSG:32628) as GeoJSON in ``crs``, optionally simplified."""
    geom = column
    if simplify_param:
        geom = f"ST_SimplifyPreserveTopology({geom}, :{simplify_param})"
    if crs != STORAGE_SRID:
        geom = f"ST_Transform({geom}, {int(crs)})"
    return f"ST_AsGeoJSON({geom}, {COORDINATE_DIGITS[crs]})::json"


def crs_member(crs: int) -> str:
    """SQL fragment adding the (2008-style) ``crs`` member for a CRS other than WGS 84, or nothing."""
    if crs == 4326:
        return ""
    return (", 'crs', json_build_object('type', 'name', 'properties', "
            f"json_build_object('name', 'urn:ogc:def:crs:EPSG::{int(crs)}'))")


def finite(geometry: Any) -> Any:
    """``geometry`` (posted GeoJSON, as parsed JSON) if every number of its positions is finite, else a refusal.

    JSON parsers read ``NaN`` and ``Infinity``; a shape built from them has no meaning (and GEOS
    warns instead of failing). Checked on the plain lists, before any shape is built: every route
    that takes a geometry passes it here.
    """
    pending = [geometry]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(value for key, value in item.items() if key in ("coordinates", "geometries"))
        elif isinstance(item, (list, tuple)):
            for value in item:
                if isinstance(value, float) and not math.isfinite(value):
                    raise InvalidInput("spatial.non_finite_coordinates")
                if isinstance(value, (list, tuple, dict)):
                    pending.append(value)
    return geometry
