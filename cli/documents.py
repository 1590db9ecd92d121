"""``sifc documents``: a council session's batch of documents, built at the console or by the worker.

``batch`` builds the job at once in this process (the job, its documents and their register rows
commit together, or nothing does), or with ``--wait`` queues it for the worker (``sifc worker``, or the
one ``sifc serve`` starts) and follows its progress. ``status`` shows a job; ``purge`` removes the files
of finished jobs older than a retention period (the documents stay verifiable by their codes).
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import State, operator, out, say

documents_app = typer.Typer(help="Documents par lot : extraits, certificats et registre d'une session délibérée.",
                            no_args_is_help=True)


def _copy(job_id: str, target: Path | None) -> list[Path]:
    """Copy a finished job's PDF and zip into ``target``; the copies (none without a target)."""
    from sifc.documents import jobs

    if target is None:
        return []
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in (jobs.PDF_NAME, jobs.ZIP_NAME):
        source = jobs.output(State.settings(), job_id) / name
        if source.is_file():
            copy = target / f"{Path(name).stem}-{job_id[:8]}{Path(name).suffix}"
            shutil.copyfile(source, copy)
            copied.append(copy)
    return copied


def _done(job_id: str, report: dict[str, Any], target: Path | None) -> None:
    from sifc.documents import jobs

    files = report.get("files") or {}
    out.print(say("cli.documents.done", id=job_id, documents=report.get("documents", 0), pages=files.get("pages", 0),
                  folder=str(jobs.output(State.settings(), job_id))))
    for skipped in report.get("skipped") or []:
        out.print(say("cli.documents.skipped", reference=skipped.get("reference") or skipped.get("procedure_id"),
                      state=skipped.get("state")))
    for copy in _copy(job_id, target):
        out.print(str(copy))


@documents_app.command("batch")
def batch(
    session_id: Annotated[str, typer.Option("--session", help="Identifiant de la session délibérée.")],
    wait: Annotated[bool, typer.Option(
        "--wait", help="Mettre la tâche en file pour le service de tâches et suivre sa progression "
                       "(sinon la construire ici, tout de suite).")] = False,
    register_only: Annotated[bool, typer.Option("--register-only", help="Le registre de la session seul.")] = False,
    output: Annotated[Path | None, typer.Option(help="Copier le PDF et le zip dans ce dossier.")] = None,
    timeout: Annotated[int, typer.Option(help="Avec --wait : secondes d'attente au plus.")] = 3600,
) -> None:
    """Imprime les documents d'une session délibérée : extraits et certificats des procédures accordées, registre."""
    from cli.common import database
    from sifc.documents import jobs, session_batch

    by = operator().via("CLI", "sifc documents batch")
    builder = "session_register" if register_only else "session_batch"
    if not wait:
        with database(actor=by.name) as session:
            job_id = session_batch.submit_session(session, session_id=session_id, by=by, author=by.name,
                                                  lang=State.lang, builder=builder)
            outcome = jobs.run_now(session, job_id=job_id, settings=State.settings(),
                                   notify=_printer())
        _done(job_id, outcome["report"], output)
        return
    with database(actor=by.name) as session:
        job_id = session_batch.submit_session(session, session_id=session_id, by=by, author=by.name,
                                              lang=State.lang, builder=builder)
    out.print(say("cli.documents.queued", id=job_id))
    job = _follow(job_id, timeout)
    if job["status"] != "done":
        from sifc.errors import Conflict

        error = job.get("error") or {}
        raise Conflict("document_job.failed", id=job_id, reason=error.get(State.lang) or error.get("key") or "?")
    _done(job_id, job["report"] or {}, output)


def _printer() -> Any:
    """A progress callback printing ``done/total`` at most once a second."""
    last = [0.0]

    def notify(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if total and now - last[0] >= 1.0:
            last[0] = now
            out.print(say("cli.documents.progress", done=done, total=total))

    return notify


def _follow(job_id: str, timeout: int) -> dict[str, Any]:
    """Poll the job until it ends (or ``timeout`` seconds), printing its progress as it moves."""
    from cli.common import database
    from sifc.documents import jobs
    from sifc.errors import Conflict

    by = operator()
    deadline = time.monotonic() + timeout
    shown: tuple[int, int] | None = None
    while True:
        with database() as session:
            job = jobs.get(session, job_id=jobs.parse_id(job_id), by=by)
        if job["status"] in ("done", "failed"):
            return job
        now = (int(job["progress_done"]), int(job["progress_total"]))
        if now != shown and now[1]:
            out.print(say("cli.documents.progress", done=now[0], total=now[1]))
            shown = now
        if time.monotonic() > deadline:
            raise Conflict("document_job.wait_timeout", id=job_id, seconds=timeout)
        time.sleep(1.0)


@documents_app.command("status")
def status(job_id: Annotated[str, typer.Argument(help="Identifiant de la tâche de documents.")]) -> None:
    """État d'une tâche de documents : statut, progression, rapport."""
    import orjson

    from cli.common import database
    from sifc.documents import jobs

    with database() as session:
        job = jobs.get(session, job_id=jobs.parse_id(job_id), by=operator())
    out.print(orjson.dumps(job, default=str, option=orjson.OPT_INDENT_2).decode())


@documents_app.command("purge")
def purge(
    older_than: Annotated[int, typer.Option("--older-than", help="Supprimer les fichiers des tâches terminées "
                                                                 "depuis plus de N jours.")],
) -> None:
    """Supprime les fichiers (PDF, zip) des tâches de documents anciennes ; les documents restent vérifiables."""
    from sqlalchemy import text

    from cli.common import database
    from sifc.documents import jobs
    from sifc.errors import InvalidInput

    if older_than < 1:
        raise InvalidInput("document_job.retention_days")
    since = datetime.now(UTC) - timedelta(days=older_than)
    with database() as session:
        ids = session.execute(text("SELECT id::text FROM import_job WHERE kind = :kind AND finished_at < :since"),
                              {"kind": jobs.KIND, "since": since}).scalars().all()
    removed = 0
    for job_id in ids:
        if jobs.output(State.settings(), job_id).exists():
            jobs.discard(State.settings(), job_id)
            removed += 1
    out.print(say("cli.documents.purged", count=removed, days=older_than))
