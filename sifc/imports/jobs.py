"""Import jobs: an uploaded file, queued in PostgreSQL, imported by a worker process.

Life of a job: ``queued`` → ``running`` (stage ``reading``, ``staging``, ``validating``,
``inserting``) → ``done`` or ``failed``; a failed job can be queued again (``retry``).

Liveness does not rest on timestamps: the worker's import connection holds a session
advisory lock on the job while it runs. When the worker dies, PostgreSQL closes its
connections, rolls its transaction back (nothing of the batch remains) and frees the lock;
whoever can then take the lock knows the job lost its worker (:func:`reap`).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import bounds
from sifc.auth.principal import Action, Principal, require
from sifc.errors import Conflict, Forbidden, InvalidInput, NotFound
from sifc.federation import directory
from sifc.imports.parcels import ParcelImportOptions
from sifc.text import search_form

# Advisory lock namespace of import jobs (first key of the two-key form).
JOB_LOCK_CLASS = 5141
# What a user may upload: one file (a shapefile comes zipped).
UPLOAD_SUFFIXES = (".zip", ".gpkg", ".geojson", ".json", ".gml", ".fgb", ".dxf", ".csv")
STAGES = ("reading", "staging", "validating", "inserting")
OPTION_FIELDS = ("commune", "crs", "layer", "encoding", "on_invalid", "overlap_tolerance_m2",
                 "overlap_tolerance_ratio", "area_tolerance_ratio", "mapping", "lang")

PUBLIC_COLUMNS = """
    id, kind, status, stage, progress_done, progress_total, file_name, size_bytes, options, dry_run, attempts,
    error, batch_id, created_at, started_at, updated_at, finished_at,
    report IS NOT NULL AS has_report, rejects_gpkg IS NOT NULL AS has_rejects,
    CASE WHEN report IS NULL THEN NULL ELSE jsonb_build_object(
        'read', report -> 'read', 'accepted', report -> 'accepted', 'rejected', report -> 'rejected',
        'duplicates', report -> 'duplicates', 'changes', report -> 'changes',
        'rejected_by_reason', report -> 'rejected_by_reason', 'warnings_by_code', report -> 'warnings_by_code',
        'already_imported', report -> 'already_imported', 'timings', report -> 'timings',
        'counts', report -> 'counts', 'already_applied', report -> 'already_applied') END AS summary
"""


def parse_id(value: str) -> uuid.UUID:
    """A job id from a URL or a command line."""
    try:
        return uuid.UUID(value)
    except ValueError as error:
        raise NotFound("import_job.not_found", id=value[:64]) from error


def check_options(raw: dict[str, Any]) -> dict[str, Any]:
    """The job options a user gave, checked now rather than when the worker runs."""
    unknown = sorted(set(raw) - set(OPTION_FIELDS))
    if unknown:
        raise InvalidInput("import_job.unknown_option", names=", ".join(unknown))
    options = {k: v for k, v in raw.items() if v is not None and v != ""}
    if options.get("on_invalid", "repair") not in ("repair", "reject"):
        raise InvalidInput("import.on_invalid", value=str(options["on_invalid"])[:40])
    for name in ("overlap_tolerance_m2", "overlap_tolerance_ratio", "area_tolerance_ratio"):
        if name in options:
            try:
                options[name] = float(options[name])
            except (TypeError, ValueError) as error:
                raise InvalidInput("import_job.bad_number", name=name, value=str(options[name])[:40]) from error
            if not bounds.bound("import.tolerance").admits(options[name]):
                raise InvalidInput("import_job.bad_number", name=name, value=str(options[name])[:40])
    mapping = options.get("mapping")
    if mapping is not None:
        if isinstance(mapping, str):
            try:
                mapping = orjson.loads(mapping)
            except orjson.JSONDecodeError as error:
                raise InvalidInput("import_job.bad_mapping") from error
        if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in mapping.items()):
            raise InvalidInput("import_job.bad_mapping")
        from sifc.imports.mapping import TARGETS

        wrong = sorted(set(mapping) - set(TARGETS))
        if wrong:
            raise InvalidInput("mapping.unknown_target", fields=", ".join(wrong), targets=", ".join(TARGETS))
        options["mapping"] = mapping
    for name in ("commune", "crs", "layer", "encoding", "lang"):
        if name in options and (not isinstance(options[name], str) or len(options[name]) > 200):
            raise InvalidInput("import_job.bad_text", name=name)
    return options


def import_options(job: dict[str, Any]) -> ParcelImportOptions:
    """The pipeline's options for a job row."""
    stored = dict(job["options"])
    stored.pop("lang", None)
    stored.pop("commune_code", None)
    return ParcelImportOptions(dry_run=bool(job["dry_run"]), author=job["created_by"], **stored)


