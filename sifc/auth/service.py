"""From presented credentials to a :class:`Principal`."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth import keys, scopes, tokens
from sifc.auth.principal import Principal, ScopeEntry
from sifc.errors import Unauthorized
from sifc.settings import Settings


def principal_for(session: Session, *, kind: str, id: int, name: str, role: str,
                  scope: tuple[ScopeEntry, ...], token_id: str | None = None) -> Principal:
    """A principal with its scope expanded to commune codes."""
    everywhere, communes = scopes.expand(session, scope)
    return Principal(kind=kind, role=role, id=id, name=name, scope=scope,  # type: ignore[arg-type]
                     communes=communes, everywhere=everywhere, token_id=token_id)


def from_access_token(session: Session, settings: Settings, token: str) -> Principal:
    """The account an access token speaks for, as the database knows it now.

    One indexed read per request: the account (primary key), whether the token's session is still
    open (the refresh-token family, ``ix_refresh_token_family_id``) and the account's scope rows.
    The role, scope and name come from that read, never from the token: a disabled account, a
    signed-out or revoked session gets 401 on its next request, a changed role or scope applies to it.
    """
    claims = tokens.decode_access_token(settings, token)
    row = session.execute(text("""
        SELECT u.id, u.username, u.role, u.active,
               EXISTS (SELECT 1 FROM refresh_token t
                       WHERE t.family_id = :sid AND t.user_id = u.id
                         AND t.revoked_at IS NULL AND t.expires_at > now()) AS session_open,
               ARRAY(SELECT s.level || ':' || s.code FROM app_user_scope s
                     WHERE s.user_id = u.id ORDER BY s.level, s.code) AS scope
        FROM app_user u WHERE u.id = :id"""), {"id": claims.user_id, "sid": claims.session_id}).first()
    if row is None or not row.active or not row.session_open:
        raise Unauthorized("auth.session_ended", error="invalid_token")
    scope = tuple(ScopeEntry(*entry.split(":", 1)) for entry in row.scope)
    return principal_for(session, kind="user", id=int(row.id), name=str(row.username), role=str(row.role),
                         scope=scope, token_id=claims.jti)


def from_api_key(session: Session, key: str) -> Principal:
    """The app an API key speaks for."""
    found = keys.authenticate(session, key)
    return principal_for(session, kind="api_key", id=found.id, name=f"key:{found.prefix} {found.name}",
                         role=found.role, scope=found.scope)
