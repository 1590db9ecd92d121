"""Systematic campaigns, public display periods and claims (ADR 0005 §5).

Every answer here names people or carries officers' text (presumed holders, claimants, grounds,
reasons) or belongs to the land office's work in progress: readers of personal data in the commune
only, each read logged by the services. Writes need ``agent_foncier`` or ``administrateur`` in
scope; resolving a claim sends the ``If-Match`` of the claim read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.bounded import ProcedureDate, StepDate
from api.deps import PrincipalDep, SessionDep, allow
from api.preconditions import PRECONDITION_RESPONSES, IfMatch, etag, expected
from api.problems import language
from api.responses import answer
from api.schemas.records import Open
from sifc.auth.principal import Action, Principal
from sifc.commission import campaigns, claims, display
from sifc.documents import jobs as document_jobs

# A close registers one procedure per parcel in one transaction: up to this many parcels it runs in the
# request (its report in the answer); beyond, as a documents job (202, followed on /document-jobs/{id}).
CLOSE_INLINE_MAX = 300

router = APIRouter(tags=["Campagnes et réclamations"])
Writer = Annotated[Principal, allow(Action.WRITE_TENURE)]
Id = Annotated[str, Path(max_length=64)]
JSON = "application/json"




class CampaignOut(Open):
    """A campaign: its area (WGS 84), state, counts and display periods; no personal field."""

    id: str
    commune_code: str
    name: str
    state: str


class CampaignParcelOut(Open):
    """A parcel of a campaign: its public facts, its presumed holders (named in scope), claims, procedure."""

    parcel_id: str
    nicad: str | None = None
    origin: str
    procedure_id: str | None = None
    open_claims: int
    presumed_holders: list[dict[str, Any]] = Field(default_factory=list, description="Données personnelles.")


class AddedOut(Open):
    """How many parcels joined the campaign, and how many were in it already."""

    added: int
    already: int


class PeriodOut(Open):
    """A display period: its dates (``ends_on`` from ``display_days`` in force on ``starts_on``)."""

    id: str
    campaign_id: str
    starts_on: str
    ends_on: str
    display_days: int
    closed: bool


class ReadyOut(Open):
    """The procedures registered, and the parcels that wait with why (claim_open, disputed, no_presumed_holder…)."""

    registered: list[dict[str, str]]
    waiting: list[dict[str, str]]


class JobQueuedOut(Open):
    """A documents job queued: follow it on ``links.self`` (``/document-jobs/{id}``)."""

    id: str
    status: str
    builder: str
    links: dict[str, str]


class ClaimOut(Open):
    """A claim (réclamation, opposition): claimant, grounds and resolution are personal."""

    id: str
    commune_code: str
    parcel_id: str
    kind: str
    state: str
    received_on: str
    version: int
    claimant_name: str | None = Field(default=None, description="Données personnelles.")
    grounds: str | None = Field(default=None, description="Données personnelles.")


class AreaIn(BaseModel):
    kind: Literal["localite", "section", "bbox"]
    localite_id: str | None = Field(default=None, max_length=64)
    radius_m: float | None = Field(default=None, gt=0, le=20_000, description="Rayon autour de la localité (m).")
    section: str | None = Field(default=None, max_length=64)
    bbox: list[float] | None = Field(default=None, min_length=4, max_length=4,
                                     description="minLon, minLat, maxLon, maxLat (WGS 84).")


class CampaignIn(BaseModel):
    commune_code: str = Field(max_length=100)
    name: str = Field(min_length=1, max_length=200)
    area: AreaIn


class PresumedHolderIn(BaseModel):
    party_id: str = Field(max_length=64)
    share: str = Field(default="1", max_length=32)


class ParcelIn(BaseModel):
    parcel_id: str = Field(max_length=64)
    presumed_holders: list[PresumedHolderIn] = Field(default_factory=list, max_length=50)


class ParcelsIn(BaseModel):
    source: Literal["area", "batch", "parcels"] = Field(description=(
        "`area` : toutes les parcelles en vigueur de la zone ; `batch` : celles d'un lot d'import ; "
        "`parcels` : la liste donnée, avec les détenteurs présumés."))
    batch_id: str | None = Field(default=None, max_length=64)
    parcels: list[ParcelIn] = Field(default_factory=list, max_length=5000)


class PeriodIn(BaseModel):
    starts_on: ProcedureDate
    localite_id: str | None = Field(default=None, max_length=64)


class CloseIn(BaseModel):
    closed_on: ProcedureDate


class ClaimIn(BaseModel):
    parcel_id: str = Field(max_length=64)
    kind: Literal["reclamation", "opposition"] = "reclamation"
    claimant_party_id: str | None = Field(default=None, max_length=64)
    claimant_name: str | None = Field(default=None, max_length=200, description="Nom du réclamant non enregistré.")
    grounds: str = Field(min_length=1, max_length=2000, description="Motifs (données personnelles).")
    received_on: ProcedureDate
    source_ids: list[str] = Field(default_factory=list, max_length=20)


class ClaimDisputeIn(BaseModel):
    kind: str = Field(default="autre", max_length=32, description="Nature du litige (limites, succession…).")
    source_ids: list[str] = Field(default_factory=list, max_length=20, description=(
        "Sources du litige, en plus de celles de la réclamation (plainte, procès-verbal)."))


class ResolutionIn(BaseModel):
    decision: Literal["accepted", "rejected", "disputed"]
    resolved_on: StepDate
    reason: str | None = Field(default=None, max_length=1000, description="Motif (obligatoire pour un rejet).")
    dispute: ClaimDisputeIn = Field(default_factory=ClaimDisputeIn)


# --- campaigns --------------------------------------------------------------------------------

@router.post("/campaigns", response_model=CampaignOut, status_code=201, summary="Ouvrir une campagne systématique")
def create_campaign(body: CampaignIn, session: SessionDep, principal: Writer) -> Response:
    area = campaigns.AreaInput(**body.area.model_dump())
    campaign_id = campaigns.create(session, data=campaigns.CampaignInput(body.commune_code, body.name, area),
                                   by=principal, author=principal.name)
    found = campaigns.get(session, campaign_id=campaign_id, reader=principal)
    return answer(found, status=201, location=f"/campaigns/{campaign_id}")


@router.get("/campaigns", response_model=list[CampaignOut], summary="Les campagnes d'une commune")
def list_campaigns(session: SessionDep, principal: PrincipalDep,
                   commune_code: Annotated[str, Query(max_length=100)]) -> Response:
    return answer(campaigns.list_(session, commune_code=commune_code, reader=principal))


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, summary="Une campagne")
def get_campaign(campaign_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    return answer(campaigns.get(session, campaign_id=campaign_id, reader=principal))


@router.get("/campaigns/{campaign_id}/parcels", response_model=list[CampaignParcelOut],
            summary="Les parcelles d'une campagne et leurs détenteurs présumés")
def campaign_parcels(campaign_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    """Détenteurs présumés : données personnelles, lecteurs du périmètre seulement, chaque lecture journalisée."""
    return answer(campaigns.parcels(session, campaign_id=campaign_id, reader=principal))


@router.post("/campaigns/{campaign_id}/parcels", response_model=AddedOut,
             summary="Ajouter des parcelles à une campagne ouverte")
def add_campaign_parcels(campaign_id: Id, body: ParcelsIn, session: SessionDep, principal: Writer) -> Response:
    data = campaigns.ParcelsInput(source=body.source, batch_id=body.batch_id,
                                  parcels=[p.model_dump() for p in body.parcels])
    return answer(campaigns.add_parcels(session, campaign_id=campaign_id, data=data, by=principal,
                                        author=principal.name))


@router.post("/campaigns/{campaign_id}/display-periods", status_code=201, response_model=PeriodOut,
             summary="Ouvrir l'affichage public (durée : réglage display_days de la commune)")
def open_display(campaign_id: Id, body: PeriodIn, session: SessionDep, principal: Writer) -> Response:
    found = display.open_period(session, campaign_id=campaign_id, starts_on=body.starts_on,
                                localite_id=body.localite_id, by=principal, author=principal.name)
    return answer(found, status=201)


def _job(session: SessionDep, request: Request, principal: Principal, *, builder: str, params: dict[str, Any],
         commune: str) -> Response:
    job_id = document_jobs.submit(session, builder=builder, params=params, commune_code=commune, by=principal,
                                  author=principal.name, lang=language(request))
    found = document_jobs.get(session, job_id=document_jobs.parse_id(job_id), by=principal)
    location = request.app.state.settings.public_base + request.app.url_path_for("get_document_job", job_id=job_id)
    return answer({"id": job_id, "status": found["status"], "builder": builder, "links": {"self": location}},
                  status=202, location=location)


@router.post("/campaigns/{campaign_id}/display-periods/{period_id}/close",
             response_model=PeriodOut | JobQueuedOut,
             summary="Clore l'affichage : une procédure de régularisation par parcelle sans réclamation ouverte")
def close_display(campaign_id: Id, period_id: Id, body: CloseIn, request: Request, session: SessionDep,
                  principal: Writer) -> Response:
    """Jusqu'à 300 parcelles, la clôture se fait dans la requête (rapport : inscrites, en attente et pourquoi) ;
    au-delà, elle passe par une tâche `display_close` (202, suivie sur `Location`)."""
    count = campaigns.parcel_count(session, campaign_id=campaign_id)
    if count > CLOSE_INLINE_MAX:
        commune = campaigns.commune_of(session, campaign_id=campaign_id) or ""
        return _job(session, request, principal, builder="display_close", commune=commune, params={
            "campaign_id": campaign_id, "period_id": period_id, "closed_on": body.closed_on.isoformat()})
    return answer(display.close_period(session, campaign_id=campaign_id, period_id=period_id,
                                       closed_on=body.closed_on, by=principal, author=principal.name))


@router.post("/campaigns/{campaign_id}/display-documents", status_code=202, response_model=JobQueuedOut,
             summary="Imprimer l'affichage public (tâche : carte et liste par localité, chaque feuille scellée)")
def print_display(campaign_id: Id, request: Request, session: SessionDep, principal: Writer) -> Response:
    """Les noms des détenteurs présumés ne sont imprimés que si le réglage `display_shows_names` de la commune
    le prévoit à la date d'impression ; chaque feuille est un document `affichage_public` vérifiable."""
    commune = campaigns.reader_commune(session, campaign_id=campaign_id, reader=principal)
    return _job(session, request, principal, builder="campaign_display", commune=commune,
                params={"campaign_id": campaign_id})