def authorize_submit(session: Session, *, by: Principal, options: dict[str, Any]) -> dict[str, Any]:
    """The checked options of a job ``by`` may submit, with ``commune_code``, the commune it resolves to.

    The ``commune`` option confines every parcel of the job to that commune (the pipeline rejects
    the others), so it is what the scope is checked against. A caller whose scope is not the whole
    country must give it; a national one may leave the commune to each parcel's location.
    """
    require(by, Action.RUN_IMPORTS)
    options = {**options, "actor_kind": by.kind, "actor_role": by.role}  # for the write audit
    reference = options.get("commune")
    if reference is None:
        if not by.everywhere:
            raise Forbidden("import_job.commune_required")
        if directory.this_node(session).role != "single":  # a node writes its own communes only (ADR 0004)
            raise Forbidden("federation.import_commune_required")
        return options
    codes = session.execute(text("""
        SELECT code FROM commune WHERE code = :ref OR national_code = :ref
        UNION SELECT code FROM commune WHERE name_search = :search"""),
        {"ref": reference, "search": search_form(reference)}).scalars().all()
    if len(codes) != 1:  # unknown or ambiguous: the worker reports it, if the caller may import anywhere
        if not by.everywhere:
            raise Forbidden("auth.out_of_scope", communes=str(reference)[:100])
        return options
    require(by, Action.RUN_IMPORTS, communes=[codes[0]])
    directory.ensure_owned(session, [codes[0]])
    return {**options, "commune_code": str(codes[0])}


def authorize(session: Session, job_id: uuid.UUID, *, by: Principal) -> None:
    """Refuse ``by`` a job outside its scope: neither its own nor confined to a commune of its scope."""
    require(by, Action.RUN_IMPORTS)
    row = session.execute(text("SELECT created_by, options ->> 'commune_code' AS commune FROM import_job "
                               "WHERE id = :id AND kind <> 'documents'"), {"id": job_id}).first()
    if row is None:
        raise NotFound("import_job.not_found", id=str(job_id))
    if by.everywhere or row.created_by == by.name or (row.commune is not None and by.covers(row.commune)):
        return
    raise Forbidden("auth.out_of_scope", communes=row.commune or "?")


def submit(session: Session, *, job_id: uuid.UUID, file_name: str, upload_path: str, size_bytes: int,
           options: dict[str, Any], dry_run: bool, author: str, kind: str = "parcels") -> dict[str, Any]:
    """Queue a job for an uploaded file; the worker is woken by a notification.

    ``kind``: ``parcels`` (an import) or ``field_return`` (:mod:`sifc.field.returns`).
    """
    session.execute(text("""
        INSERT INTO import_job (id, kind, file_name, upload_path, size_bytes, options, dry_run, created_by)
        VALUES (:id, :kind, :name, :path, :size, CAST(:options AS jsonb), :dry, :author)
    """), {"id": job_id, "kind": kind, "name": file_name, "path": upload_path, "size": size_bytes,
           "options": orjson.dumps(options).decode(), "dry": dry_run, "author": author})
    session.execute(text("SELECT pg_notify('sifc_import_job', :id)"), {"id": str(job_id)})
    return get(session, job_id)


