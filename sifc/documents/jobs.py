"""Document jobs: batches of sealed PDFs built by the node's job queue (ADR 0005, § Jobs and batch documents).

A council session's documents (hundreds of pages), a campaign's printed display or the close of a
display period take too long for one request. They run as ``import_job`` rows of kind ``documents``
(migration 0021), claimed by the same worker with the same advisory lock, progress, retry and reaping
as imports (:mod:`sifc.imports.jobs`, :mod:`sifc.imports.worker`). A job is node-local: it is never
replicated, and its files stay on the node that built them.

What a job builds is named by a **builder**, registered here by the module that knows the documents::

    from sifc.documents import jobs as document_jobs

    def build(session: Session, params: dict[str, Any], progress: document_jobs.Progress) -> BuiltBatch:
        progress(0, len(things))                  # the job's progress (done, total), shown by GET /document-jobs/{id}
        pdf = some_document.build(session, ..., reader=progress.by, lang=progress.lang,
                                  seal_key=progress.seal_key, verify_url=progress.verify_url,
                                  issued_by=progress.issued_by)   # sealed and recorded as any single document
        ...
        return document_jobs.BuiltBatch(items=[("0001-extrait.pdf", pdf), ...], report={"documents": n})

    document_jobs.register("my_builder", build, check=check_params)

- ``build(session, params, progress)`` runs in the job's transaction: every document it records
  (``verification.record``) and every write it makes commit with the job's ``done``, or not at all
  when it raises (a :class:`~sifc.errors.SifcError` becomes the job's error, in French and English).
- ``params`` is what :func:`submit` was given (JSON; no personal data: it is shown to whoever may see
  the job). ``progress`` is callable as ``progress(done, total)`` and carries the job's context: ``by``
  (the submitter, as the accounts say now, come in through the ``JOB`` channel — pass it as the reader
  so each personal read is logged in ``access_audit``), ``commune_code``, ``lang``, ``seal_key``,
  ``verify_url``, ``issued_by``, ``job_id``.
- :class:`BuiltBatch`: ``items`` (file name, PDF bytes) in print order — the zip holds them one file
  each and the combined PDF concatenates them (``combined=False`` for a batch without a combined
  PDF); ``report`` (JSON, non-personal) is kept on the job row. A builder that prints nothing (it only
  writes, e.g. ``display_close``) returns no items: the job then has no PDF nor zip.
- ``check(session, params, commune_code)`` (optional) runs at :func:`submit`, in the caller's request,
  so that what can be refused at once (a session not deliberated) is refused with its 4xx rather than
  by a failed job.
- A builder's module registers at import; :data:`BUILDER_MODULES` lists the modules the worker imports
  to find them (add yours there).

Who may submit and see a job: a writer of tenure (``Action.WRITE_TENURE``) whose scope covers the job's
commune (403 otherwise); the PDF and zip name holders, so each download is a logged personal read.
"""

from __future__ import annotations

import importlib
import io
import shutil
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth import audit
from sifc.auth.principal import Action, Principal, require
from sifc.db import act_as
from sifc.documents import verification
from sifc.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from sifc.federation import directory
from sifc.keyring import SigningKey
from sifc.settings import Settings

KIND = "documents"
STAGES = ("building", "writing")
# Modules whose import registers builders; the worker and the API import them before running a job.
BUILDER_MODULES = ("sifc.documents.session_batch", "sifc.commission.display_documents",)
PDF_NAME = "documents.pdf"
ZIP_NAME = "documents.zip"
PARAMS_MAX_BYTES = 64 * 1024


class Notify(Protocol):
    """The worker's progress writer: ``notify(stage, done, total)``."""

    def __call__(self, stage: str, done: int, total: int) -> None: ...  # noqa: D102


