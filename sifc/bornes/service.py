"""Bornes: create, update (a new version), retire, read, and the points a table of bornes brings.

A borne is the series of its versions in ``borne_version`` (migration 0013), like a parcel: the
current one has no ``valid_to``; every change writes a new version and closes the previous one
(:mod:`sifc.versioning`), in the name of the transaction's declared actor; each write is in the
write journal. A borne is a point in the storage CRS with its survey's precision (metres, bounds
of :mod:`sifc.bounds`), method and date, and where it comes from.

Two bornes are one when they lie within :data:`SAME_BORNE_M` (1 cm, survey precision): a create
next to a current borne is a conflict, and an import matches its points to the current bornes at
that distance (a corner shared by neighbouring parcels is stored once).

Public representation: geometry, label, code, commune, precision, method, date, version, since —
never who wrote it (``author``, ``closed_by``: personal, :data:`sifc.personal.PERSONAL_FIELDS`) nor
the officers' text (``reason``, ``close_reason``, ``source``). A borne's history (:func:`versions`)
carries them for a reader allowed to read personal data in every commune of that history
(:func:`sifc.personal.may_reveal`), and each such read is written to the access log here, whoever
calls (loi 2008-12), as for parcels.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NoReturn

import orjson
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sifc import bounds, journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal, require
from sifc.crs import STORAGE_SRID, in_domain
from sifc.errors import Conflict, Gone, InvalidInput, NotFound
from sifc.federation import directory
from sifc.geojson import crs_member, finite, geometry_sql
from sifc.models import SURVEY_METHODS
from sifc.personal import FREE_TEXT_FIELDS, PERSONAL_FIELDS, may_reveal
from sifc.versioning import check_expected, close_version

SAME_BORNE_M = 0.01
UNKNOWN_METHOD = "inconnu"
# Coordinates a borne in Senegal can have, per input CRS (generous: the country is checked after).
COORDINATE_LIMITS = {4326: (-180.0, -90.0, 180.0, 90.0),
                     STORAGE_SRID: (-2_000_000.0, -1_000_000.0, 3_000_000.0, 4_000_000.0)}
CONTENT_FIELDS = ("code", "label", "source_id", "precision_m", "survey_method", "surveyed_on", "source",
                  "source_document_id")
EDITABLE_FIELDS = frozenset({"code", "label", "precision_m", "survey_method", "surveyed_on", "source"})

PUBLIC_FIELDS: dict[str, str] = {
    "id": "b.borne_id", "version": "b.version", "code": "b.code", "label": "b.label",
    "commune_code": "b.commune_code", "precision_m": "b.precision_m", "survey_method": "b.survey_method",
    "surveyed_on": "b.surveyed_on", "valid_from": "b.valid_from",
}
"""The public attributes of a current borne: name → SQL over ``b`` (fixed text, never user input)."""

QUERYABLES: dict[str, tuple[str, str]] = {
    **{c: (f"t.{c}", "string") for c in ("code", "label", "commune_code", "survey_method")},
    "precision_m": ("t.precision_m", "number"), "geometry": ("t.geom", "geometry"),
}
"""What an OGC filter on the ``bornes`` collection may name: name → (SQL over ``t``, JSON type)."""

# The columns of a version served only with ``personal`` (sifc.personal: who wrote or closed it, the
# officers' text); the closing ones exist only in a history.
PERSONAL_COLUMNS = {"author": "b.author", "reason": "b.reason", "source": "b.source", "closed_by": "b.closed_by",
                    "close_reason": "b.close_reason"}
assert set(PERSONAL_COLUMNS) == PERSONAL_FIELDS["bornes"] | FREE_TEXT_FIELDS["bornes"]


@dataclass
class BorneInput:
    """What a user gives to create a borne or a new version of it."""

    geometry: dict[str, Any] | None = None
    input_crs: int = 4326
    values: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


def _feature_sql(crs: int, *, history: bool = False, personal: bool = False) -> str:
    fields = {**PUBLIC_FIELDS, **({"valid_to": "b.valid_to"} if history else {}),
              **(PERSONAL_COLUMNS if personal else {})}
    properties = ", ".join(f"'{name}', {column}" for name, column in fields.items())
    return f"""json_build_object('type', 'Feature', 'id', b.borne_id, 'geometry', {geometry_sql("b.geom", crs)},
                                 'properties', json_build_object({properties}))"""


def parse_id(borne_id: str) -> uuid.UUID:
    """``borne_id`` as a UUID, or the 404 of an unknown borne."""
    try:
        return uuid.UUID(str(borne_id))
    except (ValueError, TypeError, AttributeError) as error:
        raise NotFound("borne.not_found", id=str(borne_id)[:64]) from error


def _missing(session: Session, bid: uuid.UUID) -> NoReturn:
    closed = session.execute(text("SELECT max(valid_to) FROM borne_version WHERE borne_id = :id"),
                             {"id": bid}).scalar()
    if closed is not None:
        raise Gone("borne.retired", id=str(bid), date=closed.date().isoformat())
    raise NotFound("borne.not_found", id=str(bid))


def get_with_version(session: Session, *, borne_id: str, crs: int = 4326) -> tuple[bytes, int]:
    """The current version of a borne as a GeoJSON Feature (public fields) and its number (the ETag)."""
    bid = parse_id(borne_id)
    row = session.execute(text(f"SELECT ({_feature_sql(crs)})::text, b.version FROM borne b WHERE b.borne_id = :id"),
                          {"id": bid}).first()
    if row is None:
        _missing(session, bid)
    return row[0].encode(), row[1]


def list_commune(session: Session, *, commune_code: str, limit: int, offset: int, crs: int = 4326) -> bytes:
    """A page of a commune's current bornes (public fields), in a stable order."""
    if not session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": commune_code}).scalar():
        raise NotFound("territory.not_found", level="commune", code=commune_code)
    body: str = session.execute(text(f"""
        WITH page AS (SELECT * FROM borne WHERE commune_code = :c ORDER BY borne_id LIMIT :limit OFFSET :offset)
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'numberMatched', (SELECT count(*) FROM borne WHERE commune_code = :c),
            'numberReturned', (SELECT count(*) FROM page),
            'features', coalesce((SELECT json_agg({_feature_sql(crs)} ORDER BY b.borne_id) FROM page b), '[]'::json)
            {crs_member(crs)})::text"""), {"c": commune_code, "limit": limit, "offset": offset}).scalar_one()
    return body.encode()


