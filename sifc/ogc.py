"""OGC API - Features (Part 1, core): the territorial levels, the current parcels and bornes as collections.

Features are serialized by PostGIS (GeoJSON, CRS84: longitude, latitude). This module is the
domain side: the collections, the parameters they accept and the queries that select their
features (the current parcels through :mod:`sifc.parcels.selection`, as exports and tiles do).
The protocol side (links, paging, the landing page, conformance, the OpenAPI 3.0
document) is in :mod:`api.ogc`.
Collection ids, tables and columns come from the fixed :data:`COLLECTIONS`; user values are
bound parameters.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.bornes import service as bornes
from sifc.crs import STORAGE_SRID
from sifc.db import Statement
from sifc.errors import InvalidInput, NotFound
from sifc.localites import service as localites
from sifc.ogc_filter import feature_condition
from sifc.parcels import selection as parcel_selection
from sifc.personal import refuse as refuse_personal
from sifc.territories.service import LEVELS, json_object_sql, property_expressions

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
STORAGE_CRS = f"{EPSG}{STORAGE_SRID}"
# Part 2: each CRS served → (SRID, latitude first?, decimals). EPSG:4326 is latitude, longitude.
SUPPORTED_CRS = {CRS84: (4326, False, 7), f"{EPSG}4326": (4326, True, 7), STORAGE_CRS: (STORAGE_SRID, False, 2),
                 f"{EPSG}3857": (3857, False, 2)}
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000


def check_crs(uri: str | None) -> str:
    """A supported CRS URI (CRS84 when none is asked for)."""
    if uri is None:
        return CRS84
    if uri not in SUPPORTED_CRS:
        raise InvalidInput("ogc.bad_crs", crs=uri[:200], supported=", ".join(SUPPORTED_CRS))
    return uri


def _geometry(uri: str) -> str:
    srid, latitude_first, digits = SUPPORTED_CRS[uri]
    geom = "t.geom" if srid == STORAGE_SRID else f"ST_Transform(t.geom, {srid})"
    if latitude_first:
        geom = f"ST_FlipCoordinates({geom})"
    return f"ST_AsGeoJSON({geom}, {digits})::json"


@dataclass(frozen=True)
class Collection:
    """One collection: where its features live and how they are written."""

    id: str
    title: str
    description: str
    table: str
    key: str
    fields: dict[str, str]  # public property → SQL expression over t (fixed text, never user input)
    exact_count: bool
    queryables: dict[str, tuple[str, str]]  # name → (SQL expression over t, JSON type)
    key_type: str = "text"  # the SQL type of a feature id: "uuid" or "text"

    @property
    def sortables(self) -> dict[str, tuple[str, str]]:
        """What ``sortby`` may name: the queryables that are not geometries."""
        return {name: spec for name, spec in self.queryables.items() if spec[1] != "geometry"}

    def properties_sql(self, selected: list[str] | None = None) -> str:
        """``json_build_object`` of the selected properties (all by default)."""
        names = self.fields if selected is None else selected
        return json_object_sql({name: self.fields[name] for name in names})


def _territory_queryables(level: str) -> dict[str, tuple[str, str]]:
    numbers = {"official_area_km2"}
    found = {c: (f"t.{c}", "number" if c in numbers else "string") for c in LEVELS[level].properties
             if c not in ("valid_from", "source")}
    return {**found, "geometry": ("t.geom", "geometry")}


COLLECTIONS: dict[str, Collection] = {
    **{f"{level}s": Collection(
        id=f"{level}s", title=title, description=f"Référentiel territorial national : {title.lower()}.",
        table=LEVELS[level].table, key="t.code", fields=property_expressions(LEVELS[level]), exact_count=True,
        queryables=_territory_queryables(level))
       for level, title in (("pole", "Pôles territoriaux"), ("region", "Régions"), ("department", "Départements"),
                            ("arrondissement", "Arrondissements"), ("commune", "Communes"))},
    "parcels": Collection(
        id="parcels", title="Parcelles", description="Parcelles en vigueur du cadastre communal (LADM).",
        table=parcel_selection.CURRENT, key="t.parcel_id", fields=parcel_selection.FIELDS, exact_count=False,
        queryables=parcel_selection.QUERYABLES, key_type="uuid"),
    "bornes": Collection(
        id="bornes", title="Bornes", description="Bornes en vigueur du cadastre communal : points levés, avec leur "
                                                 "précision (m), méthode et date de levé.",
        table="borne", key="t.borne_id", fields={name: column.replace("b.", "t.", 1)
                                                 for name, column in bornes.PUBLIC_FIELDS.items()},
        exact_count=False, queryables=bornes.QUERYABLES, key_type="uuid"),
    "localites": Collection(
        id="localites", title="Localités", description="Localités en vigueur (villages, quartiers, hameaux…) : nom, "
        "type, origine. Points d'origine osm : " + localites.ATTRIBUTION + ".",
        table="localite", key="t.localite_id", fields={name: column.replace("l.", "t.", 1)
                                                       for name, column in localites.PUBLIC_FIELDS.items()},
        exact_count=False, queryables=localites.QUERYABLES, key_type="uuid"),
}


def find_collection(collection_id: str) -> Collection:
    """The collection ``collection_id`` (404 if there is none)."""
    if collection_id not in COLLECTIONS:
        raise NotFound("ogc.no_collection", id=collection_id[:100])
    return COLLECTIONS[collection_id]


def bbox_numbers(raw: str) -> tuple[float, float, float, float]:
    """The x and y bounds of a 2-D bbox (4 numbers) or a 3-D one (6: minx,miny,minz,maxx,maxy,maxz).

    Part 1 defines ``bbox`` as 4 or 6 numbers (/req/core/fc-bbox-definition); the heights of a
    3-D box are ignored, since every geometry served is 2-D. Any other count is refused.
    """
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError as error:
        raise InvalidInput("spatial.bad_bbox", bbox=raw[:100]) from error
    if len(values) not in (4, 6) or not all(math.isfinite(v) for v in values):
        raise InvalidInput("spatial.bad_bbox", bbox=raw[:100])
    if len(values) == 6:
        if values[2] > values[5]:
            raise InvalidInput("spatial.bad_bbox", bbox=raw[:100])
        return values[0], values[1], values[3], values[4]
    return values[0], values[1], values[2], values[3]


def parse_bbox(raw: str, bbox_crs: str = CRS84) -> tuple[float, float, float, float, int]:
    """A bbox (4 or 6 numbers) in ``bbox_crs`` (EPSG:4326: latitude first), as (x0, y0, x1, y1, srid)."""
    minx, miny, maxx, maxy = bbox_numbers(raw)
    srid, latitude_first, _ = SUPPORTED_CRS[check_crs(bbox_crs)]
    if latitude_first:
        minx, miny, maxx, maxy = miny, minx, maxy, maxx
    geographic = srid == 4326
    if not (minx <= maxx and miny <= maxy) or (geographic and not (-180 <= minx and maxx <= 180
                                                                 and -90 <= miny and maxy <= 90)):
        raise InvalidInput("spatial.bad_bbox", bbox=raw[:100])
    return minx, miny, maxx, maxy, srid


ITEMS_PARAMETERS = frozenset({"limit", "offset", "bbox", "bbox-crs", "crs", "filter", "filter-lang", "filter-crs",
                              "properties", "sortby", "f"})


def select_properties(collection_id: str, raw: str | None) -> list[str] | None:
    """The properties asked for with ``properties=a,b`` (None: all of them; empty: none)."""
    if raw is None:
        return None
    spec = find_collection(collection_id)
    names = [name.strip() for name in raw.split(",") if name.strip()]
    refuse_personal(names)
    unknown = [name for name in names if name not in spec.fields]
    if unknown:
        raise InvalidInput("ogc.bad_properties", names=", ".join(unknown)[:200], available=", ".join(spec.fields))
    return list(dict.fromkeys(names))


def parse_sortby(collection_id: str, raw: str | None) -> list[tuple[str, bool]]:
    """``sortby=+name,-area_m2`` as (property, descending?) pairs over the collection's sortables."""
    if not raw:
        return []
    spec = find_collection(collection_id)
    keys = []
    for item in (part.strip() for part in raw.split(",")):
        descending = item.startswith("-")
        name = item.lstrip("+-").strip()
        refuse_personal([name])
        if name not in spec.sortables:
            raise InvalidInput("ogc.bad_sortby", name=name[:100], available=", ".join(spec.sortables))
        keys.append((name, descending))
    return keys


