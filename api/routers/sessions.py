"""Council sessions (ADR 0005 §4): plan a session, set its agenda, record attendees, deliberate it whole.

Land officers in the commune's scope write; every write on an existing session needs the ``If-Match`` of
the version read (412 if stale, 428 if missing). A session names its attendees and the motives of its
decisions: read by readers of personal data in its commune, each read audited (the service decides).
Deliberating is all or nothing: a refusal (no quorum, a parcel frozen by a litige, an item not ready)
records nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.bounded import StepDate
from api.deps import PrincipalDep, SessionDep, allow
from api.preconditions import PRECONDITION_RESPONSES, IfMatch, etag, expected
from sifc.auth.principal import Action, Principal
from sifc.commission import sessions

router = APIRouter(tags=["Sessions du conseil"])
Writer = Annotated[Principal, allow(Action.WRITE_TENURE)]
Id = Annotated[str, Path(max_length=64)]
Ids = Annotated[list[str], Field(max_length=500)]
JSON = "application/json"


def answer(body: Any, *, status: int = 200, location: str | None = None) -> Response:
    """JSON bytes with the session's ETag (its revision)."""
    headers = {"ETag": etag("session", body["id"], body["version"])} if "version" in body else {}
    if location:
        headers["Location"] = location
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


class SessionItemOut(BaseModel):
    procedure_id: str
    position: int
    kind: str
    reference: str | None = None
    parcel_id: str
    decision: str | None = Field(default=None, description="granted, refused ou deferred, une fois délibérée.")
    reason: str | None = Field(default=None, description="Motif d'un refus ou d'un ajournement (personnel).")
    votes_for: int | None = None
    votes_against: int | None = None
    abstentions: int | None = None
    step_seq: int | None = Field(default=None, description="Le numéro de l'étape inscrite à la procédure.")
    added_by: str | None = Field(default=None, description="Qui l'a inscrite (personnel).")


class AttendeeOut(BaseModel):
    seq: int
    party_id: str | None = None
    name: str | None = Field(default=None, description="Nom (personnel).")
    capacity: str
    present: bool
    added_by: str | None = None


class SessionSummaryOut(BaseModel):
    """Une session, sans noms ni motifs."""

    id: str
    commune_code: str
    kind: str
    held_on: date
    reference: str | None = None
    members_in_office: int | None = None
    state: str = Field(description="planned, agenda_closed ou deliberated.")
    version: int = Field(description="La révision de la session (son ETag).")
    item_count: int
    deliberation_number: str | None = None
    deliberated_on: date | None = None
    deliberation_source_id: str | None = None
    minutes_source_ids: list[str] = []
    members_present: int | None = None
    quorum_met: bool | None = None
    synthetic: bool = False


class SessionOut(SessionSummaryOut):
    """Une session, son ordre du jour, ses décisions et ses participants (données personnelles)."""

    created_by: str | None = None
    created_at: datetime
    items: list[SessionItemOut] = []
    attendees: list[AttendeeOut] = []


class SessionIn(BaseModel):
    commune_code: str = Field(max_length=100)
    kind: Literal["commission_domaniale", "conseil_municipal"]
    held_on: date = Field(description="Date de la session (AAAA-MM-JJ).")
    reference: str | None = Field(default=None, max_length=200, description=(
        "Référence publique de la session (« session ordinaire du 2e trimestre 2026 »)."))
    members_in_office: int | None = Field(default=None, ge=1, le=1000, description=(
        "Membres en exercice : requis quand le quorum de la commune est une fraction."))


class AgendaIn(BaseModel):
    procedure_ids: Ids = Field(description="Les procédures de l'ordre du jour, dans l'ordre.")


class ItemIn(BaseModel):
    procedure_id: str = Field(max_length=64)


class AttendeeIn(BaseModel):
    capacity: Literal["president", "membre", "secretaire", "invite"]
    party_id: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=200, description="Nom d'un participant non enregistré.")
    present: bool = True


class DecisionIn(BaseModel):
    procedure_id: str = Field(max_length=64)
    decision: Literal["granted", "refused", "deferred"]
    reason: str | None = Field(default=None, max_length=1000, description="Motif d'un refus ou d'un ajournement.")
    votes_for: int | None = Field(default=None, ge=0, le=1000)
    votes_against: int | None = Field(default=None, ge=0, le=1000)
    abstentions: int | None = Field(default=None, ge=0, le=1000)


class DeliberationIn(BaseModel):
    number: str = Field(min_length=1, max_length=100, description="Numéro de la délibération.")
    deliberated_on: StepDate
    source_id: str = Field(max_length=64, description="La délibération (source de type `deliberation`).")
    minutes_source_ids: list[str] = Field(default_factory=list, max_length=20, description="Procès-verbal de séance.")
    decisions: list[DecisionIn] = Field(min_length=1, max_length=500)