def versions(session: Session, *, borne_id: str, reader: Principal, crs: int = 4326) -> bytes:
    """Every version of a borne, oldest first, with its validity period (a retired borne's too).

    Authors, reasons, sources and closings only if ``reader`` may read personal data in every
    commune of the borne's history (a borne moved to a neighbouring commune keeps its old
    version's authors from the new commune's officers); such a read is logged.
    """
    bid = parse_id(borne_id)
    communes = set(session.execute(text("SELECT DISTINCT commune_code FROM borne_version WHERE borne_id = :id"),
                                   {"id": bid}).scalars())
    if not communes:
        raise NotFound("borne.not_found", id=str(bid))
    personal = may_reveal(reader, communes)
    body: str = session.execute(text(f"""
        SELECT json_build_object('type', 'FeatureCollection', 'features',
                                 json_agg({_feature_sql(crs, history=True, personal=personal)} ORDER BY b.version)
                                 {crs_member(crs)})::text
        FROM borne_version b WHERE b.borne_id = :id"""), {"id": bid}).scalar_one()
    if personal:
        audit.record(session, reader, service=f"{__name__}.versions", subject_kind="borne", subject_id=str(bid),
                     commune_code=min(communes))
    return body.encode()


# --- writes ---------------------------------------------------------------------------------------