def _quiet(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class Progress:
    """A running job's context, callable as ``progress(done, total)`` to report how far the builder is."""

    job_id: uuid.UUID
    commune_code: str
    by: Principal
    lang: str
    seal_key: SigningKey
    verify_url: str
    issued_by: str
    notify: Notify = _quiet

    def __call__(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` items (written at most every 0.25 s by the worker)."""
        self.notify("building", done, total)


@dataclass
class BuiltBatch:
    """What a builder made: the per-item PDFs in print order, whether to combine them, its report."""

    items: list[tuple[str, bytes]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    combined: bool = True


Builder = Callable[[Session, dict[str, Any], Progress], BuiltBatch]
Check = Callable[[Session, dict[str, Any], str], None]


@dataclass(frozen=True)
class _Registered:
    build: Builder
    check: Check | None


_BUILDERS: dict[str, _Registered] = {}


def register(name: str, build: Builder, *, check: Check | None = None) -> None:
    """Make ``build`` the builder called ``name`` (see the module's docstring for the contract).

    Registering a name twice with another function is a programming error (two slices claiming one
    name); registering the same function again (a module imported twice) changes nothing.
    """
    known = _BUILDERS.get(name)
    if known is not None and known.build is not build and known.build.__qualname__ != build.__qualname__:
        raise ValueError(f"document builder {name!r} is already registered")
    _BUILDERS[name] = _Registered(build, check)


def find_builder(name: str) -> _Registered:
    """The builder called ``name`` (its modules imported first); 400 for an unknown name."""
    for module in BUILDER_MODULES:
        importlib.import_module(module)
    found = _BUILDERS.get(name)
    if found is None:
        raise InvalidInput("document_job.unknown_builder", name=name[:64], names=", ".join(sorted(_BUILDERS)))
    return found


# --- submitting and reading a job ------------------------------------------------------------------

def submit(session: Session, *, builder: str, params: dict[str, Any], commune_code: str, by: Principal,
           author: str, lang: str = "fr", job_id: uuid.UUID | None = None) -> str:
    """Queue a documents job of ``builder`` for ``commune_code``; return its id (the worker is notified).

    ``by`` must write tenure in the commune (401/403), the node must own the commune (ADR 0004), and the
    builder's ``check`` must accept ``params`` (its 4xx otherwise): nothing is queued when refused.
    """
    require(by, Action.WRITE_TENURE, communes=[commune_code])
    registered = find_builder(builder)
    directory.ensure_owned(session, [commune_code])
    body = orjson.dumps(params)
    if len(body) > PARAMS_MAX_BYTES:
        raise InvalidInput("document_job.params_too_large")
    if registered.check is not None:
        registered.check(session, params, commune_code)
    options = {"builder": builder, "params": params, "commune_code": commune_code, "lang": lang,
               "actor_kind": by.kind, "actor_id": by.id, "actor_role": by.role}
    new_id = job_id or uuid.uuid4()
    session.execute(text("""
        INSERT INTO import_job (id, kind, options, created_by, progress_total)
        VALUES (:id, :kind, CAST(:options AS jsonb), :author, 0)
    """), {"id": new_id, "kind": KIND, "options": orjson.dumps(options).decode(), "author": author})
    session.execute(text("SELECT pg_notify('sifc_import_job', :id)"), {"id": str(new_id)})
    return str(new_id)


def parse_id(value: str) -> uuid.UUID:
    """A job id from a URL or a command line (404 when it cannot be one)."""
    try:
        return uuid.UUID(value)
    except ValueError as error:
        raise NotFound("document_job.not_found", id=value[:64]) from error


def authorize(session: Session, job_id: uuid.UUID, *, by: Principal) -> dict[str, Any]:
    """The job's row once ``by`` may see it: a writer of tenure in the job's commune (403), else 404."""
    require(by, Action.WRITE_TENURE)
    row = session.execute(text("SELECT id, created_by, options FROM import_job WHERE id = :id AND kind = :kind"),
                          {"id": job_id, "kind": KIND}).mappings().first()
    if row is None:
        raise NotFound("document_job.not_found", id=str(job_id))
    commune = row["options"].get("commune_code")
    if not by.covers(commune):
        raise Forbidden("auth.out_of_scope", communes=commune or "?")
    return dict(row)


def get(session: Session, *, job_id: uuid.UUID, by: Principal) -> dict[str, Any]:
    """The public view of a job: state, stage, progress, error, report (no author, no path)."""
    authorize(session, job_id, by=by)
    from sifc.imports import jobs as queue

    queue.reap(session, job_id)
    row = session.execute(text("""
        SELECT id, status, stage, progress_done, progress_total, attempts, error, report, options,
               created_at, started_at, updated_at, finished_at
        FROM import_job WHERE id = :id"""), {"id": job_id}).mappings().one()
    job = dict(row)
    options = job.pop("options")
    job.update(builder=options.get("builder"), params=options.get("params"),
               commune_code=options.get("commune_code"))
    return job


def output(settings: Settings, job_id: uuid.UUID | str) -> Path:
    """Where a job's files are kept: ``<upload_dir>/documents/<job id>/``."""
    return Path(settings.upload_dir) / "documents" / str(uuid.UUID(str(job_id)))


def file_of(session: Session, *, job_id: uuid.UUID, by: Principal, settings: Settings, which: str) -> Path:
    """The combined PDF (``pdf``) or the zip (``zip``) of a finished job, its download logged as a personal read.

    409 while the job is not done; 404 when the job made no such file; 410 once its files were purged.
    """
    job = get(session, job_id=job_id, by=by)
    if job["status"] != "done":
        raise Conflict("document_job.not_done", id=str(job_id), status=job["status"])
    name = PDF_NAME if which == "pdf" else ZIP_NAME
    report = job["report"] or {}
    if not report.get("files", {}).get(which):
        raise NotFound("document_job.no_file", id=str(job_id), which=which)
    path = output(settings, job_id) / name
    if not path.is_file():
        raise Gone("document_job.purged", id=str(job_id))
    audit.record(session, by, service=f"{__name__}.file_of", subject_kind="document_job", subject_id=str(job_id),
                 commune_code=job["commune_code"])
    return path


# --- running a job (the worker, or the console at once) ---------------------------------------------

def _principal(session: Session, job: dict[str, Any]) -> Principal:
    """Who submitted the job, as the accounts say now (a disabled account or revoked key builds nothing)."""
    from sifc.auth import scopes
    from sifc.auth.service import principal_for

    options = job["options"]
    kind, ident = options.get("actor_kind"), options.get("actor_id")
    if kind == "cli":  # the operator at the server's console
        return Principal(kind="cli", role="administrateur", name=job["created_by"], everywhere=True,
                         ).via("JOB", KIND)
    row = None
    table = column = ""
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
    if row is None or row.name != job["created_by"]:
        raise Forbidden("document_job.submitter_gone")
    principal = principal_for(session, kind=str(kind), id=int(row.id), name=str(row.name), role=str(row.role),
                              scope=scopes.load(session, table, column, int(row.id)))
    return principal.via("JOB", KIND)


def run(session: Session, job: dict[str, Any], settings: Settings, *, notify: Notify = _quiet) -> dict[str, Any]:
    """Build one claimed documents job in ``session``'s transaction; return its outcome for the worker.

    The files are written under :func:`output` before the transaction commits (a failed commit leaves
    files no job points to, never a job without its files); a failure removes them.
    """
    from sifc import keyring

    options = job["options"]
    commune = str(options.get("commune_code"))
    by = _principal(session, job)
    require(by, Action.WRITE_TENURE, communes=[commune])  # the scope as it is now, not at submission
    act_as(session, by.name)
    registered = find_builder(str(options.get("builder")))
    progress = Progress(job_id=job["id"], commune_code=commune, by=by, lang=str(options.get("lang") or "fr"),
                        seal_key=keyring.for_settings(settings).current("seal"),
                        verify_url=settings.public_base + verification.VERIFY_PATH, issued_by=job["created_by"],
                        notify=notify)
    notify("building", 0, 0)
    built = registered.build(session, dict(options.get("params") or {}), progress)
    notify("writing", len(built.items), len(built.items))
    files = _write(output(settings, job["id"]), built)
    report = {**built.report, "documents": len(built.items), "files": files}
    return {"status": "done", "report": report}


def _write(folder: Path, built: BuiltBatch) -> dict[str, Any]:
    """Write the combined PDF and the zip of ``built`` in ``folder``; what was written, with the page count."""
    if folder.exists():  # a retried job starts again from nothing
        shutil.rmtree(folder)
    if not built.items:
        return {"pdf": False, "zip": False, "pages": 0}
    folder.mkdir(parents=True)
    pages = 0
    try:
        from pypdf import PdfReader, PdfWriter

        if built.combined:
            writer = PdfWriter()
            for _name, pdf in built.items:
                reader = PdfReader(io.BytesIO(pdf))
                pages += len(reader.pages)
                writer.append(reader, import_outline=False)
            writer.add_metadata({"/Title": "SIFC", "/Producer": "SIFC"})
            with (folder / f".{PDF_NAME}").open("wb") as out:
                writer.write(out)
            (folder / f".{PDF_NAME}").rename(folder / PDF_NAME)
        with zipfile.ZipFile(folder / f".{ZIP_NAME}", "w", compression=zipfile.ZIP_STORED) as archive:
            for name, pdf in built.items:
                archive.writestr(name, pdf)  # PDFs are compressed already
        (folder / f".{ZIP_NAME}").rename(folder / ZIP_NAME)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return {"pdf": built.combined, "zip": True, "pages": pages}


def discard(settings: Settings, job_id: uuid.UUID | str) -> None:
    """Remove a job's files (its job failed or was purged); the documents stay in the register."""
    shutil.rmtree(output(settings, job_id), ignore_errors=True)


def run_now(session: Session, *, job_id: str, settings: Settings, notify: Notify = _quiet) -> dict[str, Any]:
    """Run a queued documents job in this process and session (the console's ``sifc documents batch``).

    The job is taken with ``FOR UPDATE SKIP LOCKED`` and the same advisory lock as the worker's, so the
    worker cannot run it too; its outcome is recorded in the caller's transaction.
    """
    from sifc.imports import jobs as queue
    from sifc.imports import worker

    row = session.execute(text("SELECT * FROM import_job WHERE id = :id AND kind = :kind AND status = 'queued' "
                               "FOR UPDATE SKIP LOCKED"), {"id": uuid.UUID(job_id), "kind": KIND}).mappings().first()
    if row is None:
        raise Conflict("document_job.taken", id=job_id)
    session.execute(text("SELECT pg_advisory_xact_lock(:c, hashtext(CAST(:id AS text)))"),
                    {"c": queue.JOB_LOCK_CLASS, "id": job_id})
    session.execute(text("UPDATE import_job SET status = 'running', attempts = attempts + 1, started_at = now(), "
                         "updated_at = now(), worker = 'console' WHERE id = :id"), {"id": row["id"]})
    try:
        outcome = run(session, dict(row), settings, notify=notify)
    except BaseException:
        discard(settings, job_id)
        raise
    worker._finish(session, row["id"], outcome)
    return outcome
