"""What makes two states of a parcel the same, for a field return.

A return compares three states of each parcel it carries: the one issued (and advanced by earlier
returns: ``field_package_item.base_version``), the one in the returned file, and the registry's
current one. Comparing raw bytes would call a parcel changed because QGIS re-wrote a polygon as a
multipolygon, started its ring at another vertex or printed an area with one more decimal. The
fingerprint is taken over a normal form instead: the geometry as a multipolygon, normalised
(shapely ``normalize``: ring start and orientation), snapped to the millimetre; the editable public
attributes as canonical JSON (text trimmed, empty text as none, areas to the centimetre). The same
function fingerprints the registry's version at check-out and the file's row at return, so equal
fingerprints mean "no change" whichever side wrote them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from sifc.field.layers import EDITABLE_PARCEL_ATTRIBUTES

GRID_M = 0.001  # coordinates compared to the millimetre (storage CRS, metres)
AREA_DIGITS = 2


def normal_geometry(geometry: BaseGeometry | bytes | None) -> BaseGeometry | None:
    """``geometry`` (shapely or WKB) as a normalised multipolygon on the millimetre grid; None stays None."""
    if geometry is None:
        return None
    shape = shapely.from_wkb(geometry) if isinstance(geometry, bytes | bytearray | memoryview) else geometry
    if shape.is_empty:
        return None
    if isinstance(shape, Polygon):
        shape = MultiPolygon([shape])
    return shapely.normalize(shapely.set_precision(shape, GRID_M))


def normal_value(name: str, value: Any) -> Any:
    """An attribute in its compared form: text trimmed (empty: None), areas rounded to the centimetre."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if name == "declared_area_m2":
            try:
                value = float(value)
            except ValueError:
                return value
    if name == "declared_area_m2" and isinstance(value, int | float):
        return round(float(value), AREA_DIGITS)
    return value


def normal_attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """The editable public attributes of a parcel in their compared form."""
    return {name: normal_value(name, values.get(name)) for name in EDITABLE_PARCEL_ATTRIBUTES}


def of(geometry: BaseGeometry | bytes | None, values: Mapping[str, Any]) -> str:
    """The fingerprint (sha256 hex) of a parcel's shape and editable attributes."""
    shape = normal_geometry(geometry)
    digest = hashlib.sha256(shape.wkb if shape is not None else b"")
    digest.update(b"\x00")
    digest.update(orjson.dumps(normal_attributes(values), option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def geometry_of(geometry: BaseGeometry | bytes | None) -> str:
    """The fingerprint of a shape alone (to tell a shape change from an attribute change)."""
    shape = normal_geometry(geometry)
    return hashlib.sha256(shape.wkb if shape is not None else b"").hexdigest()