def _authorize(session: Session, by: Principal | None, communes: Iterable[str],
               permission: Action = Action.WRITE_PARCELS) -> None:
    communes = list(communes)
    if by is not None:
        require(by, permission, communes=communes)
    directory.ensure_owned(session, communes)  # whoever writes: this node must own the communes (ADR 0004)


def _point_wkb(geometry: dict[str, Any], input_crs: int) -> tuple[float, float]:
    """The coordinates of a posted GeoJSON Point (checked), in ``input_crs``."""
    if input_crs not in COORDINATE_LIMITS:
        raise InvalidInput("borne.bad_coordinates", crs=f"EPSG:{input_crs}")
    finite(geometry)
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        found = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        raise InvalidInput("borne.not_point", found=str(found)[:40])
    coordinates = geometry.get("coordinates")
    if (not isinstance(coordinates, list | tuple) or len(coordinates) not in (2, 3)
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates)):
        raise InvalidInput("borne.bad_geometry", reason="coordinates")
    x, y = float(coordinates[0]), float(coordinates[1])
    limit = COORDINATE_LIMITS[input_crs]
    if not (math.isfinite(x) and math.isfinite(y) and limit[0] <= x <= limit[2] and limit[1] <= y <= limit[3]):
        raise InvalidInput("borne.bad_coordinates", crs=f"EPSG:{input_crs}")
    if input_crs == 4326 and not in_domain(x, y):
        raise InvalidInput("borne.outside_senegal")
    return x, y


def _checked_point(session: Session, geometry: dict[str, Any], input_crs: int, *, commune: str | None,
                   exclude: uuid.UUID | None, by: Principal | None, also: Iterable[str] = (),
                   permission: Action = Action.WRITE_PARCELS) -> tuple[str, str]:
    """The point in the storage CRS (EWKB hex) and its commune; ``by`` must write in that commune."""
    x, y = _point_wkb(geometry, input_crs)
    ewkb = session.execute(text(f"""
        SELECT encode(ST_AsEWKB(ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), :srid), {STORAGE_SRID})), 'hex')
    """), {"x": x, "y": y, "srid": input_crs}).scalar_one()
    point = "CAST(:g AS geometry)"
    if commune:
        inside = session.execute(text(f"SELECT ST_Intersects(c.geom, {point}) FROM commune c WHERE c.code = :c"),
                                 {"g": ewkb, "c": commune}).scalar()
        if inside is None:
            raise InvalidInput("borne.unknown_commune", commune=commune)
        if not inside:
            raise InvalidInput("borne.outside_commune", commune=commune)
    else:
        commune = session.execute(text(f"""
            SELECT c.code FROM commune c WHERE c.geom && {point} AND ST_Intersects(c.geom, {point})
            ORDER BY (c.boundary_status = 'official') DESC, c.code LIMIT 1"""), {"g": ewkb}).scalar()
        if commune is None:
            raise InvalidInput("borne.no_commune")
    _authorize(session, by, [*also, commune], permission)
    near = session.execute(text(f"""
        SELECT borne_id FROM borne WHERE ST_DWithin(geom, {point}, :d) AND borne_id IS DISTINCT FROM :x
        ORDER BY geom <-> {point} LIMIT 1"""), {"g": ewkb, "d": SAME_BORNE_M, "x": exclude}).scalar()
    if near is not None:
        raise Conflict("borne.duplicate", id=str(near), distance=SAME_BORNE_M * 100)
    return ewkb, commune


