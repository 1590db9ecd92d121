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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

import orjson
import shapely
from shapely.geometry import shape
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sifc import bounds, journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal, require
from sifc.crs import STORAGE_SRID, in_domain
from sifc.errors import Conflict, Gone, InvalidInput, NotFound
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
        outside = session.execute(text(f"""
            SELECT :area - coalesce(overlap_area(c.geom, {geom_sql}), 0) FROM commune c WHERE c.code = :c
        """), {**tol, "c": commune}).scalar()
        if outside is None:
            raise InvalidInput("parcel.unknown_commune", commune=commune)
        if outside > max(tolerances.outside_m2, tolerances.outside_ratio * row.area):
            raise InvalidInput("parcel.outside_commune", commune=commune, m2=round(outside, 1))
    else:
        commune = session.execute(text(f"""
            SELECT c.code FROM commune c WHERE c.geom && {geom_sql} AND ST_Intersects(c.geom, {geom_sql})
            ORDER BY (c.boundary_status = 'official'
                      AND overlap_area(c.geom, {geom_sql}) > greatest(:m2, :ratio * :area)) DESC,
                     overlap_area(c.geom, {geom_sql}) DESC, c.code LIMIT 1
        """), tol).scalar()
        if commune is None:
            raise InvalidInput("parcel.no_commune")
    _authorize(by, [*also, commune], permission)
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


def _authorize(by: Principal | None, communes: Iterable[str], permission: Action = Action.WRITE_PARCELS) -> None:
    if by is not None:
        require(by, permission, communes=communes)


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
    _authorize(by, [current["commune_code"]], permission)
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
    _authorize(by, [current["commune_code"], values["commune_code"]], permission)
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


def retire(session: Session, *, parcel_id: str, author: str, reason: str | None, by: Principal | None = None,
           expected_version: int | None = None) -> None:
    """Retire a parcel: close its current version; nothing is deleted (``by`` in the parcel's commune)."""
    if not reason:
        raise InvalidInput("parcel.reason_required")
    pid = _parse_id(parcel_id)
    current = _current(session, pid)
    _authorize(by, [current["commune_code"]])
    check_expected(expected_version, current["version"])
    refuse_if_frozen(session, pid)
    before = _audit_state(session, pid)
    _close(session, pid, current["version"], author=author, reason=f"retirée : {reason}")
    journal.record(session, by, author=author,
                   operation="parcel.retire", object_kind="parcel", object_id=pid, parcel_id=pid,
                   commune_code=current["commune_code"], before=before, after=None)
