"""What makes two states of a parcel the same, for a field return.

A return compares three states of each parcel it carries: the one issued (and advanced by earlier
returns: ``field_package_item.base_version``), the one in the returned file, and the registry's
current one. Comparing raw bytes would call a parcel changed because QGIS re-wrote a polygon as a
multipolygon, started its ring at another vertex or printed an area with one more decimal. The
fingerprint is taken over a normal form instead: the geometry as a multipolygon, its coordinates
snapped to the millimetre one by one (shapely ``set_precision`` in ``pointwise`` mode: a canonical
form to hash, not a repair, so an invalid or degenerate shape is never re-noded and never refused
here) then normalised (shapely ``normalize``: ring start and orientation); the editable public
attributes as canonical JSON (text trimmed, empty text as none, areas to the centimetre). The same
function, :func:`of_many` (which :func:`of` calls for one parcel), fingerprints the registry's
version at check-out and the file's row at return, so equal fingerprints mean "no change" whichever
side wrote them. It works on arrays: a package fingerprints its parcels a batch at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import orjson
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from sifc.field.layers import EDITABLE_PARCEL_ATTRIBUTES

GRID_M = 0.001  # coordinates compared to the millimetre (storage CRS, metres)
AREA_DIGITS = 2

Shape: TypeAlias = BaseGeometry | bytes | bytearray | memoryview | None


def normal_geometries(geometries: Sequence[Shape]) -> NDArray[np.object_]:
    """Each geometry (shapely or WKB) as a normalised multipolygon on the millimetre grid; None or empty: None.

    Whole arrays through GEOS at once: reading the WKB, polygons made multipolygons, the grid, the
    normal form.
    """
    shapes = np.empty(len(geometries), dtype=object)
    wkb_at: list[int] = []
    wkb: list[bytes] = []
    for n, geometry in enumerate(geometries):
        if isinstance(geometry, BaseGeometry):
            shapes[n] = geometry
        elif geometry is not None:
            wkb_at.append(n)
            wkb.append(bytes(geometry))
    if wkb:
        shapes[wkb_at] = shapely.from_wkb(wkb)
    shapes[shapely.is_empty(shapes)] = None
    polygons = shapely.get_type_id(shapes) == shapely.GeometryType.POLYGON
    if polygons.any():
        shapes[polygons] = shapely.multipolygons(shapes[polygons][:, np.newaxis])
    snapped = shapely.set_precision(shapes, GRID_M, mode="pointwise")
    return shapely.normalize(snapped)  # type: ignore[no-any-return]


def normal_geometry(geometry: Shape) -> BaseGeometry | None:
    """``geometry`` (shapely or WKB) as a normalised multipolygon on the millimetre grid; None stays None."""
    shape: BaseGeometry | None = normal_geometries([geometry])[0]
    return shape


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


def _normal_wkb(geometries: Sequence[Shape]) -> list[bytes]:
    """The WKB each fingerprint hashes: the normal form's, or no bytes for no shape."""
    return [wkb if wkb is not None else b""
            for wkb in shapely.to_wkb(normal_geometries(geometries)).tolist()]


def of_many(geometries: Sequence[Shape], values: Sequence[Mapping[str, Any]]) -> list[str]:
    """The fingerprints (sha256 hex) of parcels' shapes and editable attributes, pairwise, in order.

    What both sides of a return compare: the package fingerprints each batch of parcels it issues
    with it, the return the rows of the file and the versions it writes.
    """
    if len(geometries) != len(values):
        raise ValueError(f"{len(geometries)} geometries for {len(values)} sets of values")
    prints = []
    for wkb, attributes in zip(_normal_wkb(geometries), values, strict=True):
        digest = hashlib.sha256(wkb)
        digest.update(b"\x00")
        digest.update(orjson.dumps(normal_attributes(attributes), option=orjson.OPT_SORT_KEYS))
        prints.append(digest.hexdigest())
    return prints


def of(geometry: Shape, values: Mapping[str, Any]) -> str:
    """The fingerprint (sha256 hex) of one parcel's shape and editable attributes: :func:`of_many` for one."""
    return of_many([geometry], [values])[0]


def geometry_of(geometry: Shape) -> str:
    """The fingerprint of a shape alone (to tell a shape change from an attribute change)."""
    return hashlib.sha256(_normal_wkb([geometry])[0]).hexdigest()
