"""Reading the territorial reference: list, get, children, locate.

GeoJSON is serialized once, in SQL (``ST_AsGeoJSON`` inside ``json_build_object``),
and handed to the HTTP layer as bytes. Every identifier in the SQL below comes
from the fixed :data:`LEVELS` table; every user value is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.crs import STORAGE_SRID, OutputCrs, in_domain
from sifc.errors import DatabaseUnavailable, InvalidInput, NotFound
from sifc.geojson import crs_member, geometry_sql
from sifc.text import search_form

Level = Literal["pole", "region", "department", "arrondissement", "commune"]


@dataclass(frozen=True)
class LevelSpec:
    """How one territorial level is stored and related to its neighbours."""

    table: str
    properties: tuple[str, ...]
    child: str | None
    parent_filters: tuple[str, ...] = ()
    collectivite: bool = False
    extra_properties: dict[str, str] = field(default_factory=dict)


LEVELS: dict[str, LevelSpec] = {
    "pole": LevelSpec(
        "pole", ("code", "name", "boundary_status", "source", "valid_from"), "region",
        extra_properties={"region_codes": "(SELECT array_agg(r.code ORDER BY r.code) FROM region r "
                                          "WHERE r.pole_code = t.code)"}),
    "region": LevelSpec(
        "region", ("code", "name", "pole_code", "official_area_km2", "boundary_status", "source",
                   "valid_from"), "department", parent_filters=("pole_code",)),
    "department": LevelSpec(
        "department", ("code", "name", "region_code", "official_area_km2", "boundary_status",
                       "source", "valid_from"), "arrondissement",
        parent_filters=("region_code",), collectivite=True),
    "arrondissement": LevelSpec(
        "arrondissement", ("code", "name", "department_code", "region_code",
                           "official_area_km2", "boundary_status", "source", "valid_from"),
        "commune", parent_filters=("department_code", "region_code")),
    "commune": LevelSpec(
        "commune", ("code", "national_code", "name", "department_code", "arrondissement_code",
                    "region_code", "boundary_status", "source", "valid_from"), None,
        parent_filters=("arrondissement_code", "department_code", "region_code"),
        collectivite=True,
        extra_properties={"aliases": "(SELECT array_agg(a.alias ORDER BY a.alias) "
                                     "FROM commune_alias a WHERE a.commune_code = t.code)"}),
}
PARENT_COLUMN = {"pole": "pole_code", "region": "region_code", "department": "department_code",
                 "arrondissement": "arrondissement_code"}


@dataclass(frozen=True)
class GeometryOptions:
    """How geometries are written out."""

    include: bool = True
    crs: OutputCrs = 4326
    simplify_m: float | None = None


@dataclass(frozen=True)
class ListQuery:
    """Filters and paging of a list request."""

    q: str | None = None
    parents: dict[str, str] = field(default_factory=dict)
    limit: int = 100
    offset: int = 0


def _geometry_sql(options: GeometryOptions) -> str:
    if not options.include:
        return "NULL::json"
    return geometry_sql("t.geom", options.crs, simplify_param="simplify" if options.simplify_m else None)


def property_expressions(spec: LevelSpec) -> dict[str, str]:
    """Each public property of a level → its SQL expression over the alias ``t``."""
    expressions = {column: f"t.{column}" for column in spec.properties}
    expressions.update(spec.extra_properties)
    expressions["area_km2"] = "round((ST_Area(t.geom) / 1e6)::numeric, 3)"
    expressions["collectivite_territoriale"] = str(spec.collectivite).lower()
    return expressions


def json_object_sql(expressions: dict[str, str]) -> str:
    """``json_build_object`` of fixed names (never user text) and their SQL expressions."""
    return "json_build_object(" + ", ".join(f"'{name}', {sql}" for name, sql in expressions.items()) + ")"


def _properties_sql(spec: LevelSpec) -> str:
    return json_object_sql(property_expressions(spec))


def _feature_sql(level: str, options: GeometryOptions) -> str:
    return (f"json_build_object('type', 'Feature', 'id', t.code, "
            f"'geometry', {_geometry_sql(options)}, 'properties', {_properties_sql(LEVELS[level])})")


def _params(options: GeometryOptions) -> dict[str, object]:
    return {"simplify": options.simplify_m} if options.simplify_m else {}


def list_units(session: Session, *, level: str, query: ListQuery,
               geometry: GeometryOptions) -> bytes:
    """A FeatureCollection of ``level`` units matching ``query``, ordered by code."""
    spec = LEVELS[level]
    where, params = ["TRUE"], {**_params(geometry), "limit": query.limit, "offset": query.offset}
    for column, value in query.parents.items():
        if column not in spec.parent_filters:
            raise InvalidInput("http.validation")
        where.append(f"t.{column} = :{column}")
        params[column] = value
    if query.q:
        params["q"] = f"%{_escape_like(search_form(query.q))}%"
        alias = (" OR EXISTS (SELECT 1 FROM commune_alias a WHERE a.commune_code = t.code "
                 "AND a.alias_search LIKE :q)") if level == "commune" else ""
        where.append(f"(t.name_search LIKE :q{alias} OR lower(t.code) LIKE lower(:q))")
    condition = " AND ".join(where)
    sql = f"""
        WITH matched AS (SELECT t.* FROM {spec.table} t WHERE {condition}),
             page AS (SELECT * FROM matched ORDER BY code LIMIT :limit OFFSET :offset)
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'numberMatched', (SELECT count(*) FROM matched),
            'numberReturned', (SELECT count(*) FROM page),
            'features', coalesce((SELECT json_agg({_feature_sql(level, geometry)} ORDER BY t.code)
                                  FROM page t), '[]'::json)
            {crs_member(geometry.crs)})::text
    """
    body: str = session.execute(text(sql), params).scalar_one()
    return body.encode()


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_unit(session: Session, *, level: str, code: str, geometry: GeometryOptions) -> bytes:
    """One unit as a GeoJSON Feature, or :class:`NotFound`."""
    spec = LEVELS[level]
    sql = f"SELECT ({_feature_sql(level, geometry)})::text FROM {spec.table} t WHERE t.code = :code"
    row = session.execute(text(sql), {**_params(geometry), "code": code}).scalar_one_or_none()
    if row is None:
        raise NotFound("territory.not_found", level=level, code=code)
    body: str = row
    return body.encode()


def children(session: Session, *, level: str, code: str, query: ListQuery,
             geometry: GeometryOptions) -> bytes:
    """The units of the next level down inside unit ``code``."""
    spec = LEVELS[level]
    if spec.child is None:
        raise InvalidInput("territory.no_children", level=level)
    exists = session.execute(text(f"SELECT 1 FROM {spec.table} WHERE code = :code"),
                             {"code": code}).scalar()
    if not exists:
        raise NotFound("territory.not_found", level=level, code=code)
    parents = {**query.parents, PARENT_COLUMN[level]: code}
    scoped = ListQuery(q=query.q, parents=parents, limit=query.limit, offset=query.offset)
    return list_units(session, level=spec.child, query=scoped, geometry=geometry)


@dataclass
class LocatedUnit:
    """One level of a located point's hierarchy."""

    code: str
    name: str | None
    boundary_status: str
    collectivite_territoriale: bool


