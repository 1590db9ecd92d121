"""Field returns are as durable as imports: the real server and its worker process, a return of every
parcel of the demo's Bargny changed in the field, the worker killed with SIGKILL in the middle of the
apply, then the job reaped and retried.

The kill lands mid-apply deterministically: the test holds the row lock of one parcel's current
version halfway through the file, so the worker, having already written the parcels before it in
its one transaction, waits on that lock until it is killed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import urllib.error
import urllib.request
import uuid
import zipfile
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from sifc.settings import Settings
from sifc.versioning import litiges
from tests.e2e.helpers import create_key, fingerprints, free_port, get, run_cli, start_server
from tests.e2e.test_import_jobs import _job, _wait_for, _worker_pid
from tests.integration.test_field_returns import edit

BARGNY = "SN0104-bargny"
WATCHED = ("parcel_version", "field_package_item", "field_package", "field_return", "parcel_source", "write_audit")


def _call(url: str, headers: dict[str, str], data: bytes | None = None,
          content_type: str = "application/octet-stream") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST",
                                     headers={**headers, "Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def demo(fresh_db: Settings) -> Settings:
    done = run_cli(fresh_db, "demo", "load")
    assert done.returncode == 0, done.stderr
    return fresh_db


@pytest.fixture(scope="module")
def admin(demo):
    engine = create_engine(demo.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    """The real service with its worker; keys of a Bargny agent foncier (the holder) and an administrator."""
    holder = create_key(demo, "agent_foncier", f"commune:{BARGNY}")
    administrator = create_key(demo)
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    process = start_server(demo, port, log)
    yield f"http://127.0.0.1:{port}", holder, administrator
    process.terminate()
    process.wait(timeout=30)
    assert "Traceback" not in log.read_text()


def _follow(base: str, headers: dict[str, str], job_id: str, timeout: float = 300) -> dict:
    def finished():
        status, job = _call(f"{base}/field/returns/{job_id}", headers)
        assert status == 200, job
        return job if job["status"] in ("done", "failed") else None
    return _wait_for(finished, timeout=timeout, every=0.2)


def _checked_out(base: str, holder: dict[str, str], folder: Path) -> tuple[str, Path]:
    """A package of the whole of Bargny checked out over HTTP, and its ``data.gpkg`` on disk."""
    status, package = _call(f"{base}/field/packages", holder, json.dumps({"commune": BARGNY}).encode(),
                            "application/json")
    assert status == 201, package
    status, _, body = get(package["links"]["download"], headers=holder, timeout=120)
    assert status == 200
    bundle = folder / "dossier.zip"
    bundle.write_bytes(body)
    with zipfile.ZipFile(bundle) as archive:
        archive.extract("data.gpkg", folder)
    return str(package["id"]), folder / "data.gpkg"


def _items(admin, package_id: str) -> dict[int, int]:
    with admin.connect() as conn:
        return {int(fid): int(version) for fid, version in conn.execute(text(
            "SELECT fid, base_version FROM field_package_item WHERE package_id = :p"), {"p": package_id})}


def _returns(admin, package_id: str) -> int:
    with admin.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM field_return WHERE package_id = :p"),
                                {"p": package_id}).scalar_one())


def _waiting_on(admin, blocker: int):
    """The worker's import backend while a lock held by the backend ``blocker`` keeps it waiting."""
    with admin.connect() as conn:
        return conn.execute(text("""
            SELECT pid FROM pg_stat_activity
            WHERE application_name = 'sifc-worker' AND :blocker = ANY(pg_blocking_pids(pid))"""),
                            {"blocker": blocker}).scalar()


