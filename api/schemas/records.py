"""JSON answers: the tenure register (parties, sources, rights, procedures), journals, lineage, imports.

Field names and types are those the services in ``sifc/tenure``, ``sifc/mutations.py``,
``sifc/imports/jobs.py`` and ``sifc/journal.py`` write. The personal fields (names, identity
numbers, authors) and the officers' free text appear only to readers of the commune in scope
(``sifc.personal``): they are optional here, and a holder out of scope is given by its id alone.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from sifc.imports.parcels import ParcelImportReport

PERSONAL = "Données personnelles : lecteurs habilités du périmètre seulement."
FREE_TEXT = "Texte libre des agents : lecteurs habilités du périmètre seulement."


class Open(BaseModel):
    """An answer that may gain members: clients ignore those they do not know."""

    model_config = ConfigDict(extra="allow")


class PartyOut(Open):
    """A party (person, group, legal person), one version of it."""

    id: str
    version: int
    kind: str
    group_type: str | None = None
    commune_code: str | None = None
    synthetic: bool | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    name: str | None = Field(default=None, description=PERSONAL)
    given_names: str | None = Field(default=None, description=PERSONAL)
    id_number: str | None = Field(default=None, description=PERSONAL)
    contact: str | None = Field(default=None, description=PERSONAL)
    sex: str | None = Field(default=None, description=PERSONAL + " F ou M, facultatif.")
    members: list[str] | None = Field(default=None, description=PERSONAL + " Un groupement : les ids de ses membres.")
    author: str | None = Field(default=None, description=PERSONAL)
    closed_by: str | None = Field(default=None, description=PERSONAL)
    reason: str | None = Field(default=None, description=FREE_TEXT)
    close_reason: str | None = Field(default=None, description=FREE_TEXT)


class SourceFileOut(Open):
    id: str
    source_id: str | None = None
    file_name: str | None = Field(default=None, description=FREE_TEXT)
    media_type: str
    size_bytes: int
    sha256: str
    created_at: datetime | None = None


# The scanned documents a source may hold (``sifc.tenure.sources.SIGNATURES``), served as stored.
SOURCE_FILE_TYPES = {"application/pdf": "PDF", "image/jpeg": "JPEG", "image/png": "PNG", "image/tiff": "TIFF"}


class SourceDocumentOut(Open):
    """A source (deliberation, approval, deed, report…) and its files."""

    id: str
    kind: str
    reference: str | None = None
    document_date: date | None = None
    authority: str | None = None
    council_session: str | None = None
    commune_code: str | None = None
    synthetic: bool | None = None
    created_at: datetime | None = None
    description: str | None = Field(default=None, description=FREE_TEXT)
    files: list[SourceFileOut] = []


class HolderOut(Open):
    """A holder of a right: the party's id, its share, and its name for a reader in scope."""

    party_id: str
    share: str | None = None
    kind: str | None = None
    name: str | None = Field(default=None, description=PERSONAL)
    given_names: str | None = Field(default=None, description=PERSONAL)


class RightOut(Open):
    """A right, restriction or responsibility (RRR), one version of it."""

    id: str
    version: int
    parcel_id: str
    commune_code: str | None = None
    class_: str = Field(alias="class", description="right, restriction ou responsibility.")
    type: str
    status: str | None = None
    tf_number: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    end_cause: str | None = None
    notice_date: date | None = None
    source_ids: list[str] = []
    procedure_id: str | None = None
    predecessor_id: str | None = None
    synthetic: bool | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    holders: list[HolderOut] = []
    author: str | None = Field(default=None, description=PERSONAL)
    closed_by: str | None = Field(default=None, description=PERSONAL)
    description: str | None = Field(default=None, description=FREE_TEXT)
    reason: str | None = Field(default=None, description=FREE_TEXT)
    close_reason: str | None = Field(default=None, description=FREE_TEXT)


class ParcelRightsOut(BaseModel):
    parcel_id: str
    at: datetime | date | None = Field(description="L'instant `at` demandé, tel que donné (date ou date et heure).")
    rights: list[RightOut]


class StepOut(Open):
    seq: int
    step: str
    occurred_on: date | None = None
    source_ids: list[str] = []
    recorded_at: datetime | None = None
    details: dict[str, Any] = {}
    author: str | None = Field(default=None, description=PERSONAL)
    reason: str | None = Field(default=None, description=FREE_TEXT)


