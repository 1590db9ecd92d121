"""What every command group shares: the chosen language, the consoles, the settings, one transaction.

Nothing here connects or reads the environment at import time: each command reads its settings
and opens (then closes) its own engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console

from sifc.errors import SifcError
from sifc.i18n import Lang, translate
from sifc.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sifc.auth.principal import Principal

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True, highlight=False)


class State:
    """Options shared by every command."""

    lang: Lang = "fr"

    @staticmethod
    def settings() -> Settings:
        """Settings from the environment (read per command, never at import)."""
        return Settings()


def say(key: str, /, **params: object) -> str:
    """Message ``key`` of the catalogues (``cli.*`` msgids) in the chosen language."""
    return translate(key, State.lang, **params)


def operator() -> Principal:
    """The operator at the server's console: an administrator everywhere, named after the system account."""
    import getpass

    from sifc.auth.principal import Principal

    return Principal(kind="cli", role="administrateur", name=f"cli:{getpass.getuser()}", everywhere=True)


def when(value: datetime | None) -> str:
    """A timestamp to the minute, or a dash when there is none."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


def refusal(error: BaseException) -> SifcError | None:
    """The ownership guard's refusal (SQLSTATE SF403) as the domain error naming the owning node, else ``None``.

    The refused transaction is gone: the owner is looked up in one of its own (the commune alone if that fails).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from sifc.errors import NotOwner
    from sifc.federation import directory

    commune = directory.refused_commune(error)
    if commune is None:
        return None
    try:
        with database() as session:
            return directory.translate(session, error)
    except SQLAlchemyError:
        return NotOwner(commune=commune or "?")


@contextmanager
def database(*, owner: bool = False, actor: str | None = None) -> Iterator[Session]:
    """One transaction on the configured database (committed when the block ends), then the engine closed.

    ``owner``: on the owner's URL (``SIFC_ADMIN_DATABASE_URL``), the only one the database lets
    change accounts and API keys; the service's role cannot. ``actor``: the name the transaction's
    writes carry (a version is closed only in the name of the declared actor).
    """
    from sifc.db import act_as, make_engine, transaction

    settings = State.settings()
    engine = make_engine(settings.admin_url if owner else settings.db_url, application_name="sifc-cli")
    try:
        with transaction(engine) as session:
            if actor is not None:
                act_as(session, actor)
            yield session
    finally:
        engine.dispose()