def test_worker_killed_mid_return_leaves_nothing_and_the_retry_applies_it_once(demo, admin, server, tmp_path):
    base, holder, administrator = server
    package_id, gpkg = _checked_out(base, holder, tmp_path)
    edit(gpkg, "UPDATE parcels SET land_use = CASE WHEN land_use = 'commerce' THEN 'mixte' ELSE 'commerce' END")
    with closing(sqlite3.connect(gpkg)) as conn:
        rows = [(int(fid), uuid.UUID(pid)) for fid, pid in conn.execute(
            "SELECT fid, parcel_id FROM parcels ORDER BY fid")]
    assert len(rows) >= 20, "the demo's Bargny is too small to kill a return halfway"
    items = _items(admin, package_id)
    before = fingerprints(demo, WATCHED)

    # The lock of a parcel halfway through the file (one the apply will write: no litige freezes it).
    locker = create_engine(demo.admin_url, poolclass=NullPool)
    held = locker.connect()
    try:
        with Session(bind=held) as session:
            fid, blocked = next((fid, pid) for fid, pid in rows[len(rows) // 2:] if not litiges(session, pid))
            earlier = [pid for f, pid in rows if f < fid and not litiges(session, pid)]
        held.execute(text("SELECT 1 FROM parcel_version WHERE parcel_id = :p AND valid_to IS NULL FOR UPDATE"),
                     {"p": blocked})
        blocker = held.execute(text("SELECT pg_backend_pid()")).scalar_one()

        status, job = _call(f"{base}/field/packages/{package_id}/return?filename=data.gpkg", holder,
                            gpkg.read_bytes())
        assert status == 202, job
        job_id = job["id"]
        backend = _wait_for(lambda: _waiting_on(admin, blocker), timeout=180, every=0.05)
        row = _job(admin, job_id)
        assert row["status"] == "running" and row["stage"] == "inserting"
        # The parcels before it are written in the worker's open transaction: their rows are locked.
        lockable = held.execute(text("""
            SELECT count(*) FROM (SELECT 1 FROM parcel_version WHERE parcel_id = ANY(:ids) AND valid_to IS NULL
                                  FOR UPDATE SKIP LOCKED) t"""), {"ids": earlier}).scalar_one()
        assert earlier and lockable <= 5, (lockable, len(earlier))
        os.kill(_worker_pid(row), signal.SIGKILL)
    finally:
        held.rollback()
        held.close()
        locker.dispose()

    # Its backend goes and its transaction with it: no version, no advanced item, no return recorded.
    _wait_for(lambda: not _alive(admin, backend), timeout=60, every=0.1)
    assert fingerprints(demo, WATCHED) == before
    # The restarted worker (or any reader of the job) sees that the job lost its worker.
    failed = _follow(base, holder, job_id, timeout=60)
    assert failed["status"] == "failed" and failed["error"]["key"] == "import_job.worker_lost", failed
    assert failed["error"]["stage"] == "inserting" and "rien n'a été enregistré" in failed["error"]["message"]
    assert fingerprints(demo, WATCHED) == before
    assert _items(admin, package_id) == items and _returns(admin, package_id) == 0

    # A retry, as an administrator does it among the imports, runs the return again for its holder.
    status, retried = _call(f"{base}/imports/{job_id}/retry", administrator, b"")
    assert status == 202 and retried["status"] in ("queued", "running"), retried
    done = _follow(base, holder, job_id)
    assert done["status"] == "done", done
    assert _job(admin, job_id)["attempts"] == 2
    status, report = _call(f"{base}/field/returns/{job_id}/report", holder)
    assert status == 200
    applied = {f["fid"]: f["version"] for f in report["features"] if f["status"] == "applied"}
    assert len(applied) >= len(rows) - 5 and set(applied) >= {fid}, report["counts"]
    assert report["counts"]["applied"] == len(applied)
    after = fingerprints(demo, WATCHED)
    assert after["parcel_version"][0] == before["parcel_version"][0] + len(applied)
    assert _items(admin, package_id) == {f: applied.get(f, v) for f, v in items.items()}
    assert all(applied[f] == items[f] + 1 for f in applied)
    assert _returns(admin, package_id) == 1

    # Exactly once: the job is done (no second retry), and the same file again is recognised.
    status, refused = _call(f"{base}/imports/{job_id}/retry", administrator, b"")
    assert status == 409, refused
    status, again = _call(f"{base}/field/packages/{package_id}/return?filename=data.gpkg", holder,
                          gpkg.read_bytes())
    assert status == 202, again
    again = _follow(base, holder, again["id"])
    assert again["status"] == "done" and again["summary"]["already_applied"] == job_id, again
    assert fingerprints(demo, ("parcel_version",)) == {"parcel_version": after["parcel_version"]}
    assert _returns(admin, package_id) == 1


def _alive(admin, backend: int) -> bool:
    with admin.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                                 {"p": backend}).scalar_one())