def _checked_values(values: dict[str, Any], *, require_precision: bool) -> dict[str, Any]:
    unknown = sorted(set(values) - EDITABLE_FIELDS - {"commune_code", "source_id", "source_document_id"})
    if unknown:
        raise InvalidInput("borne.unknown_fields", names=", ".join(unknown)[:200])
    checked = dict(values)
    precision = checked.get("precision_m")
    if precision is None and require_precision:
        raise InvalidInput("borne.precision_required")
    if precision is not None:
        if isinstance(precision, bool) or not isinstance(precision, int | float):
            raise InvalidInput("bounds.out_of_range", field="precision_m", value=repr(precision)[:40],
                               bounds=bounds.bound("borne.precision_m").describe(),
                               bounds_en=bounds.bound("borne.precision_m").describe("en"),
                               why=bounds.bound("borne.precision_m").why)
        checked["precision_m"] = float(bounds.check("borne.precision_m", float(precision), field="precision_m"))
    method = checked.get("survey_method")
    if method is not None and method not in SURVEY_METHODS:
        raise InvalidInput("borne.bad_survey_method", value=str(method)[:40], methods=", ".join(SURVEY_METHODS))
    surveyed = checked.get("surveyed_on")
    if surveyed is not None:
        if isinstance(surveyed, str):
            raw = surveyed
            try:
                surveyed = date.fromisoformat(raw)
            except ValueError as error:
                raise InvalidInput("borne.bad_date", value=raw[:40]) from error
        checked["surveyed_on"] = bounds.check("borne.surveyed_on", surveyed, field="surveyed_on")
    for name in ("code", "label", "source"):
        if isinstance(checked.get(name), str):
            checked[name] = checked[name].strip() or None
    return checked


def _insert_version(session: Session, bid: uuid.UUID, version: int, values: dict[str, Any], ewkb: str,
                    commune: str, *, action: str, author: str, reason: str | None, batch_id: Any = None) -> None:
    try:
        with session.begin_nested():
            session.execute(text("""
                INSERT INTO borne_version (borne_id, version, code, commune_code, label, source_id, geom, precision_m,
                                           survey_method, surveyed_on, source, source_document_id, batch_id, action,
                                           author, reason)
                VALUES (:bid, :version, :code, :commune, :label, :source_id, CAST(:g AS geometry), :precision_m,
                        :survey_method, :surveyed_on, :source, :source_document_id, :batch_id, :action, :author,
                        :reason)"""),
                {"bid": bid, "version": version, "commune": commune, "g": ewkb, "batch_id": batch_id,
                 "action": action, "author": author, "reason": reason,
                 **{k: values.get(k) for k in CONTENT_FIELDS},
                 "survey_method": values.get("survey_method") or UNKNOWN_METHOD})
    except IntegrityError as error:
        if "uq_borne_version_current_code" in str(error.orig):
            raise Conflict("borne.code_taken", code=str(values.get("code"))[:40]) from error
        raise


def _audit_state(session: Session, bid: uuid.UUID) -> dict[str, Any]:
    """The current version as the write journal keeps it (EPSG:32628, author and reason included)."""
    row = session.execute(text(f"""
        SELECT json_build_object('id', borne_id, 'version', version, 'code', code, 'label', label,
                                 'commune_code', commune_code, 'source_id', source_id,
                                 'geometry', {geometry_sql("geom", STORAGE_SRID)}, 'precision_m', precision_m,
                                 'survey_method', survey_method, 'surveyed_on', surveyed_on, 'source', source,
                                 'source_document_id', source_document_id, 'batch_id', batch_id, 'action', action,
                                 'author', author, 'reason', reason)::text
        FROM borne_version WHERE borne_id = :id AND valid_to IS NULL"""), {"id": bid}).scalar_one()
    found: dict[str, Any] = orjson.loads(row)
    return found


