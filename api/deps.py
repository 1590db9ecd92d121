"""Dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.orm import Session

from sifc.auth import service as auth_service
from sifc.auth.keys import KEY_TAG
from sifc.auth.principal import ANONYMOUS, Action, Principal, require
from sifc.db import Reader, act_as
from sifc.errors import Unauthorized
from sifc.settings import Settings


def get_session(request: Request) -> Iterator[Session]:
    """A session per request, from the pool the app's lifespan opened."""
    factory = request.app.state.sessionmaker
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


async def get_reader(request: Request) -> Reader:
    """The read pool of the hot read-only questions (no session, no thread); tests give their session."""
    reader: Reader = request.app.state.reader
    return reader


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with (``async``: FastAPI would run a plain function in a thread)."""
    settings: Settings = request.app.state.settings
    return settings


# "function" scope: the transaction commits before the response leaves, so a client that reads
# right after a write sees it.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ReaderDep = Annotated[Reader, Depends(get_reader)]


# --- who is calling ---------------------------------------------------------------------

# Declared as security schemes so that /docs can authorize; the headers are read below.
bearer_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False, scheme_name="jeton",
                                     description="Jeton d'accès (POST /auth/token).")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="cle_api",
                              description="Clé d'API d'une application (`sifc keys create`).")


def get_principal(request: Request, session: SessionDep, settings: SettingsDep,
                  _token: Annotated[str | None, Security(bearer_scheme)] = None,
                  api_key: Annotated[str | None, Security(api_key_scheme)] = None) -> Principal:
    """The caller: ``Authorization: Bearer <jwt>``, ``Authorization: ApiKey <key>`` or ``X-API-Key``.

    No credentials: the anonymous (public) principal. Credentials that are expired, tampered,
    revoked or unknown: 401, never a silent fall back to anonymous.
    """
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "apikey" or (scheme.lower() == "bearer" and value.startswith(f"{KEY_TAG}_")):
            return auth_service.from_api_key(session, value)
        if scheme.lower() == "bearer" and value:
            return auth_service.from_access_token(session, settings, value)
        raise Unauthorized("auth.bad_scheme", error="invalid_request")
    if api_key:
        return auth_service.from_api_key(session, api_key)
    return ANONYMOUS


def get_actor(request: Request, session: SessionDep,
              principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """The caller, declared to the database as the actor of the request's writes (``sifc.db.act_as``).

    The database closes a version only in the name of that actor, whatever the statement says.
    The principal carries the request's method and route template (its channel), which the
    services write in the access log when they reveal personal data.
    """
    act_as(session, principal.name if principal.authenticated else None)
    route = request.scope.get("route")
    return principal.via(request.method, str(getattr(route, "path", "?")))  # dependencies run on matched routes


PrincipalDep = Annotated[Principal, Depends(get_actor)]


def allow(action: Action) -> Any:
    """A dependency refusing callers whose role cannot do ``action`` (401 anonymous, 403 otherwise).

    Scope checks need the communes a request touches; routes call ``require`` with them.
    """

    def check(principal: PrincipalDep) -> Principal:
        require(principal, action)
        return principal

    return Depends(check)
