"""The set-up scripts' branches that this machine can exercise."""

import os
import shutil
import subprocess

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.conftest import IN_CI, REPO

CLUSTER_PORT = "5439"


def _bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL, check=False)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("SIFC_DATABASE_URL", "SIFC_ADMIN_DATABASE_URL")}


def test_given_urls_are_used_as_they_are():
    env = _clean_env() | {"SIFC_ADMIN_DATABASE_URL": "postgresql://admin:pw@db.example:5555/land?sslmode=require"}
    done = _bash('. scripts/lib.sh; SIFC_FORCE_DB_NAME=1 with_database land_test; '
                 'echo "$SIFC_ADMIN_DATABASE_URL"; echo "$SIFC_DATABASE_URL"', env)
    assert done.returncode == 0, done.stderr
    admin, service = done.stdout.split()
    assert admin == "postgresql://admin:pw@db.example:5555/land_test?sslmode=require"
    assert service == "postgresql://sifc_app:sifc_app@db.example:5555/land_test?sslmode=require"


def test_new_cluster_branch_creates_a_postgis_server_on_another_port():
    """The last resort of `make run`: PostgreSQL + PostGIS from OS packages, a new cluster."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        message = "needs root and apt-get to create a PostgreSQL cluster"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    env = _clean_env() | {"SIFC_DB_MODE": "cluster", "SIFC_PG_PORT": CLUSTER_PORT}
    done = _bash("scripts/ensure-postgis.sh", env)
    try:
        assert done.returncode == 0, done.stderr
        url = done.stdout.strip()
        assert url == f"postgresql://postgres@127.0.0.1:{CLUSTER_PORT}/postgres"
        env = _clean_env() | {
            "SIFC_ADMIN_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{CLUSTER_PORT}/sifc_cluster",
            "SIFC_DATABASE_URL": f"postgresql://sifc_app:sifc_app@127.0.0.1:{CLUSTER_PORT}/sifc_cluster",
        }
        done = _bash(".venv/bin/sifc db provision" if (REPO / ".venv").exists()
                     else "python -m cli db provision", env)
        assert done.returncode == 0, done.stderr
        engine = create_engine(env["SIFC_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"),
                               poolclass=NullPool)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT postgis_lib_version()")).scalar().startswith("3")
            assert conn.execute(text("SELECT count(*) FROM commune")).scalar() == 0
            assert conn.execute(text("SELECT current_setting('port')")).scalar() == CLUSTER_PORT
        engine.dispose()
    finally:
        major = subprocess.run(["bash", "-c", "ls /usr/lib/postgresql | sort -n | tail -1"],
                               capture_output=True, text=True, check=False).stdout.strip()
        subprocess.run(["pg_dropcluster", "--stop", major, "sifc"], capture_output=True, check=False)
