"""Parcels: get, list, create, update (a new version), retire, versions.

A parcel is the series of its versions in ``parcel_version``; the current one has no
``valid_to``. Every change writes a new version and closes the previous one (the only
update the database allows). A new version whose shape changed keeps the old NICAD on
the old version and is marked "à réattribuer" unless a new NICAD is given (domain notes:
any change of area or boundary calls for a new NICAD).

Personal data (loi 2008-12): the names of who wrote or closed a version, and who submitted
its import, are only in the representation given to a ``reader`` allowed to read personal data
in every commune of the parcel (``sifc.personal.may_reveal``); the read functions decide it and
write each such read to the access log themselves, whoever calls them. Writes are
authorised here, in the transaction that writes, once the communes they touch are known:
every commune before and after a change must be in the principal's scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

import orjson
import shapely
from shapely.geometry import mapping, shape
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from sifc import bounds, journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal, require
from sifc.crs import STORAGE_SRID, in_domain
from sifc.errors import Conflict, Gone, InvalidInput, NotFound, SifcError
from sifc.federation import directory
from sifc.geojson import crs_member, finite, geometry_sql
from sifc.parcels import nicad as nicad_rules
from sifc.personal import FREE_TEXT_FIELDS, PERSONAL_FIELDS, may_reveal
from sifc.versioning import check_expected, close_version, parcel_communes, refuse_if_frozen

# Coordinates a parcel in Senegal can have, per input CRS (generous: the country is checked later).
COORDINATE_LIMITS = {4326: (-180.0, -90.0, 180.0, 90.0),
                     STORAGE_SRID: (-2_000_000.0, -1_000_000.0, 3_000_000.0, 4_000_000.0)}
CONTENT_FIELDS = ("nicad", "commune_code", "section", "local_number", "declared_area_m2", "land_use",
                  "tenure_regime")


@dataclass
class Tolerances:
    """Overlap and commune tolerances of the quality rules (domain notes)."""

    overlap_m2: float = 1.0
    overlap_ratio: float = 0.01
    outside_m2: float = 1.0
    outside_ratio: float = 0.01


@dataclass
class ParcelInput:
    """What a user gives to create a parcel or a new version of it."""

    geometry: dict[str, Any] | None = None
    input_crs: int = 4326
    values: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


# The columns of a version served only with ``personal`` (sifc.personal: the provenance user names
# and the officers' free text); the closing ones only in a history (a current version has none).
PERSONAL_COLUMNS = {"author": "p.author", "reason": "p.reason", "closed_by": "p.closed_by",
                    "close_reason": "p.close_reason"}
CLOSING_COLUMNS = frozenset({"closed_by", "close_reason"})
assert set(PERSONAL_COLUMNS) == (PERSONAL_FIELDS["parcels"] | FREE_TEXT_FIELDS["parcels"]) - {"imported_by"}


def _feature_sql(crs: int, *, history: bool = False, personal: bool = False) -> str:
    extra = ", 'valid_to', p.valid_to" if history else ""
    if personal:
        extra += "".join(f", '{name}', {column}" for name, column in PERSONAL_COLUMNS.items()
                         if history or name not in CLOSING_COLUMNS)
    imported_by = ", 'imported_by', b.created_by" if personal else ""
    return f"""json_build_object(
        'type', 'Feature', 'id', p.parcel_id,
        'geometry', {geometry_sql("p.geom", crs)},
        'properties', json_build_object(
            'id', p.parcel_id, 'version', p.version, 'nicad', p.nicad, 'nicad_status', p.nicad_status,
            'commune_code', p.commune_code, 'section', p.section, 'local_number', p.local_number,
            'area_m2', round(p.area_m2::numeric, 2), 'declared_area_m2', p.declared_area_m2,
            'land_use', p.land_use, 'tenure_regime', p.tenure_regime, 'source_id', p.source_id,
            'valid_from', p.valid_from {extra},
            'provenance', json_build_object('action', p.action, 'batch_id', p.batch_id,
                                            'synthetic', coalesce(b.synthetic, false){imported_by})))"""


def _parse_id(parcel_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(parcel_id))
    except ValueError as error:
        raise NotFound("parcel.not_found", id=parcel_id) from error


def get(session: Session, *, parcel_id: str, reader: Principal, crs: int = 4326,
        at: datetime | None = None) -> bytes:
    """The current version of a parcel as a GeoJSON Feature, with its personal fields if ``reader`` may see them.

    With ``at``, the version the register held at that instant (an as-of read).
    """
    return get_with_version(session, parcel_id=parcel_id, reader=reader, crs=crs, at=at)[0]


def get_with_version(session: Session, *, parcel_id: str, reader: Principal, crs: int = 4326,
                     at: datetime | None = None) -> tuple[bytes, int]:
    """:func:`get` and the version's number (the parcel's ETag); a read that reveals personal fields is logged."""
    communes = communes_of(session, parcel_id=parcel_id)
    personal = may_reveal(reader, communes)
    found = _get_with_version(session, parcel_id, crs=crs, personal=personal, at=at)
    if personal:
        _log_reads(session, reader, "get", [(parcel_id, min(communes))])
    return found


def _log_reads(session: Session, reader: Principal, service: str, parcels: list[tuple[str, str | None]]) -> None:
    audit.record_many(session, reader, service=f"{__name__}.{service}", subject_kind="parcel", subjects=parcels)


def _get_with_version(session: Session, parcel_id: str, *, crs: int, personal: bool,
                      at: datetime | None = None) -> tuple[bytes, int]:
    pid = _parse_id(parcel_id)
    if at is None:
        source, where = "parcel p", "p.parcel_id = :id"
    else:
        source = "parcel_version p"
        where = "p.parcel_id = :id AND p.valid_from <= :at AND (p.valid_to IS NULL OR p.valid_to > :at)"
    row = session.execute(text(f"""
        SELECT ({_feature_sql(crs, history=at is not None, personal=personal)})::text, p.version
        FROM {source} LEFT JOIN import_batch b ON b.id = p.batch_id WHERE {where}"""), {"id": pid, "at": at}).first()
    if row is None:
        if at is not None:
            raise NotFound("parcel.not_at_date", id=str(pid), at=at.isoformat())
        _missing(session, pid)
    return row[0].encode(), row[1]


def _missing(session: Session, pid: uuid.UUID) -> NoReturn:
    closed = session.execute(text("SELECT max(valid_to) FROM parcel_version WHERE parcel_id = :id"),
                             {"id": pid}).scalar()
    if closed is not None:
        raise Gone("parcel.retired", id=str(pid), date=closed.date().isoformat())
    raise NotFound("parcel.not_found", id=str(pid))


def get_by_nicad(session: Session, *, nicad: str, reader: Principal, crs: int = 4326) -> bytes:
    """The current parcel holding ``nicad`` (as :func:`get`)."""
    return get(session, parcel_id=id_by_nicad(session, nicad=nicad), reader=reader, crs=crs)


def id_by_nicad(session: Session, *, nicad: str) -> str:
    """The id of the current parcel holding ``nicad``."""
    cleaned = nicad_rules.clean(nicad) or ""
    found = session.execute(text("SELECT parcel_id FROM parcel WHERE nicad = :nicad"), {"nicad": cleaned}).scalar()
    if found is None:
        raise NotFound("parcel.nicad_not_found", nicad=nicad)
    return str(found)


def communes_of(session: Session, *, parcel_id: str) -> set[str]:
    """The communes of every version of a parcel (empty if there is no such parcel)."""
    return parcel_communes(session, parcel_id)


def list_commune(session: Session, *, commune_code: str, limit: int, offset: int, reader: Principal,
                 crs: int = 4326, at: datetime | None = None) -> bytes:
    """A page of a commune's current parcels, in a stable order.

    With ``at``, the parcels the register held at that instant (before or after a mutation).
    Personal fields if ``reader`` may see them in the commune; then one access-log row per parcel.
    """
    personal = may_reveal(reader, {commune_code})
    if not session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": commune_code}).scalar():
        raise NotFound("territory.not_found", level="commune", code=commune_code)
    held = ("parcel WHERE commune_code = :c" if at is None else
            "parcel_version WHERE commune_code = :c AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)")
    sql = f"""
        WITH page AS (
            SELECT * FROM {held} ORDER BY parcel_id LIMIT :limit OFFSET :offset)
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'numberMatched', (SELECT count(*) FROM {held}),
            'numberReturned', (SELECT count(*) FROM page),
            'features', coalesce((SELECT json_agg({_feature_sql(crs, personal=personal)} ORDER BY p.parcel_id)
                                  FROM page p LEFT JOIN import_batch b ON b.id = p.batch_id), '[]'::json)
            {crs_member(crs)})::text"""
    body: str = session.execute(text(sql), {"c": commune_code, "limit": limit, "offset": offset, "at": at}
                                ).scalar_one()
    if personal:
        page = orjson.loads(body)["features"]
        _log_reads(session, reader, "list_commune", [(str(feature["id"]), commune_code) for feature in page])
    return body.encode()


def versions(session: Session, *, parcel_id: str, reader: Principal, crs: int = 4326) -> bytes:
    """Every version of a parcel, oldest first, with its validity period.

    Authors and closings if ``reader`` may read personal data in every commune of the parcel's
    history; such a read is logged.
    """
    communes = communes_of(session, parcel_id=parcel_id)
    personal = may_reveal(reader, communes)
    found = _versions(session, parcel_id, crs=crs, personal=personal)
    if personal:
        _log_reads(session, reader, "versions", [(parcel_id, min(communes))])
    return found


def _versions(session: Session, parcel_id: str, *, crs: int, personal: bool) -> bytes:
    pid = _parse_id(parcel_id)
    sql = f"""
        SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
            {_feature_sql(crs, history=True, personal=personal)} ORDER BY p.version), '[]'::json)
            {crs_member(crs)})::text,
            count(*)
        FROM parcel_version p LEFT JOIN import_batch b ON b.id = p.batch_id WHERE p.parcel_id = :id"""
    row = session.execute(text(sql), {"id": pid}).one()
    if not row[1]:  # no version at all
        raise NotFound("parcel.not_found", id=str(pid))
    body: str = row[0]
    return body.encode()


def _to_storage_wkb(geometry: dict[str, Any], input_crs: int) -> bytes:
    try:
        geom = shape(finite(geometry))
    except (ValueError, TypeError, AttributeError, KeyError, shapely.errors.GEOSException) as error:
        raise InvalidInput("parcel.bad_geometry", reason=str(error)[:200]) from error
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        raise InvalidInput("parcel.not_polygon", found=geom.geom_type)
    minx, miny, maxx, maxy = geom.bounds
    limit = COORDINATE_LIMITS[input_crs]
    if not (limit[0] <= minx <= maxx <= limit[2] and limit[1] <= miny <= maxy <= limit[3]):
        raise InvalidInput("parcel.bad_coordinates", crs=f"EPSG:{input_crs}")
    if input_crs == 4326 and not (in_domain(minx, miny) and in_domain(maxx, maxy)):
        raise InvalidInput("parcel.outside_senegal")  # and beyond what UTM 28N can transform
    wkb: bytes = shapely.to_wkb(shapely.force_2d(geom), hex=False)
    return wkb


def _check_commune(session: Session, ewkb: str, commune: str, tolerances: Tolerances) -> None:
    """A shape (storage EWKB, hex) given a commune: the commune exists and holds it, within the tolerance."""
    row = session.execute(text("""
        SELECT ST_Area(g) - coalesce(overlap_area(c.geom, g), 0), ST_Area(g)
        FROM commune c, (SELECT CAST(:g AS geometry) AS g) s WHERE c.code = :c
    """), {"g": ewkb, "c": commune}).one_or_none()
    if row is None:
        raise InvalidInput("parcel.unknown_commune", commune=commune)
    outside, area = row
    if outside > max(tolerances.outside_m2, tolerances.outside_ratio * area):
        raise InvalidInput("parcel.outside_commune", commune=commune, m2=round(outside, 1))


def _checked_geometry(session: Session, wkb: bytes, input_crs: int, *, exclude: uuid.UUID | None,
                      commune: str | None, tolerances: Tolerances, by: Principal | None = None,
                      also: Iterable[str] = (), permission: Action = Action.WRITE_PARCELS) -> tuple[str, str]:
    """Validate a geometry as the import pipeline does; return (storage EWKB hex, commune code).

    ``by`` must be allowed to write parcels in the commune found (and in ``also``): checked as
    soon as the commune is known, before the checks that would name other parcels.
    """
    row = session.execute(text(f"""
        SELECT ST_IsValid(g) AS valid, ST_IsValidReason(g) AS reason,
               encode(ST_AsEWKB(ST_Multi(g)), 'hex') AS ewkb, ST_Area(g) AS area
        FROM (SELECT ST_Transform(ST_GeomFromWKB(:wkb, :srid), {STORAGE_SRID}) AS g) t
    """), {"wkb": wkb, "srid": input_crs}).one()
    if not row.valid:
        raise InvalidInput("parcel.invalid_geometry", reason=row.reason)
    geom_sql = "CAST(:g AS geometry)"
    inside = session.execute(text(f"""
        SELECT EXISTS (SELECT 1 FROM territory_piece p WHERE p.level = 'region' AND p.geom && {geom_sql}
                       AND ST_Intersects(p.geom, {geom_sql}))"""), {"g": row.ewkb}).scalar()
    if not inside:
        raise InvalidInput("parcel.outside_senegal")
    tol = {"m2": tolerances.outside_m2, "ratio": tolerances.outside_ratio, "area": row.area, "g": row.ewkb}
    if commune:
        _check_commune(session, row.ewkb, commune, tolerances)
    else:
        commune = session.execute(text(f"""
            SELECT c.code FROM commune c WHERE c.geom && {geom_sql} AND ST_Intersects(c.geom, {geom_sql})
            ORDER BY (c.boundary_status = 'official'
                      AND overlap_area(c.geom, {geom_sql}) > greatest(:m2, :ratio * :area)) DESC,
                     overlap_area(c.geom, {geom_sql}) DESC, c.code LIMIT 1
        """), tol).scalar()
        if commune is None:
            raise InvalidInput("parcel.no_commune")
    _authorize(session, by, [*also, commune], permission)
    overlaps = session.execute(text(f"""
        SELECT p.parcel_id FROM parcel p
        WHERE p.geom && {geom_sql} AND p.parcel_id IS DISTINCT FROM :exclude
          AND overlap_area(p.geom, {geom_sql}) > greatest(:m2, :ratio * least(p.area_m2, :area))
        ORDER BY p.parcel_id LIMIT 10
    """), {"g": row.ewkb, "exclude": exclude, "m2": tolerances.overlap_m2, "ratio": tolerances.overlap_ratio,
           "area": row.area}).scalars().all()
    if overlaps:
        raise Conflict("parcel.overlap", ids=", ".join(str(o) for o in overlaps))
    return row.ewkb, commune


def _authorize(session: Session, by: Principal | None, communes: Iterable[str],
               permission: Action = Action.WRITE_PARCELS) -> None:
    communes = list(communes)
    if by is not None:
        require(by, permission, communes=communes)
    directory.ensure_owned(session, communes)  # whoever writes: this node must own the communes (ADR 0004)


def _check_nicad(session: Session, nicad: str | None, exclude: uuid.UUID | None) -> None:
    if nicad is None:
        return
    holder = session.execute(text("SELECT parcel_id FROM parcel WHERE nicad = :n AND parcel_id IS DISTINCT FROM :x"),
                             {"n": nicad, "x": exclude}).scalar()
    if holder:
        raise Conflict("parcel.nicad_taken", nicad=nicad, id=str(holder))


def _insert_version(session: Session, pid: uuid.UUID, version: int, values: dict[str, Any], ewkb: str,
                    *, action: str, author: str, reason: str | None, batch_id: Any = None) -> None:
    # Every writer of a version comes here (create, update, mutations): the bounds of sifc.bounds.
    bounds.check("parcel.declared_area_m2", values.get("declared_area_m2"), field="declared_area_m2")
    try:
        with session.begin_nested():
            session.execute(text("""
                INSERT INTO parcel_version (parcel_id, version, nicad, nicad_status, commune_code, section,
                    local_number, source_id, geom, declared_area_m2, land_use, tenure_regime, batch_id, action,
                    author, reason)
                VALUES (:pid, :version, :nicad, :nicad_status, :commune_code, :section, :local_number,
                        :source_id, CAST(:g AS geometry), :declared_area_m2, :land_use, :tenure_regime, :batch_id,
                        :action, :author, :reason)
            """), {"pid": pid, "version": version, "g": ewkb, "action": action, "author": author,
                   "reason": reason, "batch_id": batch_id, "source_id": values.get("source_id"),
                   **{k: values.get(k) for k in CONTENT_FIELDS}, "nicad_status": values["nicad_status"]})
    except IntegrityError as error:
        if "uq_parcel_version_current_nicad" in str(error.orig):
            raise Conflict("parcel.nicad_taken", nicad=values.get("nicad"), id="?") from error
        raise


def create(session: Session, *, data: ParcelInput, author: str, tolerances: Tolerances | None = None,
           by: Principal | None = None, permission: Action = Action.WRITE_PARCELS,
           action: str = "api:create") -> str:
    """Create a parcel (version 1) after the same checks as an import; return its id.

    ``by`` (the API's caller) must be allowed to ``permission`` in the parcel's commune (a field
    return writes with ``Action.FIELD_WORK``); ``action`` is what the version records of its origin.
    """
    tolerances = tolerances or Tolerances()
    if data.geometry is None:
        raise InvalidInput("parcel.geometry_required")
    values = dict(data.values)
    bounds.check("parcel.declared_area_m2", values.get("declared_area_m2"), field="declared_area_m2")
    values["nicad"] = nicad_rules.clean(values.get("nicad"))
    ewkb, commune = _checked_geometry(session, _to_storage_wkb(data.geometry, data.input_crs), data.input_crs,
                                      exclude=None, commune=values.get("commune_code"), tolerances=tolerances,
                                      by=by, permission=permission)
    values["commune_code"] = commune
    _check_nicad(session, values["nicad"], None)
    values["nicad_status"] = nicad_rules.STATUS_ASSIGNED if values["nicad"] else nicad_rules.STATUS_MISSING
    pid = uuid.uuid4()
    _insert_version(session, pid, 1, values, ewkb, action=action, author=author, reason=data.reason)
    journal.record(session, by, author=author,
                   operation="parcel.create", object_kind="parcel", object_id=pid, parcel_id=pid,
                   commune_code=commune, after=_audit_state(session, pid))
    return str(pid)


def _audit_state(session: Session, pid: uuid.UUID) -> bytes:
    """The current version as the write audit keeps it (EPSG:32628, personal fields included)."""
    return _get_with_version(session, str(pid), crs=STORAGE_SRID, personal=True)[0]


def _current(session: Session, pid: uuid.UUID) -> dict[str, Any]:
    # Not locked: the write closes this version only if it is still current (sifc.versioning.close_version).
    row = session.execute(text("""
        SELECT parcel_id, version, nicad, nicad_status, commune_code, section, local_number, source_id,
               declared_area_m2, land_use, tenure_regime, encode(ST_AsEWKB(geom), 'hex') AS ewkb
        FROM parcel_version WHERE parcel_id = :id AND valid_to IS NULL
    """), {"id": pid}).mappings().first()
    if row is None:
        _missing(session, pid)
    return dict(row)


def _close(session: Session, pid: uuid.UUID, version: int, *, author: str, reason: str) -> None:
    """Close the version the write started from; 412 if another write closed it first.

    The closing UPDATE holds the row's lock until commit, so the litige check that follows sees
    every litige committed before it, and a litige recorded later waits for this write.
    """
    close_version(session, "parcel_version", "parcel_id", pid, version, author=author, reason=reason)
    refuse_if_frozen(session, pid)


def update(session: Session, *, parcel_id: str, data: ParcelInput, author: str,
           expected_version: int | None = None, tolerances: Tolerances | None = None,
           by: Principal | None = None, permission: Action = Action.WRITE_PARCELS,
           action: str = "api:update") -> int:
    """Write a new version of a parcel with ``data``'s changes; return its number.

    ``by`` must be allowed to ``permission`` (write parcels; a field return: field work) in the
    commune before and the commune after; ``action`` is the version's record of its origin.
    ``expected_version`` is the version the client read (``If-Match``): another one is a 412.
    A parcel under litige refuses every change.
    """
    tolerances = tolerances or Tolerances()
    if not data.reason:
        raise InvalidInput("parcel.reason_required")
    pid = _parse_id(parcel_id)
    current = _current(session, pid)
    _authorize(session, by, [current["commune_code"]], permission)
    check_expected(expected_version, current["version"])
    refuse_if_frozen(session, pid)
    values = {k: current[k] for k in (*CONTENT_FIELDS, "source_id")}
    changes = dict(data.values)
    bounds.check("parcel.declared_area_m2", changes.get("declared_area_m2"), field="declared_area_m2")
    if "nicad" in changes:
        changes["nicad"] = nicad_rules.clean(changes["nicad"])
    values.update(changes)
    ewkb = current["ewkb"]
    shape_changed = False
    if data.geometry is not None:
        ewkb, commune = _checked_geometry(session, _to_storage_wkb(data.geometry, data.input_crs), data.input_crs,
                                          exclude=pid, commune=changes.get("commune_code"), tolerances=tolerances,
                                          by=by, also=[current["commune_code"]], permission=permission)
        # More than 1 cm anywhere, as the re-imports judge it: a shape sent back in WGS 84 as it was
        # served differs by reprojection noise only (about 1e-5 m) and is no change.
        shape_changed = bool(session.execute(text(
            "SELECT ST_HausdorffDistance(CAST(:a AS geometry), CAST(:b AS geometry)) > 0.01"),
            {"a": ewkb, "b": current["ewkb"]}).scalar())
        if not shape_changed:
            ewkb = current["ewkb"]  # the stored shape, not its reprojected copy
        values["commune_code"] = commune
    _authorize(session, by, [current["commune_code"], values["commune_code"]], permission)
    if data.geometry is None and values["commune_code"] != current["commune_code"]:
        # A new commune for the same shape: checked as it would be with the shape given.
        _check_commune(session, current["ewkb"], str(values["commune_code"]), tolerances)
    if shape_changed and "nicad" not in changes:
        values["nicad"] = None  # the old NICAD stays on the old version
        values["nicad_status"] = nicad_rules.STATUS_TO_REASSIGN
    elif values["nicad"]:
        values["nicad_status"] = nicad_rules.STATUS_ASSIGNED
    elif current["nicad_status"] == nicad_rules.STATUS_TO_REASSIGN and "nicad" not in changes:
        values["nicad_status"] = nicad_rules.STATUS_TO_REASSIGN
    else:
        values["nicad_status"] = nicad_rules.STATUS_MISSING
    if not shape_changed and all(values.get(k) == current.get(k) for k in (*CONTENT_FIELDS, "nicad_status")):
        raise InvalidInput("parcel.no_change")
    _check_nicad(session, values["nicad"], pid)
    version: int = current["version"] + 1
    before = _audit_state(session, pid)
    _close(session, pid, current["version"], author=author, reason=f"remplacée par la version {version}")
    _insert_version(session, pid, version, values, ewkb, action=action, author=author, reason=data.reason)
    journal.record(session, by, author=author,
                   operation="parcel.update", object_kind="parcel", object_id=pid, parcel_id=pid,
                   commune_code=values["commune_code"], before=before, after=_audit_state(session, pid))
    return version


# --- many updates at once (a field return) ------------------------------------------------------

# The attributes a change may carry and still be written in bulk: a NICAD or a commune given by
# hand goes through :func:`update` (its checks name other parcels, and are rare).
BATCH_FIELDS = frozenset({"section", "local_number", "source_id", "declared_area_m2", "land_use", "tenure_regime"})


@dataclass(frozen=True)
class Change:
    """One parcel's change in a batch: what :func:`update` would be given, the shape as storage WKB."""

    parcel_id: uuid.UUID
    expected_version: int
    geometry: bytes | None  # WKB in the storage CRS; None: the shape is not changed
    values: dict[str, Any]
    reason: str


@dataclass
class BatchOutcome:
    """What :func:`update_many` wrote, left as it was, and left to :func:`update` (``deferred``, in order)."""

    applied: dict[uuid.UUID, int] = field(default_factory=dict)
    deferred: list[Change] = field(default_factory=list)
    unchanged: list[uuid.UUID] = field(default_factory=list)


@dataclass
class _Planned:
    """A change as the batch sees it: the current version, the new shape and what the checks found."""

    change: Change
    wkb: bytes | None = None  # the storage WKB :func:`update` would send (``_to_storage_wkb``)
    current: dict[str, Any] = field(default_factory=dict)
    old_shape: Any = None  # shapely, for the interactions between changes
    new_shape: Any = None
    ewkb: str | None = None
    area: float = 0.0
    shape_changed: bool = False
    commune: str | None = None
    values: dict[str, Any] = field(default_factory=dict)


def update_many(session: Session, changes: Sequence[Change], *, author: str, by: Principal | None,
                permission: Action, action: str, tolerances: Tolerances | None = None) -> BatchOutcome:
    """Write the changes :func:`update` would accept in a few set-based statements; defer the others.

    A field return changes thousands of parcels; one :func:`update` each costs about twenty
    statements per parcel. Here every check :func:`update` makes (expected version, litige,
    validity, region, commune ranking, scope, overlap with current parcels and with the batch's
    other shapes, the 1 cm shape rule, NICAD status, bounds, no change) is decided for all the
    changes at once; what a check would refuse, and anything unusual (a NICAD or commune given, a
    parcel twice), is not written but returned in ``deferred``, for the caller to run through
    :func:`update` one by one afterwards, so that its refusal is exactly today's. A change that
    meets a deferred one (their shapes' boxes meet, or it holds a NICAD the other asks for) is
    deferred too: then the order between written and deferred changes cannot alter any outcome,
    and the registry ends as if :func:`update` had run on each change in order.
    """
    tolerances = tolerances or Tolerances()
    outcome = BatchOutcome()
    plans: list[_Planned] = [_Planned(change) for change in changes]
    counts: dict[uuid.UUID, int] = {}
    for change in changes:
        counts[change.parcel_id] = counts.get(change.parcel_id, 0) + 1
    deferred: set[int] = set()
    for index, plan in enumerate(plans):
        if counts[plan.change.parcel_id] > 1 or not _batchable(plan):
            deferred.add(index)
    _assess(session, plans, deferred)
    _check_shapes(session, plans, deferred, tolerances)
    for index, plan in enumerate(plans):
        if index not in deferred and not _decide(plan, by, permission):
            deferred.add(index)
    touched = {index: {plan.current["commune_code"], plan.values["commune_code"]}
               for index, plan in enumerate(plans) if index not in deferred}
    foreign = set(directory.unowned(session, (code for codes in touched.values() for code in codes)))
    deferred.update(index for index, codes in touched.items() if codes & foreign)  # update() refuses them
    _overlapping_changes(plans, deferred, tolerances)
    while True:
        _spread(plans, deferred)
        unchanged = [i for i, plan in enumerate(plans) if i not in deferred and _no_change(plan)]
        writes = [i for i, plan in enumerate(plans) if i not in deferred and i not in unchanged]
        refused = _write(session, [plans[i] for i in writes], author=author, by=by, action=action)
        if not refused:
            break
        deferred.update(i for i in writes if plans[i].change.parcel_id in refused)
    for index, plan in enumerate(plans):
        if index in deferred:
            outcome.deferred.append(plan.change)
        elif index in unchanged:
            outcome.unchanged.append(plan.change.parcel_id)
        else:
            outcome.applied[plan.change.parcel_id] = plan.current["version"] + 1
    return outcome


def _batchable(plan: _Planned) -> bool:
    """Whether a change has nothing the batch leaves to :func:`update` (its own checks, in Python)."""
    change = plan.change
    if not change.reason or not set(change.values) <= BATCH_FIELDS:
        return False
    for name, value in change.values.items():
        if name == "declared_area_m2":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                return False
            try:
                bounds.check("parcel.declared_area_m2", value, field="declared_area_m2")
            except InvalidInput:
                return False
        elif value is not None and not isinstance(value, str):
            return False
    if change.geometry is not None:
        try:  # the very bytes update() sends: through GeoJSON and _to_storage_wkb, as its caller does
            plan.wkb = _to_storage_wkb(mapping(shapely.from_wkb(change.geometry)), STORAGE_SRID)
        except (InvalidInput, shapely.errors.GEOSException, ValueError, TypeError):
            return False
    return True


def _assess(session: Session, plans: list[_Planned], deferred: set[int]) -> None:
    """The current versions, litiges and the new shapes' validity, for every change at once."""
    indexes = [i for i in range(len(plans)) if i not in deferred]
    if not indexes:
        return
    rows = session.execute(text(f"""
        SELECT u.i, c.version, c.nicad, c.nicad_status, c.commune_code, c.section, c.local_number, c.source_id,
               c.declared_area_m2, c.land_use, c.tenure_regime, ST_AsBinary(c.geom) AS old_wkb,
               EXISTS (SELECT 1 FROM rrr_version r
                       WHERE r.parcel_id = u.pid AND r.valid_to IS NULL AND r.type = 'litige'
                         AND r.start_date <= current_date AND (r.end_date IS NULL OR r.end_date > current_date))
                   AS frozen,
               ST_IsValid(t.g) AS valid, encode(ST_AsEWKB(ST_Multi(t.g)), 'hex') AS ewkb, ST_Area(t.g) AS area
        FROM unnest(CAST(:i AS int[]), CAST(:pid AS uuid[]), CAST(:wkb AS bytea[])) AS u(i, pid, wkb)
        LEFT JOIN parcel_version c ON c.parcel_id = u.pid AND c.valid_to IS NULL
        CROSS JOIN LATERAL (SELECT ST_Transform(ST_GeomFromWKB(u.wkb, {STORAGE_SRID}), {STORAGE_SRID}) AS g) t
    """), {"i": indexes, "pid": [plans[i].change.parcel_id for i in indexes],
           "wkb": [plans[i].wkb for i in indexes]}).mappings().all()
    for row in rows:
        index = int(row["i"])
        plan = plans[index]
        if row["version"] is None:  # retired or unknown: update() says which
            deferred.add(index)
            continue
        plan.current = {k: row[k] for k in ("version", "nicad", "nicad_status", "commune_code", "section",
                                            "local_number", "source_id", "declared_area_m2", "land_use",
                                            "tenure_regime")}
        plan.old_shape = shapely.from_wkb(bytes(row["old_wkb"]))
        if row["version"] != plan.change.expected_version or row["frozen"]:
            deferred.add(index)
        elif plan.wkb is not None:
            if not row["valid"]:
                deferred.add(index)
            else:
                plan.ewkb, plan.area = row["ewkb"], float(row["area"])
                plan.new_shape = shapely.from_wkb(bytes.fromhex(row["ewkb"]))


def _check_shapes(session: Session, plans: list[_Planned], deferred: set[int], tolerances: Tolerances) -> None:
    """The checks of ``_checked_geometry`` and the 1 cm rule, in one statement over every new shape.

    The commune ranking runs only for a shape meeting several communes: with one, it is that one
    whatever the order. The communes each shape meets are found commune by commune: PostGIS keeps
    one prepared polygon per call, so shapes tested in turn against two large communes would have
    it rebuilt (about 0.7 ms for a commune of 20,000 vertices) at every row.
    """
    indexes = [i for i, plan in enumerate(plans) if i not in deferred and plan.ewkb is not None]
    if not indexes:
        return
    rows = session.execute(text(f"""
        WITH u AS MATERIALIZED (
            SELECT * FROM unnest(CAST(:i AS int[]), CAST(:pid AS uuid[]), CAST(CAST(:g AS text[]) AS geometry[]),
                                 CAST(:area AS float8[])) AS u(i, pid, g, area)),
        met AS (  -- commune by commune, so each one's prepared polygon serves every shape in turn
            SELECT x.i, array_agg(c.code) AS codes FROM commune c
            CROSS JOIN LATERAL (SELECT u.i FROM u WHERE c.geom && u.g AND ST_Intersects(c.geom, u.g)) x
            WHERE c.geom && (SELECT ST_SetSRID(ST_Extent(u.g)::geometry, {STORAGE_SRID}) FROM u)
            GROUP BY x.i)
        SELECT u.i,
               EXISTS (SELECT 1 FROM territory_piece p WHERE p.level = 'region' AND p.geom && u.g
                       AND ST_Intersects(p.geom, u.g)) AS inside,
               CASE WHEN cardinality(m.codes) = 1 THEN m.codes[1] ELSE (
                   SELECT c.code FROM commune c WHERE c.geom && u.g AND ST_Intersects(c.geom, u.g)
                   ORDER BY (c.boundary_status = 'official'
                             AND overlap_area(c.geom, u.g) > greatest(:out_m2, :out_ratio * u.area)) DESC,
                            overlap_area(c.geom, u.g) DESC, c.code LIMIT 1) END AS commune,
               EXISTS (SELECT 1 FROM parcel p
                       WHERE p.geom && u.g AND p.parcel_id IS DISTINCT FROM u.pid
                         AND overlap_area(p.geom, u.g) > greatest(:m2, :ratio * least(p.area_m2, u.area)))
                   AS overlaps,
               ST_HausdorffDistance(u.g, cur.geom) > 0.01 AS shape_changed
        FROM u
        JOIN parcel_version cur ON cur.parcel_id = u.pid AND cur.valid_to IS NULL
        LEFT JOIN met m ON m.i = u.i
    """), {"i": indexes, "pid": [plans[i].change.parcel_id for i in indexes],
           "g": [plans[i].ewkb for i in indexes], "area": [plans[i].area for i in indexes],
           "out_m2": tolerances.outside_m2, "out_ratio": tolerances.outside_ratio,
           "m2": tolerances.overlap_m2, "ratio": tolerances.overlap_ratio}).mappings().all()
    for row in rows:
        index = int(row["i"])
        if not row["inside"] or row["commune"] is None or row["overlaps"]:
            deferred.add(index)
            continue
        plans[index].commune = row["commune"]
        plans[index].shape_changed = bool(row["shape_changed"])


def _decide(plan: _Planned, by: Principal | None, permission: Action) -> bool:
    """The scope and the NICAD rule of :func:`update`, in Python; False if the change must be deferred."""
    current = plan.current
    values = {k: current[k] for k in (*CONTENT_FIELDS, "source_id")}
    values.update(plan.change.values)
    if plan.ewkb is not None:
        values["commune_code"] = plan.commune
    try:
        if by is not None:  # the communes' owner is checked for the whole batch (update_many)
            require(by, permission, communes=[current["commune_code"], values["commune_code"]])
    except SifcError:
        return False
    if plan.shape_changed:
        values["nicad"] = None  # the old NICAD stays on the old version
        values["nicad_status"] = nicad_rules.STATUS_TO_REASSIGN
    elif values["nicad"]:
        values["nicad_status"] = nicad_rules.STATUS_ASSIGNED
    elif current["nicad_status"] == nicad_rules.STATUS_TO_REASSIGN:
        values["nicad_status"] = nicad_rules.STATUS_TO_REASSIGN
    else:
        values["nicad_status"] = nicad_rules.STATUS_MISSING
    plan.values = values
    return True


def _no_change(plan: _Planned) -> bool:
    return not plan.shape_changed and all(plan.values.get(k) == plan.current.get(k)
                                          for k in (*CONTENT_FIELDS, "nicad_status"))


def _overlapping_changes(plans: list[_Planned], deferred: set[int], tolerances: Tolerances) -> None:
    """Two new shapes of the batch overlapping beyond half the tolerance: both go to :func:`update`.

    Half, so that a rounding between GEOS here and PostGIS there never lets an overlap through
    (a deferral only costs time: :func:`update` decides it exactly).
    """
    indexes = [i for i, plan in enumerate(plans) if i not in deferred and plan.new_shape is not None]
    if len(indexes) < 2:
        return
    shapes = [plans[i].new_shape for i in indexes]
    left, right = shapely.STRtree(shapes).query(shapes, predicate="intersects")
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        if a >= b:
            continue
        first, second = plans[indexes[a]], plans[indexes[b]]
        limit = max(tolerances.overlap_m2, tolerances.overlap_ratio * min(first.area, second.area))
        if shapely.area(shapely.intersection(first.new_shape, second.new_shape)) > limit / 2:
            deferred.update((indexes[a], indexes[b]))


def _spread(plans: list[_Planned], deferred: set[int]) -> None:
    """Defer every change that meets a deferred one, until none does.

    Meeting: the boxes of their shapes (current or new) meet, or the deferred change gives the
    NICAD the other holds. Then no written change can alter a deferred change's checks, nor the
    other way round, and running the deferred ones after the batch ends as running all in order.
    """
    while True:
        kept = [i for i in range(len(plans)) if i not in deferred]
        if not kept or not deferred:
            return
        shapes: list[Any] = []
        owners: list[int] = []
        for i in kept:
            for one in (plans[i].old_shape, plans[i].new_shape):
                if one is not None:
                    shapes.append(one)
                    owners.append(i)
        asked: set[str] = set()
        probes: list[Any] = []
        for i in deferred:
            change = plans[i].change
            wanted = nicad_rules.clean(change.values.get("nicad"))
            if wanted:
                asked.add(wanted)
            probes.extend(s for s in (plans[i].old_shape, plans[i].new_shape) if s is not None)
            if plans[i].new_shape is None and change.geometry is not None:
                try:  # a shape the batch did not keep (invalid, unreadable): its box still counts
                    probes.append(shapely.box(*shapely.from_wkb(change.geometry).bounds))
                except (shapely.errors.GEOSException, ValueError, TypeError):
                    pass
        met = {i for i in kept if plans[i].current.get("nicad") in asked}
        if probes and shapes:
            _, hits = shapely.STRtree(shapes).query(probes)
            met.update(owners[h] for h in hits.tolist())
        if not met:
            return
        deferred.update(met)


def _write(session: Session, plans: list[_Planned], *, author: str, by: Principal | None,
           action: str) -> set[uuid.UUID]:
    """Close, re-check litiges, insert and journal in one savepoint; the parcels to defer instead, if any.

    As :func:`_close`: a version another write closed first is not closed (that change is
    deferred: :func:`update` answers its 412), and litiges are read once the rows are locked.
    The closing trigger checks ``closed_by`` against the transaction's actor, which the caller
    declared (:func:`sifc.db.act_as`), as for :func:`update`.
    """
    if not plans:
        return set()
    pids = [plan.change.parcel_id for plan in plans]
    versions = [plan.current["version"] + 1 for plan in plans]
    savepoint = session.begin_nested()
    try:
        # Lock the versions to close in one order (by parcel), so that two bulk writes over the same
        # parcels (two returns applied at once) wait for each other instead of deadlocking.
        session.execute(text("""
            SELECT 1 FROM parcel_version v
            WHERE v.parcel_id = ANY(CAST(:pid AS uuid[])) AND v.valid_to IS NULL
            ORDER BY v.parcel_id FOR UPDATE"""), {"pid": pids})
        closed = set(session.execute(text("""
            UPDATE parcel_version v SET valid_to = now(), closed_by = :author, close_reason = u.reason
            FROM unnest(CAST(:pid AS uuid[]), CAST(:version AS int[]), CAST(:reason AS text[]))
                 AS u(pid, version, reason)
            WHERE v.parcel_id = u.pid AND v.version = u.version AND v.valid_to IS NULL
            RETURNING v.parcel_id"""),
            {"author": author, "pid": pids, "version": [v - 1 for v in versions],
             "reason": [f"remplacée par la version {v}" for v in versions]}).scalars())
        refused = set(pids) - closed
        if not refused:
            refused = set(session.execute(text("""
                SELECT DISTINCT r.parcel_id FROM rrr_version r
                WHERE r.parcel_id = ANY(CAST(:pid AS uuid[])) AND r.valid_to IS NULL AND r.type = 'litige'
                  AND r.start_date <= current_date AND (r.end_date IS NULL OR r.end_date > current_date)"""),
                {"pid": pids}).scalars())
        if refused:
            savepoint.rollback()
            return refused
        _insert_versions(session, plans, versions, action=action, author=author)
        _journal_updates(session, by, author=author, plans=plans, versions=versions)
    except DBAPIError:
        # A value the database refuses: update() meets it again on its own, change by change.
        savepoint.rollback()
        return set(pids)
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    savepoint.commit()
    return set()


def _insert_versions(session: Session, plans: list[_Planned], versions: list[int], *, action: str,
                     author: str) -> None:
    """The new versions, in one INSERT; an unchanged shape is the stored one (as :func:`update` keeps it)."""
    columns = {name: [plan.values.get(name) for plan in plans] for name in (*CONTENT_FIELDS, "source_id",
                                                                            "nicad_status")}
    columns["declared_area_m2"] = [None if v is None else float(v) for v in columns["declared_area_m2"]]
    session.execute(text("""
        INSERT INTO parcel_version (parcel_id, version, nicad, nicad_status, commune_code, section, local_number,
            source_id, geom, declared_area_m2, land_use, tenure_regime, batch_id, action, author, reason)
        SELECT u.pid, u.version, u.nicad, u.nicad_status, u.commune_code, u.section, u.local_number, u.source_id,
               coalesce(CAST(u.ewkb AS geometry), o.geom), u.declared_area_m2, u.land_use, u.tenure_regime, NULL,
               :action, :author, u.reason
        FROM unnest(CAST(:pid AS uuid[]), CAST(:version AS int[]), CAST(:nicad AS text[]),
                    CAST(:nicad_status AS text[]), CAST(:commune_code AS text[]), CAST(:section AS text[]),
                    CAST(:local_number AS text[]), CAST(:source_id AS text[]), CAST(:ewkb AS text[]),
                    CAST(:declared_area_m2 AS float8[]), CAST(:land_use AS text[]), CAST(:tenure_regime AS text[]),
                    CAST(:reason AS text[]))
             WITH ORDINALITY AS u(pid, version, nicad, nicad_status, commune_code, section, local_number,
                                  source_id, ewkb, declared_area_m2, land_use, tenure_regime, reason, n)
        JOIN parcel_version o ON o.parcel_id = u.pid AND o.version = u.version - 1
        ORDER BY u.n"""),
        {**columns, "pid": [plan.change.parcel_id for plan in plans], "version": versions,
         "ewkb": [plan.ewkb if plan.shape_changed else None for plan in plans],
         "reason": [plan.change.reason for plan in plans], "action": action, "author": author})


def _journal_updates(session: Session, by: Principal | None, *, author: str, plans: list[_Planned],
                     versions: list[int]) -> None:
    """One ``write_audit`` row per version written, as :func:`sifc.journal.record` writes it for :func:`update`."""
    actor = by or Principal(kind="cli", role=journal.SYSTEM.role, name=author or journal.SYSTEM.name,
                            everywhere=True)
    state = f"""(SELECT ({_feature_sql(STORAGE_SRID, personal=True)})::jsonb
                 FROM parcel_version p LEFT JOIN import_batch b ON b.id = p.batch_id"""
    session.execute(text(f"""
        INSERT INTO write_audit (actor_kind, actor_id, actor, role, operation, object_kind, object_id, parcel_id,
                                 commune_code, before, after)
        SELECT :kind, :actor_id, :actor, :role, 'parcel.update', 'parcel', u.pid::text, u.pid, u.commune,
               {state} WHERE p.parcel_id = u.pid AND p.version = u.version - 1),
               {state} WHERE p.parcel_id = u.pid AND p.version = u.version)
        FROM unnest(CAST(:pid AS uuid[]), CAST(:version AS int[]), CAST(:commune AS text[]))
             WITH ORDINALITY AS u(pid, version, commune, n)
        ORDER BY u.n"""),
        {"kind": actor.kind if actor.kind != "anonymous" else "cli", "actor_id": actor.id, "actor": actor.name,
         "role": actor.role, "pid": [plan.change.parcel_id for plan in plans], "version": versions,
         "commune": [plan.values["commune_code"] for plan in plans]})


def retire(session: Session, *, parcel_id: str, author: str, reason: str | None, by: Principal | None = None,
           expected_version: int | None = None) -> None:
    """Retire a parcel: close its current version; nothing is deleted (``by`` in the parcel's commune)."""
    if not reason:
        raise InvalidInput("parcel.reason_required")
    pid = _parse_id(parcel_id)
    current = _current(session, pid)
    _authorize(session, by, [current["commune_code"]])
    check_expected(expected_version, current["version"])
    refuse_if_frozen(session, pid)
    before = _audit_state(session, pid)
    _close(session, pid, current["version"], author=author, reason=f"retirée : {reason}")
    journal.record(session, by, author=author,
                   operation="parcel.retire", object_kind="parcel", object_id=pid, parcel_id=pid,
                   commune_code=current["commune_code"], before=before, after=None)
