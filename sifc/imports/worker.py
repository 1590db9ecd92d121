"""The import worker: a separate process that runs queued import jobs one at a time.

Two connections: the *import* connection claims a job, holds the job's advisory lock
(its sign of life, see :mod:`sifc.imports.jobs`) and runs the whole import in one
transaction, which also records the outcome — so a batch and its job's ``done`` commit
together or not at all. The *progress* connection writes the stage and progress as they
go, in autocommit, so that clients can follow them.
"""

from __future__ import annotations

import gzip
import logging
import os
import signal
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from sifc.db import make_engine
from sifc.documents import jobs as document_jobs
from sifc.errors import SifcError
from sifc.federation import directory
from sifc.i18n import translate
from sifc.imports import jobs
from sifc.imports.parcels import import_parcels, spool_issues, write_rejects
from sifc.settings import Settings, get_settings

log = logging.getLogger("sifc.worker")
PROGRESS_INTERVAL_S = 0.25


class _Stop:
    requested = False


def _identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(conn: Connection) -> dict[str, Any] | None:
    """Take the oldest queued job, lock it for this connection's session, mark it running."""
    with conn.begin():
        row = conn.execute(text("""
            SELECT * FROM import_job WHERE status = 'queued' ORDER BY created_at, id
            FOR UPDATE SKIP LOCKED LIMIT 1
        """)).mappings().first()
        if row is None:
            return None
        locked = conn.execute(text("SELECT pg_try_advisory_lock(:c, hashtext(CAST(:id AS text)))"),
                              {"c": jobs.JOB_LOCK_CLASS, "id": row["id"]}).scalar()
        if not locked:  # a reaper is looking at it this instant: next time
            return None
        conn.execute(text("""
            UPDATE import_job SET status = 'running', stage = 'reading', attempts = attempts + 1, worker = :who,
                   started_at = now(), updated_at = now(), progress_done = 0, progress_total = 0
            WHERE id = :id
        """), {"id": row["id"], "who": _identity()})
    return dict(row)


class _ProgressWriter:
    """Writes a job's stage and progress on its own autocommit connection, at most every 0.25 s."""

    def __init__(self, engine: Engine, job_id: uuid.UUID) -> None:
        self.engine = engine
        self.job_id = job_id
        self.stage: str | None = None
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in jobs.STAGES and stage not in document_jobs.STAGES:
            return
        now = time.monotonic()
        if stage == self.stage and now - self.last < PROGRESS_INTERVAL_S:
            return
        self.stage, self.last = stage, now
        with self.engine.connect() as conn:
            conn.execute(text("""
                UPDATE import_job SET stage = :stage, progress_done = :done, progress_total = :total,
                       updated_at = now()
                WHERE id = :id AND status = 'running'
            """), {"id": self.job_id, "stage": stage, "done": done, "total": max(total, 0)})
            conn.commit()


def run(conn: Connection, progress_engine: Engine, job: dict[str, Any]) -> str:
    """Run one claimed job on ``conn``; return its final status. The advisory lock is released at the end."""
    job_id = job["id"]
    lang = job["options"].get("lang", "fr")
    notify = _ProgressWriter(progress_engine, job_id)
    try:
        with Session(bind=conn) as session, tempfile.TemporaryDirectory(prefix="sifc-job-") as scratch:
            try:
                outcome = _import(session, job, Path(scratch), notify, lang)
            except SifcError as error:
                session.rollback()
                outcome = _failed(error)
            except Exception as error:
                session.rollback()
                # The ownership guard's refusal (a commune of another node) is the caller's error, not a bug.
                refused = directory.translate(session, error)
                if refused is not None:
                    outcome = _failed(refused)
                else:
                    log.exception("import job %s failed on an unexpected error", job_id)
                    outcome = {"status": "failed", "error": {"key": "import_job.internal_error",
                                                             "fr": translate("import_job.internal_error", "fr"),
                                                             "en": translate("import_job.internal_error", "en")}}
            if outcome["status"] == "failed":
                _finish(session, job_id, outcome)
            session.commit()
    finally:
        conn.execute(text("SELECT pg_advisory_unlock(:c, hashtext(CAST(:id AS text)))"),
                     {"c": jobs.JOB_LOCK_CLASS, "id": job_id})
        conn.commit()
    log.info("import job %s: %s", job_id, outcome["status"])
    return str(outcome["status"])


def _jsonable(params: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in params.items()}


def _failed(error: SifcError) -> dict[str, Any]:
    return {"status": "failed", "error": {"key": error.key, "params": _jsonable(error.params),
                                          "fr": error.message("fr"), "en": error.message("en")}}


