"""Localités: list, read, create, update (a new version), retire, history, and the OpenStreetMap load.

A localité (ville, village, hameau, quartier, lieu-dit) is the series of its versions in
``localite_version`` (migration 0023), like a borne: the current one has no ``valid_to``; every
change writes a new version and closes the previous one in the name of the transaction's declared
actor (:mod:`sifc.versioning`), and each write is in the write journal. Its point is stored in the
storage CRS and must lie inside its commune's current boundary: a campaign's display is printed per
localité, and a point in the neighbouring commune would print it on the wrong list.

The OpenStreetMap extract (``localites_osm.gpkg``, © OpenStreetMap contributors, ODbL 1.0) is
sparse for the pilots, so land officers add and correct localités themselves (``origin = 'agent'``);
a reload never overwrites their work: a node already known (current, corrected or retired) is
left as it is.

Public representation: name, kind, point, origin, commune, OSM node, version and since — never who
wrote it nor why (``author``, ``reason``…: :data:`sifc.personal.PERSONAL_FIELDS`,
:data:`sifc.personal.FREE_TEXT_FIELDS`), which :func:`history` gives a reader of personal data of
the communes of that history, logged in the access audit.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal, require
from sifc.crs import STORAGE_SRID, in_domain
from sifc.errors import Gone, InvalidInput, NotFound
from sifc.federation import directory
from sifc.geojson import crs_member, finite, geometry_sql
from sifc.models import LOCALITE_KINDS
from sifc.personal import FREE_TEXT_FIELDS, PERSONAL_FIELDS, may_reveal
from sifc.text import search_form
from sifc.versioning import check_expected, close_version

OSM_LAYER = "localites"
ATTRIBUTION = "© les contributeurs d'OpenStreetMap, ODbL 1.0"
# OpenStreetMap's place=* values, as the commune's words for them.
OSM_KINDS = {"city": "ville", "town": "ville", "village": "village", "hamlet": "hameau", "suburb": "quartier",
             "neighbourhood": "quartier", "quarter": "quartier", "locality": "lieu_dit",
             "isolated_dwelling": "habitation_isolee"}
COORDINATE_LIMITS = {4326: (-180.0, -90.0, 180.0, 90.0),
                     STORAGE_SRID: (-2_000_000.0, -1_000_000.0, 3_000_000.0, 4_000_000.0)}
MAX_NAME = 200

PUBLIC_FIELDS: dict[str, str] = {
    "id": "l.localite_id", "version": "l.version", "name": "l.name", "kind": "l.kind", "origin": "l.origin",
    "osm_node_id": "l.osm_node_id", "commune_code": "l.commune_code", "valid_from": "l.valid_from",
}
"""The public attributes of a localité: name → SQL over ``l`` (fixed text, never user input)."""

QUERYABLES: dict[str, tuple[str, str]] = {
    **{c: (f"t.{c}", "string") for c in ("name", "kind", "origin", "commune_code")},
    "osm_node_id": ("t.osm_node_id", "integer"), "geometry": ("t.geom", "geometry"),
}
"""What an OGC filter on the ``localites`` collection may name: name → (SQL over ``t``, JSON type)."""

PERSONAL_COLUMNS = {"author": "l.author", "reason": "l.reason", "closed_by": "l.closed_by",
                    "close_reason": "l.close_reason"}
assert set(PERSONAL_COLUMNS) == PERSONAL_FIELDS["localites"] | FREE_TEXT_FIELDS["localites"]


@dataclass
class LocaliteInput:
    """What a land officer gives to create a localité or change it (a move, a new name, another kind)."""

    geometry: dict[str, Any] | None = None
    input_crs: int = 4326
    values: dict[str, Any] = field(default_factory=dict)  # name, kind, commune_code
    reason: str | None = None


def _feature_sql(crs: int, *, history: bool = False, personal: bool = False) -> str:
    fields = {**PUBLIC_FIELDS, **({"valid_to": "l.valid_to"} if history else {}),
              **(PERSONAL_COLUMNS if personal else {})}
    properties = ", ".join(f"'{name}', {column}" for name, column in fields.items())
    return f"""json_build_object('type', 'Feature', 'id', l.localite_id, 'geometry', {geometry_sql("l.geom", crs)},
                                 'properties', json_build_object({properties}))"""


def parse_id(localite_id: Any) -> uuid.UUID:
    """``localite_id`` as a UUID, or the 404 of an unknown localité."""
    try:
        return uuid.UUID(str(localite_id))
    except (ValueError, TypeError, AttributeError) as error:
        raise NotFound("localite.not_found", id=str(localite_id)[:64]) from error


def _missing(session: Session, lid: uuid.UUID) -> NoReturn:
    closed = session.execute(text("SELECT max(valid_to) FROM localite_version WHERE localite_id = :id"),
                             {"id": lid}).scalar()
    if closed is not None:
        raise Gone("localite.retired", id=str(lid), date=closed.date().isoformat())
    raise NotFound("localite.not_found", id=str(lid))


def _known_commune(session: Session, commune_code: str) -> None:
    if not session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": commune_code}).scalar():
        raise NotFound("territory.not_found", level="commune", code=str(commune_code)[:100])


# --- reads ----------------------------------------------------------------------------------------

def list_commune(session: Session, *, commune_code: str, crs: int = 4326, kind: str | None = None) -> bytes:
    """A commune's current localités (public fields) as a FeatureCollection, by name."""
    _known_commune(session, commune_code)
    where = "l.commune_code = :c" + (" AND l.kind = :kind" if kind else "")
    body: str = session.execute(text(f"""
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'numberReturned', count(*),
            'attribution', CAST(:attribution AS text),
            'features', coalesce(json_agg({_feature_sql(crs)} ORDER BY l.name_search, l.localite_id), '[]'::json)
            {crs_member(crs)})::text
        FROM localite l WHERE {where}"""), {"c": commune_code, "kind": kind, "attribution": ATTRIBUTION}).scalar_one()
    return body.encode()


