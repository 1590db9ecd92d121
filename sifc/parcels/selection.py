"""Which current parcels a read returns: the one selection behind OGC items, exports and parcel tiles.

The OGC collection ``parcels`` (:mod:`sifc.ogc`), the exports (:mod:`sifc.exports`) and the
``parcels`` vector tile layer (:mod:`sifc.tiles`) all read the current parcels, and a client
comparing them must find the same parcels for the same place and filter. So they select them here:

- the rows: :data:`CURRENT`, the versions no later one has closed, read as ``t``;
- the attributes a public representation may carry: :data:`FIELDS`, never who wrote them;
- the filters: a box (any served CRS) or a Web Mercator envelope (a tile's) the parcels
  intersect, equality on :data:`QUERYABLES`, a CQL2 filter (OGC API - Features Part 3), a
  commune — each a condition over ``t`` with its values bound (:func:`select`).

Each face writes its own output around the selection (GeoJSON pages, files, MVT) and its own
columns from :data:`FIELDS` (an MVT value has no timestamp or UUID type: the tile casts). Every
read here is of the present register; an as-of read of one parcel is :func:`sifc.parcels.service.get`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sifc.crs import STORAGE_SRID
from sifc.ogc_filter import feature_conditions

CURRENT = "parcel"
"""The view of current parcel versions (``parcel_version WHERE valid_to IS NULL``, migration 0002).

PostgreSQL inlines it, so a query over it is planned as one over ``parcel_version`` with that
condition, and the partial GiST index of current versions serves it."""

FIELDS: dict[str, str] = {
    "id": "t.parcel_id", "version": "t.version", "nicad": "t.nicad", "nicad_status": "t.nicad_status",
    "commune_code": "t.commune_code", "section": "t.section", "local_number": "t.local_number",
    "area_m2": "round(t.area_m2::numeric, 2)", "declared_area_m2": "t.declared_area_m2", "land_use": "t.land_use",
    "tenure_regime": "t.tenure_regime", "valid_from": "t.valid_from",
}
"""The public attributes of a current parcel: name → SQL over ``t`` (fixed text, never user input)."""

QUERYABLES: dict[str, tuple[str, str]] = {
    **{c: (f"t.{c}", "string") for c in ("nicad", "nicad_status", "commune_code", "section", "local_number",
                                          "land_use", "tenure_regime")},
    "area_m2": ("t.area_m2", "number"), "declared_area_m2": ("t.declared_area_m2", "number"),
    "geometry": ("t.geom", "geometry"),
}
"""What a filter may name: name → (SQL over ``t``, JSON type)."""


@dataclass(frozen=True)
class Selection:
    """Which current parcels a read holds: a condition over ``t`` (a row of :data:`CURRENT`) and its bound values."""

    where: str
    params: dict[str, Any]
    commune: str | None = None  # the commune code it is restricted to, if any (an export's file name says it)


def envelope_condition(envelope: str) -> str:
    """The parcels intersecting ``envelope``, an SQL expression of a Web Mercator box (a tile's envelope).

    The index of current versions is in UTM 28N: the envelope is transformed, widened by 1 m (its
    edges bend a little in UTM) for the index, then each candidate is tested exactly against the
    EPSG:3857 copy of its geometry the database keeps (migration 0005), the one a tile draws.
    """
    return (f"t.geom && ST_Expand(ST_Transform({envelope}, {STORAGE_SRID}), 1) "
            f"AND ST_Intersects(t.geom_3857, {envelope})")


def select(*, bbox: tuple[float, float, float, float, int] | None = None, envelope: str | None = None,
           equals: dict[str, str] | None = None, cql: Any = None, filter_srid: int = 4326,
           latitude_first: bool = False, commune: str | None = None) -> Selection:
    """The current parcels that intersect ``bbox`` and ``envelope``, and match ``equals``, ``cql`` and ``commune``.

    ``bbox`` is ``(x0, y0, x1, y1, srid)``; ``envelope`` an SQL expression of a Web Mercator box
    (:func:`envelope_condition`); ``equals`` maps checked queryable names to values; ``cql`` is a
    parsed CQL2 filter whose geometries are in ``filter_srid`` (``latitude_first`` for EPSG:4326);
    ``commune`` a commune code. Without any of them, every current parcel.
    """
    conditions, params = feature_conditions(QUERYABLES, bbox=bbox, equals=equals, cql=cql, filter_srid=filter_srid,
                                            latitude_first=latitude_first)
    if envelope is not None:
        conditions.insert(0, envelope_condition(envelope))
    if commune is not None:
        conditions.append("t.commune_code = :selection_commune")
        params["selection_commune"] = commune
    return Selection(" AND ".join(conditions) or "TRUE", params, commune)
