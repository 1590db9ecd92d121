"""Administration: subject access requests (loi 2008-12) and the access audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from api.deps import SessionDep, allow
from api.problems import language
from sifc.auth import subjects
from sifc.auth.principal import Action, Principal

router = APIRouter(prefix="/admin", tags=["Administration"])
Administrator = Annotated[Principal, allow(Action.MANAGE_ACCOUNTS)]


class SubjectOut(BaseModel):
    query: str = Field(description="La personne demandée, telle qu'écrite.")
    name: str = Field(description="Le nom sous lequel elle apparaît dans les données (identifiant du compte).")
    user_id: int | None = Field(description="Son compte, si elle en a un.")
    audit_kind: str = Field(description="Comment le journal d'accès la désigne : `app_user` ou `person`.")
    audit_id: str = Field(description="Son identifiant dans le journal (jamais son nom).")
    party_ids: list[str] = Field(default_factory=list, description=(
        "Les parties (registre foncier) qui la désignent : nom complet, numéro d'identité ou identifiant."))


class RowsOut(BaseModel):
    count: int = Field(description="Nombre total de lignes.")
    truncated: bool = Field(description="Plus de lignes que `limit` : relancer avec un `limit` plus grand.")
    rows: list[dict[str, Any]]


class SourceOut(RowsOut):
    name: str
    table: str
    column: str
    description: str


class NodeToAsk(BaseModel):
    node_id: str
    pole_code: str | None
    url: str = Field(description="L'adresse du nœud du pôle, où adresser la demande.")


class FederationNoteOut(BaseModel):
    identities_held: bool = Field(description="Faux : ce nœud (national) ne détient pas l'identité des personnes.")
    personal: str = Field(description="Où sont les données personnelles : `pole` (au nœud de chaque pôle).")
    message: str
    ask: list[NodeToAsk] = Field(description="Les nœuds des pôles à qui adresser la demande.")


class SubjectReportOut(BaseModel):
    subject: SubjectOut
    generated_at: datetime
    sources: list[SourceOut] = Field(description="Chaque source de données personnelles et ses lignes.")
    reads: RowsOut = Field(description="Qui a lu ses données : journal d'accès, cette demande comprise.")
    federation: FederationNoteOut | None = Field(default=None, description=(
        "Au nœud national seulement, quand les identités restent aux pôles (`personal = pole`) : il le dit et "
        "nomme les pôles à qui demander ; les sources ne portent alors que sur les identifiants de parties."))


class AuditPage(RowsOut):
    limit: int
    offset: int
    next_offset: int | None


def _rows(found: subjects.Rows) -> dict[str, Any]:
    return {"count": found.count, "truncated": found.truncated, "rows": found.rows}


@router.get("/subjects/{subject}", response_model=SubjectReportOut, response_model_exclude_unset=True,
            summary="Droit d'accès : tout ce qui est détenu sur une personne, et qui l'a lu")
def subject_access_request(
    subject: Annotated[str, Path(min_length=1, max_length=subjects.MAX_QUERY_LENGTH,
                                 description="Identifiant ou numéro de compte, ou nom tel qu'écrit dans les données.")],
    principal: Administrator, session: SessionDep, request: Request,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Lignes au plus par source.")] = 1000,
) -> SubjectReportOut:
    """Réponse à une demande d'accès (loi 2008-12) : les lignes de chaque source de données
    personnelles qui nomment la personne (compte, sessions, clés créées, versions de parcelles
    écrites ou closes, imports) et le journal de qui a lu ses données.

    La lecture est elle-même inscrite au journal d'accès (réservé à l'administrateur).
    """
    report = subjects.access_request(session, principal, query=subject, limit=limit)
    return SubjectReportOut.model_validate(subjects.as_dict(report, language(request)))


@router.get("/audit", response_model=AuditPage, summary="Journal des accès aux données personnelles")
def audit_log(
    principal: Administrator, session: SessionDep,
    subject: Annotated[str | None, Query(max_length=200, description=(
        "Identifiant de ce qui a été lu (`subject_id` : identifiant d'une parcelle, d'un compte…).")) ] = None,
    subject_kind: Annotated[str | None, Query(max_length=50, description="`parcel`, `app_user`, `person`…")] = None,
    user: Annotated[str | None, Query(max_length=100, description="Qui a lu (compte ou application).")] = None,
    since: Annotated[datetime | None, Query(description="Depuis cette date (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditPage:
    """Les lectures de données personnelles, les plus récentes d'abord, filtrées et paginées."""
    page = subjects.list_audit(session, principal, subject=subject, subject_kind=subject_kind, user=user, since=since,
                               limit=limit, offset=offset)
    following = offset + limit if offset + limit < page.count else None
    return AuditPage(limit=limit, offset=offset, next_offset=following, **_rows(page))