def create(session: Session, *, data: BorneInput, author: str, by: Principal | None = None,
           permission: Action = Action.WRITE_PARCELS, action: str = "api:create") -> str:
    """Create a borne (version 1); return its id. Its precision is required; ``by`` writes in its commune.

    ``permission`` is what ``by`` needs there (a field return: ``Action.FIELD_WORK``); ``action`` is
    the version's record of its origin.
    """
    if data.geometry is None:
        raise InvalidInput("borne.geometry_required")
    values = _checked_values(data.values, require_precision=True)
    ewkb, commune = _checked_point(session, data.geometry, data.input_crs, commune=values.get("commune_code"),
                                   exclude=None, by=by, permission=permission)
    bid = uuid.uuid4()
    _insert_version(session, bid, 1, values, ewkb, commune, action=action, author=author, reason=data.reason)
    journal.record(session, by, author=author, operation="borne.create", object_kind="borne", object_id=bid,
                   commune_code=commune, after=_audit_state(session, bid))
    return str(bid)


def _current(session: Session, bid: uuid.UUID) -> dict[str, Any]:
    row = session.execute(text("""
        SELECT borne_id, version, code, commune_code, label, source_id, precision_m, survey_method, surveyed_on,
               source, source_document_id, encode(ST_AsEWKB(geom), 'hex') AS ewkb
        FROM borne_version WHERE borne_id = :id AND valid_to IS NULL"""), {"id": bid}).mappings().first()
    if row is None:
        _missing(session, bid)
    return dict(row)


def update(session: Session, *, borne_id: str, data: BorneInput, author: str, expected_version: int | None = None,
           by: Principal | None = None) -> int:
    """Write a new version of a borne with ``data``'s changes; return its number (``If-Match``: 412 if stale)."""
    if not data.reason:
        raise InvalidInput("borne.reason_required")
    bid = parse_id(borne_id)
    current = _current(session, bid)
    _authorize(session, by, [current["commune_code"]])
    check_expected(expected_version, current["version"])
    changes = _checked_values(data.values, require_precision=False)
    values = {k: current[k] for k in CONTENT_FIELDS}
    values.update(changes)
    ewkb, commune = current["ewkb"], current["commune_code"]
    moved = False
    if data.geometry is None and changes.get("commune_code") not in (None, commune):
        # Another commune for the same point: the point must lie in it (a borne on the limit of two).
        x, y = session.execute(text("SELECT ST_X(g), ST_Y(g) FROM (SELECT CAST(:g AS geometry) AS g) t"),
                               {"g": ewkb}).one()
        _, commune = _checked_point(session, {"type": "Point", "coordinates": [x, y]}, STORAGE_SRID,
                                    commune=changes["commune_code"], exclude=bid, by=by, also=[commune])
    if data.geometry is not None:
        ewkb, commune = _checked_point(session, data.geometry, data.input_crs, commune=changes.get("commune_code"),
                                       exclude=bid, by=by, also=[current["commune_code"]])
        moved = bool(session.execute(text("SELECT ST_Distance(CAST(:a AS geometry), CAST(:b AS geometry)) > :d"),
                                     {"a": ewkb, "b": current["ewkb"], "d": SAME_BORNE_M}).scalar())
        if not moved:
            ewkb = current["ewkb"]  # reprojection noise is no move: the stored point stays
    if not moved and commune == current["commune_code"] and all(values[k] == current[k] for k in CONTENT_FIELDS):
        raise InvalidInput("borne.no_change")
    version: int = current["version"] + 1
    before = _audit_state(session, bid)
    close_version(session, "borne_version", "borne_id", bid, current["version"], author=author,
                  reason=f"remplacée par la version {version}")
    _insert_version(session, bid, version, values, ewkb, commune, action="api:update", author=author,
                    reason=data.reason)
    journal.record(session, by, author=author, operation="borne.update", object_kind="borne", object_id=bid,
                   commune_code=commune, before=before, after=_audit_state(session, bid))
    return version


def retire(session: Session, *, borne_id: str, author: str, reason: str | None, by: Principal | None = None,
           expected_version: int | None = None) -> None:
    """Retire a borne (destroyed, or never there): close its current version; nothing is deleted."""
    if not reason:
        raise InvalidInput("borne.reason_required")
    bid = parse_id(borne_id)
    current = _current(session, bid)
    _authorize(session, by, [current["commune_code"]])
    check_expected(expected_version, current["version"])
    before = _audit_state(session, bid)
    close_version(session, "borne_version", "borne_id", bid, current["version"], author=author,
                  reason=f"retirée : {reason}")
    journal.record(session, by, author=author, operation="borne.retire", object_kind="borne", object_id=bid,
                   commune_code=current["commune_code"], before=before, after=None)


