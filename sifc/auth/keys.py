"""API keys of municipal apps: ``sifc_<prefix>_<secret>``, shown once, stored hashed.

The prefix (10 hexadecimal digits) finds the key; the secret (32 random bytes) is stored as its
SHA-256. A slow hash such as argon2 protects guessable passwords; a 256-bit random secret is
not guessable, and a fast hash keeps each request cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sifc.auth import scopes
from sifc.auth.principal import Principal, ScopeEntry, check_role
from sifc.errors import InvalidInput, NotFound, Unauthorized

log = logging.getLogger("sifc.auth")
KEY_TAG = "sifc"
LAST_USED_GRANULARITY = timedelta(minutes=5)  # at most one write per key per 5 minutes


@dataclass(frozen=True)
class ApiKey:
    """A key as listed (never its secret)."""

    id: int
    prefix: str
    name: str
    role: str
    scope: tuple[ScopeEntry, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def status(self, now: datetime | None = None) -> str:
        """``active``, ``revoked`` or ``expired``."""
        now = now or datetime.now(UTC)
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(session: Session, *, name: str, role: str, scope: Sequence[ScopeEntry],
           expires_at: datetime | None, created_by: str, by: Principal | None = None) -> tuple[int, str]:
    """Create a key; returns its id and the full key, which is never shown again.

    Written by the database's account function, which checks who asks (see :mod:`sifc.auth.users`).
    """
    from sifc.auth.users import actor_id, call_account_function, default_scope

    if not name.strip():
        raise InvalidInput("http.validation")
    check_role(role)
    chosen = default_scope(role, scope)
    scopes.check(session, chosen)
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidInput("auth.bad_expiry", value=expires_at.date().isoformat())
    for _attempt in range(5):  # a prefix collision (1 in 10^12) draws again
        prefix, secret = secrets.token_hex(5), secrets.token_urlsafe(32)
        try:
            key_id = call_account_function(session, """
                SELECT sifc_create_api_key(:actor, :author, :prefix, :hash, :name, :role, :expires,
                                           CAST(:levels AS text[]), CAST(:codes AS text[]))""",
                {"actor": actor_id(by), "author": created_by, "prefix": prefix, "hash": _digest(secret),
                 "name": name.strip(), "role": role, "expires": expires_at,
                 "levels": [entry.level for entry in chosen], "codes": [entry.code for entry in chosen]})
            break
        except IntegrityError:
            continue
    else:  # pragma: no cover - five collisions in a row
        raise RuntimeError("could not draw a unique API key prefix")
    log.info("API key %s created (role %s)", prefix, role)
    return int(key_id), f"{KEY_TAG}_{prefix}_{secret}"


def split(key: str) -> tuple[str, str] | None:
    """``(prefix, secret)`` of a well-formed key, else ``None``."""
    tag, _, rest = key.strip().partition("_")
    prefix, _, secret = rest.partition("_")
    if tag != KEY_TAG or len(prefix) != 10 or not secret:
        return None
    return prefix, secret


def authenticate(session: Session, key: str, now: datetime | None = None) -> ApiKey:
    """The active key matching ``key``; 401 for an unknown, revoked or expired one."""
    now = now or datetime.now(UTC)
    parts = split(key)
    row = None
    if parts is not None:
        row = session.execute(text("SELECT * FROM api_key WHERE prefix = :prefix"), {"prefix": parts[0]}).first()
    if row is None or parts is None or not hmac.compare_digest(row.secret_hash, _digest(parts[1])):
        raise Unauthorized("auth.key_invalid", error="invalid_token")
    found = _key(session, row)
    if found.status(now) != "active":
        raise Unauthorized("auth.key_invalid", error="invalid_token")
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        session.execute(text("UPDATE api_key SET last_used_at = :now WHERE id = :id"), {"now": now, "id": row.id})
    return found


def _key(session: Session, row) -> ApiKey:  # type: ignore[no-untyped-def]
    return ApiKey(id=row.id, prefix=row.prefix, name=row.name, role=row.role,
                  scope=scopes.load(session, "api_key_scope", "key_id", row.id), created_at=row.created_at,
                  expires_at=row.expires_at, revoked_at=row.revoked_at, last_used_at=row.last_used_at)


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, newest first."""
    rows = session.execute(text("SELECT * FROM api_key ORDER BY created_at DESC, id DESC")).all()
    return [_key(session, row) for row in rows]


def revoke(session: Session, *, prefix: str, by: str = "cli", principal: Principal | None = None) -> ApiKey:
    """Revoke a key (by its prefix, or the full key); revoking twice changes nothing."""
    from sifc.auth.users import actor_id, call_account_function

    parts = split(prefix)
    wanted = parts[0] if parts else prefix.strip().lower()
    key_id = call_account_function(session, "SELECT sifc_revoke_api_key(:actor, :author, :prefix)",
                                   {"actor": actor_id(principal), "author": by, "prefix": wanted})
    if key_id is None:
        raise NotFound("auth.unknown_key", prefix=wanted)
    log.info("API key %s revoked", wanted)
    row = session.execute(text("SELECT * FROM api_key WHERE id = :id"), {"id": key_id}).one()
    return _key(session, row)
