"""Vector tiles (Mapbox Vector Tile 2.1) on the WebMercatorQuad grid (OGC 17-083r4), and their TileJSON.

A tile is one SQL statement and its bytes are passed through untouched: ``ST_TileEnvelope``,
``&&`` on a GiST-indexed geometry the database keeps in EPSG:3857 (migration 0005),
``ST_AsMVTGeom`` (extent 4096, buffer 64, clipped), ``ST_AsMVT``. Layer names, tables and
columns come from the fixed :data:`LAYERS`; the tile's indices are bound parameters.

A parcel is in a tile when its geometry intersects the tile (``ST_Intersects`` after the index
filter): the buffer only keeps outlines continuous across tile edges, it brings in no parcel
that does not touch the tile. The parcels are chosen by the selection OGC items and exports use
(:mod:`sifc.parcels.selection`, with the tile's envelope), and carry its public fields.
Territorial units are filtered by bounding box and dropped when nothing of them is left in the
tile and its buffer.

This module says what a layer holds (its tile, its zooms, fields and bounds); the TileJSON
document and its URLs are written by the HTTP layer, from the service's public URL.

Simplification by zoom (territorial layers): below :data:`DETAIL_ZOOM`, geometries are simplified
to half a pixel of a 512-pixel tile (``ST_Simplify``), from the copy simplified to 100 m once and
for all at zooms ≤ :data:`LOW_ZOOM` (a whole region would otherwise be simplified for every tile).
From :data:`DETAIL_ZOOM` on, ``ST_AsMVTGeom``'s own quantization to the 4096 grid suffices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import morecantile
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.crs import STORAGE_SRID
from sifc.db import Statement
from sifc.errors import InvalidInput, NotFound
from sifc.parcels import selection as parcel_selection
from sifc.personal import refuse as refuse_personal

TMS = morecantile.tms.get("WebMercatorQuad")
MAX_ZOOM = TMS.maxzoom  # 24
EXTENT = 4096
BUFFER = 64
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
WORLD_WIDTH_M = 2 * 20037508.342789244  # Web Mercator
LOW_ZOOM = 8
DETAIL_ZOOM = 12
PARCEL_MIN_ZOOM = 14
SERVED_AREA = (-18.5, 11.5, -10.5, 17.5)
"""Longitude-latitude box around Senegal with a margin: no unit or parcel lies outside (imports refuse
parcels outside Senegal). Tiles beyond it are answered empty without a query, and the tile envelopes
that are transformed to UTM 28N stay where that projection is defined."""


@dataclass(frozen=True)
class Field:
    """One public attribute: its SQL over ``t`` and its TileJSON type."""

    sql: str
    kind: str  # "String", "Number"


@dataclass(frozen=True)
class Layer:
    """One tiled collection."""

    id: str
    title: str
    description: str
    table: str
    fields: dict[str, Field]
    minzoom: int
    maxzoom: int  # the data's maximum zoom for clients (they overzoom past it); the server serves up to 24
    territorial: bool
    points: bool = False  # bornes: points in the storage CRS, transformed per tile (no stored EPSG:3857 copy)


def _text(column: str) -> Field:
    return Field(f"t.{column}", "String")


def _number(column: str) -> Field:
    return Field(f"t.{column}", "Number")


def _territorial(level: str, table: str, title: str, parents: tuple[str, ...], *, area: bool = True,
                 extra: tuple[str, ...] = ()) -> Layer:
    fields = {"code": _text("code"), "name": _text("name"),
              **{c: _text(c) for c in extra}, **{c: _text(c) for c in parents},
              "boundary_status": _text("boundary_status")}
    if area:
        fields["official_area_km2"] = _number("official_area_km2")
    return Layer(id=f"{level}s", title=title, description=f"Référentiel territorial national : {title.lower()}.",
                 table=table, fields=fields, minzoom=0, maxzoom=14,
                 territorial=True)


# An MVT value is a string, a number or a boolean: a UUID becomes text, a numeric a double, an
# instant its UTC ISO 8601 text.
_MVT_VALUES = {"id": "{}::text", "area_m2": "{}::float8",
               "valid_from": "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"}
_NUMBERS = ("version", "area_m2", "declared_area_m2")
PARCEL_FIELDS: dict[str, Field] = {
    name: Field(_MVT_VALUES.get(name, "{}").format(sql), "Number" if name in _NUMBERS else "String")
    for name, sql in parcel_selection.FIELDS.items()}
"""The parcel attributes a tile may carry: the public fields of the parcel selection, never who wrote them."""

BORNE_MIN_ZOOM = 15
BORNE_FIELDS: dict[str, Field] = {
    "id": Field("t.borne_id::text", "String"), "version": _number("version"), "code": _text("code"),
    "label": _text("label"), "commune_code": _text("commune_code"), "precision_m": _number("precision_m"),
    "survey_method": _text("survey_method"), "surveyed_on": Field("t.surveyed_on::text", "String"),
    "valid_from": Field(_MVT_VALUES["valid_from"].format("t.valid_from"), "String")}
"""The borne attributes a tile may carry: the public fields of sifc.bornes.service, never who wrote them."""

LAYERS: dict[str, Layer] = {layer.id: layer for layer in (
    _territorial("pole", "pole", "Pôles territoriaux", (), area=False),
    _territorial("region", "region", "Régions", ("pole_code",)),
    _territorial("department", "department", "Départements", ("region_code",)),
    _territorial("arrondissement", "arrondissement", "Arrondissements", ("department_code", "region_code")),
    _territorial("commune", "commune", "Communes", ("arrondissement_code", "department_code", "region_code"),
                 area=False, extra=("national_code",)),
    Layer(id="parcels", title="Parcelles", description="Parcelles en vigueur du cadastre communal (LADM).",
          table=parcel_selection.CURRENT, fields=PARCEL_FIELDS,
          minzoom=PARCEL_MIN_ZOOM, maxzoom=18, territorial=False),
    Layer(id="bornes", title="Bornes", description="Bornes en vigueur du cadastre communal (points levés).",
          table="borne", fields=BORNE_FIELDS, minzoom=BORNE_MIN_ZOOM, maxzoom=18, territorial=False, points=True),
)}


def layer(collection: str) -> Layer:
    """The tiled collection ``collection``, or 404."""
    found = LAYERS.get(collection)
    if found is None:
        raise NotFound("tiles.no_collection", id=collection[:100], known=", ".join(LAYERS))
    return found


@lru_cache(maxsize=1024)
def properties(collection: str, raw: str | None) -> tuple[str, ...]:
    """The attributes asked for (``a,b,c``; all public ones when absent, none when empty), in that order."""
    spec = layer(collection)
    if raw is None:
        return tuple(spec.fields)
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    refuse_personal(names)
    unknown = [n for n in names if n not in spec.fields]
    if unknown:
        raise InvalidInput("tiles.bad_properties", names=", ".join(n[:50] for n in unknown[:10]),
                           collection=spec.id, known=", ".join(spec.fields))
    return names


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse indices outside the WebMercatorQuad matrix of zoom ``z`` (404: that tile does not exist)."""
    if not (0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z):
        raise NotFound("tiles.out_of_matrix", z=z, x=x, y=y, max_zoom=MAX_ZOOM,
                       max_index=2 ** min(max(z, 0), MAX_ZOOM) - 1)


