"""The check-in of a field package: intake at the door, then preview or apply in the import worker.

A return is judged against the server's record of the package (ADR 0003 §3), never against what
the file says of itself: the file's id must carry a MAC the server made, its holder must be the
one who returns it, its tables must have the shape the server wrote, and each parcel it changed is
compared three ways -- the state issued (``field_package_item.base_version`` and its fingerprint),
the file's row and the registry's current version. Only a parcel changed in the field and not in
the office since is written, through the parcel service like any other write (its rules, its
author, its audit row), each in a savepoint so that one refusal never spoils the rest.

Runs as an import job of kind ``field_return`` (durable, claimed, reaped and followed like an
import); a preview runs every check and write, then rolls them back.
"""

from __future__ import annotations

import atexit
import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pygeodiff
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import keyring
from sifc.auth.principal import Action, Principal, require
from sifc.auth.service import principal_for
from sifc.db import act_as
from sifc.errors import Forbidden, ImportRejected, NotFound
from sifc.federation import directory
from sifc.field import layers, mac, returns_file
from sifc.field.returns_apply import Applier, ReturnReport
from sifc.imports import jobs
from sifc.settings import Settings

# One library instance per process (ADR 0003 §1 (d)): its finaliser imports at interpreter exit, when
# imports no longer work, and prints a traceback; the library is released before that instead.
GEODIFF = pygeodiff.GeoDiff()


def _release_geodiff() -> None:
    library = GEODIFF.clib
    if library is not None:
        library.shutdown()


atexit.register(_release_geodiff)
KIND = "field_return"
JOB_SQL = text("SELECT * FROM import_job WHERE id = :id AND kind = 'field_return'")


def parse_package_id(value: Any) -> uuid.UUID:
    """A package id from a URL, a command line or a file (unknown: 404)."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError) as error:
        raise NotFound("field.package_unknown", id=str(value)[:64]) from error


def _package(session: Session, package_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any] | None:
    row = session.execute(text(f"""
        SELECT id, commune_code, issued_to, issued_by, issued_at, expires_at, status, format, hmac_kid, mac, item_count,
               includes_holders, expires_at < now() AS expired
        FROM field_package WHERE id = :id {"FOR UPDATE" if lock else ""}"""), {"id": package_id}).mappings().first()
    return dict(row) if row is not None else None


def _check_holder(package: dict[str, Any], by: Principal) -> None:
    """A return comes from the package's holder (an administrator reassigns a package first)."""
    require(by, Action.FIELD_WORK, communes=[package["commune_code"]])
    if by.name != package["issued_to"]:
        raise Forbidden("field.not_holder", id=str(package["id"]))


