"""Subject access requests (loi 2008-12, art. 62 : droit d'accès) and the access audit listing.

An administrator produces everything the system holds about one person, and the log of who read
it. What counts as personal data is a registry, :data:`SOURCES`: each entry names a table, the
column that names the person, and which of the person's identifiers that column holds (their
name as written in provenance fields, or their account id). The queries are built from the
registry with SQLAlchemy Core over the tables of :mod:`sifc.models` — identifiers quoted by the
dialect, the person's name or id always a bound parameter, never text in the SQL.

The tenure issues register their parties the same way: a source keyed by ``party_id`` (and a
resolver turning the request into that id), with ``audit_kind="party"`` so that the reads of the
party's records join the log.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, Table, Text, and_, cast, false, func, or_, select
from sqlalchemy.orm import Session

from sifc import models
from sifc.auth import audit
from sifc.auth.principal import Principal
from sifc.errors import InvalidInput

Key = Literal["name", "user_id"]
SAR_ENDPOINT = "/admin/subjects/{subject}"
SAR_PURPOSE = "subject_access_request"
MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class PersonalDataSource:
    """One place where personal data about a person is held.

    ``column`` of ``table`` holds the person's identifier ``key``; ``columns`` are what the
    answer shows of each row (never a secret: no password or key hash); ``where`` adds constant
    conditions (bound too). When rows of the source are themselves read through audited
    endpoints, ``audit_kind``/``audit_key`` tell how: the log's ``(subject_kind, subject_id)``.
    """

    name: str
    table: str
    column: str
    key: Key
    columns: tuple[str, ...]
    description: str
    where: tuple[tuple[str, str], ...] = ()
    audit_kind: str | None = None
    audit_key: str | None = None

    def sa_table(self) -> Table:
        """The table, as declared in :mod:`sifc.models` (an unknown name fails at once)."""
        return models.metadata.tables[self.table]


SOURCES: tuple[PersonalDataSource, ...] = (
    PersonalDataSource("account", "app_user", "username", "name",
                       ("id", "username", "role", "active", "failed_attempts", "locked_until", "last_login_at",
                        "created_by", "created_at"),
                       "Compte de l'utilisateur (sans le condensat du mot de passe)."),
    PersonalDataSource("account_scope", "app_user_scope", "user_id", "user_id", ("level", "code"),
                       "Périmètre du compte."),
    PersonalDataSource("sessions", "refresh_token", "user_id", "user_id",
                       ("family_id", "issued_at", "expires_at", "used_at", "revoked_at"),
                       "Sessions ouvertes (jetons de rafraîchissement, sans leur valeur)."),
    PersonalDataSource("accounts_created", "app_user", "created_by", "name", ("id", "username", "role", "created_at"),
                       "Comptes créés par la personne."),
    PersonalDataSource("api_keys_created", "api_key", "created_by", "name",
                       ("prefix", "name", "role", "created_at", "expires_at", "revoked_at", "last_used_at"),
                       "Clés d'API créées par la personne (sans leur secret)."),
    PersonalDataSource("parcel_versions_authored", "parcel_version", "author", "name",
                       ("parcel_id", "version", "commune_code", "nicad", "action", "reason", "batch_id", "valid_from"),
                       "Versions de parcelles écrites par la personne (auteur).",
                       audit_kind="parcel", audit_key="parcel_id"),
    PersonalDataSource("parcel_versions_closed", "parcel_version", "closed_by", "name",
                       ("parcel_id", "version", "commune_code", "nicad", "valid_to", "close_reason"),
                       "Versions de parcelles closes par la personne.",
                       audit_kind="parcel", audit_key="parcel_id"),
    PersonalDataSource("import_batches", "import_batch", "created_by", "name",
                       ("id", "kind", "file_name", "sha256", "created_at"),
                       "Lots importés par la personne."),
    PersonalDataSource("import_jobs", "import_job", "created_by", "name",
                       ("id", "kind", "status", "file_name", "size_bytes", "dry_run", "created_at", "finished_at"),
                       "Tâches d'import soumises par la personne."),
    PersonalDataSource("reads_by_subject", "access_audit", "actor_id", "user_id",
                       ("occurred_at", "method", "endpoint", "subject_kind", "subject_id", "commune_code", "purpose"),
                       "Lectures de données personnelles faites par la personne (journal d'accès).",
                       where=(("actor_kind", "user"),)),
)


@dataclass(frozen=True)
class Subject:
    """The person a request is about: the name provenance fields hold, and their account if any.

    ``audit_kind``/``audit_id`` name the person in the access log: their account id, or for a
    name without an account a digest of it (the log holds no name, ``sifc.auth.audit``).
    """

    query: str
    name: str
    user_id: int | None
    audit_kind: str
    audit_id: str

    def identifier(self, key: Key) -> str | int | None:
        """The person's identifier of kind ``key`` (``None``: this kind of source cannot name them)."""
        return self.name if key == "name" else self.user_id


@dataclass(frozen=True)
class Rows:
    """Rows of one source (at most ``limit``), their total count, and whether some were left out."""

    count: int
    rows: list[dict[str, Any]]

    @property
    def truncated(self) -> bool:
        """Whether rows were left out (the count exceeds the rows returned)."""
        return self.count > len(self.rows)


@dataclass(frozen=True)
class SubjectReport:
    """What a subject access request answers."""

    subject: Subject
    generated_at: datetime
    sources: list[tuple[PersonalDataSource, Rows]]
    reads: Rows
    limit: int = field(default=1000)