def current(session: Session, *, localite_id: str) -> dict[str, Any]:
    """The current version's public fields as a dict (point in WGS 84 and in the storage CRS).

    For other services (campaigns: a display period per localité); 404 for an unknown id, 410 for a
    retired localité.
    """
    lid = parse_id(localite_id)
    row = session.execute(text("""
        SELECT localite_id, version, commune_code, name, kind, origin, osm_node_id,
               ST_X(ST_Transform(geom, 4326)) AS lon, ST_Y(ST_Transform(geom, 4326)) AS lat, ST_X(geom) AS x,
               ST_Y(geom) AS y
        FROM localite WHERE localite_id = :id"""), {"id": lid}).mappings().first()
    if row is None:
        _missing(session, lid)
    return {**dict(row), "localite_id": str(row["localite_id"])}


def get_with_version(session: Session, *, localite_id: str, crs: int = 4326) -> tuple[bytes, int]:
    """The current version as a GeoJSON Feature (public fields) and its number (the ETag)."""
    lid = parse_id(localite_id)
    row = session.execute(text(f"SELECT ({_feature_sql(crs)})::text, l.version FROM localite l "
                               "WHERE l.localite_id = :id"), {"id": lid}).first()
    if row is None:
        _missing(session, lid)
    return row[0].encode(), int(row[1])


def history(session: Session, *, localite_id: str, reader: Principal, crs: int = 4326) -> bytes:
    """Every version, oldest first, with its validity; authors and reasons for a reader in scope (logged)."""
    lid = parse_id(localite_id)
    communes = set(session.execute(text(
        "SELECT DISTINCT commune_code FROM localite_version WHERE localite_id = :id"), {"id": lid}).scalars())
    if not communes:
        raise NotFound("localite.not_found", id=str(lid))
    personal = may_reveal(reader, communes)
    body: str = session.execute(text(f"""
        SELECT json_build_object('type', 'FeatureCollection', 'features',
                                 json_agg({_feature_sql(crs, history=True, personal=personal)} ORDER BY l.version)
                                 {crs_member(crs)})::text
        FROM localite_version l WHERE l.localite_id = :id"""), {"id": lid}).scalar_one()
    if personal:
        audit.record(session, reader, service=f"{__name__}.history", subject_kind="localite", subject_id=str(lid),
                     commune_code=min(communes))
    return body.encode()


# --- writes ---------------------------------------------------------------------------------------

def _authorise(session: Session, by: Principal | None, communes: Iterable[str]) -> None:
    communes = list(communes)
    if by is not None:
        require(by, Action.WRITE_PARCELS, communes=communes)
    directory.ensure_owned(session, communes)


