"""Tenure: parties, sources and their files, rights, the affectation procedure, history, write audit.

Writes need ``agent_foncier`` or ``administrateur`` in the commune's scope (checked by the
services in the writing transaction) and, on an existing record, the ``If-Match`` of the version
read (412 if stale, 428 if missing). Personal fields (holders, identity numbers, contacts,
authors) go only to signed-in roles whose scope covers the commune, and each such read is
written to the access audit: both decided by the services, given the caller as ``reader``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.bounded import (
    JsonDetails,
    NoticeDate,
    ProcedureDate,
    RightEndDate,
    RightStart,
    SourceDate,
    StepDate,
)
from api.deps import PrincipalDep, SessionDep, SettingsDep, allow
from api.preconditions import PRECONDITION_RESPONSES, IfMatch, etag, expected
from api.preconditions import AtParam as At
from api.responses import answer, binary
from api.schemas.records import (
    SOURCE_FILE_TYPES,
    ParcelAuditOut,
    ParcelHistoryOut,
    ParcelRightsOut,
    PartyOut,
    ProcedureOut,
    RightOut,
    SourceDocumentOut,
    SourceFileOut,
    WriteLogOut,
)
from sifc import history, journal
from sifc.auth.principal import ANONYMOUS, Action, Principal
from sifc.parcels import service as parcel_service
from sifc.tenure import parties, procedures, rights, sources
from sifc.tracking import codes as tracking_codes
from sifc.tracking import deadlines
from sifc.versioning import instant

router = APIRouter(tags=["Foncier"])
Writer = Annotated[Principal, allow(Action.WRITE_TENURE)]
Id = Annotated[str, Path(max_length=64)]
JSON = "application/json"




# --- parties -------------------------------------------------------------------------------

class PartyIn(BaseModel):
    kind: Literal["natural_person", "group", "legal_entity"]
    group_type: Literal["famille", "gie", "association", "cooperative", "autre"] | None = None
    name: str = Field(min_length=1, max_length=200, description="Nom (personne), dénomination (groupement, entité).")
    given_names: str | None = Field(default=None, max_length=200)
    id_number: str | None = Field(default=None, max_length=64, description="NIN, CNI, passeport, NINEA.")
    contact: str | None = Field(default=None, max_length=200)
    members: list[str] | None = Field(default=None, max_length=500, description="Membres d'un groupement (parties).")
    commune_code: str = Field(max_length=100, description="La commune qui enregistre la partie (son périmètre).")
    sex: Literal["F", "M"] | None = Field(default=None, description=(
        "Facultatif, personne physique seulement : donnée personnelle, publiée seulement en agrégats (indicateurs)."))
    reason: str | None = Field(default=None, max_length=500)


class PartyPatch(BaseModel):
    group_type: Literal["famille", "gie", "association", "cooperative", "autre"] | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    given_names: str | None = Field(default=None, max_length=200)
    id_number: str | None = Field(default=None, max_length=64)
    contact: str | None = Field(default=None, max_length=200)
    members: list[str] | None = Field(default=None, max_length=500)
    sex: Literal["F", "M"] | None = None
    reason: str = Field(min_length=1, max_length=500)


@router.post("/parties", response_model=PartyOut, status_code=201,
             summary="Enregistrer une partie (personne, groupement, personne morale)")
def create_party(body: PartyIn, session: SessionDep, principal: Writer) -> Response:
    values = body.model_dump(exclude={"reason"})
    party_id = parties.create(session, data=parties.PartyInput(values, body.reason), by=principal,
                              author=principal.name)
    party = parties.as_written(session, party_id=party_id, by=principal)
    return answer(party, status=201, tag=etag("party", party_id, party["version"]),
                  location=f"/parties/{party_id}")


@router.get("/parties/{party_id}", response_model=PartyOut,
            summary="Une partie (données personnelles : rôles connectés, dans leur périmètre)")
def get_party(party_id: Id, session: SessionDep, principal: PrincipalDep, at: At = None) -> Response:
    """Une partie hors du périmètre du lecteur répond comme une partie inexistante (404)."""
    party = parties.get(session, party_id=party_id, reader=principal, at=instant(at))
    return answer(party, tag=etag("party", party["id"], party["version"]) if at is None else None)


@router.get("/parties/{party_id}/versions", response_model=list[PartyOut], summary="Toutes les versions d'une partie")
def party_versions(party_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    return answer(parties.versions(session, party_id=party_id, reader=principal))


@router.patch("/parties/{party_id}", response_model=PartyOut, responses=PRECONDITION_RESPONSES,
              summary="Modifier une partie (nouvelle version)")
def update_party(party_id: Id, body: PartyPatch, session: SessionDep, principal: Writer,
                 if_match: IfMatch = None) -> Response:
    version = expected(if_match, "party", party_id)
    parties.update(session, party_id=party_id, data=parties.PartyInput(body.model_dump(exclude_unset=True,
                   exclude={"reason"}), body.reason), expected_version=version, by=principal, author=principal.name)
    party = parties.as_written(session, party_id=party_id, by=principal)
    return answer(party, tag=etag("party", party["id"], party["version"]))


# --- sources ---------------------------------------------------------------------------------

class SourceIn(BaseModel):
    kind: Literal["deliberation", "approbation", "acte", "plan", "proces_verbal", "notification",
                  "decision_justice", "certificat", "autre"]
    document_date: SourceDate
    commune_code: str = Field(max_length=100)
    reference: str | None = Field(default=None, max_length=100, description="Numéro (délibération, acte, PV).")
    authority: str | None = Field(default=None, max_length=100, description=(
        "Approbation : sous_prefet, prefet ou gouverneur ; sinon l'autorité qui a établi le document."))
    council_session: str | None = Field(default=None, max_length=200, description="Délibération : la session.")
    description: str | None = Field(default=None, max_length=1000)


@router.post("/sources", response_model=SourceDocumentOut, status_code=201,
             summary="Enregistrer une source (délibération, approbation, acte, PV…)")
def create_source(body: SourceIn, session: SessionDep, principal: Writer) -> Response:
    source_id = sources.create(session, data=sources.SourceInput(**body.model_dump()), by=principal,
                               author=principal.name)
    return answer(sources.as_written(session, source_id=source_id, by=principal), status=201,
                  location=f"/sources/{source_id}")


@router.get("/sources/{source_id}", response_model=SourceDocumentOut, summary="Une source et la liste de ses documents")
def get_source(source_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    return answer(sources.get(session, source_id=source_id, reader=principal))


@router.post("/sources/{source_id}/files", response_model=SourceFileOut, status_code=201,
             summary="Joindre un document numérisé (PDF, JPEG, PNG, TIFF) à une source")
def attach_file(source_id: Id, session: SessionDep, settings: SettingsDep, principal: Writer,
                file: Annotated[UploadFile, File(description="Le document.")]) -> Response:
    content = file.file.read(settings.max_document_bytes + 1)
    described = sources.attach(session, source_id=source_id, file_name=file.filename or "document", content=content,
                               max_bytes=settings.max_document_bytes, by=principal, author=principal.name)
    return answer(described, status=201, location=f"/sources/{source_id}/files/{described['id']}")


@router.get("/sources/{source_id}/files/{file_id}", responses=binary(SOURCE_FILE_TYPES),
            response_class=Response, summary="Télécharger un document d'une source")
def download_file(source_id: Id, file_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    name, media_type, content, digest = sources.file(session, source_id=source_id, file_id=file_id, reader=principal)
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    return Response(content, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{safe}"', "ETag": f'"{digest}"',
        "Digest": f"sha-256={digest}", "X-Content-Type-Options": "nosniff"})


# --- rights, restrictions, responsibilities ---------------------------------------------------

class HolderIn(BaseModel):
    party_id: str = Field(max_length=64)
    share: str = Field(default="1", max_length=32, description="Quote-part : 1, 1/2, 0.25…")


class RightIn(BaseModel):
    type: Literal["bail", "titre_foncier", "droit_superficie", "occupation", "servitude", "zone_reservee", "litige",
                  "mise_en_valeur", "entretien", "affectation"]
    start_date: RightStart
    source_ids: list[str] = Field(min_length=1, max_length=20)
    holders: list[HolderIn] = Field(default_factory=list, max_length=200)
    tf_number: str | None = Field(default=None, max_length=64, description="Titre foncier : numéro au livre foncier.")
    description: str | None = Field(default=None, max_length=1000)
    reason: str | None = Field(default=None, max_length=500)


class RightPatch(BaseModel):
    holders: list[HolderIn] | None = Field(default=None, max_length=200)
    tf_number: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=1000)
    source_ids: list[str] | None = Field(default=None, min_length=1, max_length=20)
    reason: str = Field(min_length=1, max_length=500)


class RightEnd(BaseModel):
    end_date: RightEndDate
    cause: Literal["desaffectation", "deces", "dissolution", "renonciation", "expiration", "mainlevee",
                   "resiliation", "autre"]
    source_ids: list[str] = Field(default_factory=list, max_length=20)
    notice_date: NoticeDate | None = Field(default=None, description="Désaffectation : la date de la mise en demeure.")
    reason: str = Field(min_length=1, max_length=500)


@router.get("/parcels/{parcel_id}/rights", response_model=ParcelRightsOut,
            summary="Droits, restrictions et responsabilités d'une parcelle")
def parcel_rights(parcel_id: Id, session: SessionDep, principal: PrincipalDep, at: At = None) -> Response:
    """Titulaires et quotes-parts seulement aux rôles connectés dont le périmètre couvre la parcelle."""
    # 404/410 for an unknown or retired parcel; its public form, which reveals nothing (and logs nothing).
    parcel_service.get(session, parcel_id=parcel_id, reader=ANONYMOUS, at=instant(at))
    found = rights.for_parcel(session, parcel_id=parcel_id, reader=principal, at=instant(at))
    return answer({"parcel_id": parcel_id, "at": at.isoformat() if at else None, "rights": found})


@router.post("/parcels/{parcel_id}/rights", response_model=RightOut, status_code=201,
             summary="Inscrire un droit (bail, titre foncier…), une restriction (servitude, litige…) "
             "ou une responsabilité")
def create_right(parcel_id: Id, body: RightIn, session: SessionDep, principal: Writer) -> Response:
    """Une affectation n'est pas inscrite ici : elle résulte d'une procédure achevée (`POST /procedures`)."""
    data = rights.RightInput(type=body.type, start_date=body.start_date, source_ids=body.source_ids,
                             holders=[h.model_dump() for h in body.holders], tf_number=body.tf_number,
                             description=body.description, reason=body.reason)
    rrr_id = rights.create(session, parcel_id=parcel_id, data=data, by=principal, author=principal.name)
    found = rights.as_written(session, rrr_id=rrr_id, by=principal)
    return answer(found, status=201, tag=etag("rrr", rrr_id, found["version"]), location=f"/rights/{rrr_id}")


@router.get("/rights/{rrr_id}", response_model=RightOut, summary="Un droit, une restriction ou une responsabilité")
def get_right(rrr_id: Id, session: SessionDep, principal: PrincipalDep, at: At = None) -> Response:
    found = rights.get(session, rrr_id=rrr_id, reader=principal, at=instant(at))
    return answer(found, tag=etag("rrr", found["id"], found["version"]) if at is None else None)


@router.get("/rights/{rrr_id}/versions", response_model=list[RightOut], summary="Toutes les versions d'un droit")
def right_versions(rrr_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    return answer(rights.versions(session, rrr_id=rrr_id, reader=principal))


@router.patch("/rights/{rrr_id}", response_model=RightOut, responses=PRECONDITION_RESPONSES,
              summary="Modifier un droit (nouvelle version)")
def update_right(rrr_id: Id, body: RightPatch, session: SessionDep, principal: Writer,
                 if_match: IfMatch = None) -> Response:
    """Titulaires et quotes-parts d'un bail ou d'un titre foncier ; une affectation ne change jamais de titulaire."""
    version = expected(if_match, "rrr", rrr_id)
    changes = body.model_dump(exclude_unset=True, exclude={"reason"})
    rights.update(session, rrr_id=rrr_id, changes=changes, reason=body.reason, expected_version=version, by=principal,
                  author=principal.name)
    found = rights.as_written(session, rrr_id=rrr_id, by=principal)
    return answer(found, tag=etag("rrr", found["id"], found["version"]))


@router.post("/rights/{rrr_id}/end", response_model=RightOut, responses=PRECONDITION_RESPONSES,
             summary="Mettre fin à un droit (désaffectation, décès, mainlevée d'un litige…)")
def end_right(rrr_id: Id, body: RightEnd, session: SessionDep, principal: Writer,
              if_match: IfMatch = None) -> Response:
    version = expected(if_match, "rrr", rrr_id)
    rights.end(session, rrr_id=rrr_id, end_date=body.end_date, cause=body.cause, source_ids=body.source_ids,
               reason=body.reason, notice_date=body.notice_date, expected_version=version, by=principal,
               author=principal.name)
    found = rights.as_written(session, rrr_id=rrr_id, by=principal)
    return answer(found, tag=etag("rrr", found["id"], found["version"]))


# --- the commission domaniale's procedure ----------------------------------------------------

class ApplicantIn(HolderIn):
    pass


class ProcedureIn(BaseModel):
    kind: Literal["affectation", "desaffectation", "reaffectation_heritiers", "regularisation"] = Field(
        default="affectation", description=(
            "Le type de demande, parmi ceux que la commune ouvre (réglage `procedure_kinds`)."))
    parcel_id: str = Field(max_length=64)
    applicants: list[ApplicantIn] = Field(min_length=1, max_length=200)
    registered_on: ProcedureDate
    purpose: str | None = Field(default=None, max_length=500, description="L'usage demandé (habitation…).")
    reference: str | None = Field(default=None, max_length=100, description="Numéro d'enregistrement de la demande.")
    follows_rrr_id: str | None = Field(default=None, max_length=64, description=(
        "Demande des ayants droit : l'affectation terminée par le décès de son titulaire."))
    source_ids: list[str] = Field(default_factory=list, max_length=20)


class StepIn(BaseModel):
    step: Literal["surveyed", "deliberated", "approved", "notified", "refused", "deferred"]
    occurred_on: StepDate
    source_ids: list[str] = Field(default_factory=list, max_length=20)
    details: JsonDetails = Field(default_factory=dict, description=(
        "Constat : `neighbours_consulted` (true), `neighbour_parcel_ids`, observations."))
    reason: str | None = Field(default=None, max_length=1000, description="Motif d'un refus ou d'un ajournement.")


def with_deadline(session: Any, found: dict[str, Any]) -> dict[str, Any]:
    """A procedure's answer with its deadline (``due_on``, ``overdue``: ``sifc.tracking.deadlines``)."""
    return {**found, **deadlines.of_procedure(session, procedure=found).as_json()}