@router.post("/campaigns/{campaign_id}/register", response_model=ReadyOut,
             summary="Inscrire les parcelles en attente dont les réclamations sont résolues")
def register_ready(campaign_id: Id, body: CloseIn, session: SessionDep, principal: Writer) -> Response:
    return answer(display.register_ready(session, campaign_id=campaign_id, registered_on=body.closed_on,
                                         by=principal, author=principal.name))


# --- claims -----------------------------------------------------------------------------------

@router.post("/claims", status_code=201, response_model=ClaimOut,
             summary="Enregistrer une réclamation ou une opposition")
def record_claim(body: ClaimIn, session: SessionDep, principal: Writer) -> Response:
    data = claims.ClaimInput(parcel_id=body.parcel_id, grounds=body.grounds, received_on=body.received_on,
                             kind=body.kind, claimant_party_id=body.claimant_party_id,
                             claimant_name=body.claimant_name, source_ids=body.source_ids)
    claim_id = claims.record(session, data=data, by=principal, author=principal.name)
    found = claims.get(session, claim_id=claim_id, reader=principal)
    return answer(found, status=201, tag=etag("claim", claim_id, found["version"]), location=f"/claims/{claim_id}")


@router.get("/claims", response_model=list[ClaimOut], summary="Les réclamations d'une commune ou d'une campagne")
def list_claims(session: SessionDep, principal: PrincipalDep,
                commune_code: Annotated[str | None, Query(max_length=100)] = None,
                campaign_id: Annotated[str | None, Query(max_length=64)] = None,
                state: Annotated[Literal["received", "accepted", "rejected", "disputed"] | None, Query()] = None
                ) -> Response:
    return answer(claims.list_(session, reader=principal, commune_code=commune_code, campaign_id=campaign_id,
                               state=state))


@router.get("/claims/{claim_id}", response_model=ClaimOut, summary="Une réclamation")
def get_claim(claim_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    found = claims.get(session, claim_id=claim_id, reader=principal)
    return answer(found, tag=etag("claim", found["id"], found["version"]))


@router.post("/claims/{claim_id}/resolve", response_model=ClaimOut, responses=PRECONDITION_RESPONSES,
             summary="Résoudre une réclamation : acceptée, rejetée (motif) ou portée en litige")
def resolve_claim(claim_id: Id, body: ResolutionIn, session: SessionDep, principal: Writer,
                  if_match: IfMatch = None) -> Response:
    version = expected(if_match, "claim", claim_id)
    resolution = claims.Resolution(decision=body.decision, resolved_on=body.resolved_on, reason=body.reason,
                                   dispute=body.dispute.model_dump())
    found = claims.resolve(session, claim_id=claim_id, resolution=resolution, expected_version=version,
                           by=principal, author=principal.name)
    return answer(found, tag=etag("claim", found["id"], found["version"]))