def _coordinates(geometry: Any, input_crs: int) -> tuple[float, float]:
    if input_crs not in COORDINATE_LIMITS:
        raise InvalidInput("localite.bad_coordinates", crs=f"EPSG:{input_crs}")
    finite(geometry)
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        found = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        raise InvalidInput("localite.not_point", found=str(found)[:40])
    coordinates = geometry.get("coordinates")
    if (not isinstance(coordinates, list | tuple) or len(coordinates) not in (2, 3)
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates)):
        raise InvalidInput("localite.not_point", found="Point")
    x, y = float(coordinates[0]), float(coordinates[1])
    limit = COORDINATE_LIMITS[input_crs]
    if not (math.isfinite(x) and math.isfinite(y) and limit[0] <= x <= limit[2] and limit[1] <= y <= limit[3]):
        raise InvalidInput("localite.bad_coordinates", crs=f"EPSG:{input_crs}")
    if input_crs == 4326 and not in_domain(x, y):
        raise InvalidInput("localite.outside_senegal")
    return x, y


def _placed(session: Session, geometry: Any, input_crs: int, commune: str | None) -> tuple[str, str]:
    """The point in the storage CRS (EWKB hex) and its commune, which must contain it (422 otherwise)."""
    x, y = _coordinates(geometry, input_crs)
    ewkb: str = session.execute(text(f"""
        SELECT encode(ST_AsEWKB(ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), :srid), {STORAGE_SRID})), 'hex')"""),
        {"x": x, "y": y, "srid": input_crs}).scalar_one()
    point = "CAST(:g AS geometry)"
    if commune:
        row = session.execute(text(f"SELECT c.geom IS NOT NULL, ST_Covers(c.geom, {point}) FROM commune c "
                                   "WHERE c.code = :c"), {"g": ewkb, "c": commune}).first()
        if row is None:
            raise InvalidInput("localite.unknown_commune", commune=str(commune)[:100])
        if not row[0]:
            raise InvalidInput("localite.commune_without_boundary", commune=commune)
        if not row[1]:
            raise InvalidInput("localite.outside_commune", commune=commune)
        return ewkb, commune
    found = session.execute(text(f"""
        SELECT c.code FROM commune c WHERE c.geom && {point} AND ST_Covers(c.geom, {point})
        ORDER BY (c.boundary_status = 'official') DESC, c.code LIMIT 1"""), {"g": ewkb}).scalar()
    if found is None:
        raise InvalidInput("localite.no_commune")
    return ewkb, str(found)


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - {"name", "kind", "commune_code"})
    if unknown:
        raise InvalidInput("localite.unknown_fields", names=", ".join(unknown)[:200])
    checked = dict(values)
    if "name" in checked:
        name = " ".join(str(checked["name"] or "").split())
        if not name or not search_form(name):
            raise InvalidInput("localite.name_required")
        if len(name) > MAX_NAME:
            raise InvalidInput("localite.name_too_long", max=MAX_NAME)
        checked["name"] = name
    if "kind" in checked and checked["kind"] not in LOCALITE_KINDS:
        raise InvalidInput("localite.bad_kind", kind=str(checked["kind"])[:40], kinds=", ".join(LOCALITE_KINDS))
    return checked


def _insert(session: Session, lid: uuid.UUID, version: int, values: dict[str, Any], ewkb: str, *, action: str,
            author: str, reason: str | None) -> None:
    session.execute(text("""
        INSERT INTO localite_version (localite_id, version, commune_code, name, name_search, kind, geom, osm_node_id,
                                      origin, synthetic, action, author, reason)
        VALUES (:id, :version, :commune, :name, :search, :kind, CAST(:g AS geometry), :osm, :origin, :synthetic,
                :action, :author, :reason)"""),
        {"id": lid, "version": version, "commune": values["commune_code"], "name": values["name"],
         "search": search_form(values["name"]), "kind": values["kind"], "g": ewkb,
         "osm": values.get("osm_node_id"), "origin": values.get("origin", "agent"),
         "synthetic": bool(values.get("synthetic")), "action": action, "author": author, "reason": reason})


def _state(session: Session, lid: uuid.UUID) -> dict[str, Any]:
    """The current version as the write journal keeps it (storage CRS, author and reason included)."""
    row = session.execute(text(f"""
        SELECT json_build_object('id', localite_id, 'version', version, 'commune_code', commune_code, 'name', name,
                                 'kind', kind, 'origin', origin, 'osm_node_id', osm_node_id,
                                 'geometry', {geometry_sql("geom", STORAGE_SRID)}, 'action', action,
                                 'author', author, 'reason', reason)::text
        FROM localite_version WHERE localite_id = :id AND valid_to IS NULL"""), {"id": lid}).scalar_one()
    found: dict[str, Any] = orjson.loads(row)
    return found