@lru_cache(maxsize=MAX_ZOOM + 1)
def _served_range(z: int) -> tuple[int, int, int, int]:
    west, south, east, north = SERVED_AREA
    top_left, bottom_right = TMS.tile(west, north, z), TMS.tile(east, south, z)
    return top_left.x, bottom_right.x, top_left.y, bottom_right.y


def outside_served_area(z: int, x: int, y: int) -> bool:
    """Whether the tile lies wholly outside :data:`SERVED_AREA` (empty by construction, no query)."""
    x0, x1, y0, y1 = _served_range(z)
    return not (x0 <= x <= x1 and y0 <= y <= y1)


def simplify_tolerance(z: int) -> float:
    """Half a pixel of a 512-pixel tile at zoom ``z``, in Web Mercator metres."""
    return float(WORLD_WIDTH_M / 2**z / 1024)


@lru_cache(maxsize=512)
def _statement(collection: str, names: tuple[str, ...], band: str) -> str:
    """The SQL of a layer's tile (``:z``, ``:x``, ``:y`` and, when simplified, ``:tolerance`` bound).

    The parcels in the tile are those the parcel selection gives for its envelope
    (:func:`sifc.parcels.selection.select`), the rows OGC items and exports read for a box.
    Territorial units keep their own match, a bounding-box test on their GiST index in EPSG:3857:
    they are not parcels but one unversioned row per unit of a reference table, never filtered,
    drawn simplified at small zooms, and no other face selects them this way.
    """
    spec = LAYERS[collection]
    columns = "".join(f", {spec.fields[n].sql} AS \"{n}\"" for n in names)
    if spec.points:
        geom = "ST_Transform(t.geom, 3857)"
    elif band == "low":
        geom = "ST_Simplify(t.geom_3857_low, :tolerance, true)"
    elif band == "middle":
        geom = "ST_Simplify(t.geom_3857, :tolerance, true)"
    else:
        geom = "t.geom_3857"
    if spec.territorial:
        rows = f"{spec.table} t ON t.geom_3857 && e.env WHERE t.geom_3857 IS NOT NULL"
    elif spec.points:  # the index of current bornes is in UTM 28N: the envelope widened by 1 m, then exact
        rows = (f"{spec.table} t ON t.geom && ST_Expand(ST_Transform(e.env, {STORAGE_SRID}), 1) "
                "AND ST_Intersects(ST_Transform(t.geom, 3857), e.env)")
    else:
        rows = f"{spec.table} t ON {parcel_selection.select(envelope='e.env').where}"
    # OFFSET 0 fences the subquery: pushed into it, `q.geom IS NOT NULL` made PostgreSQL run
    # ST_AsMVTGeom twice per feature (once to filter, once to output); same tile, 30-40 % less work.
    return f"""
        SELECT ST_AsMVT(q, '{spec.id}', {EXTENT}, 'geom') FROM (
            SELECT ST_AsMVTGeom({geom}, e.env, {EXTENT}, {BUFFER}, true) AS geom{columns}
            FROM (SELECT ST_TileEnvelope(:z, :x, :y) AS env) e
            JOIN {rows}
            OFFSET 0
        ) q WHERE q.geom IS NOT NULL"""