def get(session: Session, job_id: uuid.UUID) -> dict[str, Any]:
    """The public view of a job (no upload path, no author)."""
    reap(session, job_id)
    row = session.execute(text(f"SELECT {PUBLIC_COLUMNS} FROM import_job WHERE id = :id"),
                          {"id": job_id}).mappings().first()
    if row is None:
        raise NotFound("import_job.not_found", id=str(job_id))
    return dict(row)


def list_jobs(session: Session, *, status: str | None, limit: int, offset: int,
              by: Principal | None = None) -> list[dict[str, Any]]:
    """The most recent jobs first; with ``by``, only its own and those confined to its scope."""
    reap(session)
    mine = "TRUE"
    params: dict[str, Any] = {"status": status, "limit": limit, "offset": offset}
    if by is not None and not by.everywhere:
        mine = "(created_by = :me OR options ->> 'commune_code' = ANY(CAST(:communes AS text[])))"
        params.update(me=by.name, communes=sorted(by.communes))
    rows = session.execute(text(f"""
        SELECT {PUBLIC_COLUMNS} FROM import_job
        WHERE kind <> 'documents' AND (CAST(:status AS text) IS NULL OR status = :status) AND {mine}
        ORDER BY created_at DESC, id LIMIT :limit OFFSET :offset
    """), params).mappings().all()
    return [dict(r) for r in rows]


def retry(session: Session, job_id: uuid.UUID) -> dict[str, Any]:
    """Queue a failed job again (its upload is kept)."""
    job = get(session, job_id)
    if job["status"] != "failed":
        raise Conflict("import_job.not_failed", id=str(job_id), status=job["status"])
    session.execute(text("""
        UPDATE import_job SET status = 'queued', stage = NULL, progress_done = 0, progress_total = 0,
               error = NULL, worker = NULL, finished_at = NULL, updated_at = now()
        WHERE id = :id AND status = 'failed'
    """), {"id": job_id})
    session.execute(text("SELECT pg_notify('sifc_import_job', :id)"), {"id": str(job_id)})
    return get(session, job_id)


def reap(session: Session, job_id: uuid.UUID | None = None) -> list[str]:
    """Mark failed the running jobs whose worker is gone (their lock is free); return their ids."""
    lost = session.execute(text("""
        WITH running AS MATERIALIZED (
            SELECT id FROM import_job WHERE status = 'running' AND (CAST(:id AS uuid) IS NULL OR id = :id)
        ), orphaned AS MATERIALIZED (
            SELECT id FROM running WHERE pg_try_advisory_xact_lock(:lock_class, hashtext(id::text))
        )
        UPDATE import_job j SET status = 'failed', finished_at = now(), updated_at = now(),
               error = jsonb_build_object('key', 'import_job.worker_lost', 'stage', j.stage)
        FROM orphaned o WHERE j.id = o.id AND j.status = 'running'
        RETURNING j.id
    """), {"id": job_id, "lock_class": JOB_LOCK_CLASS}).scalars().all()
    return [str(i) for i in lost]


def issues_lines(session: Session, job_id: uuid.UUID) -> tuple[dict[str, Any], bytes | None]:
    """A finished job's report and its gzipped issue lines (every issue, one JSON per line)."""
    row = session.execute(text("SELECT status, report, issues_gz FROM import_job WHERE id = :id"),
                          {"id": job_id}).mappings().first()
    if row is None:
        raise NotFound("import_job.not_found", id=str(job_id))
    if row["report"] is None:
        raise Conflict("import_job.no_report", id=str(job_id), status=row["status"])
    return dict(row["report"]), row["issues_gz"]


def rejects(session: Session, job_id: uuid.UUID) -> bytes:
    """The GeoPackage of a finished job's rejected features."""
    row = session.execute(text("SELECT status, rejects_gpkg FROM import_job WHERE id = :id"),
                          {"id": job_id}).mappings().first()
    if row is None:
        raise NotFound("import_job.not_found", id=str(job_id))
    if row["rejects_gpkg"] is None:
        raise NotFound("import_job.no_rejects", id=str(job_id))
    return bytes(row["rejects_gpkg"])
