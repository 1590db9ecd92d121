"""The async read pool of the hot routes: same SQL as a session, same errors, no writes."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import DataError, InternalError, OperationalError
from starlette.testclient import TestClient

from api.app import create_app
from sifc.db import PoolReader, Statement, make_read_pool, pyformat
from sifc.settings import Settings


def _row(settings: Settings, statement: Statement, url=None) -> tuple:
    async def run() -> tuple:
        pool = make_read_pool(url or settings.db_url, size=1, application_name="sifc-tests")
        await pool.open(wait=True, timeout=10)
        try:
            return await PoolReader(pool).row(statement)
        finally:
            await pool.close()
    return asyncio.run(run())


def test_pyformat_keeps_casts_and_escapes_percent() -> None:
    assert pyformat("SELECT CAST(:a AS integer), x::text, '50%'") == "SELECT CAST(%(a)s AS integer), x::text, '50%%'"


def test_statement_runs_on_the_pool(settings: Settings, engine) -> None:
    assert _row(settings, Statement("SELECT CAST(:a AS integer) + 1, 'x'::text", {"a": 41})) == (42, "x")


def test_bad_value_is_sqlalchemy_data_error(settings: Settings, engine) -> None:
    with pytest.raises(DataError):
        _row(settings, Statement("SELECT CAST(:a AS integer)", {"a": "not a number"}))


def test_pool_connections_refuse_writes(settings: Settings, engine) -> None:
    with pytest.raises(InternalError, match="read-only"):
        _row(settings, Statement("CREATE TEMP TABLE t AS SELECT 1", {}))


def test_unreachable_database_is_operational_error(settings: Settings) -> None:
    url = settings.db_url.set(port=1)  # nothing listens there

    async def run() -> None:
        pool = make_read_pool(url, size=1)
        pool.timeout = 1.0
        await pool.open(wait=False)
        try:
            await PoolReader(pool).row(Statement("SELECT 1", {}))
        finally:
            await pool.close()

    with pytest.raises(OperationalError):
        asyncio.run(run())


def test_parcels_at_through_the_pool(settings: Settings, engine) -> None:
    """The real app, lifespan and pool included: a point with no parcel gives an empty collection."""
    with TestClient(create_app(settings)) as client:
        response = client.get("/parcels/at", params={"lon": -17.2283, "lat": 14.6933})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geo+json"
    assert response.json()["type"] == "FeatureCollection"
