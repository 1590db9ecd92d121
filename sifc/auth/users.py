"""Accounts: creation, listing, role changes, disabling, and sign-in with a lockout after repeated failures.

Usernames are identifiers, kept out of logs (they are often a person's name); log lines name
the account's id only.

The service's database role cannot change an account by itself (migration 0012): creation, role
and scope, disabling and enabling go through the database's account functions, which check who
asks (the database owner, i.e. the command line on the owner's URL, or an active administrator
whose scope covers the account) and write the journal row themselves. Sign-in only updates the
lockout counters and the last sign-in.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from sifc.auth import scopes
from sifc.auth.passwords import hash_password, verify_password
from sifc.auth.principal import Principal, ScopeEntry, check_role
from sifc.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests, Unauthorized
from sifc.settings import Settings

log = logging.getLogger("sifc.auth")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")


@dataclass(frozen=True)
class User:
    """An account as the service sees it (never its password hash)."""

    id: int
    username: str
    role: str
    active: bool
    scope: tuple[ScopeEntry, ...]
    locked_until: datetime | None = None
    last_login_at: datetime | None = None
    created_at: datetime | None = None


def normalize_username(username: str) -> str:
    """The stored form of a username: trimmed, lower case, checked."""
    value = username.strip().lower()
    if not USERNAME.match(value):
        raise InvalidInput("auth.bad_username", username=username)
    return value


def default_scope(role: str, scope: Sequence[ScopeEntry]) -> tuple[ScopeEntry, ...]:
    """The scope as given; an administrator without one gets the whole country, other roles need one."""
    if scope:
        return tuple(scope)
    if role == "administrateur":
        return (ScopeEntry("country", "SN"),)
    raise InvalidInput("auth.scope_required", role=role)


def actor_id(by: Principal | None) -> int | None:
    """Who asks for an account change, as the database's account functions name it.

    A signed-in user is named by its account id, which the database checks (an active
    administrator whose scope covers the account); no principal, or an operator on the server, is
    the database owner, which only a session on the owner's URL may be. An API key never manages
    accounts.
    """
    if by is None or by.kind == "cli":
        return None
    if by.kind == "user" and by.id is not None:
        return by.id
    raise Forbidden("auth.account_change_refused")


def call_account_function(session: Session, statement: str, values: dict[str, Any]) -> Any:
    """Run one account function; the database's refusal (who asks may not) is a 403."""
    try:
        with session.begin_nested():
            return session.execute(text(statement), values).scalar()
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == "42501":  # insufficient_privilege
            raise Forbidden("auth.account_change_refused") from error
        raise


def _arrays(scope: Sequence[ScopeEntry] | None) -> dict[str, list[str] | None]:
    if scope is None:
        return {"levels": None, "codes": None}
    return {"levels": [entry.level for entry in scope], "codes": [entry.code for entry in scope]}


def create(session: Session, *, username: str, password: str, role: str, scope: Sequence[ScopeEntry],
           created_by: str, by: Principal | None = None) -> int:
    """Create an account; returns its id."""
    name = normalize_username(username)
    check_role(role)
    chosen = default_scope(role, scope)
    scopes.check(session, chosen)
    hashed = hash_password(password)
    try:
        user_id = call_account_function(session, """
            SELECT sifc_create_user(:actor, :author, :username, :hash, :role, CAST(:levels AS text[]),
                                    CAST(:codes AS text[]))""",
            {"actor": actor_id(by), "author": created_by, "username": name, "hash": hashed, "role": role,
             **_arrays(chosen)})
    except IntegrityError as error:
        raise Conflict("auth.username_taken", username=name) from error
    log.info("account %s created (role %s)", user_id, role)
    return int(user_id)


def set_role(session: Session, *, username: str, role: str, scope: Sequence[ScopeEntry] | None = None,
             by: Principal | None = None, author: str = "cli") -> User:
    """Give an account another role (and another scope, when one is given); journaled by the database.

    The change applies from the account's next request (its access tokens are checked against the
    account on every request).
    """
    check_role(role)
    user = get(session, username=username)
    chosen = None  # the scope is kept unless another is given
    if scope:
        chosen = tuple(scope)
        scopes.check(session, chosen)
    call_account_function(session, """
        SELECT sifc_set_user_role(:actor, :author, :id, :role, CAST(:levels AS text[]), CAST(:codes AS text[]))""",
        {"actor": actor_id(by), "author": author, "id": user.id, "role": role, **_arrays(chosen)})
    log.info("account %s: role %s", user.id, role)
    return get(session, user_id=user.id)