@router.post("/procedures", response_model=ProcedureOut, status_code=201,
             summary="Enregistrer une demande (affectation, désaffectation, réaffectation, régularisation)")
def register_procedure(body: ProcedureIn, session: SessionDep, principal: Writer) -> Response:
    data = procedures.ProcedureInput(parcel_id=body.parcel_id, applicants=[a.model_dump() for a in body.applicants],
                                     registered_on=body.registered_on, purpose=body.purpose, reference=body.reference,
                                     follows_rrr_id=body.follows_rrr_id, source_ids=body.source_ids, kind=body.kind)
    procedure_id = procedures.register(session, data=data, by=principal, author=principal.name)
    found = procedures.as_written(session, procedure_id=procedure_id, by=principal)
    # The tracking code, shown this once (only its hash is kept); a printed récépissé issues another.
    found = {**with_deadline(session, found), "tracking_code": tracking_codes.issued_now(session, procedure_id)}
    return answer(found, status=201, tag=etag("procedure", procedure_id, found["version"]),
                  location=f"/procedures/{procedure_id}")


@router.get("/procedures/{procedure_id}", response_model=ProcedureOut,
            summary="Une procédure, ses étapes et ses documents")
def get_procedure(procedure_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    found = with_deadline(session, procedures.get(session, procedure_id=procedure_id, reader=principal))
    return answer(found, tag=etag("procedure", found["id"], found["version"]))


@router.post("/procedures/{procedure_id}/steps", response_model=ProcedureOut, responses=PRECONDITION_RESPONSES,
             summary="Inscrire l'étape suivante, un ajournement ou un refus")
def advance_procedure(procedure_id: Id, body: StepIn, session: SessionDep, principal: Writer,
                      if_match: IfMatch = None) -> Response:
    """La notification achève la procédure et crée l'affectation ; un refus la clôt sans droit."""
    version = expected(if_match, "procedure", procedure_id)
    step = procedures.StepInput(step=body.step, occurred_on=body.occurred_on, source_ids=body.source_ids,
                                details=body.details, reason=body.reason)
    found = procedures.advance(session, procedure_id=procedure_id, step=step, expected_version=version,
                               by=principal, author=principal.name)
    found = with_deadline(session, found)
    return answer(found, tag=etag("procedure", found["id"], found["version"]))


@router.get("/parcels/{parcel_id}/procedures", response_model=list[ProcedureOut],
            summary="Les procédures d'une parcelle")
def parcel_procedures(parcel_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    return answer(procedures.for_parcel(session, parcel_id=parcel_id, reader=principal))


# --- history and the write audit ---------------------------------------------------------------

@router.get("/parcels/{parcel_id}/history", response_model=ParcelHistoryOut,
            summary="L'historique complet d'une parcelle : versions, droits, procédures")
def parcel_history(parcel_id: Id, session: SessionDep, principal: PrincipalDep,
                   crs: Annotated[Literal["EPSG:4326", "EPSG:32628"], Query()] = "EPSG:4326") -> Response:
    """Titulaires, auteurs et demandeurs seulement aux rôles connectés dont le périmètre couvre la parcelle."""
    srid = int(crs.split(":")[1])
    return answer(history.parcel_history(session, parcel_id=parcel_id, reader=principal, crs=srid))


@router.get("/parcels/{parcel_id}/audit", response_model=ParcelAuditOut,
            summary="Le journal des écritures d'une parcelle (avant, après, qui, quand)")
def parcel_audit(parcel_id: Id, session: SessionDep, principal: PrincipalDep,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100,
                 offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Response:
    rows = history.parcel_writes(session, parcel_id=parcel_id, reader=principal, limit=limit, offset=offset)
    return answer({"parcel_id": parcel_id, "limit": limit, "offset": offset, "entries": rows})


@router.get("/admin/writes", response_model=WriteLogOut, tags=["Administration"],
            summary="Le journal des écritures (les communes du périmètre)")
def write_log(session: SessionDep, admin: Annotated[Principal, allow(Action.MANAGE_ACCOUNTS)],
              object_kind: Annotated[str | None, Query(max_length=40)] = None,
              object_id: Annotated[str | None, Query(max_length=64)] = None,
              actor: Annotated[str | None, Query(max_length=100)] = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 100,
              offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Response:
    rows = journal.write_log(session, admin, object_kind=object_kind, object_id=object_id, actor=actor,
                             limit=limit, offset=offset)
    return answer({"limit": limit, "offset": offset, "entries": rows})

