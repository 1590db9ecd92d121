"""Engines and sessions. Callers own their sessions; nothing connects at import."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
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