def create(session: Session, *, data: LocaliteInput, by: Principal | None, author: str) -> str:
    """Place a new localité (``origin = 'agent'``) inside a commune of ``by``'s scope; return its id.

    ``values``: ``name`` and ``kind`` required, ``commune_code`` optional (else the commune containing
    the point); a point outside the named commune is refused (422), nothing written.
    """
    if data.geometry is None:
        raise InvalidInput("localite.geometry_required")
    values = _checked(data.values)
    if "name" not in values:
        raise InvalidInput("localite.name_required")
    if "kind" not in values:
        raise InvalidInput("localite.bad_kind", kind="", kinds=", ".join(LOCALITE_KINDS))
    ewkb, commune = _placed(session, data.geometry, data.input_crs, values.get("commune_code"))
    _authorise(session, by, [commune])
    values["commune_code"] = commune
    lid = uuid.uuid4()
    _insert(session, lid, 1, values, ewkb, action="api:create", author=author, reason=data.reason)
    journal.record(session, by, author=author, operation="localite.create", object_kind="localite", object_id=lid,
                   commune_code=commune, after=_state(session, lid))
    return str(lid)


def _current_row(session: Session, lid: uuid.UUID) -> dict[str, Any]:
    row = session.execute(text("""
        SELECT localite_id, version, commune_code, name, kind, osm_node_id, origin, synthetic,
               encode(ST_AsEWKB(geom), 'hex') AS ewkb, ST_X(geom) AS x, ST_Y(geom) AS y
        FROM localite_version WHERE localite_id = :id AND valid_to IS NULL"""), {"id": lid}).mappings().first()
    if row is None:
        _missing(session, lid)
    return dict(row)


def update(session: Session, *, localite_id: str, data: LocaliteInput, expected_version: int | None,
           by: Principal | None, author: str) -> int:
    """A new version with ``data``'s changes (move, rename, kind, commune); return its number.

    ``reason`` is required; ``expected_version`` is the ``If-Match`` (412 if stale). The point, moved
    or not, must lie inside the commune of the new version; both communes must be in ``by``'s scope.
    """
    if not data.reason:
        raise InvalidInput("localite.reason_required")
    lid = parse_id(localite_id)
    current_ = _current_row(session, lid)
    _authorise(session, by, [current_["commune_code"]])
    check_expected(expected_version, current_["version"])
    changes = _checked(data.values)
    values = {k: current_[k] for k in ("name", "kind", "commune_code", "osm_node_id", "origin", "synthetic")}
    values.update(changes)
    ewkb = current_["ewkb"]
    if data.geometry is not None or values["commune_code"] != current_["commune_code"]:
        geometry = data.geometry or {"type": "Point", "coordinates": [current_["x"], current_["y"]]}
        crs = data.input_crs if data.geometry is not None else STORAGE_SRID
        ewkb, _ = _placed(session, geometry, crs, values["commune_code"])
        _authorise(session, by, [values["commune_code"]])
        if session.execute(text("SELECT ST_Equals(CAST(:a AS geometry), CAST(:b AS geometry))"),
                           {"a": ewkb, "b": current_["ewkb"]}).scalar():
            ewkb = current_["ewkb"]
    if ewkb == current_["ewkb"] and all(values[k] == current_[k] for k in ("name", "kind", "commune_code")):
        raise InvalidInput("localite.no_change")
    version: int = current_["version"] + 1
    before = _state(session, lid)
    close_version(session, "localite_version", "localite_id", lid, current_["version"], author=author,
                  reason=f"remplacée par la version {version}")
    _insert(session, lid, version, values, ewkb, action="api:update", author=author, reason=data.reason)
    journal.record(session, by, author=author, operation="localite.update", object_kind="localite", object_id=lid,
                   commune_code=values["commune_code"], before=before, after=_state(session, lid))
    return version


def retire(session: Session, *, localite_id: str, reason: str | None, expected_version: int | None,
           by: Principal | None, author: str) -> None:
    """Retire a localité (a duplicate, a place that is not one): close its version; nothing is deleted."""
    if not reason:
        raise InvalidInput("localite.reason_required")
    lid = parse_id(localite_id)
    current_ = _current_row(session, lid)
    _authorise(session, by, [current_["commune_code"]])
    check_expected(expected_version, current_["version"])
    before = _state(session, lid)
    close_version(session, "localite_version", "localite_id", lid, current_["version"], author=author,
                  reason=f"retirée : {reason}")
    journal.record(session, by, author=author, operation="localite.retire", object_kind="localite", object_id=lid,
                   commune_code=current_["commune_code"], before=before, after=None)


# --- the OpenStreetMap extract --------------------------------------------------------------------

