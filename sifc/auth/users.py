"""Accounts: creation, listing, disabling, and sign-in with a lockout after repeated failures.

Usernames are identifiers, kept out of logs (they are often a person's name); log lines name
the account's id only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sifc import journal
from sifc.auth import scopes
from sifc.auth.passwords import hash_password, needs_rehash, verify_password
from sifc.auth.principal import ScopeEntry, check_role
from sifc.errors import Conflict, InvalidInput, NotFound, TooManyRequests, Unauthorized
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


def create(session: Session, *, username: str, password: str, role: str, scope: Sequence[ScopeEntry],
           created_by: str) -> int:
    """Create an account; returns its id."""
    name = normalize_username(username)
    check_role(role)
    chosen = default_scope(role, scope)
    scopes.check(session, chosen)
    hashed = hash_password(password)
    try:
        with session.begin_nested():
            user_id = session.execute(text("""
                INSERT INTO app_user (username, password_hash, role, created_by)
                VALUES (:username, :hash, :role, :created_by) RETURNING id"""),
                {"username": name, "hash": hashed, "role": role, "created_by": created_by}).scalar_one()
    except IntegrityError as error:
        raise Conflict("auth.username_taken", username=name) from error
    scopes.store(session, "app_user_scope", "user_id", user_id, chosen)
    journal.record(session, None, author=created_by, operation="account.create", object_kind="app_user",
                   object_id=user_id, after={"username": name, "role": role, "scope": [str(s) for s in chosen]})
    log.info("account %s created (role %s)", user_id, role)
    return int(user_id)


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


def disable(session: Session, *, username: str, by: str = "cli") -> User:
    """Disable an account (never deleted: history and audit point at it) and end its sessions."""
    from sifc.auth.tokens import revoke_user_tokens

    user = get(session, username=username)
    session.execute(text("UPDATE app_user SET active = false WHERE id = :id"), {"id": user.id})
    revoke_user_tokens(session, user_id=user.id)
    journal.record(session, None, author=by, operation="account.disable", object_kind="app_user", object_id=user.id,
                   before={"active": user.active}, after={"active": False})
    log.info("account %s disabled", user.id)
    return get(session, user_id=user.id)


def enable(session: Session, *, username: str, by: str = "cli") -> User:
    """Enable an account again and clear its lockout."""
    user = get(session, username=username)
    session.execute(text("UPDATE app_user SET active = true, failed_attempts = 0, locked_until = NULL "
                         "WHERE id = :id"), {"id": user.id})
    journal.record(session, None, author=by, operation="account.enable", object_kind="app_user", object_id=user.id,
                   before={"active": user.active}, after={"active": True})
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
    values: dict[str, Any] = {"id": row.id, "now": now, "hash": row.password_hash}
    if needs_rehash(row.password_hash):
        values["hash"] = hash_password(password, check_length=False)
    session.execute(text("""
        UPDATE app_user SET failed_attempts = 0, locked_until = NULL, last_login_at = :now, password_hash = :hash
        WHERE id = :id"""), values)
    return _user(session, row)
