"""Field returns end to end: ``sifc field return`` at the console, and a queued return run by the real
worker process (``sifc worker --once``), on the demo's Bargny."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from sifc.settings import Settings
from tests.e2e.helpers import run_cli
from tests.integration.test_field_returns import edit


@pytest.fixture(scope="module")
def demo(fresh_db: Settings) -> Settings:
    done = run_cli(fresh_db, "demo", "load")
    assert done.returncode == 0, done.stderr
    return fresh_db


def _package(settings: Settings, folder: Path) -> tuple[str, Path]:
    target = folder / "dossier.zip"
    done = run_cli(settings, "field", "package", "--commune", "Bargny", "--out", str(target))
    assert done.returncode == 0, done.stderr
    package_id = re.search(r"[0-9a-f]{8}-[0-9a-f-]{27}", done.stdout).group(0)
    with zipfile.ZipFile(target) as bundle:
        bundle.extract("data.gpkg", folder)
    return package_id, folder / "data.gpkg"


def test_return_at_the_console(demo: Settings, tmp_path) -> None:
    package_id, gpkg = _package(demo, tmp_path)
    edit(gpkg, "UPDATE parcels SET land_use = 'commerce' WHERE fid = 1")
    edit(gpkg, "UPDATE parcels SET land_use = 'voirie' WHERE fid = 2")
    preview = run_cli(demo, "field", "return", str(gpkg), "--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert "applied 2" in preview.stdout
    report = tmp_path / "rapport.json"
    applied = run_cli(demo, "field", "return", str(gpkg), "--package", package_id, "--report", str(report))
    assert applied.returncode == 0, applied.stderr
    assert "applied 2" in applied.stdout and report.exists()
    again = run_cli(demo, "field", "return", str(gpkg))
    assert again.returncode == 0 and "Déjà appliqué" in again.stdout, again.stdout + again.stderr
    hostile = tmp_path / "hostile.zip"
    with zipfile.ZipFile(hostile, "w") as bundle:
        bundle.write(gpkg, "data.gpkg")
        bundle.writestr("../evil.png", b"\x89PNG\r\n\x1a\n")
    refused = run_cli(demo, "field", "return", str(hostile))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr


def test_a_queued_return_run_by_the_worker(demo: Settings, tmp_path) -> None:
    import getpass

    from sifc.auth.principal import Principal
    from sifc.field import returns

    package_id, gpkg = _package(demo, tmp_path)
    edit(gpkg, "UPDATE parcels SET land_use = 'mixte' WHERE fid = 3")
    engine = create_engine(demo.db_url, poolclass=NullPool)
    try:
        stored = demo.upload_dir / "worker-return" / "data.gpkg"
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(gpkg.read_bytes())
        # The console's operator, as ``sifc field package`` issued it (the worker rebuilds it from the job).
        by = Principal(kind="cli", role="administrateur", name=f"cli:{getpass.getuser()}", everywhere=True)
        with Session(engine) as session:
            job = returns.submit_return(session, package_id=package_id, upload_path=stored, file_name="data.gpkg",
                                        size=stored.stat().st_size, dry_run=False, by=by, settings=demo)
            session.commit()
        done = run_cli(demo, "worker", "--once")
        assert done.returncode == 0, done.stderr
        with engine.connect() as conn:
            row = conn.execute(text("SELECT status, report, error FROM import_job WHERE id = :id"),
                               {"id": job["id"]}).one()
            assert row.status == "done", row.error
            assert row.report["counts"]["applied"] == 1
            item = conn.execute(text("""
                SELECT i.base_version, v.land_use, v.action FROM field_package_item i
                JOIN parcel v ON v.parcel_id = i.parcel_id WHERE i.package_id = :p AND i.fid = 3"""),
                {"p": package_id}).one()
            assert (item.land_use, item.action) == ("mixte", "field:return") and item.base_version >= 2
    finally:
        engine.dispose()