def _read(path: Path) -> Any:
    import pyogrio  # the GDAL reader, loaded when a file is read

    if not path.is_file():
        raise InvalidInput("localite.osm_file_missing", path=str(path)[-200:])
    try:
        frame = pyogrio.read_dataframe(path, layer=OSM_LAYER,
                                       columns=["name", "place", "osm_node_id", "commune_code"])
    except Exception as error:  # noqa: BLE001 - GDAL's errors are many; the user gets one line
        raise InvalidInput("localite.osm_file_unreadable", path=path.name[:200], layer=OSM_LAYER) from error
    if frame.crs is None or frame.crs.to_epsg() != 4326:
        raise InvalidInput("localite.osm_file_unreadable", path=path.name[:200], layer=OSM_LAYER)
    return frame


def load_osm(session: Session, *, path: Path | str, communes: Collection[str] | None = None,
             by: Principal | None, author: str, synthetic: bool = False) -> dict[str, Any]:
    """Load the named places of the OSM extract that lie in ``communes`` (default: every commune this node owns).

    The commune of a point is the registry's current boundary containing it, not the file's
    ``commune_code`` (computed against provisional boundaries): every disagreement is reported in
    ``disagreements``; points in no commune of the registry in ``outside``. Idempotent on
    ``osm_node_id``: a node the registry already knows (current, corrected or retired by an officer)
    is counted in ``known`` and left as it is. Returns the counts and the lists.
    """
    frame = _read(Path(path))
    frame = frame[frame["name"].notna() & (frame["name"].astype(str).str.strip() != "")]
    unnamed_or_other = 0
    if communes is not None:
        for code in communes:
            _known_commune(session, code)
    rows = session.execute(text(f"""
        SELECT t.o, (SELECT c.code FROM commune c
                     WHERE c.geom && p.g AND ST_Covers(c.geom, p.g)
                     ORDER BY (c.boundary_status = 'official') DESC, c.code LIMIT 1) AS commune_code,
               encode(ST_AsEWKB(p.g), 'hex') AS ewkb
        FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t(x, y, o)
        CROSS JOIN LATERAL (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(t.x, t.y), 4326), {STORAGE_SRID}) AS g) p
        ORDER BY t.o"""), {"xs": [float(g.x) for g in frame.geometry], "ys": [float(g.y) for g in frame.geometry]}
    ).all()
    wanted = set(communes) if communes is not None else None
    owned_cache: dict[str, bool] = {}
    known = set(session.execute(text(
        "SELECT DISTINCT osm_node_id FROM localite_version WHERE osm_node_id = ANY(:ids)"),
        {"ids": [int(n) for n in frame["osm_node_id"]]}).scalars())
    report: dict[str, Any] = {"read": len(frame), "created": 0, "known": 0, "other_communes": 0,
                              "outside": [], "disagreements": [], "communes": {}}
    for (_, item), row in zip(frame.iterrows(), rows, strict=True):
        node, name, registry_commune = int(item["osm_node_id"]), " ".join(str(item["name"]).split()), row[1]
        if registry_commune is None:
            report["outside"].append({"osm_node_id": node, "name": name})
            continue
        if wanted is not None and registry_commune not in wanted:
            unnamed_or_other += 1
            continue
        if wanted is None:
            if registry_commune not in owned_cache:
                owned_cache[registry_commune] = not directory.unowned(session, [registry_commune])
            if not owned_cache[registry_commune]:
                unnamed_or_other += 1
                continue
        if item["commune_code"] != registry_commune:
            report["disagreements"].append({"osm_node_id": node, "name": name, "file_commune": item["commune_code"],
                                            "registry_commune": registry_commune})
        if node in known:
            report["known"] += 1
            continue
        _authorise(session, by, [registry_commune])
        lid = uuid.uuid4()
        values = {"name": name, "kind": OSM_KINDS.get(str(item["place"]), "lieu_dit"),
                  "commune_code": registry_commune, "osm_node_id": node, "origin": "osm", "synthetic": synthetic}
        _insert(session, lid, 1, values, row[2], action="osm:load", author=author,
                reason=f"OpenStreetMap, nœud {node} ({Path(path).name})")
        journal.record(session, by, author=author, operation="localite.load_osm", object_kind="localite",
                       object_id=lid, commune_code=registry_commune, after=_state(session, lid))
        known.add(node)
        report["created"] += 1
        report["communes"][registry_commune] = report["communes"].get(registry_commune, 0) + 1
    report["other_communes"] = unnamed_or_other
    return report