def property_filters(collection_id: str, query: dict[str, str]) -> dict[str, str]:
    """Part 1 property filters (``?land_use=habitation``); any other unknown parameter is refused."""
    spec = find_collection(collection_id)
    found = {}
    for name, value in query.items():
        if name in ITEMS_PARAMETERS:
            continue
        refuse_personal([name])
        if name not in spec.sortables:
            raise InvalidInput("ogc.unknown_parameter", name=name[:100],
                               available=", ".join([*sorted(ITEMS_PARAMETERS), *spec.sortables]))
        found[name] = value
    return found


def _condition(spec: Collection, **filters: Any) -> tuple[str, dict[str, Any]]:
    """The condition selecting a collection's features and its bound values.

    The parcels go through their one selection (:func:`sifc.parcels.selection.select`), which
    exports and tiles use too; a territorial level is filtered over its own table.
    """
    if spec.table == parcel_selection.CURRENT:
        chosen = parcel_selection.select(**filters)
        return chosen.where, chosen.params
    return feature_condition(spec.queryables, **filters)


@dataclass(frozen=True)
class ItemsPage:
    """The statements of a page of items, to run on a session or on the read pool.

    The envelope around them (links, counts) is the protocol's, written in :mod:`api.ogc.paging`.
    """

    collection_id: str
    features: Statement  # (rows fetched, up to limit + 1; the features' JSON array as text)
    count: Statement | None  # numberMatched, where an exact count is cheap
    limit: int  # clamped to MAX_LIMIT
    offset: int


