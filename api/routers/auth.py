"""Authentication: OAuth2 password flow with rotating refresh tokens, and who am I.

Sign-in attempts are rate limited per client address and per username, in this process
(one API worker); accounts are also locked in the database after repeated failures.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, SessionDep, SettingsDep
from sifc.auth import tokens, users
from sifc.auth.principal import ROLE_ACTIONS
from sifc.auth.ratelimit import TokenBucket
from sifc.errors import SifcError, TooManyRequests, Unauthorized
from sifc.settings import Settings

router = APIRouter(prefix="/auth", tags=["Authentification"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Durée de validité du jeton d'accès, en secondes.")
    refresh_token: str
    refresh_expires_in: int = Field(description="Durée de validité du jeton de rafraîchissement, en secondes.")


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class MeOut(BaseModel):
    kind: str = Field(description="`user` ou `api_key`.")
    name: str
    role: str
    scope: list[str] = Field(description="Périmètre : `niveau:code` (`pays:SN` : tout le pays).")
    everywhere: bool
    communes: list[str] = Field(description="Codes des communes du périmètre (vide si `everywhere`).")
    actions: list[str]


def _limiters(request: Request, settings: Settings) -> tuple[TokenBucket, TokenBucket]:
    state = request.app.state
    if getattr(state, "login_limiters", None) is None:
        per_ip = TokenBucket(settings.login_rate_per_ip, settings.login_rate_per_ip / 60)
        failures = settings.login_max_failures
        per_user = TokenBucket(failures, failures / (settings.login_lockout_minutes * 60))
        state.login_limiters = (per_ip, per_user)
    limiters: tuple[TokenBucket, TokenBucket] = state.login_limiters
    return limiters


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _answer(issued: tokens.Issued, response: Response) -> TokenOut:
    response.headers.update(NO_STORE)
    return TokenOut(access_token=issued.access_token, expires_in=issued.expires_in,
                    refresh_token=issued.refresh_token, refresh_expires_in=issued.refresh_expires_in)


@router.post("/token", response_model=TokenOut, summary="Se connecter (OAuth2, mot de passe)")
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, response: Response,
          session: SessionDep, settings: SettingsDep) -> TokenOut:
    """Échange identifiant et mot de passe contre un jeton d'accès (15 min) et un jeton de rafraîchissement.

    Après 5 échecs, le compte est verrouillé 15 minutes (429, `Retry-After`).
    """
    per_ip, per_user = _limiters(request, settings)
    username = form.username.strip().lower()
    wait = per_ip.take(_client(request)) or per_user.wait(username)
    if wait:
        raise TooManyRequests("auth.rate_limited", retry_after=wait)
    try:
        user = users.authenticate(session, username=username, password=form.password, settings=settings)
    except SifcError:
        per_user.take(username)
        session.commit()  # the failure counter (and a lockout) outlive the refused request
        raise
    return _answer(tokens.start_session(session, settings, user_id=user.id), response)


@router.post("/refresh", response_model=TokenOut, summary="Renouveler le jeton d'accès")
def refresh(body: RefreshIn, request: Request, response: Response, session: SessionDep,
            settings: SettingsDep) -> TokenOut:
    """Échange un jeton de rafraîchissement (à usage unique) contre de nouveaux jetons.

    Un jeton déjà utilisé qui revient révoque toute la session (401) : reconnectez-vous.
    """
    per_ip, _ = _limiters(request, settings)
    wait = per_ip.take(_client(request))
    if wait:
        raise TooManyRequests("auth.rate_limited", retry_after=wait)
    try:
        _user_id, issued = tokens.renew_session(session, settings, body.refresh_token)
    except SifcError:
        session.commit()  # a reused token's family stays revoked
        raise
    return _answer(issued, response)


@router.post("/logout", status_code=204, summary="Se déconnecter (révoque la session)")
def logout(body: RefreshIn, session: SessionDep) -> Response:
    """Révoque le jeton de rafraîchissement et toute sa session : ses jetons d'accès sont refusés dès la requête
    suivante (401)."""
    tokens.revoke_refresh_family(session, body.refresh_token)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, summary="Qui suis-je : rôle, périmètre, actions permises")
def me(principal: PrincipalDep) -> MeOut:
    if not principal.authenticated:
        raise Unauthorized("auth.required")
    return MeOut(kind=principal.kind, name=principal.name, role=principal.role,
                 scope=[str(entry) for entry in principal.scope], everywhere=principal.everywhere,
                 communes=sorted(principal.communes),
                 actions=sorted(action.value for action in ROLE_ACTIONS[principal.role]))