def _import(session: Session, job: dict[str, Any], scratch: Path, notify: _ProgressWriter,
            lang: str) -> dict[str, Any]:
    if job.get("kind") == document_jobs.KIND:  # a batch of documents (sifc.documents.jobs), not an import
        try:
            built = document_jobs.run(session, job, get_settings(), notify=notify)
            _finish(session, job["id"], built)  # the documents' register rows and "done" commit together
        except BaseException:
            document_jobs.discard(get_settings(), job["id"])
            raise
        return built
    if job.get("kind") == "field_return":
        from sifc.field import returns

        returned = returns.run(session, job, scratch, get_settings(), progress=notify)
        _finish(session, job["id"], returned)  # the return's writes and "done" commit together
        return returned
    options = jobs.import_options(job)
    report = import_parcels(session, Path(job["upload_path"]), options, progress=notify)
    outcome: dict[str, Any] = {"status": "done", "report": report}
    if report.already_imported is None:
        spool = scratch / "issues.jsonl"
        spool_issues(session, spool)
        outcome["issues_gz"] = gzip.compress(spool.read_bytes(), compresslevel=5)
        if report.rejected or report.duplicates:
            gpkg = scratch / "rejets.gpkg"
            write_rejects(session, gpkg, "en" if lang == "en" else "fr")
            outcome["rejects_gpkg"] = gpkg.read_bytes()
    if options.dry_run:
        session.rollback()  # every check ran; nothing of the file is kept
    _finish(session, job["id"], outcome)  # in the import's transaction: the batch and "done" commit together
    return outcome


def _finish(session: Session, job_id: uuid.UUID, outcome: dict[str, Any]) -> None:
    report = outcome.get("report")
    session.execute(text("""
        UPDATE import_job SET status = :status, finished_at = now(), updated_at = now(),
               stage = CASE WHEN :status = 'done' THEN NULL ELSE stage END,
               progress_done = CASE WHEN :status = 'done' THEN progress_total ELSE progress_done END,
               error = CAST(:error AS jsonb), report = CAST(:report AS jsonb), issues_gz = :issues,
               rejects_gpkg = :rejects, batch_id = CAST(:batch AS uuid)
        WHERE id = :id
    """), {"id": job_id, "status": outcome["status"],
           "error": orjson.dumps(outcome["error"]).decode() if "error" in outcome else None,
           "report": orjson.dumps(report if isinstance(report, dict) else report.as_dict()).decode() if report
           else None,
           "issues": outcome.get("issues_gz"), "rejects": outcome.get("rejects_gpkg"),
           "batch": None if report is None or isinstance(report, dict) or report.dry_run else report.batch_id})


def serve_forever(settings: Settings, *, once: bool = False, parent: int | None = None) -> int:
    """Run jobs until SIGTERM/SIGINT (or, with ``once``, until the queue is empty); return jobs run.

    With ``parent``, also stop once that process (the web service that started this worker) is gone.
    """
    engine = make_engine(settings.db_url, pool_size=1, application_name="sifc-worker")
    progress_engine = make_engine(settings.db_url, pool_size=1, application_name="sifc-worker-progress")
    stop = _Stop()

    def _request_stop(signum: int, frame: object) -> None:
        stop.requested = True

    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    count = 0
    try:
        with engine.connect() as conn:
            # A killed client must not leave its backend running a long statement.
            conn.execute(text("SET client_connection_check_interval = '1s'"))
            conn.commit()
            while not stop.requested and (parent is None or os.getppid() == parent):
                with conn.begin():
                    lost = jobs.reap(Session(bind=conn))
                for job_id in lost:
                    log.warning("import job %s lost its worker: marked failed", job_id)
                job = claim(conn)
                if job is None:
                    if once:
                        break
                    _wait(conn, settings.worker_poll_seconds)
                    continue
                log.info("%s job %s: %s (%d bytes)", job["kind"], job["id"], job["file_name"] or "-",
                         job["size_bytes"] or 0)
                run(conn, progress_engine, job)
                count += 1
    finally:
        engine.dispose()
        progress_engine.dispose()
    return count


def _wait(conn: Connection, seconds: float) -> None:
    """Sleep until a job is queued (LISTEN/NOTIFY) or ``seconds`` pass."""
    raw = conn.connection.driver_connection
    if raw is None:
        time.sleep(seconds)
        return
    conn.execute(text("LISTEN sifc_import_job"))
    conn.commit()
    for _ in raw.notifies(timeout=seconds, stop_after=1):
        break
