"""Test tiers on a real PostGIS, migrated with the same Alembic migrations users run.

- unit tests need nothing;
- integration tests (``db``, ``client``) run inside one transaction rolled back per test;
- end-to-end tests (``fresh_db``) get a database of their own per module, copied from a
  template that was migrated and loaded once per session.

A test that needs the database and cannot reach it fails; it never skips. Tests that read
``../shared/data`` skip without it, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from api.app import create_app
from api.deps import get_reader, get_session
from sifc import keyring, provision
from sifc.db import SessionReader, make_engine, transaction
from sifc.settings import Settings
from sifc.territories.loader import load_reference
from tests.helpers_rules import seed_pilots

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DEFAULT_TEST_URL = "postgresql://sifc_app:sifc_app@127.0.0.1:5432/sifc_test"


# A directory named after one of these markers gives it to every test below it: tests/e2e (end to
# end), tests/<tier>/shared_data (reads ../shared/data), tests/e2e/slow_clients (whole-API and real
# clients, a CI stage of their own), tests/federation (nodes on throwaway clusters, a CI stage of its
# own). Where a test lives says what it is; no module sets them by hand.
DIRECTORY_MARKERS = ("e2e", "shared_data", "slow_clients", "federation")


def directory_markers(path: Path) -> list[str]:
    """The markers a test file under ``tests/`` takes from the directories it lies in."""
    try:
        folders = path.resolve().relative_to(REPO / "tests").parts[:-1]
    except ValueError:  # a file outside tests/ (a doctest, a path given by hand)
        return []
    return [marker for marker in DIRECTORY_MARKERS if marker in folders]


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on them
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in directory_markers(item.path):
            item.add_marker(marker)


def shared_path(*parts: str) -> Path:
    """A file of ``../shared/data``: skip without it, fail in CI."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"../shared/data absent ({path}): real-data test not run"
        if IN_CI:
            pytest.fail(message + " — in CI this is a failure")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    os.environ.setdefault("SIFC_DATABASE_URL", DEFAULT_TEST_URL)
    # Exports are rate limited per client; the suite (and the servers it starts) exports far more.
    os.environ.setdefault("SIFC_EXPORT_RATE_PER_MINUTE", "1000000")
    os.environ.setdefault("SIFC_IMPORT_RATE_PER_MINUTE", "1000000")
    os.environ.setdefault("SIFC_ANALYSIS_RATE_PER_MINUTE", "1000000")
    # Uploads of this run (and of the servers it starts) stay in its own scratch folder.
    os.environ["SIFC_UPLOAD_DIR"] = str(tmp_path_factory.mktemp("uploads"))
    # Signing keys made for this run, in its scratch folder (no key of the repository ever signs); the
    # servers and commands it starts (env_for) read the same file.
    os.environ["SIFC_KEY_FILE"] = str(tmp_path_factory.mktemp("keys") / "signing-keys.json")
    os.environ.pop("SIFC_SECRET_KEY", None)
    # TestClient sends "Host: testserver": the in-process apps allow it (and only it) explicitly, and
    # write their links from it; the servers the suite starts use the address they listen on.
    built = Settings(environment="test", public_url="http://testserver", allowed_hosts=["testserver"])
    assert "test" in (built.db_url.database or ""), "tests refuse to run on a non-test database"
    keyring.for_settings(built).ensure()
    return built


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    # Every run starts from an empty database: whatever an earlier run, a benchmark or a person left
    # in it (an index made by hand, rows, roles' grants) must not decide what the suite sees.
    provision.drop_database(settings.admin_url, settings.db_url.database or "")
    provision.provision(settings)
    service_engine = make_engine(settings.db_url, application_name="sifc-tests")
    with transaction(service_engine) as session:
        load_reference(session, settings.data_dir)
        seed_pilots(session)  # the pilots' tenure rules (ADR 0005 §1), as the demo sets them
    yield service_engine
    service_engine.dispose()


@pytest.fixture(scope="session")
def admin_engine(settings: Settings, engine: Engine) -> Iterator[Engine]:
    superuser = make_engine(settings.admin_url, application_name="sifc-tests-admin")
    yield superuser
    superuser.dispose()


# The account functions (the owner's alone), as the account modules call them.
ACCOUNT_CALL = re.compile(r"\bSELECT\s+sifc_(create_user|set_user_role|set_user_active|create_api_key|revoke_api_key)\(")