def submit_return(session: Session, *, package_id: str | uuid.UUID | None, upload_path: Path, file_name: str,
                  size: int, dry_run: bool, by: Principal, settings: Settings, lang: str = "fr",
                  job_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Check an uploaded return at the door and queue it as an import job; return the job's public view.

    What can be refused without reading the GeoPackage's content is refused here, synchronously
    (size, zip safety, members, the package and its holder); the rest is the worker's. Without
    ``package_id`` the package is the one the file names (still authenticated by the worker).
    """
    require(by, Action.FIELD_WORK)
    found = returns_file.intake(upload_path, size=size, max_bytes=settings.max_field_return_bytes,
                                max_photos=settings.field_return_max_photos,
                                max_photo_bytes=settings.max_document_bytes)
    if package_id is None:
        package_id = _named_package(upload_path, found)
    pid = parse_package_id(package_id)
    package = _package(session, pid)
    if package is None:
        raise NotFound("field.package_unknown", id=str(pid))
    _check_holder(package, by)
    directory.ensure_owned(session, [package["commune_code"]])  # refused now rather than by the worker
    options = {"package_id": str(pid), "lang": lang, "commune_code": package["commune_code"],
               "actor_kind": by.kind, "actor_id": by.id, "actor_role": by.role}
    return jobs.submit(session, job_id=job_id or uuid.uuid4(), file_name=file_name, upload_path=str(upload_path),
                       size_bytes=size, options=options, dry_run=dry_run, author=by.name, kind=KIND)


def _named_package(upload: Path, found: returns_file.Intake) -> str:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sifc-return-") as scratch, \
            returns_file.unpacked(upload, Path(scratch)) as (gpkg, _photos):
        claims = returns_file.package_claims(gpkg)
    value = claims.get("id") or claims.get("package_id")
    if not value:
        raise ImportRejected("field.package_forged")
    return value


def _principal(session: Session, job: dict[str, Any]) -> Principal:
    """Who returns the package, as the accounts say now (a disabled account or revoked key returns nothing)."""
    from sifc.auth import scopes

    options = job["options"]
    kind, ident = options.get("actor_kind"), options.get("actor_id")
    if kind == "cli":  # the operator at the server's console, running the job in its own process
        return Principal(kind="cli", role="administrateur", name=job["created_by"], everywhere=True,
                         ).via("CLI", "sifc field return")
    if kind == "user":
        row = session.execute(text("SELECT id, username AS name, role FROM app_user WHERE id = :id AND active"),
                              {"id": ident}).first()
        table, column = "app_user_scope", "user_id"
    elif kind == "api_key":
        row = session.execute(text("""
            SELECT id, 'key:' || prefix || ' ' || name AS name, role FROM api_key
            WHERE id = :id AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"""),
            {"id": ident}).first()
        table, column = "api_key_scope", "key_id"
    else:
        row = None
        table = column = ""
    if row is None or row.name != job["created_by"]:
        raise Forbidden("field.not_holder", id=str(options.get("package_id")))
    principal = principal_for(session, kind=str(kind), id=int(row.id), name=str(row.name), role=str(row.role),
                              scope=scopes.load(session, table, column, int(row.id)))
    return principal.via("JOB", KIND)


def _authenticate(session: Session, claims: dict[str, str], package_id: uuid.UUID, settings: Settings,
                  by: Principal) -> dict[str, Any]:
    """The server's record of the package the file claims to be, once its MAC, status and holder pass."""
    keys = keyring.for_settings(settings)
    file_id = claims.get("id") or claims.get("package_id") or ""
    kid, code = claims.get("kid") or claims.get("hmac_kid") or "", claims.get("mac") or ""
    package = _package(session, parse_package_id(file_id), lock=True) if _is_uuid(file_id) else None
    if package is None:
        if _self_consistent(keys, claims, file_id, kid, code):
            raise ImportRejected("field.package_unknown", id=file_id[:64])
        raise ImportRejected("field.package_forged")
    # The MAC names the holder the package was issued to (its builder): a reassignment changes
    # ``issued_to`` but not the file, which still verifies against the first holder.
    recorded = mac.claims(package_id=package["id"], commune_code=package["commune_code"],
                          issued_to=package["issued_by"], issued_at=package["issued_at"],
                          expires_at=package["expires_at"], package_format=package["format"])
    if kid != package["hmac_kid"] or not mac.verify(keys, recorded, kid=kid, mac=code):
        raise ImportRejected("field.package_forged")
    if package["id"] != package_id:
        raise ImportRejected("field.package_mismatch", id=str(package_id), found=str(package["id"]))
    if package["status"] == "lost":
        raise ImportRejected("field.package_lost", id=str(package["id"]))
    if package["status"] == "expired" or package["expired"]:
        raise ImportRejected("field.package_expired", id=str(package["id"]))
    _check_holder(package, by)
    return package


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _self_consistent(keys: keyring.Keyring, claims: dict[str, str], file_id: str, kid: str, code: str) -> bool:
    """Whether the file's own claims verify: a package this server issued, then forgotten (restored backup)."""
    try:
        stated = mac.claims(package_id=file_id, commune_code=claims.get("commune", claims.get("commune_code", "")),
                            issued_to=claims.get("issued_to", ""),
                            issued_at=datetime.fromisoformat(claims.get("issued_at", "")),
                            expires_at=datetime.fromisoformat(claims.get("expires_at", claims.get("expiry", ""))),
                            package_format=int(claims.get("format", layers.FORMAT)))
    except ValueError:
        return False
    return mac.verify(keys, stated, kid=kid, mac=code)


def schema_of(path: Path) -> dict[str, Any]:
    """A GeoPackage's tables, columns, geometry types and CRS, as geodiff reads them."""
    out = path.with_suffix(".schema.json")
    try:
        GEODIFF.schema("sqlite", "", str(path), str(out))
    except pygeodiff.GeoDiffLibError as error:
        raise ImportRejected("field.corrupt", reason=str(error)[:200]) from error
    loaded: dict[str, Any] = orjson.loads(out.read_bytes())
    return loaded


def changes(base: Path, gpkg: Path, scratch: Path) -> dict[str, dict[str, list[int]]]:
    """Fids inserted, updated and deleted per returned table, from base to file."""
    changeset, listing = scratch / "changes.bin", scratch / "changes.json"
    GEODIFF.set_tables_to_include(list(layers.RETURNED))
    try:
        GEODIFF.create_changeset(str(base), str(gpkg), str(changeset))
        GEODIFF.list_changes(str(changeset), str(listing))
    except pygeodiff.GeoDiffLibError as error:
        raise ImportRejected("field.schema_changed", table=str(error)[:120]) from error
    finally:
        GEODIFF.set_tables_to_include([])
    found: dict[str, dict[str, list[int]]] = {t: {"insert": [], "update": [], "delete": []} for t in layers.RETURNED}
    for entry in orjson.loads(listing.read_bytes()).get("geodiff", []):
        key = next(c for c in entry["changes"] if c["column"] == 0)
        fid = key.get("new", key.get("old"))
        found[entry["table"]][entry["type"]].append(int(fid))
    return found


def _base(session: Session, package: dict[str, Any], path: Path) -> list[str]:
    """The base regenerated from the record, with every table of the package (the reference ones empty)."""
    from sifc.field import gpkg, packages

    packages.write_base(session, package["id"], path)
    expected = layers.layers(holders=bool(package["includes_holders"]))
    for layer in expected:
        if layer.name not in layers.RETURNED:
            gpkg.write_layer(path, layer, [], append=True)
    return [layer.name for layer in expected]


def _already_applied(session: Session, package_id: uuid.UUID, digest: str) -> str | None:
    found = session.execute(text("""
        SELECT job_id FROM field_return WHERE package_id = :p AND file_sha256 = :d AND applied"""),
        {"p": package_id, "d": digest}).scalar()
    return str(found) if found is not None else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run(session: Session, job: dict[str, Any], scratch: Path, settings: Settings, *,
        progress: Any = None) -> dict[str, Any]:
    """Preview or apply one return (the worker's job of kind ``field_return``); return the job's outcome.

    A refusal of the whole file raises (the worker records it and nothing is kept); per-feature
    refusals and conflicts are in the report and the rejects GeoPackage.
    """
    notify = progress or (lambda stage, done, total: None)
    lang = "en" if job["options"].get("lang") == "en" else "fr"
    package_id = parse_package_id(job["options"].get("package_id"))
    upload = Path(job["upload_path"])
    dry_run = bool(job["dry_run"])
    by = _principal(session, job)
    act_as(session, by.name)  # the versions a return closes are closed in its holder's name
    notify("reading", 0, 0)
    with returns_file.unpacked(upload, scratch / "file") as (gpkg, photos):
        package = _authenticate(session, returns_file.package_claims(gpkg), package_id, settings, by)
        digest = _sha256(upload)
        earlier = _already_applied(session, package_id, digest)
        if earlier is not None:
            report = ReturnReport(package_id=str(package_id), dry_run=dry_run, lang=lang, already_applied=earlier)
            return {"status": "done", "report": report}
        base = scratch / "base.gpkg"
        expected = _base(session, package, base)
        notify("validating", 0, 0)
        returns_file.check_shape(gpkg, base, expected, schema_of)
        found = changes(base, gpkg, scratch)
        inserted = sum(len(found[t]["insert"]) for t in layers.RETURNED)
        if inserted > settings.field_return_max_new_features:
            raise ImportRejected("field.too_many_features", count=inserted,
                                 limit=settings.field_return_max_new_features)
        # A preview writes in a savepoint rolled back at the end: every rule runs, nothing stays, and the
        # caller's transaction (the job's, or the console's) goes on to record the outcome.
        preview = session.begin_nested() if dry_run else None
        applier = Applier(session, package=package, by=by, gpkg=gpkg, photos=photos, settings=settings,
                          lang=lang, dry_run=dry_run)
        notify("inserting", 0, sum(len(v) for t in found.values() for v in t.values()))
        report = applier.run(found)
        rejects = scratch / "rejets.gpkg"
        has_rejects = applier.write_rejects(rejects, returns_file.package_claims(gpkg))
        if preview is not None:
            preview.rollback()  # every check and write ran; nothing of the file is kept
        else:
            applier.finish(job_id=job["id"], digest=digest)
    outcome: dict[str, Any] = {"status": "done", "report": report}
    if has_rejects:
        outcome["rejects_gpkg"] = rejects.read_bytes()
    return outcome


def now() -> datetime:
    """The time a return is judged at (one clock for the module)."""
    return datetime.now(UTC)
