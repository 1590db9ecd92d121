"""Engines and sessions. Callers own their sessions; nothing connects at import."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from sifc import stored_json


def make_engine(url: URL | str, *, pool_size: int = 5, application_name: str = "sifc") -> Engine:
    """Create an engine for ``url`` with the project's connection defaults.

    Every ``json``/``jsonb`` value it returns is parsed by :func:`sifc.stored_json.loads`, so a
    number stored beyond what JSON clients read (history is never rewritten) is served as text.
    """
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"application_name": application_name},
        json_deserializer=stored_json.loads,
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Session factory bound to ``engine`` (no autoflush surprises, no expiry on commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


# --- who writes: the actor of a transaction --------------------------------------------------

ACTOR_SETTING = "sifc.actor"
_ACTOR_KEY = "sifc.actor"


def act_as(session: Session, actor: str | None) -> None:
    """Declare ``actor`` (the name versions carry as author) as who writes in ``session``'s transactions.

    Set where the caller becomes known (the API once it authenticated the request, a command with
    its operator, the worker with the job's submitter), never where a write happens: the database
    then refuses to close a version in another name (``closed_by``, migration 0012). Transaction
    local (``set_config(..., true)``), declared again whenever the session begins a transaction, so
    a pooled connection never carries one request's actor into the next; ``None`` declares nobody.
    """
    session.info[_ACTOR_KEY] = actor
    if session.in_transaction():
        _declare(session.connection(), actor)


def _declare(connection: Connection, actor: str | None) -> None:
    connection.execute(text("SELECT set_config(:name, :actor, true)"),
                       {"name": ACTOR_SETTING, "actor": actor or ""})


@event.listens_for(Session, "after_begin")
def _declare_on_begin(session: Session, _transaction: Any, connection: Connection) -> None:
    if _ACTOR_KEY in session.info:
        _declare(connection, session.info[_ACTOR_KEY])


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """Open a session, run the block in one transaction, commit or roll back."""
    factory = make_sessionmaker(engine)
    with factory() as session, session.begin():
        yield session


# --- many rows at once ------------------------------------------------------------------------

def copy_rows(session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write ``rows`` (values in ``columns``' order) into ``table`` with ``COPY … FROM STDIN``; how many.

    For a batch of many small rows, where one statement's parameters (``INSERT … unnest``) cost
    more to send and unpack than the rows themselves: the server reads a stream. It runs on the
    session's own connection, in its transaction, so the rows commit or roll back with the rest.
    ``table`` and ``columns`` are the caller's constants, quoted as identifiers all the same;
    values are adapted by psycopg as parameters are (``None`` is NULL); constraints and triggers
    apply as to an ``INSERT``.
    """
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(column) for column in columns))
    raw = session.connection().connection.driver_connection
    assert raw is not None  # a live psycopg connection: the session holds it for the transaction
    count = 0
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


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
    return str(text(sql).compile(dialect=psycopg_dialect()))  # type: ignore[no-untyped-call]


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
            # getconn/putconn rather than pool.connection(): the latter also enters the connection's own
            # context, whose commit takes the connection's lock for nothing on an autocommit connection
            # (about 15 µs of a point lookup's 100 µs of client work). putconn still checks the connection:
            # a broken one, or one left in a query (a cancelled request), is replaced.
            conn = await self.pool.getconn()
            try:
                # Binary results: a tile's bytea arrives as it is, not as hex text to decode.
                cursor = await conn.execute(pyformat(statement.sql), statement.params, binary=True)
                found = await cursor.fetchone()
            finally:
                await self.pool.putconn(conn)
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


async def _stored_json(conn: psycopg.AsyncConnection[Any]) -> None:
    """The read pool parses stored JSON as the engines do (:func:`sifc.stored_json.loads`)."""
    set_json_loads(stored_json.loads, conn)


def make_read_pool(url: URL, *, size: int, application_name: str = "sifc",
                   timeout: float = 30.0) -> AsyncConnectionPool:
    """An async pool of at most ``size`` autocommit, read-only connections, opened by the caller.

    ``url`` may be a streaming replica (``SIFC_READ_DATABASE_URL``): the statements only read. A question
    that finds no connection within ``timeout`` seconds (the server unreachable) raises the pool's timeout,
    an ``OperationalError`` the API answers with 503.
    """
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return AsyncConnectionPool(
        conninfo, min_size=1, max_size=size, open=False, name="sifc-read", configure=_stored_json, timeout=timeout,
        kwargs={"autocommit": True, "application_name": application_name,
                "options": "-c default_transaction_read_only=on"})