@pytest.fixture
def db(settings: Settings, admin_engine: Engine) -> Iterator[Session]:
    """A session as the service's role, inside a transaction rolled back after the test.

    Every statement runs with the service role's privileges (``SET LOCAL ROLE``: ``current_user``),
    while the login stays the database owner's (``session_user``). The account functions, which the
    service role may not execute (migration 0012), are called on the owner's path, as the command
    line calls them: the role is reset for that statement and set again after it (a failed call
    rolls back to its savepoint, which restores the role). On the service's own login
    (``SET LOCAL SESSION AUTHORIZATION``) resetting the role changes nothing: they stay refused.
    """
    connection = admin_engine.connect()
    outer = connection.begin()
    role = (settings.db_url.username or "sifc_app").replace('"', '""')
    connection.exec_driver_sql(f'SET LOCAL ROLE "{role}"')

    @event.listens_for(connection, "before_cursor_execute")
    def _owner_path(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if ACCOUNT_CALL.search(statement):
            cursor.connection.execute("RESET ROLE")

    @event.listens_for(connection, "after_cursor_execute")
    def _service_role(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if ACCOUNT_CALL.search(statement):
            cursor.connection.execute(f'SET LOCAL ROLE "{role}"')  # its own cursor: keep the result

    session = Session(bind=connection, join_transaction_mode="create_savepoint",
                      expire_on_commit=False)
    yield session
    session.close()
    outer.rollback()
    connection.close()


def app_client(settings: Settings, db: Session) -> TestClient:
    """A client of an app built with ``settings``, on the test's transaction."""
    app = create_app(settings)

    def _session() -> Iterator[Session]:
        yield db

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_reader] = lambda: SessionReader(db)
    return TestClient(app)


@pytest.fixture
def client(settings: Settings, db: Session) -> TestClient:
    return app_client(settings, db)


@pytest.fixture(scope="session")
def template_db(settings: Settings, engine: Engine) -> Iterator[str]:
    """A migrated, loaded database that end-to-end modules copy (never connected to after)."""
    name = f"{settings.db_url.database}_template"
    provision.drop_database(settings.admin_url, name)
    template = settings.model_copy(update={
        "database_url": settings.db_url.set(database=name).render_as_string(hide_password=False),
        "admin_database_url": settings.admin_url.set(database=name)
        .render_as_string(hide_password=False),
    })
    provision.provision(template)
    loader_engine = make_engine(template.db_url)
    with transaction(loader_engine) as session:
        load_reference(session, template.data_dir)
        seed_pilots(session)
    loader_engine.dispose()
    yield name
    provision.drop_database(settings.admin_url, name)


@pytest.fixture(scope="module")
def fresh_db(request: pytest.FixtureRequest, settings: Settings,
             template_db: str) -> Iterator[Settings]:
    """Settings pointing at a brand-new database for this module (end-to-end tier)."""
    module = re.sub(r"[^a-z0-9]+", "_", request.module.__name__.split(".")[-1].lower())
    name = f"{settings.db_url.database}_e2e_{module}"[:63]
    provision.drop_database(settings.admin_url, name)
    provision.create_database(settings.admin_url, name, template=template_db)
    yield settings.model_copy(update={
        "database_url": settings.db_url.set(database=name).render_as_string(hide_password=False),
        "admin_database_url": settings.admin_url.set(database=name)
        .render_as_string(hide_password=False),
    })
    provision.drop_database(settings.admin_url, name)


def env_for(settings: Settings) -> dict[str, str]:
    """Environment for a subprocess (CLI or server) bound to ``settings``' database."""
    env = dict(os.environ)
    env["SIFC_DATABASE_URL"] = settings.db_url.render_as_string(hide_password=False)
    env["SIFC_ADMIN_DATABASE_URL"] = settings.admin_url.render_as_string(hide_password=False)
    env["SIFC_ENVIRONMENT"] = "test"
    return env


def table_fingerprint(session_or_conn, table: str) -> tuple[int, str]:
    """Row count and an md5 over the whole table's content, in key order."""
    row = session_or_conn.execute(text(
        f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
        f"FROM {table} t")).one()
    return int(row[0]), str(row[1])


TABLES = ("pole", "region", "department", "arrondissement", "commune", "commune_alias",
          "boundary_version")


def api_key(session: Session, *, role: str = "administrateur", scope: tuple[str, ...] = (),
            name: str = "tests") -> str:
    """A new API key of ``role`` (national administrator by default), created in ``session``'s transaction."""
    from sifc.auth import keys, scopes

    return keys.create(session, name=name, role=role, scope=scopes.parse(list(scope)), expires_at=None,
                       created_by="tests")[1]


@pytest.fixture
def admin_headers(db: Session) -> dict[str, str]:
    """Headers of a national administrator's API key (writes and imports need credentials)."""
    return {"X-API-Key": api_key(db)}
