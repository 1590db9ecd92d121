"""The disputes register (litiges, ADR 0005 §6): open, follow, close a case; an overlap turned into a dispute.

Writes need ``agent_foncier`` or ``administrateur`` in the commune's scope; a write on an existing
dispute needs the ``If-Match`` of the version read (412 stale, 428 missing). A dispute names its
parties: every read is for a signed-in role whose scope covers its commune, and is audited (no
public view; counts per commune belong to the dashboards).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.bounded import RightStart
from api.deps import PrincipalDep, SessionDep, allow
from api.preconditions import PRECONDITION_RESPONSES, IfMatch, etag, expected
from api.responses import answer
from api.schemas.records import Open
from sifc.auth.principal import Action, Principal
from sifc.commission import disputes

router = APIRouter(tags=["Litiges"])
Writer = Annotated[Principal, allow(Action.WRITE_TENURE)]
Id = Annotated[str, Path(max_length=64)]
Kind = Literal["limites", "succession", "double_affectation", "occupation", "autre"]




class DisputeParcelOut(Open):
    """A parcel of the dispute and its ``litige`` restriction (``lifted_on`` once lifted by the closing)."""

    parcel_id: str
    nicad: str | None = None
    rrr_id: str
    lifted_on: date | None = None


class DisputePartyOut(Open):
    """A party to the dispute and its role; named only to a reader of personal data in its commune."""

    party_id: str
    role: str
    name: str | None = Field(default=None, description="Nom (personnel).")


class DisputeStepOut(Open):
    """A dated step of the dispute: declared, mediation, resolved, sent_to_court, closed."""

    seq: int
    step: str
    occurred_on: date
    source_ids: list[str] = []
    court_reference: str | None = None
    author: str | None = Field(default=None, description="Qui l'a inscrite (personnel).")
    recorded_at: datetime
    note: str | None = Field(default=None, description="Observations (personnel).")
    outcome: str | None = Field(default=None, description="L'issue, à la clôture (personnel).")


class DisputeOut(Open):
    """A dispute: its parcels, parties, steps and outcome (données personnelles, lecture journalisée)."""

    id: str
    commune_code: str
    kind: str
    opened_on: date
    state: str = Field(description="declared, mediation, resolved, sent_to_court ou closed.")
    version: int = Field(description="Le nombre d'étapes du litige (son ETag).")
    source_ids: list[str] = []
    origin: dict[str, Any] = Field(default_factory=dict, description="Les identifiants d'un chevauchement.")
    created_by: str | None = Field(default=None, description="Qui l'a ouvert (personnel).")
    created_at: datetime
    description: str | None = Field(default=None, description="Les motifs (personnel).")
    parcels: list[DisputeParcelOut] = []
    parties: list[DisputePartyOut] = []
    steps: list[DisputeStepOut] = []


class DisputeSummaryOut(Open):
    """A dispute in its commune's list: kind, state, dates, parcels; no name, no free text."""

    id: str
    kind: str
    opened_on: date
    state: str
    since: date = Field(description="La date de sa dernière étape.")
    version: int
    parcel_ids: list[str] = []
    nicads: list[str] = []
    overdue: bool | None = Field(default=None, description="Au-delà des délais cibles de la commune.")


class DisputeListOut(Open):
    """A page of a commune's disputes, newest first."""

    commune_code: str
    limit: int
    offset: int
    disputes: list[DisputeSummaryOut]


class PartyRoleIn(BaseModel):
    party_id: str = Field(max_length=64)
    role: Literal["demandeur", "defendeur", "temoin", "autre"] = "autre"


class DisputeIn(BaseModel):
    commune_code: str = Field(max_length=100)
    kind: Kind
    parcel_ids: list[str] = Field(min_length=1, max_length=50)
    parties: list[PartyRoleIn] = Field(default_factory=list, max_length=100)
    opened_on: RightStart
    source_ids: list[str] = Field(min_length=1, max_length=20, description="La plainte, le PV de déclaration…")
    description: str | None = Field(default=None, max_length=2000, description="Les motifs (données personnelles).")


class OverlapIn(BaseModel):
    job_id: str | None = Field(default=None, max_length=64, description="Un retour de terrain (sa tâche).")
    feature: int | None = Field(default=None, ge=0, le=10_000_000, description="L'élément refusé pour chevauchement.")
    parcel_ids: list[str] | None = Field(default=None, min_length=2, max_length=50, description=(
        "Ou les parcelles qui se chevauchent (comme /communes/{code}/overlaps)."))
    kind: Kind = "limites"
    parties: list[PartyRoleIn] = Field(default_factory=list, max_length=100)
    opened_on: RightStart
    source_ids: list[str] = Field(min_length=1, max_length=20)
    description: str | None = Field(default=None, max_length=2000)


