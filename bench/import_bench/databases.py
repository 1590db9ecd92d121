"""The benchmark's databases, all named ``sifc_bench*``.

- ``sifc_bench_template``: migrated, territorial reference loaded; never imported into.
- ``sifc_bench_template_<commit>``: the same, built by another revision of our code (``--against``).
- ``sifc_bench_run``: a fresh copy of the template before every timed ``sifc import`` (an import
  of the same file is recognised by its sha256 and does nothing, and NICADs already in the
  registry turn parcels into updates: each timed import needs an empty registry).
- ``sifc_bench_plain``: PostGIS only, for the ogr2ogr and geopandas loads (one new table per run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.revision import Revision

TEMPLATE = "sifc_bench_template"
RUN = "sifc_bench_run"
PLAIN = "sifc_bench_plain"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVICE_ROLE = ("sifc_app", "sifc_app")
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server reached with a superuser URL (any database of it)."""

    admin_url: str

    @classmethod
    def from_environment(cls) -> Server:
        """The server of ``SIFC_ADMIN_DATABASE_URL`` (as ``scripts/lib.sh`` exports it), else the local one."""
        return cls(os.environ.get("SIFC_ADMIN_DATABASE_URL") or DEFAULT_ADMIN_URL)

    def url(self, database: str, *, service: bool = False) -> str:
        """libpq URL of ``database``, as the superuser or as the service role."""
        url = make_url(self.admin_url).set(database=database)
        if service:
            url = url.set(username=SERVICE_ROLE[0], password=SERVICE_ROLE[1])
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    def sqlalchemy_url(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of ``database`` as the superuser."""
        url = make_url(self.admin_url).set(database=database, drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    def ogr_connection(self, database: str) -> str:
        """``PG:`` connection string for ogr2ogr."""
        url = make_url(self.admin_url)
        parts = {"dbname": database, "host": url.host, "port": url.port, "user": url.username,
                 "password": url.password}
        return "PG:" + " ".join(f"{k}='{v}'" for k, v in parts.items() if v is not None)

    def admin(self, database: str = "postgres") -> psycopg.Connection:
        """Autocommit superuser connection (CREATE/DROP DATABASE need one)."""
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=10)

    def exists(self, database: str) -> bool:
        with self.admin() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None

    def drop(self, database: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))

    def clone(self, template: str, database: str) -> None:
        """A new ``database`` copied from ``template`` (file-level copy: about a second)."""
        self.drop(database)
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(database),
                                                                         sql.Identifier(template)))

    def sifc_environment(self, database: str) -> dict[str, str]:
        """Environment for the ``sifc`` CLI on ``database``."""
        env = dict(os.environ)
        env["SIFC_ADMIN_DATABASE_URL"] = self.url(database)
        env["SIFC_DATABASE_URL"] = self.url(database, service=True)
        return env

    def ensure_template(self, *, rebuild: bool = False, log=print, revision: Revision | None = None) -> str:
        """Provision the template (migrations are idempotent) and load the territories once; its name.

        With ``revision``, a template of its own (``sifc_bench_template_<commit>``), provisioned and
        loaded by that revision's command line, so its migrations are the ones that built it.
        """
        template = TEMPLATE if revision is None else f"{TEMPLATE}_{revision.commit[:12]}"
        if rebuild:
            self.drop(template)
        env = self.sifc_environment(template)
        if revision is None:
            def sifc(*args: str) -> list[str]:
                return [str(REPO / ".venv" / "bin" / "sifc"), *args]
            cwd = REPO
        else:
            sifc, cwd, env = revision.command, revision.tree, revision.environment(env)
        _run(sifc("db", "provision"), env, log, cwd=cwd)
        with psycopg.connect(self.url(template), connect_timeout=10) as conn:
            communes = conn.execute("SELECT count(*) FROM commune WHERE geom IS NOT NULL").fetchone()[0]
            parcels = conn.execute("SELECT count(*) FROM parcel_version").fetchone()[0]
        if parcels:
            raise SystemExit(f"{template} holds {parcels} parcel versions: rebuild it (--rebuild-template)")
        if not communes:
            log(f"loading the territorial reference into {template}")
            _run(sifc("territories", "load"), env, log, cwd=cwd)
        return template

    def ensure_plain(self) -> None:
        """The database of the plain loads, with PostGIS."""
        if not self.exists(PLAIN):
            with self.admin() as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PLAIN)))
        with self.admin(PLAIN) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    def drop_table(self, database: str, table: str) -> None:
        with self.admin(database) as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))

    def versions(self) -> dict[str, str]:
        with self.admin(PLAIN) as conn:
            return {"postgresql": conn.execute("SHOW server_version").fetchone()[0],
                    "postgis": conn.execute("SELECT postgis_full_version()").fetchone()[0]}


def _run(command: list[str], env: dict[str, str], log, cwd: Path = REPO) -> None:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{' '.join(command[-3:])} failed ({done.returncode})")
