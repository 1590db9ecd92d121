"""Tracking of a file by its number and code (public), the récépissé, overdue files (ADR 0005 §8).

``GET /suivi/{reference}/{code}`` answers anyone holding a récépissé: the file's steps and dates, never a
name, reason, free text or parcel. A wrong code and an unknown file get the same 404; an address that
sends ``SIFC_TRACKING_WRONG_CODES_PER_MINUTE`` (10) wrong codes in a minute gets 429 until its bucket
refills (behind the proxy, the address the proxy forwarded, as the other limits).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.deps import PrincipalDep, SessionDep, SettingsDep
from api.problems import language
from api.routers.documents import PDF_RESPONSE, _pdf, _seal_key, _verify_url
from api.routers.exports import RateLimited
from sifc.auth.principal import Action, require
from sifc.auth.ratelimit import TokenBucket
from sifc.documents import recepisse
from sifc.errors import NotFound, TooManyRequests
from sifc.settings import Settings
from sifc.tracking import codes, deadlines

router = APIRouter(tags=["Suivi des dossiers"])
Id = Annotated[str, Path(max_length=64)]
FileNumber = Annotated[str, Path(max_length=100, description=(
    "Le numéro du dossier imprimé sur le récépissé : la référence de la demande, ou l'identifiant de la "
    "procédure quand elle n'en a pas."))]
TrackingCode = Annotated[str, Path(max_length=64, description="Le code de suivi du récépissé (tirets et casse "
                                                                "indifférents).")]
CommuneCode = Annotated[str, Path(max_length=100)]


class TrackedStepOut(BaseModel):
    step: str
    occurred_on: str


class TrackedCommuneOut(BaseModel):
    code: str
    name: str


class TrackedOut(BaseModel):
    """Where a file stands: its steps and dates only."""

    file_number: str
    kind: str
    commune: TrackedCommuneOut
    state: str
    registered_on: str
    steps: list[TrackedStepOut]
    deadline: str = Field(description="`set` : échéance fixée ; `none` : la commune ne fixe pas de délai pour "
                                      "cette étape ; `closed` : dossier clos.")
    next_step: str | None
    due_on: str | None
    overdue: bool


class OverdueOut(BaseModel):
    file: str = Field(description="`procedure`, `claim` (réclamation) ou `dispute` (litige).")
    id: str
    commune_code: str
    kind: str
    step: str = Field(description="L'étape où le dossier attend.")
    since: str | None
    next_step: str | None
    target_days: int | None
    due_on: str | None
    days_late: int


class OverdueListOut(BaseModel):
    commune_code: str
    files: list[OverdueOut]


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _wrong_codes(request: Request, settings: Settings) -> TokenBucket:
    state = request.app.state
    bucket: TokenBucket | None = getattr(state, "tracking_limiter", None)
    if bucket is None:
        rate = settings.tracking_wrong_codes_per_minute
        bucket = TokenBucket(rate, rate / 60)
        state.tracking_limiter = bucket
    return bucket


@router.get("/suivi/{reference}/{code}", response_model=TrackedOut,
            responses={404: {"description": "Numéro ou code inconnu (la même réponse pour les deux)."},
                       429: {"description": "Trop de codes erronés depuis cette adresse : réessayez après "
                                            "`Retry-After` secondes."}},
            summary="Suivre un dossier : ses étapes et leurs dates (public, avec le code du récépissé)")
def track(reference: FileNumber, code: TrackingCode, request: Request, session: SessionDep,
          settings: SettingsDep) -> Response:
    """Sans nom, motif, texte libre ni parcelle. Un numéro inconnu et un code erroné répondent le même 404 ;
    après 10 codes erronés en une minute depuis une adresse, 429."""
    bucket = _wrong_codes(request, settings)
    address = request.client.host if request.client else "unknown"
    wait = bucket.wait(address)
    if wait:
        raise TooManyRequests("tracking.rate_limited", retry_after=wait)
    try:
        found = codes.track(session, file_number=reference, code=code)
    except NotFound:
        bucket.take(address)
        raise
    return _json(found)


@router.post("/procedures/{procedure_id}/recepisse.pdf", dependencies=[RateLimited], responses=PDF_RESPONSE,
             response_class=Response,
             summary="Imprimer le récépissé d'une demande, avec un nouveau code de suivi (l'ancien est révoqué)")
def print_receipt(procedure_id: Id, request: Request, session: SessionDep, settings: SettingsDep,
                  principal: PrincipalDep) -> Response:
    """Agents fonciers de la commune. Chaque impression donne un nouveau code de suivi et révoque le
    précédent (celui donné à l'enregistrement compris) : remettez au demandeur le dernier récépissé."""
    require(principal, Action.WRITE_TENURE)
    pdf = recepisse.build(session, procedure_id=procedure_id, by=principal, author=principal.name,
                          lang=language(request), seal_key=_seal_key(settings), verify_url=_verify_url(request),
                          base_url=settings.public_base)
    return _pdf(pdf, "recepisse.pdf")


@router.get("/communes/{code}/overdue", response_model=OverdueListOut,
            summary="Les dossiers en retard d'une commune (procédures, réclamations) : identifiants et dates")
def overdue(code: CommuneCode, session: SessionDep, principal: PrincipalDep) -> Response:
    """Agents fonciers dont le périmètre couvre la commune. Échéance : la date de l'étape précédente plus le
    délai `target_days` (ou `claim_days`) en vigueur dans la commune ; sans délai fixé, pas de retard. Aucun nom."""
    require(principal, Action.WRITE_TENURE)
    exists = session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": code}).scalar()
    if not exists:
        raise NotFound("territory.not_found", level="commune", code=code)
    require(principal, Action.WRITE_TENURE, communes=[code])
    files = deadlines.overdue(session, communes=[code])
    return _json({"commune_code": code, "files": [{k: v for k, v in f.items() if k in OverdueOut.model_fields}
                                                  for f in files]})