@dataclass
class Location:
    """The hierarchy holding a point, pole → commune."""

    lon: float
    lat: float
    pole: LocatedUnit | None = None
    region: LocatedUnit | None = None
    department: LocatedUnit | None = None
    arrondissement: LocatedUnit | None = None
    commune: LocatedUnit | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def provisional(self) -> bool:
        """Whether any level of the answer rests on a provisional boundary."""
        return any(u is not None and u.boundary_status == "provisional"
                   for u in (self.pole, self.region, self.department, self.arrondissement,
                             self.commune))


_POINT = f"ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), {STORAGE_SRID})"


def _containing(session: Session, table: str, lon: float, lat: float) -> str | None:
    # On a shared edge a point touches two units: official boundaries win, then the code.
    return session.execute(text(f"""
        SELECT code FROM {table}
        WHERE geom && {_POINT} AND ST_Intersects(geom, {_POINT})
        ORDER BY boundary_status = 'official' DESC, code LIMIT 1
    """), {"lon": lon, "lat": lat}).scalar()


def _unit(session: Session, level: str, code: str | None) -> LocatedUnit | None:
    if code is None:
        return None
    row = session.execute(text(f"SELECT code, name, boundary_status FROM {LEVELS[level].table} "
                               "WHERE code = :code"), {"code": code}).one()
    return LocatedUnit(row.code, row.name, row.boundary_status, LEVELS[level].collectivite)


def _parent_codes(session: Session, level: str, code: str) -> dict[str, str | None]:
    """Codes of ``code``'s ancestors, from the stored parent links."""
    chain: dict[str, str | None] = {level: code}
    if level == "commune":
        row = session.execute(text("SELECT arrondissement_code, department_code FROM commune "
                                   "WHERE code = :c"), {"c": code}).one()
        chain["arrondissement"], chain["department"] = row.arrondissement_code, row.department_code
    if level == "arrondissement":
        chain["department"] = session.execute(text(
            "SELECT department_code FROM arrondissement WHERE code = :c"), {"c": code}).scalar()
    if "department" in chain:
        chain["region"] = session.execute(text(
            "SELECT region_code FROM department WHERE code = :c"),
            {"c": chain["department"]}).scalar()
    chain["pole"] = session.execute(text("SELECT pole_code FROM region WHERE code = :c"),
                                    {"c": chain["region"]}).scalar()
    return chain


def locate(session: Session, *, lon: float, lat: float) -> Location:
    """The hierarchy (pole → commune) holding a WGS 84 point.

    The commune is found by geometry and its ancestors by the stored parent links, so
    the answer is always one consistent branch of the hierarchy. A point in no commune
    (land left outside every commune by an official boundary) gets the levels above it
    and the reason; a point in no region lies outside Senegal (:class:`NotFound`).
    """
    location = Location(lon=lon, lat=lat)
    chain: dict[str, str | None] | None = None
    # Far from Senegal there is nothing to find, and UTM 28N cannot even place the point.
    levels = ("commune", "arrondissement", "department", "region") if in_domain(lon, lat) else ()
    for level in levels:
        code = _containing(session, level, lon, lat)
        if code is not None:
            chain = _parent_codes(session, level, code)
            break
        location.reasons.append(f"locate.no_{level}" if level in ("commune", "arrondissement")
                                else "")
    if chain is None:
        if not session.execute(text("SELECT EXISTS (SELECT 1 FROM region)")).scalar():
            raise DatabaseUnavailable("locate.reference_missing")
        raise NotFound("locate.outside_senegal", lon=lon, lat=lat)
    location.reasons = [r for r in location.reasons if r]
    for level in ("pole", "region", "department", "arrondissement", "commune"):
        setattr(location, level, _unit(session, level, chain.get(level)))
    return location
