"""From presented credentials to a :class:`Principal`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from sifc.auth import keys, scopes, tokens
from sifc.auth.principal import Principal, ScopeEntry
from sifc.settings import Settings


def principal_for(session: Session, *, kind: str, id: int, name: str, role: str,
                  scope: tuple[ScopeEntry, ...], token_id: str | None = None) -> Principal:
    """A principal with its scope expanded to commune codes."""
    everywhere, communes = scopes.expand(session, scope)
    return Principal(kind=kind, role=role, id=id, name=name, scope=scope,  # type: ignore[arg-type]
                     communes=communes, everywhere=everywhere, token_id=token_id)


def from_access_token(session: Session, settings: Settings, token: str) -> Principal:
    """The user an access token speaks for (role and scope as when it was issued, 15 min at most)."""
    claims = tokens.decode_access_token(settings, token)
    return principal_for(session, kind="user", id=claims.user_id, name=claims.username,
                         role=claims.role, scope=claims.scope, token_id=claims.jti)


def from_api_key(session: Session, key: str) -> Principal:
    """The app an API key speaks for."""
    found = keys.authenticate(session, key)
    return principal_for(session, kind="api_key", id=found.id, name=f"key:{found.prefix} {found.name}",
                         role=found.role, scope=found.scope)