# --- the points of a table of bornes ----------------------------------------------------------------

@dataclass
class ImportedPoint:
    """A point of an imported table, in the storage CRS, and what the registry makes of it."""

    label: str
    source_id: str
    x: float
    y: float
    precision_m: float | None
    survey_method: str | None
    surveyed_on: date | None
    commune_code: str | None = None
    match: dict[str, Any] | None = None


def _distinct(points: Sequence[ImportedPoint]) -> list[ImportedPoint]:
    """One point per corner: points within :data:`SAME_BORNE_M` of an earlier one are that one.

    A corner shared by neighbouring parcels appears once per parcel in a table; the first line
    names it, and a later line fills what the first left unsaid (precision, method, date).
    """
    kept: list[ImportedPoint] = []
    cells: dict[tuple[int, int], list[int]] = {}
    for point in points:
        cx, cy = math.floor(point.x / SAME_BORNE_M), math.floor(point.y / SAME_BORNE_M)
        same = next((i for dx in (-1, 0, 1) for dy in (-1, 0, 1) for i in cells.get((cx + dx, cy + dy), [])
                     if math.hypot(kept[i].x - point.x, kept[i].y - point.y) <= SAME_BORNE_M), None)
        if same is None:
            cells.setdefault((cx, cy), []).append(len(kept))
            kept.append(point)
            continue
        first = kept[same]
        first.precision_m = first.precision_m if first.precision_m is not None else point.precision_m
        first.survey_method = first.survey_method or point.survey_method
        first.surveyed_on = first.surveyed_on or point.surveyed_on
    return kept


