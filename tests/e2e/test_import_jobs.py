"""Import jobs end to end: the real server and its worker process, uploads over real HTTP, and the
worker killed with SIGKILL while it reads, stages and inserts a large file."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.e2e.helpers import create_key, free_port, get, start_server

LARGE = 100_000  # enough parcels for each stage to last long enough to be caught


def _post(url: str, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, method="POST", headers={**AUTH, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


AUTH: dict[str, str] = {}


@pytest.fixture(scope="module")
def admin(fresh_db):
    engine = create_engine(fresh_db.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def server(fresh_db, tmp_path_factory):
    AUTH.update(create_key(fresh_db))  # imports need an analyste_sig or administrateur
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    process = start_server(fresh_db, port, log)
    yield f"http://127.0.0.1:{port}", log
    process.terminate()
    process.wait(timeout=30)
    assert "Traceback" not in log.read_text()


@pytest.fixture(scope="module")
def large_zip(admin, tmp_path_factory):
    """Zipped shapefiles of LARGE 4 m square parcels in a grid inside Bargny (synthetic), one per
    quadrant of the commune's largest inscribed circle, so that each holds parcels new to the registry."""
    with admin.connect() as conn:
        x, y, radius = conn.execute(text("""
            SELECT ST_X(c.center), ST_Y(c.center), c.radius
            FROM commune, ST_MaximumInscribedCircle(geom) c WHERE code = 'SN0104-bargny'""")).one()
    side = int(np.ceil(np.sqrt(LARGE)))
    size = 4.0
    assert side * size * 2 * 0.71 < radius * 0.98
    folder = tmp_path_factory.mktemp("large")

    def build(quadrant: int) -> Path:
        i = np.arange(LARGE)
        x0 = x - side * size if quadrant % 2 == 0 else x + 1
        y0 = y - side * size if quadrant < 2 else y + 1
        cx, cy = x0 + (i % side) * size, y0 + (i // side) * size
        frame = gpd.GeoDataFrame(
            {"NICAD": [f"01040{quadrant}{k:010d}" for k in i], "SUPERFICIE": np.full(LARGE, size * size)},
            geometry=shapely.box(cx, cy, cx + size, cy + size), crs="EPSG:32628")
        stem = f"grille{quadrant}"
        frame.to_file(folder / f"{stem}.shp")
        bundle = folder / f"{stem}.zip"
        with zipfile.ZipFile(bundle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(folder.glob(f"{stem}.*")):
                if part.suffix != ".zip":
                    archive.write(part, part.name)
        return bundle

    return build


def _job(admin, job_id: str) -> dict:
    with admin.connect() as conn:
        return dict(conn.execute(text("SELECT status, stage, worker, attempts FROM import_job WHERE id = :id"),
                                 {"id": job_id}).mappings().one())


def _wait_for(predicate, timeout: float = 120, every: float = 0.002):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def _follow(base: str, job_id: str, timeout: float = 300) -> dict:
    def finished():
        status, _, body = get(f"{base}/imports/{job_id}", headers=AUTH)
        job = json.loads(body)
        return job if job["status"] in ("done", "failed") else None
    return _wait_for(finished, timeout=timeout, every=0.2)


def _batch_rows(admin) -> tuple[int, int]:
    with admin.connect() as conn:
        return (conn.execute(text("SELECT count(*) FROM import_batch")).scalar(),
                conn.execute(text("SELECT count(*) FROM parcel_version")).scalar())


def test_analyst_uploads_and_follows_the_job_to_its_report(server, admin, tmp_path):
    base, _ = server
    with admin.connect() as conn:
        x, y = conn.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_SetSRID(
            ST_MakePoint(-17.2283, 14.6933), 4326), 32628) p) t""")).one()
    rows = [{"NICAD": f"010404010{k:04d}", "SUPERFICIE": 400, "geometry": shapely.box(x + 30 * k, y, x + 30 * k + 20,
                                                                                      y + 20)} for k in range(5)]
    rows.append({"NICAD": "0104040109998", "SUPERFICIE": 400, "geometry": shapely.box(x + 35, y, x + 55, y + 20)})
    rows.append({"NICAD": "0104040109999", "SUPERFICIE": 400, "geometry": None})
    path = tmp_path / "levé.gpkg"
    gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:32628").to_file(path)

    # A dry run first: every check, nothing kept.
    status, job = _post(f"{base}/imports?filename=lev%C3%A9.gpkg&dry_run=true", path.read_bytes())
    assert status == 202 and job["status"] in ("queued", "running")
    done = _follow(base, job["id"])
    assert done["status"] == "done" and done["dry_run"] and done["batch_id"] is None
    assert _batch_rows(admin) == (0, 0)

    status, job = _post(f"{base}/imports?filename=lev%C3%A9.gpkg", path.read_bytes())
    done = _follow(base, job["id"])
    assert done["status"] == "done" and done["progress_done"] == done["progress_total"]
    summary = done["summary"]
    assert (summary["read"], summary["accepted"], summary["rejected"]) == (7, 4, 3)
    assert summary["rejected_by_reason"] == {"null_geometry": 1, "overlap_in_file": 2}
    assert set(summary["timings"]) == {"read", "stage", "validate", "commit"}
    _, headers, body = get(done["links"]["report"], headers=AUTH)
    report = json.loads(body)
    assert headers["content-type"] == "application/json" and len(report["issues"]) >= 3
    assert report["file"] == "levé.gpkg" and report["batch_id"] == done["batch_id"]
    status, headers, body = get(done["links"]["rejects"], headers=AUTH)
    assert status == 200 and headers["content-type"] == "application/geopackage+sqlite3"
    rejects = tmp_path / "rejets.gpkg"
    rejects.write_bytes(body)
    assert sorted(gpd.read_file(rejects)["sifc_reasons"]) == ["null_geometry", "overlap_in_file", "overlap_in_file"]
    assert _batch_rows(admin) == (1, 4)

    # The same file again: recognised, nothing changes.
    status, job = _post(f"{base}/imports?filename=lev%C3%A9.gpkg", path.read_bytes())
    again = _follow(base, job["id"])
    assert again["status"] == "done" and again["summary"]["already_imported"]["batch_id"] == done["batch_id"]
    assert _batch_rows(admin) == (1, 4)

    # A refused file: the job fails with the reason, in the client's language.
    status, job = _post(f"{base}/imports?filename=vide.geojson", b'{"type": "FeatureCollection", "features": []}')
    failed = _follow(base, job["id"])
    assert failed["status"] == "failed" and failed["error"]["key"] == "import.empty"
    assert "Rien n'a été modifié" in failed["error"]["message"]


def _backend(admin, pattern: str):
    """The worker's import backend while it runs a statement starting with ``pattern``."""
    with admin.connect() as conn:
        return conn.execute(text("""
            SELECT pid FROM pg_stat_activity
            WHERE application_name = 'sifc-worker' AND state = 'active' AND query LIKE :pattern"""),
                            {"pattern": pattern}).scalar()