class DisputeStepIn(BaseModel):
    step: Literal["mediation", "resolved", "sent_to_court"]
    occurred_on: RightStart
    source_ids: list[str] = Field(default_factory=list, max_length=20)
    note: str | None = Field(default=None, max_length=2000, description="Observations (données personnelles).")
    court_reference: str | None = Field(default=None, max_length=100, description="Le numéro du rôle au tribunal.")


class DisputeCloseIn(BaseModel):
    closed_on: RightStart
    outcome: str = Field(min_length=1, max_length=2000, description="L'issue (données personnelles).")
    source_ids: list[str] = Field(default_factory=list, max_length=20, description="PV de conciliation, jugement…")
    note: str | None = Field(default=None, max_length=2000)


def _written(session: SessionDep, dispute_id: str, principal: Principal, *, status: int = 200) -> Response:
    found = disputes.as_written(session, dispute_id=dispute_id, by=principal)
    return answer(found, status=status, tag=etag("dispute", found["id"], found["version"]),
                  location=f"/disputes/{dispute_id}" if status == 201 else None)


@router.post("/disputes", status_code=201, response_model=DisputeOut,
             summary="Ouvrir un litige (la parcelle est gelée jusqu'à sa mainlevée)")
def open_dispute(body: DisputeIn, session: SessionDep, principal: Writer) -> Response:
    """Chaque parcelle reçoit une restriction `litige` ; toutes sont de la commune du litige."""
    data = disputes.DisputeInput(commune_code=body.commune_code, kind=body.kind, parcel_ids=body.parcel_ids,
                                 opened_on=body.opened_on, source_ids=body.source_ids,
                                 parties=[p.model_dump() for p in body.parties], description=body.description)
    dispute_id = disputes.open(session, data=data, by=principal, author=principal.name)
    return _written(session, dispute_id, principal, status=201)


@router.post("/disputes/from-overlap", status_code=201, response_model=DisputeOut,
             summary="Ouvrir un litige sur les parcelles d'un chevauchement (retour de terrain, registre)")
def dispute_from_overlap(body: OverlapIn, session: SessionDep, principal: Writer) -> Response:
    dispute_id = disputes.from_overlap(
        session, job_id=body.job_id, feature=body.feature, parcel_ids=body.parcel_ids, kind=body.kind,
        parties=[p.model_dump() for p in body.parties], opened_on=body.opened_on, source_ids=body.source_ids,
        description=body.description, by=principal, author=principal.name)
    return _written(session, dispute_id, principal, status=201)


@router.get("/disputes", response_model=DisputeListOut, summary="Les litiges d'une commune (état, dates, parcelles)")
def list_disputes(session: SessionDep, principal: PrincipalDep,
                  commune_code: Annotated[str, Query(max_length=100)],
                  state: Annotated[Literal["declared", "mediation", "resolved", "sent_to_court", "closed"] | None,
                                   Query()] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 200,
                  offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Response:
    found = disputes.list_for(session, commune_code=commune_code, reader=principal, state=state, limit=limit,
                              offset=offset)
    return answer({"commune_code": commune_code, "limit": limit, "offset": offset, "disputes": found})


@router.get("/disputes/{dispute_id}", response_model=DisputeOut,
            summary="Un litige : parcelles, parties, étapes, issue")
def get_dispute(dispute_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    found = disputes.get(session, dispute_id=dispute_id, reader=principal)
    return answer(found, tag=etag("dispute", found["id"], found["version"]))


@router.post("/disputes/{dispute_id}/steps", response_model=DisputeOut, responses=PRECONDITION_RESPONSES,
             summary="Inscrire l'étape suivante : médiation, résolu, porté devant le tribunal")
def dispute_step(dispute_id: Id, body: DisputeStepIn, session: SessionDep, principal: Writer,
                 if_match: IfMatch = None) -> Response:
    version = expected(if_match, "dispute", dispute_id)
    found = disputes.add_step(session, dispute_id=dispute_id, step=body.step, occurred_on=body.occurred_on,
                              source_ids=body.source_ids, note=body.note, court_reference=body.court_reference,
                              expected_version=version, by=principal, author=principal.name)
    return answer(found, tag=etag("dispute", found["id"], found["version"]))


@router.post("/disputes/{dispute_id}/close", response_model=DisputeOut, responses=PRECONDITION_RESPONSES,
             summary="Clore un litige : son issue, et la mainlevée de chaque restriction « litige »")
def close_dispute(dispute_id: Id, body: DisputeCloseIn, session: SessionDep, principal: Writer,
                  if_match: IfMatch = None) -> Response:
    version = expected(if_match, "dispute", dispute_id)
    found = disputes.close(session, dispute_id=dispute_id, closed_on=body.closed_on, outcome=body.outcome,
                           source_ids=body.source_ids, note=body.note, expected_version=version, by=principal,
                           author=principal.name)
    return answer(found, tag=etag("dispute", found["id"], found["version"]))
