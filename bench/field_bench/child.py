"""The timed sifc side of the field benchmark, one child process per run (its wall time and peak RSS are measured).

``python -m bench.field_bench.child build AREA.geojson --user NAME``: check a package out to the
account NAME over the drawn area, as the service does for ``POST /field/packages``
(``sifc.field.packages.build``, committed), and print its record as JSON,
with ``inner_s``: the seconds from the settings to the commit (the process's start-up and imports
excluded: what a running service spends).

``python -m bench.field_bench.child return FILE.zip --user NAME``: return a package as its holder:
``sifc.field.returns.submit_return`` at the door (committed, as the API's upload), then the import
worker runs the queued job once (``sifc.imports.worker.serve_forever(once=True)``: the return's
checks, diff and writes, what the service's worker does); print the job's status, its report's
counts and ``inner_s`` (from the copy of the upload to the job's end).

The database, keys and upload folder come from the environment (``SIFC_DATABASE_URL``,
``SIFC_KEY_FILE``, ``SIFC_UPLOAD_DIR``), as for the service.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any


def _principal(session, username: str):  # type: ignore[no-untyped-def]
    """The account ``username`` as the API would see it after signing in."""
    from sqlalchemy import text

    from sifc.auth import scopes
    from sifc.auth.service import principal_for

    row = session.execute(text("SELECT id, username, role FROM app_user WHERE username = :u AND active"),
                          {"u": username}).one()
    return principal_for(session, kind="user", id=int(row.id), name=str(row.username), role=str(row.role),
                         scope=scopes.load(session, "app_user_scope", "user_id", int(row.id)))


def build(area: Path, username: str) -> dict[str, Any]:
    from sifc import keyring
    from sifc.db import act_as, make_engine, make_sessionmaker
    from sifc.field import packages
    from sifc.settings import Settings

    started = time.perf_counter()
    settings = Settings()
    engine = make_engine(settings.db_url, pool_size=1, application_name="bench-field-build")
    try:
        with make_sessionmaker(engine)() as session:
            by = _principal(session, username)
            act_as(session, by.name)
            record = packages.build(session, by=by, keys=keyring.for_settings(settings),
                                    upload_dir=settings.upload_dir, commune=None,
                                    polygon=json.loads(area.read_text()),
                                    default_days=settings.field_package_default_days,
                                    max_days=settings.field_package_max_days)
            session.commit()
    finally:
        engine.dispose()
    return {"id": str(record["id"]), "item_count": record.get("item_count"), "zip_bytes": record.get("zip_bytes"),
            "zip": str(packages.zip_file(settings.upload_dir, record["id"])), "inner_s": time.perf_counter() - started}


def give_back(bundle: Path, username: str) -> dict[str, Any]:
    from sqlalchemy import text

    # Loaded before the clock starts, as in a running service (the return imports them lazily).
    import sifc.field.packages  # noqa: F401
    import sifc.field.returns_apply  # noqa: F401
    import sifc.parcels.service  # noqa: F401
    from sifc.db import act_as, make_engine, make_sessionmaker
    from sifc.field import returns
    from sifc.imports.worker import serve_forever
    from sifc.settings import Settings

    started = time.perf_counter()
    settings = Settings()
    job_id = uuid.uuid4()
    upload = settings.upload_dir / f"{job_id}.zip"
    upload.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle, upload)  # as the API's upload: the job owns its copy
    engine = make_engine(settings.db_url, pool_size=1, application_name="bench-field-return")
    try:
        with make_sessionmaker(engine)() as session:
            by = _principal(session, username)
            act_as(session, by.name)
            returns.submit_return(session, package_id=None, upload_path=upload, file_name=bundle.name,
                                  size=upload.stat().st_size, dry_run=False, by=by, settings=settings,
                                  job_id=job_id)
            session.commit()
        ran = serve_forever(settings, once=True)
        with engine.connect() as conn:
            job = conn.execute(text("SELECT status, error, report FROM import_job WHERE id = :id"),
                               {"id": job_id}).mappings().one()
    finally:
        engine.dispose()
    report = job["report"] or {}
    return {"job": str(job_id), "jobs_run": ran, "status": job["status"], "error": job["error"],
            "counts": report.get("counts"), "inner_s": time.perf_counter() - started}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.field_bench.child")
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("build")
    one.add_argument("area", type=Path)
    one.add_argument("--user", required=True)
    back = commands.add_parser("return")
    back.add_argument("bundle", type=Path)
    back.add_argument("--user", required=True)
    args = parser.parse_args(argv)
    result = build(args.area, args.user) if args.command == "build" else give_back(args.bundle, args.user)
    print(json.dumps(result, default=str))
    return 0 if result.get("status", "done") == "done" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
