"""Provisioning: create the database, enable PostGIS, run the migrations.

Only this module and the migrations use the superuser URL
(``SIFC_ADMIN_DATABASE_URL``); the service itself connects as its own role.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from sifc.errors import DatabaseUnavailable
from sifc.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def describe(url: URL) -> str:
    """Where ``url`` points, without its password (safe for messages and logs)."""
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"


def ensure_service_role(conn: Connection, name: str, password: str | None) -> None:
    """Create (or update the password of) the service's login role: no superuser rights."""
    if conn.exec_driver_sql("SELECT current_user").scalar() == name:
        return  # a database owner migrating as itself: nothing to create
    exists = conn.exec_driver_sql(
        "SELECT 1 FROM pg_roles WHERE rolname = %(name)s", {"name": name}).scalar()
    raw: Any = conn.connection.dbapi_connection
    statement = sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
        sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(name))
    if password:
        statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
    conn.exec_driver_sql(statement.as_string(raw))


def _autocommit_engine(url: URL) -> Engine:
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def _reason(error: Exception) -> str:
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__


def database_exists(admin_url: URL, name: str) -> bool:
    """Whether database ``name`` exists on the server of ``admin_url``."""
    engine = _autocommit_engine(admin_url.set(database="postgres"))
    try:
        with engine.connect() as conn:
            return bool(conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar())
    except OperationalError as error:
        raise DatabaseUnavailable("db.unreachable", target=describe(admin_url),
                                  reason=_reason(error)) from error
    finally:
        engine.dispose()


def create_database(admin_url: URL, name: str, *, template: str | None = None) -> None:
    """Create database ``name`` (from ``template`` when given) unless it exists."""
    if database_exists(admin_url, name):
        return
    engine = _autocommit_engine(admin_url.set(database="postgres"))
    try:
        with engine.connect() as conn:
            raw: Any = conn.connection.dbapi_connection
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
            conn.exec_driver_sql(statement.as_string(raw))
    finally:
        engine.dispose()


def drop_database(admin_url: URL, name: str) -> None:
    """Drop database ``name`` if it exists, closing its connections first."""
    engine = _autocommit_engine(admin_url.set(database="postgres"))
    try:
        with engine.connect() as conn:
            raw: Any = conn.connection.dbapi_connection
            conn.exec_driver_sql(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                .format(sql.Identifier(name)).as_string(raw))
    finally:
        engine.dispose()


def ensure_postgis(admin_url: URL) -> str:
    """Create the PostGIS extension in the target database; return its version."""
    engine = _autocommit_engine(admin_url)
    try:
        with engine.connect() as conn:
            available = conn.execute(text(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")).scalar()
            if not available:
                raise DatabaseUnavailable("db.postgis_missing", target=describe(admin_url))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            return str(conn.execute(text("SELECT postgis_lib_version()")).scalar())
    except OperationalError as error:
        raise DatabaseUnavailable("db.unreachable", target=describe(admin_url),
                                  reason=_reason(error)) from error
    finally:
        engine.dispose()


def alembic_config(settings: Settings) -> Config:
    """Alembic configuration bound to ``settings`` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["settings"] = settings
    config.attributes["service_url"] = settings.db_url
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    """Run ``alembic upgrade`` to ``revision`` as the superuser."""
    command.upgrade(alembic_config(settings), revision)


def provision(settings: Settings) -> str:
    """Create the service's database if missing, enable PostGIS, migrate; return PostGIS's version."""
    admin = settings.admin_url
    create_database(admin, admin.database or "sifc")
    version = ensure_postgis(admin)
    migrate(settings)
    return version


def libpq_url(url: URL) -> str:
    """``url`` as a libpq connection string, without its password (given via PGPASSWORD)."""
    return url.set(drivername="postgresql", password=None).render_as_string()


def _run_tool(tool: str, args: list[str], url: URL) -> None:
    executable = shutil.which(tool)
    if executable is None:
        raise DatabaseUnavailable("db.tool_failed", tool=tool, reason="commande introuvable")
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # never on the command line, where ps shows it
    done = subprocess.run([executable, *args], capture_output=True, text=True, check=False,
                          env=env)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise DatabaseUnavailable("db.tool_failed", tool=tool,
                                  reason=lines[-1] if lines else f"code {done.returncode}")


def backup(settings: Settings, path: Path) -> None:
    """Dump the service's database to ``path`` in PostgreSQL's custom format."""
    _run_tool("pg_dump", ["--format=custom", "--no-owner", f"--file={path}",
                          f"--dbname={libpq_url(settings.admin_url)}"], settings.admin_url)


def restore(settings: Settings, path: Path, database: str) -> None:
    """Restore the dump at ``path`` into ``database``, which must be new or empty."""
    if not path.is_file():
        raise DatabaseUnavailable("db.backup_missing", path=str(path))
    admin = settings.admin_url.set(database=database)
    if database_exists(settings.admin_url, database):
        engine = _autocommit_engine(admin)
        try:
            with engine.connect() as conn:
                tables = conn.execute(text(
                    "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
                    "('pg_catalog', 'information_schema') AND tablename <> 'spatial_ref_sys'"
                )).scalar()
        finally:
            engine.dispose()
        if tables:
            raise DatabaseUnavailable("db.restore_target_not_empty", database=database)
        created = False
    else:
        create_database(settings.admin_url, database)
        created = True
    try:
        engine = _autocommit_engine(admin)
        try:
            with engine.connect() as conn:
                ensure_service_role(conn, settings.db_url.username or "sifc_app", settings.db_url.password)
        finally:
            engine.dispose()
        _run_tool("pg_restore", ["--exit-on-error", "--no-owner", f"--dbname={libpq_url(admin)}",
                                 str(path)], admin)
    except Exception:
        if created:  # a refused restore leaves no half-restored database behind
            drop_database(settings.admin_url, database)
        raise