def as_dict(report: SubjectReport) -> dict[str, Any]:
    """The report as plain data (the API's answer and ``sifc admin subject --json``)."""

    def rows(found: Rows) -> dict[str, Any]:
        return {"count": found.count, "truncated": found.truncated, "rows": found.rows}

    who = report.subject
    return {
        "subject": {"query": who.query, "name": who.name, "user_id": who.user_id, "audit_kind": who.audit_kind,
                    "audit_id": who.audit_id},
        "generated_at": report.generated_at,
        "sources": [{"name": source.name, "table": source.table, "column": source.column,
                     "description": source.description, **rows(found)} for source, found in report.sources],
        "reads": rows(report.reads),
    }


def resolve(session: Session, query: str) -> Subject:
    """The person named by ``query``: an account id (digits) or name, or else a name as written.

    Names are compared without regard to case, as provenance fields were once typed by hand.
    """
    text = (query or "").strip()
    if not text or len(text) > MAX_QUERY_LENGTH or "\x00" in text:
        raise InvalidInput("admin.bad_subject", limit=MAX_QUERY_LENGTH)
    user = models.app_user
    condition = func.lower(user.c.username) == text.lower()
    if text.isdigit() and len(text) < 19:
        condition = or_(user.c.id == int(text), condition)
    row = session.execute(select(user.c.id, user.c.username).where(condition)
                          .order_by((user.c.username == text).desc()).limit(1)).first()
    if row is not None:
        return Subject(text, row.username, int(row.id), "app_user", str(row.id))
    digest = hashlib.sha256(text.lower().encode("utf-8")).hexdigest()[:32]
    return Subject(text, text, None, "person", f"sha256:{digest}")


def _matches(source: PersonalDataSource, subject: Subject) -> ColumnElement[bool]:
    table = source.sa_table()
    value = subject.identifier(source.key)
    if value is None:
        return false()
    column = table.c[source.column]
    condition = func.lower(column) == str(value).lower() if source.key == "name" else column == value
    return and_(condition, *(table.c[name] == constant for name, constant in source.where))


def _rows(session: Session, query: Select[Any], *, order: list[Any], limit: int) -> Rows:
    count = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(*order).limit(limit)).mappings().all()
    return Rows(int(count), [dict(row) for row in rows])


def gather(session: Session, subject: Subject, *, limit: int = 1000) -> list[tuple[PersonalDataSource, Rows]]:
    """Every source's rows naming ``subject`` (at most ``limit`` each, with the total count)."""
    found = []
    for source in SOURCES:
        table = source.sa_table()
        query = select(*(table.c[name] for name in source.columns)).where(_matches(source, subject))
        found.append((source, _rows(session, query, order=[table.c[name] for name in source.columns[:2]],
                                    limit=limit)))
    return found


def reads_of(session: Session, subject: Subject, *, limit: int = 1000) -> Rows:
    """Who read the person's data: log rows about the person, or about records that name them."""
    log = models.access_audit
    about = [and_(log.c.subject_kind == subject.audit_kind, log.c.subject_id == subject.audit_id)]
    for source in SOURCES:
        if source.audit_kind and source.audit_key and subject.identifier(source.key) is not None:
            table = source.sa_table()
            records = select(cast(table.c[source.audit_key], Text)).where(_matches(source, subject))
            about.append(and_(log.c.subject_kind == source.audit_kind, log.c.subject_id.in_(records)))
    query = select(log.c.occurred_at, log.c.actor_kind, log.c.actor_id, log.c.actor, log.c.role, log.c.method,
                   log.c.endpoint, log.c.subject_kind, log.c.subject_id, log.c.commune_code,
                   log.c.purpose).where(or_(*about))
    return _rows(session, query, order=[log.c.occurred_at, log.c.id], limit=limit)


def access_request(session: Session, principal: Principal, *, query: str, limit: int = 1000,
                   endpoint: str = SAR_ENDPOINT, method: str = "GET") -> SubjectReport:
    """Answer a subject access request: log the read first, so that the answer includes it."""
    subject = resolve(session, query)
    audit.record(session, principal, method=method, endpoint=endpoint, subject_kind=subject.audit_kind,
                 subject_id=subject.audit_id, purpose=SAR_PURPOSE)
    generated_at = session.execute(select(func.now())).scalar_one()
    return SubjectReport(subject, generated_at, gather(session, subject, limit=limit),
                         reads_of(session, subject, limit=limit), limit)


def list_audit(session: Session, *, subject: str | None = None, subject_kind: str | None = None,
               user: str | None = None, since: datetime | None = None, limit: int = 100,
               offset: int = 0) -> Rows:
    """Rows of the access log, newest first: about ``subject`` (an id of the log), by ``user``, since a date."""
    log = models.access_audit
    conditions: list[ColumnElement[bool]] = []
    if subject:
        conditions.append(log.c.subject_id == subject.strip())
    if subject_kind:
        conditions.append(log.c.subject_kind == subject_kind.strip())
    if user:
        conditions.append(func.lower(log.c.actor) == user.strip().lower())
    if since is not None:
        conditions.append(log.c.occurred_at >= since)
    query = select(log).where(and_(*conditions)) if conditions else select(log)
    count = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(log.c.occurred_at.desc(), log.c.id.desc()).limit(limit)
                           .offset(offset)).mappings().all()
    return Rows(int(count), [dict(row) for row in rows])
