"""Engines and sessions. Callers own their sessions; nothing connects at import."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: URL | str, *, pool_size: int = 5, application_name: str = "sifc") -> Engine:
    """Create an engine for ``url`` with the project's connection defaults."""
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"application_name": application_name},
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Session factory bound to ``engine`` (no autoflush surprises, no expiry on commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """Open a session, run the block in one transaction, commit or roll back."""
    factory = make_sessionmaker(engine)
    with factory() as session, session.begin():
        yield session


# --- the read path of the hot questions -------------------------------------------------------

@dataclass(frozen=True)
class Statement:
    """One read-only SQL statement (``:name`` parameters) returning one row, and its bound values.

    The same statement runs on a session (the CLI, the tests, transactional routes) or on the
    asynchronous read pool (:class:`PoolReader`), so its SQL is written once.
    """

    sql: str
    params: dict[str, Any]

    def row(self, session: Session) -> tuple[Any, ...]:
        """The single row, on ``session``."""
        return tuple(session.execute(text(self.sql), self.params).one())


@lru_cache(maxsize=256)
def pyformat(sql: str) -> str:
    """``:name`` parameters as psycopg's ``%(name)s`` (SQLAlchemy's own compiler: casts kept, ``%`` escaped)."""
    return str(text(sql).compile(dialect=psycopg_dialect()))


class Reader(Protocol):
    """Where a read-only statement runs: the read pool, or a session (the tests' transaction)."""

    async def row(self, statement: Statement) -> tuple[Any, ...]:
        """The single row of ``statement``."""
        ...


class PoolReader:
    """Read-only statements on autocommit connections of an async psycopg pool.

    One statement per question: no transaction to begin and commit, no ORM session, no ping (a
    connection the server dropped comes back broken and the pool replaces it), no worker thread:
    the event loop waits on the socket. The connections refuse writes
    (``default_transaction_read_only``).
    """

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def row(self, statement: Statement) -> tuple[Any, ...]:
        """The single row of ``statement``.

        psycopg's errors (and the pool's timeout) are raised as SQLAlchemy's, as a session raises
        them, so the API answers alike on both paths (503 database unavailable, 400 bad value…).
        """
        try:
            async with self.pool.connection() as conn:
                # Binary results: a tile's bytea arrives as it is, not as hex text to decode.
                cursor = await conn.execute(pyformat(statement.sql), statement.params, binary=True)
                found = await cursor.fetchone()
        except psycopg.Error as error:
            raise DBAPIError.instance(statement.sql, statement.params, error, psycopg.Error) from error
        if found is None:
            raise LookupError("the statement returned no row")
        return tuple(found)


class SessionReader:
    """Read-only statements on a session: the tests' transaction sees what the test wrote."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def row(self, statement: Statement) -> tuple[Any, ...]:
        """The single row of ``statement``."""
        return statement.row(self.session)


def make_read_pool(url: URL, *, size: int, application_name: str = "sifc") -> AsyncConnectionPool:
    """An async pool of at most ``size`` autocommit, read-only connections, opened by the caller."""
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return AsyncConnectionPool(
        conninfo, min_size=1, max_size=size, open=False, name="sifc-read",
        kwargs={"autocommit": True, "application_name": application_name,
                "options": "-c default_transaction_read_only=on"})