class ApplicantOut(Open):
    party_id: str
    share: str | None = None
    name: str | None = Field(default=None, description=PERSONAL)


class ProcedureOut(Open):
    """An assignment procedure (affectation), its steps and, once approved, its right."""

    id: str
    kind: str
    reference: str | None = None
    parcel_id: str | None = None
    commune_code: str | None = None
    follows_rrr_id: str | None = None
    state: str
    version: int
    rrr_id: str | None = None
    synthetic: bool | None = None
    created_at: datetime | None = None
    steps: list[StepOut] = []
    purpose: str | None = None
    applicants: list[ApplicantOut] = Field(default=[], description=PERSONAL)
    created_by: str | None = Field(default=None, description=PERSONAL)
    # Deadline of the awaited step (sifc.tracking.deadlines, ADR 0005 §8).
    deadline: str | None = Field(default=None, description=(
        "`set` : échéance fixée par le délai `target_days` en vigueur ; `none` : aucun délai fixé (pas "
        "d'échéance) ; `closed` : procédure close."))
    next_step: str | None = None
    target_days: int | None = None
    due_on: date | None = None
    overdue: bool | None = None
    days_late: int | None = None
    tracking_code: str | None = Field(default=None, description=(
        "À l'enregistrement seulement : le code de suivi, donné une seule fois (seule son empreinte est gardée)."))


class StepSummary(BaseModel):
    step: str
    occurred_on: date | None


class ProcedureSummary(BaseModel):
    """Where a procedure stands, as a parcel's history shows it to a reader out of scope: not who asked."""

    id: str
    kind: str
    state: str
    rrr_id: str | None
    steps: list[StepSummary]


class ParcelHistoryOut(BaseModel):
    """A parcel's whole story: its versions (GeoJSON Features), its rights' versions, its procedures."""

    parcel_id: str
    versions: list[dict[str, Any]] = Field(description="Les versions, en Features GeoJSON (voir ParcelFeature).")
    rights: list[RightOut]
    procedures: list[ProcedureOut | ProcedureSummary]


class WriteEntry(Open):
    """A write of the journal: who, when, what, before and after."""

    id: str = Field(description="Identifiant de l'écriture (uuid ordonné dans le temps).")
    node_id: str | None = Field(default=None, description="Le nœud qui l'a écrite.")
    occurred_at: datetime
    actor_kind: str | None = None
    actor_id: int | str | None = Field(default=None, description="Le compte ou la clé d'API de l'auteur.")
    actor: str | None = Field(default=None, description=PERSONAL)
    role: str | None = None
    operation: str
    object_kind: str | None = None
    object_id: str | None = None
    parcel_id: str | None = None
    commune_code: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class ParcelAuditOut(BaseModel):
    parcel_id: str
    limit: int
    offset: int
    entries: list[WriteEntry]


class WriteLogOut(BaseModel):
    limit: int
    offset: int
    entries: list[WriteEntry]


class LineageParcel(BaseModel):
    id: str
    version: int
    nicad: str | None


class MutationOut(Open):
    id: str
    operation: str
    occurred_on: date
    recorded_at: datetime
    source_ids: list[str]
    details: dict[str, Any] | None = None
    parents: list[LineageParcel]
    children: list[LineageParcel]
    author: str | None = Field(default=None, description=PERSONAL)
    reason: str | None = Field(default=None, description=FREE_TEXT)


class LineageOut(BaseModel):
    """Where a parcel comes from (ancestors), what it became (descendants), its boundary corrections."""

    parcel_id: str
    ancestors: list[MutationOut]
    descendants: list[MutationOut]
    corrections: list[MutationOut]


class MutationResultOut(Open):
    """A recorded mutation: its parents, its children and what became of the parents' rights."""

    mutation_id: str
    operation: str
    parents: list[str]
    children: list[str]
    rights: dict[str, Any] | None = Field(
        default=None, description="Par droit du parent : `close`, ou les droits qui le reportent sur les enfants.")
    version: int | None = Field(default=None, description="Rectification de limite : la nouvelle version.")


class ImportFailure(BaseModel):
    key: str | None
    stage: str | None
    message: str | None


