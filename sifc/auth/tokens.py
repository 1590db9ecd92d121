"""JWT access tokens (short-lived, signed HS256) and opaque refresh tokens that rotate.

An access token carries ``sub`` (the account id), ``sid`` (its session: the family of refresh tokens
it was issued with), ``iat``, ``exp`` and ``jti``, and names its signing key in the header (``kid``,
:mod:`sifc.keyring`). It carries no role, scope or name: every request reads the account and its
session from the database (:func:`sifc.auth.service.from_access_token`), so that a disabled
account, a changed role, a sign-out or a revoked session acts on the next request, not when the
token expires. A token signed by a retired key is refused; its client renews it.

A refresh token is random, stored as its SHA-256, and used once: each use marks it used and issues
the next of the same family. A used token that comes back means it was copied: the whole family is
revoked (OAuth 2.0 Security BCP, RFC 9700 §4.14.2), and its holder signs in again.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import keyring
from sifc.errors import Unauthorized
from sifc.settings import Settings

log = logging.getLogger("sifc.auth")
ALGORITHM = "HS256"
ISSUER = "sifc"


@dataclass(frozen=True)
class AccessClaims:
    """What a valid access token says: whose session it is, nothing of what they may do."""

    user_id: int
    session_id: uuid.UUID
    jti: str
    expires_at: datetime


@dataclass(frozen=True)
class Issued:
    """The tokens of a sign-in or a renewal."""

    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: uuid.UUID


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_access_token(settings: Settings, *, user_id: int, session_id: uuid.UUID,
                       now: datetime | None = None) -> tuple[str, int]:
    """A signed access token of session ``session_id`` and its lifetime in seconds."""
    now = now or datetime.now(UTC)
    lifetime = settings.access_token_minutes * 60
    key = keyring.for_settings(settings).current("token")
    claims = {"iss": ISSUER, "sub": str(user_id), "sid": str(session_id), "iat": int(now.timestamp()),
              "exp": int(now.timestamp()) + lifetime, "jti": uuid.uuid4().hex, "typ": "access"}
    return jwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid}), lifetime


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    """The claims of a valid access token; 401 for an expired, tampered, malformed or foreign one."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = keyring.for_settings(settings).find("token", kid) if isinstance(kid, str) else None
        if key is None:  # no key id, or a key that no longer signs (rotated) or never did
            raise jwt.InvalidSignatureError("unknown key id")
        claims = jwt.decode(token, key.secret, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "sid", "jti", "iss"]})
    except jwt.ExpiredSignatureError as error:
        raise Unauthorized("auth.token_expired", error="invalid_token") from error
    except jwt.InvalidTokenError as error:
        raise Unauthorized("auth.token_invalid", error="invalid_token") from error
    try:
        if claims.get("typ") != "access":
            raise ValueError("not an access token of ours")
        return AccessClaims(user_id=int(claims["sub"]), session_id=uuid.UUID(str(claims["sid"])),
                            jti=str(claims["jti"]), expires_at=datetime.fromtimestamp(claims["exp"], UTC))
    except (KeyError, TypeError, ValueError) as error:  # signed by us, yet not what we issue
        raise Unauthorized("auth.token_invalid", error="invalid_token") from error


def start_session(session: Session, settings: Settings, *, user_id: int, now: datetime | None = None) -> Issued:
    """Sign-in: a new session (a refresh token family) and its first access token."""
    family = uuid.uuid4()
    refresh, refresh_lifetime = issue_refresh_token(session, settings, user_id=user_id, family_id=family, now=now)
    access, lifetime = issue_access_token(settings, user_id=user_id, session_id=family, now=now)
    return Issued(access, lifetime, refresh, refresh_lifetime, family)


def renew_session(session: Session, settings: Settings, token: str, now: datetime | None = None) -> tuple[int, Issued]:
    """Use a refresh token: ``(user_id, the next tokens of its session)``, or 401 (see :func:`rotate_refresh_token`)."""
    user_id, family, following, refresh_lifetime = rotate_refresh_token(session, settings, token, now=now)
    access, lifetime = issue_access_token(settings, user_id=user_id, session_id=family, now=now)
    return user_id, Issued(access, lifetime, following, refresh_lifetime, family)


def issue_refresh_token(session: Session, settings: Settings, *, user_id: int, family_id: uuid.UUID | None = None,
                        now: datetime | None = None) -> tuple[str, int]:
    """A new refresh token (shown once, stored hashed) and its lifetime in seconds."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    lifetime = timedelta(days=settings.refresh_token_days)
    session.execute(text("""
        INSERT INTO refresh_token (family_id, user_id, token_hash, issued_at, expires_at)
        VALUES (:family, :user_id, :hash, :now, :expires)"""),
        {"family": family_id or uuid.uuid4(), "user_id": user_id, "hash": _digest(token), "now": now,
         "expires": now + lifetime})
    return token, int(lifetime.total_seconds())


def rotate_refresh_token(session: Session, settings: Settings, token: str,
                         now: datetime | None = None) -> tuple[int, uuid.UUID, str, int]:
    """Use ``token``: ``(user_id, its family, next token, its lifetime)``, or 401.

    The reuse of a used token revokes its family; that revocation is written in ``session``
    and the caller commits it before answering the error.
    """
    now = now or datetime.now(UTC)
    row = session.execute(text("""
        SELECT t.id, t.family_id, t.user_id, t.expires_at, t.used_at, t.revoked_at, u.active
        FROM refresh_token t JOIN app_user u ON u.id = t.user_id
        WHERE t.token_hash = :hash FOR UPDATE OF t"""), {"hash": _digest(token)}).first()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("auth.refresh_invalid", error="invalid_grant")
    if row.used_at is not None:
        _revoke_family(session, row.family_id, now)
        log.warning("refresh token reused: family %s of account %s revoked", row.family_id, row.user_id)
        raise Unauthorized("auth.refresh_reused", error="invalid_grant")
    if row.expires_at <= now or not row.active:
        raise Unauthorized("auth.refresh_invalid", error="invalid_grant")
    session.execute(text("UPDATE refresh_token SET used_at = :now WHERE id = :id"), {"now": now, "id": row.id})
    following, lifetime = issue_refresh_token(session, settings, user_id=row.user_id, family_id=row.family_id,
                                              now=now)
    return int(row.user_id), row.family_id, following, lifetime


def _revoke_family(session: Session, family_id: uuid.UUID, now: datetime) -> None:
    session.execute(text("UPDATE refresh_token SET revoked_at = :now WHERE family_id = :family "
                         "AND revoked_at IS NULL"), {"now": now, "family": family_id})


def revoke_refresh_family(session: Session, token: str) -> bool:
    """Sign out: revoke the family of ``token``; whether it was known."""
    family = session.execute(text("SELECT family_id FROM refresh_token WHERE token_hash = :hash"),
                             {"hash": _digest(token)}).scalar()
    if family is None:
        return False
    _revoke_family(session, family, datetime.now(UTC))
    return True


def revoke_user_tokens(session: Session, *, user_id: int) -> None:
    """Revoke every refresh token of an account (disabled, or its password changed)."""
    session.execute(text("UPDATE refresh_token SET revoked_at = now() WHERE user_id = :id AND revoked_at IS NULL"),
                    {"id": user_id})