def tile(session: Session, collection: str, *, z: int, x: int, y: int, names: tuple[str, ...]) -> bytes:
    """The tile's MVT bytes as PostGIS wrote them; empty when nothing is in it (or below the layer's minzoom)."""
    statement = tile_statement(collection, z=z, x=x, y=y, names=names)
    return tile_bytes(statement.row(session)[0]) if statement is not None else b""


def tile_bytes(value: Any) -> bytes:
    """The MVT bytes of the tile statement's value (``NULL`` or empty: an empty tile)."""
    return bytes(value) if value else b""


def tile_statement(collection: str, *, z: int, x: int, y: int, names: tuple[str, ...]) -> Statement | None:
    """The statement writing the tile (for a session or the read pool); ``None`` when it is empty by construction."""
    check_tile(z, x, y)
    spec = layer(collection)
    if z < spec.minzoom or outside_served_area(z, x, y):
        return None
    band = "detail"
    params: dict[str, Any] = {"z": z, "x": x, "y": y}
    if spec.territorial and z < DETAIL_ZOOM:
        band = "low" if z <= LOW_ZOOM else "middle"
        params["tolerance"] = simplify_tolerance(z)
    return Statement(_statement(spec.id, names, band), params)


FALLBACK_BOUNDS = (-17.6, 12.3, -11.3, 16.7)
"""Senegal (west, south, east, north): the bounds of a layer that holds nothing yet."""


def bounds(session: Session, collection: str) -> tuple[float, float, float, float]:
    """The layer's longitude-latitude bounds (west, south, east, north), to six decimals.

    A Web Mercator box is a longitude-latitude box, so transforming its corners is exact. The
    parcels' (and bornes') bounds are those of the communes holding current ones (one index probe
    each), not a scan of every parcel.
    """
    spec = layer(collection)
    if spec.territorial:
        source = f"{spec.table} t"
    else:
        source = f"commune t WHERE EXISTS (SELECT 1 FROM {spec.table} p WHERE p.commune_code = t.code)"
    row = session.execute(text(f"""SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (
        SELECT ST_Transform(ST_SetSRID(ST_Extent(t.geom_3857)::geometry, 3857), 4326) AS b FROM {source}) x""")).one()
    if row[0] is None:
        return FALLBACK_BOUNDS
    west, south, east, north = (round(float(v), 6) for v in row)
    return west, south, east, north