@router.post("/sessions", status_code=201, response_model=SessionOut,
             summary="Prévoir une session du conseil ou de la commission domaniale")
def create_session(body: SessionIn, session: SessionDep, principal: Writer) -> Response:
    session_id = sessions.create(session, data=sessions.SessionInput(
        commune_code=body.commune_code, kind=body.kind, held_on=body.held_on, reference=body.reference,
        members_in_office=body.members_in_office), by=principal, author=principal.name)
    found = sessions.as_written(session, session_id=session_id, by=principal)
    return answer(found, status=201, location=f"/sessions/{session_id}")


@router.get("/sessions", response_model=list[SessionSummaryOut],
            summary="Les sessions d'une commune (sans noms ni motifs)")
def list_sessions(session: SessionDep, principal: PrincipalDep,
                  commune_code: Annotated[str, Query(max_length=100)]) -> Response:
    body = sessions.list_sessions(session, commune_code=commune_code, reader=principal)
    return Response(orjson.dumps(body), media_type=JSON)


@router.get("/sessions/{session_id}", response_model=SessionOut,
            summary="Une session : ordre du jour, décisions, participants")
def get_session(session_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    return answer(sessions.get(session, session_id=session_id, reader=principal))


@router.put("/sessions/{session_id}/agenda", response_model=SessionOut, responses=PRECONDITION_RESPONSES,
            summary="Fixer l'ordre du jour d'une session en préparation")
def set_agenda(session_id: Id, body: AgendaIn, session: SessionDep, principal: Writer,
               if_match: IfMatch = None) -> Response:
    version = expected(if_match, "session", session_id)
    return answer(sessions.set_agenda(session, session_id=session_id, procedure_ids=body.procedure_ids,
                                      expected_version=version, by=principal, author=principal.name))


@router.post("/sessions/{session_id}/agenda", response_model=SessionOut, responses=PRECONDITION_RESPONSES,
             summary="Inscrire une procédure à l'ordre du jour")
def add_item(session_id: Id, body: ItemIn, session: SessionDep, principal: Writer,
             if_match: IfMatch = None) -> Response:
    version = expected(if_match, "session", session_id)
    return answer(sessions.add_item(session, session_id=session_id, procedure_id=body.procedure_id,
                                    expected_version=version, by=principal, author=principal.name))


@router.delete("/sessions/{session_id}/agenda/{procedure_id}", response_model=SessionOut,
               responses=PRECONDITION_RESPONSES,
               summary="Retirer une procédure de l'ordre du jour")
def remove_item(session_id: Id, procedure_id: Id, session: SessionDep, principal: Writer,
                if_match: IfMatch = None) -> Response:
    version = expected(if_match, "session", session_id)
    return answer(sessions.remove_item(session, session_id=session_id, procedure_id=procedure_id,
                                       expected_version=version, by=principal, author=principal.name))


@router.post("/sessions/{session_id}/attendees", response_model=SessionOut, responses=PRECONDITION_RESPONSES,
             summary="Inscrire un participant (partie ou nom), présent ou excusé")
def add_attendee(session_id: Id, body: AttendeeIn, session: SessionDep, principal: Writer,
                 if_match: IfMatch = None) -> Response:
    version = expected(if_match, "session", session_id)
    data = sessions.AttendeeInput(capacity=body.capacity, party_id=body.party_id, name=body.name,
                                  present=body.present)
    return answer(sessions.add_attendee(session, session_id=session_id, data=data, expected_version=version,
                                        by=principal, author=principal.name))


@router.post("/sessions/{session_id}/close-agenda", response_model=SessionOut, responses=PRECONDITION_RESPONSES,
             summary="Fermer l'ordre du jour : la liste ne change plus")
def close_agenda(session_id: Id, session: SessionDep, principal: Writer, if_match: IfMatch = None) -> Response:
    version = expected(if_match, "session", session_id)
    return answer(sessions.close_agenda(session, session_id=session_id, expected_version=version, by=principal,
                                        author=principal.name))


@router.post("/sessions/{session_id}/deliberate", response_model=SessionOut, responses=PRECONDITION_RESPONSES,
             summary="Délibérer toute la session en une fois, sous une seule délibération")
def deliberate(session_id: Id, body: DeliberationIn, session: SessionDep, principal: Writer,
               if_match: IfMatch = None) -> Response:
    """Chaque procédure reçoit sa décision ; une parcelle gelée par un litige refuse tout (409), sauf ajournée."""
    version = expected(if_match, "session", session_id)
    data = sessions.DeliberationInput(
        number=body.number, deliberated_on=body.deliberated_on, source_id=body.source_id,
        minutes_source_ids=body.minutes_source_ids,
        decisions=[sessions.Decision(**decision.model_dump()) for decision in body.decisions])
    return answer(sessions.deliberate(session, session_id=session_id, data=data, expected_version=version,
                                      by=principal, author=principal.name))