def _worker_pid(job: dict) -> int:
    return int(job["worker"].rsplit(":", 1)[1])


@pytest.mark.parametrize(("quadrant", "stage", "statement"), [
    (0, "reading", None),
    (1, "staging", "COPY stage_parcel%"),
    # A first load copies straight into the registry (sifc.imports.stream), a re-import inserts from staging.
    (2, "inserting", "%parcel_version (parcel_id%"),
])
def test_worker_killed_mid_import_leaves_nothing_and_the_job_can_be_retried(
        server, admin, large_zip, quadrant, stage, statement):
    base, _ = server
    before = _batch_rows(admin)
    status, job = _post(f"{base}/imports?filename=grille_{stage}.zip", large_zip(quadrant).read_bytes())
    assert status == 202
    job_id = job["id"]

    def at_stage():
        row = _job(admin, job_id)
        return row if row["status"] == "running" and row["stage"] == stage else None

    row = _wait_for(at_stage)
    pid = _worker_pid(row)
    if statement is None:
        # Freeze the worker, then make sure it is frozen inside the stage before killing it.
        os.kill(pid, signal.SIGSTOP)
        assert _job(admin, job_id)["stage"] == stage
    else:
        _wait_for(lambda: _backend(admin, statement))
        os.kill(pid, signal.SIGSTOP)
        assert _job(admin, job_id)["stage"] == stage
        if stage == "staging":
            assert _backend(admin, statement)  # a COPY is open and waiting for the frozen client
    os.kill(pid, signal.SIGKILL)

    # Its backends go (a running statement notices the dead client within a second), nothing committed.
    _wait_for(lambda: _backend(admin, "%") is None, timeout=60, every=0.1)
    assert _batch_rows(admin) == before
    # The service restarted its worker, which (like any reader of the job) sees the job lost its worker.
    failed = _follow(base, job_id, timeout=60)
    assert failed["status"] == "failed" and failed["error"]["key"] == "import_job.worker_lost"
    assert failed["error"]["stage"] == stage and failed["links"]["retry"]
    assert _batch_rows(admin) == before

    status, retried = _post(failed["links"]["retry"], b"")
    assert status == 202 and retried["status"] in ("queued", "running")
    done = _follow(base, job_id)
    assert done["status"] == "done", done
    assert _job(admin, job_id)["attempts"] == 2
    accepted = done["summary"]["accepted"]
    # All of them, but for those under the first test's parcels (in quadrant 0).
    assert accepted > 0.99 * LARGE and set(done["summary"]["rejected_by_reason"]) <= {"overlap_existing"}
    assert _batch_rows(admin) == (before[0] + 1, before[1] + accepted)