def store_imported(session: Session, points: Sequence[Any], *, srid: int, batch_id: uuid.UUID | None,
                   author: str, file_name: str, commune: str | None = None,
                   communes: Collection[str] | None = None) -> dict[str, int]:
    """Store the points of a table of bornes (``formats.BornePoint``, in SRID ``srid``); return the counts.

    One borne per distinct corner (:func:`_distinct`); a corner within 1 cm of a current borne is
    that borne: a new version only if the table says something else of it (precision, method,
    date), none if it says the same or nothing. A point outside every commune (or outside
    ``commune``, or outside ``communes``, the importer's scope) is counted, not stored. With
    ``batch_id`` None (a dry run) nothing is written and the counts say what would be.
    """
    counts = {"read": len(points), "distinct": 0, "new": 0, "changed": 0, "unchanged": 0, "outside": 0}
    if not points:
        return counts
    rows = session.execute(text(f"""
        SELECT p.ord, ST_X(p.g) AS x, ST_Y(p.g) AS y,
               (SELECT c.code FROM commune c WHERE c.geom && p.g AND ST_Intersects(c.geom, p.g)
                ORDER BY (c.boundary_status = 'official') DESC, c.code LIMIT 1) AS commune_code
        FROM (SELECT o AS ord, ST_Transform(ST_SetSRID(ST_MakePoint(x, y), :srid), {STORAGE_SRID}) AS g
              FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t(x, y, o)) p
        ORDER BY p.ord"""), {"srid": srid, "xs": [p.x for p in points], "ys": [p.y for p in points]}).all()
    stored = [ImportedPoint(label=p.label, source_id=f"{p.parcel}/{p.order}", x=r.x, y=r.y, precision_m=p.precision_m,
                            survey_method=p.survey_method, surveyed_on=p.surveyed_on, commune_code=r.commune_code)
              for p, r in zip(points, rows, strict=True)]
    distinct = _distinct(stored)
    counts["distinct"] = len(distinct)
    inside = [p for p in distinct if p.commune_code is not None and (commune is None or p.commune_code == commune)
              and (communes is None or p.commune_code in communes)]
    counts["outside"] = len(distinct) - len(inside)
    if not inside:
        return counts
    matches = session.execute(text(f"""
        SELECT t.o, m.borne_id, m.version, m.precision_m, m.survey_method, m.surveyed_on, m.commune_code
        FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t(x, y, o)
        CROSS JOIN LATERAL (
            SELECT b.* FROM borne b, (SELECT ST_SetSRID(ST_MakePoint(t.x, t.y), {STORAGE_SRID}) AS g) q
            WHERE ST_DWithin(b.geom, q.g, :d) ORDER BY b.geom <-> q.g LIMIT 1) m"""),
        {"xs": [p.x for p in inside], "ys": [p.y for p in inside], "d": SAME_BORNE_M}).mappings().all()
    for match in matches:
        inside[match["o"] - 1].match = dict(match)
    writes: list[tuple[ImportedPoint, str]] = []
    for point in inside:
        if point.match is None:
            counts["new"] += 1
            writes.append((point, "new"))
            continue
        said = {"precision_m": point.precision_m, "survey_method": point.survey_method,
                "surveyed_on": point.surveyed_on}
        if all(value is None or value == point.match[name] for name, value in said.items()):
            counts["unchanged"] += 1
        else:
            counts["changed"] += 1
            writes.append((point, "changed"))
    if batch_id is None:
        return counts
    reason = f"import {file_name}"
    fresh = [point for point, change in writes if change == "new"]
    if fresh:  # the new bornes in one statement (a demo or a whole survey: thousands of points)
        session.execute(text(f"""
            INSERT INTO borne_version (borne_id, version, commune_code, label, source_id, geom, precision_m,
                                       survey_method, surveyed_on, source, batch_id, action, author, reason)
            SELECT gen_random_uuid(), 1, c, l, s, ST_SetSRID(ST_MakePoint(x, y), {STORAGE_SRID}), p,
                   coalesce(m, '{UNKNOWN_METHOD}'), d, :file, :batch, 'import', :author, :reason
            FROM unnest(CAST(:communes AS text[]), CAST(:labels AS text[]), CAST(:sources AS text[]),
                        CAST(:xs AS float8[]), CAST(:ys AS float8[]), CAST(:precisions AS float8[]),
                        CAST(:methods AS text[]), CAST(:dates AS date[]))
                 WITH ORDINALITY AS t(c, l, s, x, y, p, m, d, o)
            ORDER BY o"""),
            {"communes": [p.commune_code for p in fresh], "labels": [p.label for p in fresh],
             "sources": [p.source_id for p in fresh], "xs": [p.x for p in fresh], "ys": [p.y for p in fresh],
             "precisions": [p.precision_m for p in fresh], "methods": [p.survey_method for p in fresh],
             "dates": [p.surveyed_on for p in fresh], "file": file_name, "batch": batch_id, "author": author,
             "reason": reason})
    for point, change in writes:
        if change != "changed":
            continue
        assert point.match is not None
        bid, version = point.match["borne_id"], point.match["version"] + 1
        current = _current(session, bid)
        said = {"precision_m": point.precision_m, "survey_method": point.survey_method,
                "surveyed_on": point.surveyed_on}
        values = {**{k: current[k] for k in CONTENT_FIELDS}, **{k: v for k, v in said.items() if v is not None},
                  "source": file_name}
        close_version(session, "borne_version", "borne_id", bid, point.match["version"], author=author,
                      reason=f"remplacée par l'import {file_name} (lot {batch_id})")
        # Within 1 cm: the same corner, where the registry has it.
        _insert_version(session, bid, version, values, current["ewkb"], current["commune_code"], action="import",
                        author=author, reason=reason, batch_id=batch_id)
    return counts