class ImportLinks(BaseModel):
    self: str
    report: str | None = None
    rejects: str | None = None
    retry: str | None = None


class ImportJobOut(Open):
    """An import job: its stage, its progress, its summary once done, the links to follow."""

    id: str
    status: str
    stage: str | None = None
    progress_done: int | None = None
    progress_total: int | None = None
    file_name: str | None = None
    size_bytes: int | None = None
    options: dict[str, Any] | None = None
    dry_run: bool | None = None
    attempts: int | None = None
    error: ImportFailure | None = None
    batch_id: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    summary: dict[str, Any] | None = Field(default=None, description="Lus, acceptés, rejetés, doublons, changements.")
    links: ImportLinks


class ImportJobsOut(BaseModel):
    jobs: list[ImportJobOut]
    limit: int
    offset: int


def _open_model_of(source: type, *, name: str, doc: str, descriptions: dict[str, str]) -> type[Open]:
    """An answer model with the members of a dataclass of the domain (their types and defaults), open to more:
    the schema follows the dataclass instead of repeating it."""
    hints = get_type_hints(source)
    members: dict[str, Any] = {}
    for member in dataclasses.fields(source):
        described = descriptions.get(member.name)
        if member.default is not dataclasses.MISSING:
            default = Field(member.default, description=described)
        elif member.default_factory is not dataclasses.MISSING:
            default = Field(default_factory=member.default_factory, description=described)
        else:
            default = Field(description=described)
        members[member.name] = (hints[member.name], default)
    model: type[Open] = create_model(name, __base__=Open, __doc__=doc, **members)
    return model


ImportReportOut = _open_model_of(
    ParcelImportReport, name="ImportReportOut",
    doc="""The whole report of a finished import job (counts, rejects and warnings by reason, timings).

    The members of ``sifc.imports.parcels.ParcelImportReport``, with its defaults: a report stored by
    an earlier version may lack the newer ones.""",
    descriptions={"mapping": "Attribut SIFC : colonne du fichier.",
                  "communes": "Code de commune : parcelles acceptées.",
                  "issues": "Toutes les anomalies, une par entité.",
                  "timings": "Secondes par étape.",
                  "bornes": "Tableau de bornes : ses points au registre des bornes (read, distinct, new, changed, "
                            "unchanged, outside)."})


class VerificationOut(Open):
    """Whether a document is one SIFC issued, unchanged; with what it certifies when it is."""

    authentic: bool
    status: str
    code: str | None = None
    issued: bool | None = None
    kind: str | None = None
    issued_at: datetime | None = None
    checks: dict[str, bool] | None = None
    certifies: dict[str, Any] | None = None

    sealed_by_node: str | None = Field(default=None, description=(
        "Le nœud de la fédération dont la clé a scellé le document (identifiant du nœud) ; null si inconnu."))
    verified_by: Literal["register", "seal"] | None = Field(default=None, description=(
        "`register` : le document figure au registre de ce nœud, fichier identique ; `seal` : document d'un "
        "autre nœud, vérifié par sa seule signature (les faits certifiés sont ceux qu'il a signés)."))
    reason: str | None = Field(default=None, description=(
        "Pourquoi le document n'est pas authentique : unreadable, key_unknown, code_mismatch, not_issued, "
        "file_changed."))
    detail: str | None = Field(default=None, description="La raison, en clair.")

# The queryables and sortables of a collection (OGC API - Features, Part 3): a JSON Schema of its properties.
JSON_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "properties"],
    "description": "Schéma JSON (2020-12) des propriétés de la collection.",
    "properties": {"$schema": {"type": "string"}, "$id": {"type": "string"}, "type": {"const": "object"},
                   "title": {"type": "string"},
                   "properties": {"type": "object", "additionalProperties": {"type": "object"}},
                   "additionalProperties": {"type": "boolean"}}}
# The OGC API's own definition, in OpenAPI 3.0 (clients of Part 1 read it, not this 3.1 document).
OPENAPI_30_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["openapi", "info", "paths"],
    "description": "Document OpenAPI 3.0 de l'API OGC.",
    "properties": {"openapi": {"type": "string"}, "info": {"type": "object"}, "paths": {"type": "object"},
                   "servers": {"type": "array"}, "components": {"type": "object"}}}