def items_page(collection_id: str, *, limit: int, offset: int,
               bbox: tuple[float, float, float, float, int] | None, crs: str = CRS84,
               cql: Any = None, filter_crs: str = CRS84, properties: list[str] | None = None,
               sortby: list[tuple[str, bool]] | None = None, equals: dict[str, str] | None = None) -> ItemsPage:
    """The statements that select a page of a collection's features (written by PostGIS, as GeoJSON).

    ``limit`` above the maximum is clamped, as the standard asks. One more row than the page is
    read, so that the caller knows whether a next page exists. Pages are ordered by ``sortby`` and
    then by the feature id, so paging is stable.
    """
    spec = find_collection(collection_id)
    limit = max(1, min(limit, MAX_LIMIT))
    srid, latitude_first, _ = SUPPORTED_CRS[filter_crs] if cql is not None else SUPPORTED_CRS[CRS84]
    where, found = _condition(spec, bbox=bbox, equals=equals, cql=cql, filter_srid=srid, latitude_first=latitude_first)
    params: dict[str, Any] = {"fetch": limit + 1, "limit": limit, "offset": offset, **found}
    order = ", ".join([*(f"{spec.sortables[name][0]} {'DESC' if descending else 'ASC'}"
                         for name, descending in sortby or []), spec.key])
    features = Statement(f"""
        WITH page AS (SELECT t.* FROM {spec.table} t WHERE {where} ORDER BY {order} LIMIT :fetch OFFSET :offset),
             shown AS (SELECT * FROM page t ORDER BY {order} LIMIT :limit)
        SELECT (SELECT count(*) FROM page),
               coalesce((SELECT json_agg(json_build_object(
                   'type', 'Feature', 'id', {spec.key}, 'geometry', {_geometry(crs)},
                   'properties', {spec.properties_sql(properties)}) ORDER BY {order}) FROM shown t), '[]'::json)::text
    """, params)
    count = Statement(f"SELECT count(*) FROM {spec.table} t WHERE {where}", params) if spec.exact_count else None
    return ItemsPage(spec.id, features, count, limit, offset)


def feature(session: Session, collection_id: str, feature_id: str, *, crs: str = CRS84,
            properties: list[str] | None = None) -> str:
    """One feature as GeoJSON text (written by PostGIS); 404 for an unknown one."""
    spec = find_collection(collection_id)
    key_type = "uuid" if spec.key_type == "uuid" else "text"
    if key_type == "uuid":
        try:
            uuid.UUID(feature_id)
        except ValueError as error:
            raise NotFound("ogc.no_feature", id=feature_id[:100], collection=spec.id) from error
    row = session.execute(text(f"""
        SELECT json_build_object('type', 'Feature', 'id', {spec.key}, 'geometry', {_geometry(crs)},
                                 'properties', {spec.properties_sql(properties)})::text
        FROM {spec.table} t WHERE {spec.key} = CAST(:id AS {key_type})
    """), {"id": feature_id}).scalar()
    if row is None:
        raise NotFound("ogc.no_feature", id=feature_id[:100], collection=spec.id)
    return str(row)


def extent(session: Session, collection_id: str) -> tuple[float, float, float, float] | None:
    """The CRS84 bounding box of a collection's features (None when it has none)."""
    spec = find_collection(collection_id)
    found = session.execute(text(f"""
        SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
        FROM (SELECT ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, {STORAGE_SRID}), 4326) AS e FROM {spec.table}) x
    """)).one()
    if found[0] is None:
        return None
    return found[0], found[1], found[2], found[3]


