"""The worker runs documents jobs as it runs imports: claim, advisory lock, progress, outcome, reaping.

On a database of its own (committed rows, as the worker sees them), with builders registered by the
test: the machinery, not the documents (``test_document_jobs.py`` checks those).
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from sifc.auth.principal import Principal
from sifc.db import make_engine, transaction
from sifc.documents import jobs
from sifc.errors import Conflict
from sifc.imports import worker

BARGNY = "SN0104-bargny"


def _page(text_: str) -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(100, 700, text_)
    page.showPage()
    page.save()
    return out.getvalue()


def _pages(session, params: dict[str, Any], progress: jobs.Progress) -> jobs.BuiltBatch:
    count = int(params["count"])
    items = []
    for n in range(count):
        items.append((f"{n:04d}.pdf", _page(f"page {n}")))
        progress(n + 1, count)
    return jobs.BuiltBatch(items=items, report={"pages_asked": count})


def _refuses(session, params: dict[str, Any], progress: jobs.Progress) -> jobs.BuiltBatch:
    raise Conflict("document_job.session_not_deliberated", id="S-1", state="planned")


jobs.register("test_pages", _pages)
jobs.register("test_refuses", _refuses)


@pytest.fixture(scope="module")
def node_engine(fresh_db):
    made = make_engine(fresh_db.db_url)
    yield made
    made.dispose()


@pytest.fixture
def node(fresh_db, monkeypatch, tmp_path):
    settings = fresh_db.model_copy(update={"upload_dir": tmp_path / "uploads"})
    monkeypatch.setattr(worker, "get_settings", lambda: settings)
    return settings


def _submit(engine, builder: str, params: dict[str, Any]) -> str:
    console = Principal(kind="cli", role="administrateur", name="console", everywhere=True)
    with transaction(engine) as session:
        return jobs.submit(session, builder=builder, params=params, commune_code=BARGNY, by=console, author="console")


def _row(engine, job_id: str) -> dict[str, Any]:
    with transaction(engine) as session:
        return dict(session.execute(text("SELECT * FROM import_job WHERE id = :id"), {"id": job_id}).mappings().one())


def test_the_worker_claims_builds_and_records_a_documents_job(node_engine, node):
    job_id = _submit(node_engine, "test_pages", {"count": 5})
    row = _row(node_engine, job_id)
    assert row["kind"] == "documents" and row["file_name"] is None and row["upload_path"] is None
    with node_engine.connect() as conn:
        claimed = worker.claim(conn)
        assert claimed is not None and str(claimed["id"]) == job_id
        assert worker.run(conn, node_engine, claimed) == "done"
    row = _row(node_engine, job_id)
    assert row["status"] == "done" and row["attempts"] == 1 and row["progress_done"] == row["progress_total"] == 5
    assert row["report"]["files"] == {"pdf": True, "zip": True, "pages": 5} and row["report"]["pages_asked"] == 5
    folder = jobs.output(node, job_id)
    assert (folder / jobs.PDF_NAME).is_file() and (folder / jobs.ZIP_NAME).is_file()
    assert not list(folder.glob(".*"))  # no half-written file left


def test_a_refused_build_fails_the_job_with_its_french_message_and_no_file(node_engine, node):
    job_id = _submit(node_engine, "test_refuses", {})
    with node_engine.connect() as conn:
        claimed = worker.claim(conn)
        assert claimed is not None and str(claimed["id"]) == job_id
        assert worker.run(conn, node_engine, claimed) == "failed"
    row = _row(node_engine, job_id)
    assert row["status"] == "failed" and row["error"]["key"] == "document_job.session_not_deliberated"
    assert "pas encore délibérée" in row["error"]["fr"]
    assert not jobs.output(node, job_id).exists()
    # Queued again, it runs again (the same retry as imports).
    from sifc.imports import jobs as queue

    with transaction(node_engine) as session:
        assert queue.retry(session, uuid.UUID(job_id))["status"] == "queued"


def test_a_job_whose_worker_died_is_reaped(node_engine, node):
    job_id = _submit(node_engine, "test_pages", {"count": 1})
    with transaction(node_engine) as session:  # running, but nobody holds its lock: its worker is gone
        session.execute(text("UPDATE import_job SET status = 'running', stage = 'building' WHERE id = :id"),
                        {"id": job_id})
    console = Principal(kind="cli", role="administrateur", name="console", everywhere=True)
    with transaction(node_engine) as session:
        job = jobs.get(session, job_id=uuid.UUID(job_id), by=console)
    assert job["status"] == "failed" and job["error"]["key"] == "import_job.worker_lost"


def test_sifc_documents_batch_at_the_console_and_with_wait_for_the_worker(node_engine, node, tmp_path):
    """A deliberated session of a committed database; its batch built by the console, then by ``sifc worker``."""
    import subprocess

    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.conftest import env_for
    from tests.e2e.helpers import SIFC, assert_one_clean_line, create_key, run_cli
    from tests.helpers_rules import seed_pilots, set_rules
    from tests.integration.test_document_jobs import deliberated_session
    from tests.integration.test_sessions import QUORUM

    with transaction(node_engine) as session:
        seed_pilots(session)
        set_rules(session, BARGNY, session_quorum=QUORUM)
    officer = create_key(node, "agent_foncier", f"commune:{BARGNY}")
    env = {**env_for(node), "SIFC_UPLOAD_DIR": str(node.upload_dir)}
    with TestClient(create_app(node)) as client, transaction(node_engine) as session:
        council, _procedures = deliberated_session(client, session, officer, 2)
        session.rollback()  # the helper's own writes (its rules) are already committed above

    refused = run_cli(node, "documents", "batch", "--session", str(uuid.uuid4()), env=env)
    assert_one_clean_line(refused)
    assert "Aucune session" in refused.stderr

    done = run_cli(node, "documents", "batch", "--session", council.id, "--output", str(tmp_path / "out"), env=env)
    assert done.returncode == 0, done.stderr
    assert "5 document(s), 5 page(s)" in done.stdout, done.stdout
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir()) == [".pdf", ".zip"]

    waiting = subprocess.Popen([*SIFC, "documents", "batch", "--session", council.id, "--wait", "--timeout", "120"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(60):  # the job queued, then the worker runs it
            with transaction(node_engine) as session:
                queued = session.execute(text("SELECT count(*) FROM import_job WHERE kind = 'documents' "
                                              "AND status = 'queued' AND options ->> 'builder' = 'session_batch'"
                                              )).scalar()
            if queued:
                break
            import time

            time.sleep(0.5)
        ran = run_cli(node, "worker", "--once", env=env)
        assert ran.returncode == 0, ran.stderr
        out, err = waiting.communicate(timeout=120)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    assert "en file" in out and "5 document(s), 5 page(s)" in out, out