def _user(session: Session, row: Any) -> User:
    return User(id=row.id, username=row.username, role=row.role, active=row.active,
                scope=scopes.load(session, "app_user_scope", "user_id", row.id),
                locked_until=row.locked_until, last_login_at=row.last_login_at, created_at=row.created_at)


def get(session: Session, *, user_id: int | None = None, username: str | None = None) -> User:
    """One account, by id or username."""
    if user_id is not None:
        row = session.execute(text("SELECT * FROM app_user WHERE id = :id"), {"id": user_id}).first()
    else:
        row = session.execute(text("SELECT * FROM app_user WHERE username = :u"),
                              {"u": (username or "").strip().lower()}).first()
    if row is None:
        raise NotFound("auth.unknown_user", username=username if username is not None else f"#{user_id}")
    return _user(session, row)


def list_users(session: Session) -> list[User]:
    """Every account, by username."""
    rows = session.execute(text("SELECT * FROM app_user ORDER BY username")).all()
    return [_user(session, row) for row in rows]


def _set_active(session: Session, user: User, active: bool, by: Principal | None, author: str) -> None:
    call_account_function(session, "SELECT sifc_set_user_active(:actor, :author, :id, :active)",
                          {"actor": actor_id(by), "author": author, "id": user.id, "active": active})


def disable(session: Session, *, username: str, by: str = "cli", principal: Principal | None = None) -> User:
    """Disable an account (never deleted: history and audit point at it) and end its sessions."""
    user = get(session, username=username)
    _set_active(session, user, False, principal, by)
    log.info("account %s disabled", user.id)
    return get(session, user_id=user.id)


def enable(session: Session, *, username: str, by: str = "cli", principal: Principal | None = None) -> User:
    """Enable an account again and clear its lockout."""
    user = get(session, username=username)
    _set_active(session, user, True, principal, by)
    return get(session, user_id=user.id)


def authenticate(session: Session, *, username: str, password: str, settings: Settings,
                 now: datetime | None = None) -> User:
    """The account ``username`` if ``password`` is its password; otherwise an error.

    After ``login_max_failures`` wrong passwords in a row the account is locked for
    ``login_lockout_minutes`` (429 with Retry-After); while locked, no password is even checked.
    An unknown username costs the same argon2 verification as a wrong password. The failure
    counter is written in ``session``: the caller commits it before answering the error.
    """
    now = now or datetime.now(UTC)
    row = session.execute(text("SELECT * FROM app_user WHERE username = :u FOR UPDATE"),
                          {"u": username.strip().lower()}).first()
    if row is None:
        verify_password(None, password)
        raise Unauthorized("auth.bad_credentials")
    if row.locked_until is not None and row.locked_until > now:
        raise TooManyRequests("auth.locked", retry_after=(row.locked_until - now).total_seconds())
    if not verify_password(row.password_hash, password):
        failures = row.failed_attempts + 1
        if failures >= settings.login_max_failures:
            lockout = timedelta(minutes=settings.login_lockout_minutes)
            session.execute(text("UPDATE app_user SET failed_attempts = 0, locked_until = :until WHERE id = :id"),
                            {"until": now + lockout, "id": row.id})
            log.warning("account %s locked after %s failed sign-ins", row.id, failures)
            raise TooManyRequests("auth.locked", retry_after=lockout.total_seconds())
        session.execute(text("UPDATE app_user SET failed_attempts = :n WHERE id = :id"), {"n": failures, "id": row.id})
        raise Unauthorized("auth.bad_credentials")
    if not row.active:
        raise Unauthorized("auth.account_disabled")
    # The service's role may write these three columns of an account, nothing else (migration 0012):
    # a hash made with older argon2 parameters stays as it is until the password is set again.
    session.execute(text("""
        UPDATE app_user SET failed_attempts = 0, locked_until = NULL, last_login_at = :now WHERE id = :id"""),
        {"id": row.id, "now": now})
    return _user(session, row)
