"""Subject access requests (loi 2008-12, art. 62 : droit d'accès) and the access audit listing.

An administrator produces everything the system holds about one person, and the log of who read
it. What counts as personal data is a registry, :data:`SOURCES`: each entry names a table, the
column that names the person, and which of the person's identifiers that column holds (their
name as written in provenance fields, or their account id). The queries are built from the
registry with SQLAlchemy Core over the tables of :mod:`sifc.models` — identifiers quoted by the
dialect, the person's name or id always a bound parameter, never text in the SQL.

The tenure records are registered the same way: sources keyed by ``party_id`` (the
resolver turns the request into the ids of the parties it names: full name, identity number or
party id), with ``audit_kind="party"`` (or ``rrr``, ``procedure``) so that the reads of those
records join the log. Three small extensions let the registry say where a party id sits:

- a ``uuid[]`` column (a group's ``members``) matches when it holds one of the ids;
- ``within`` names JSON arrays whose elements are the id, or objects with the id in a field
  (``tenure_procedure.applicants``, the holders and applicants in ``write_audit``'s before and
  after), matched by containment (``@>``, the document a bound parameter);
- ``join`` adds the columns of a row the source's row belongs to (a holder's right), equal on
  the columns both tables share.

A name names every party of that full name: homonyms are reported together, and a request by
identity number or party id is the precise one.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, FromClause, Select, String, Table, Text, and_, cast, false, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from sifc import models
from sifc.auth import audit
from sifc.auth.principal import Principal
from sifc.errors import Forbidden, InvalidInput
from sifc.federation import directory
from sifc.i18n import Lang, translate

Key = Literal["name", "user_id", "party_id"]
SAR_ENDPOINT = "/admin/subjects/{subject}"
SAR_PURPOSE = "subject_access_request"
MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class Join:
    """The row a source's row belongs to: ``table``, equal on the columns ``on`` both tables share."""

    table: str
    on: tuple[str, ...]
    columns: tuple[str, ...]

    def sa_table(self) -> Table:
        """The joined table, as declared in :mod:`sifc.models`."""
        return models.metadata.tables[self.table]


@dataclass(frozen=True)
class PersonalDataSource:
    """One place where personal data about a person is held.

    ``column`` of ``table`` holds the person's identifier ``key``; ``columns`` are what the
    answer shows of each row (never a secret: no password or key hash); ``where`` adds constant
    conditions (bound too). When rows of the source are themselves read through audited
    endpoints, ``audit_kind``/``audit_key`` tell how: the log's ``(subject_kind, subject_id)``;
    ``audited_also`` adds other ``(subject_kind, column)`` pairs (a parcel whose reads show the
    row), the column of ``table`` or of the joined table.

    ``within`` (JSONB columns, ``party_id`` key): ``(column, array, field)`` — the person's id is
    an element of the array ``array`` of the document in ``column`` (``""``: the document is the
    array), an object with the id in ``field`` (``""``: the element is the id itself). ``join``
    shows the row the source's row belongs to (:class:`Join`).
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
    within: tuple[tuple[str, str, str], ...] = ()
    join: Join | None = None
    audited_also: tuple[tuple[str, str], ...] = ()

    def sa_table(self) -> Table:
        """The table, as declared in :mod:`sifc.models` (an unknown name fails at once)."""
        return models.metadata.tables[self.table]

    def selectable(self) -> FromClause:
        """The table, joined to the row it belongs to if the source says so."""
        table = self.sa_table()
        if self.join is None:
            return table
        other = self.join.sa_table()
        return table.join(other, and_(*(table.c[name] == other.c[name] for name in self.join.on)))

    def shown(self) -> list[Any]:
        """The columns the answer shows: the source's, then the joined row's."""
        table = self.sa_table()
        found = [table.c[name] for name in self.columns]
        if self.join is not None:
            other = self.join.sa_table()
            found += [other.c[name] for name in self.join.columns]
        return found

    def audited(self) -> list[tuple[str, Any]]:
        """``(subject_kind, column)`` of the log's rows about this source's records."""
        pairs = [(self.audit_kind, self.audit_key)] if self.audit_kind and self.audit_key else []
        return [(kind, self._column(name)) for kind, name in [*pairs, *self.audited_also]]

    def _column(self, name: str) -> Any:
        table = self.sa_table()
        if name in table.c:
            return table.c[name]
        if self.join is not None:
            return self.join.sa_table().c[name]
        raise KeyError(f"{self.name}: {name}")


# What the person's id sits in, in the write audit's before and after (the objects' full representation).
_NAMED_IN_WRITES = (("after", "holders", "party_id"), ("before", "holders", "party_id"),
                    ("after", "applicants", "party_id"), ("before", "applicants", "party_id"),
                    ("after", "members", ""), ("before", "members", ""))
_WRITE_COLUMNS = ("id", "occurred_at", "actor_kind", "role", "operation", "object_kind", "object_id", "parcel_id",
                  "commune_code")


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
    PersonalDataSource("documents_issued", "issued_document", "issued_by", "name",
                       ("code", "kind", "subject_kind", "subject_id", "commune_code", "personal", "issued_at"),
                       "Documents délivrés à la personne (fiches parcellaires, extraits, certificats, registres)."),
    PersonalDataSource("reads_by_subject", "access_audit", "actor_id", "user_id",
                       ("occurred_at", "method", "endpoint", "subject_kind", "subject_id", "commune_code", "purpose"),
                       "Lectures de données personnelles faites par la personne (journal d'accès).",
                       where=(("actor_kind", "user"),)),
    # --- tenure: the person as a party --------------------------------------------------
    PersonalDataSource("parties", "party_version", "party_id", "party_id",
                       ("party_id", "version", "kind", "group_type", "name", "given_names", "id_number", "contact",
                        "members", "commune_code", "reason", "valid_from", "valid_to", "close_reason"),
                       "La personne comme partie (toutes les versions : nom, prénoms, numéro d'identité, contact).",
                       audit_kind="party", audit_key="party_id"),
    PersonalDataSource("party_groups", "party_version", "members", "party_id",
                       ("party_id", "version", "kind", "group_type", "name", "commune_code", "valid_from",
                        "valid_to"),
                       "Groupements (famille, GIE…) dont la personne est membre.",
                       audit_kind="party", audit_key="party_id"),
    PersonalDataSource("rights_held", "rrr_holder", "party_id", "party_id",
                       ("rrr_id", "version", "share_numerator", "share_denominator"),
                       "Droits dont la personne est titulaire (quote-part), avec la parcelle et le droit.",
                       audit_kind="rrr", audit_key="rrr_id",
                       join=Join("rrr_version", ("rrr_id", "version"),
                                 ("parcel_id", "commune_code", "class", "type", "tf_number", "start_date", "end_date",
                                  "end_cause", "valid_from", "valid_to")),
                       audited_also=(("parcel", "parcel_id"),)),
    PersonalDataSource("procedures_applied", "tenure_procedure", "applicants", "party_id",
                       ("id", "reference", "parcel_id", "commune_code", "applicants", "purpose", "created_at"),
                       "Demandes d'affectation dont la personne est demanderesse.",
                       audit_kind="procedure", audit_key="id", within=(("applicants", "", "party_id"),),
                       audited_also=(("parcel", "parcel_id"),)),
    PersonalDataSource("writes_about_party", "write_audit", "object_id", "party_id",
                       (*_WRITE_COLUMNS, "before", "after"),
                       "Écritures de la fiche de la personne (journal des écritures : avant, après).",
                       where=(("object_kind", "party"),)),
    PersonalDataSource("writes_naming_party", "write_audit", "after", "party_id", _WRITE_COLUMNS,
                       "Écritures de droits, de procédures ou de groupements qui nomment la personne "
                       "(journal des écritures ; avant et après, qui nomment aussi d'autres personnes, non repris).",
                       within=_NAMED_IN_WRITES, audit_kind="parcel", audit_key="parcel_id"),
    # --- tenure: the person as the author of records (provenance) ------------------------------------
    PersonalDataSource("writes_by_subject", "write_audit", "actor", "name", _WRITE_COLUMNS,
                       "Écritures faites par la personne (journal des écritures).",
                       audit_kind="parcel", audit_key="parcel_id"),
    PersonalDataSource("party_versions_authored", "party_version", "author", "name",
                       ("party_id", "version", "commune_code", "action", "reason", "valid_from"),
                       "Versions de parties écrites par la personne (auteur).",
                       audit_kind="party", audit_key="party_id"),
    PersonalDataSource("party_versions_closed", "party_version", "closed_by", "name",
                       ("party_id", "version", "commune_code", "valid_to", "close_reason"),
                       "Versions de parties closes par la personne.",
                       audit_kind="party", audit_key="party_id"),
    PersonalDataSource("rrr_versions_authored", "rrr_version", "author", "name",
                       ("rrr_id", "version", "parcel_id", "commune_code", "type", "action", "reason", "valid_from"),
                       "Versions de droits, restrictions et responsabilités écrites par la personne (auteur).",
                       audit_kind="rrr", audit_key="rrr_id", audited_also=(("parcel", "parcel_id"),)),
    PersonalDataSource("rrr_versions_closed", "rrr_version", "closed_by", "name",
                       ("rrr_id", "version", "parcel_id", "commune_code", "type", "valid_to", "close_reason"),
                       "Versions de droits closes par la personne.",
                       audit_kind="rrr", audit_key="rrr_id", audited_also=(("parcel", "parcel_id"),)),
    PersonalDataSource("sources_recorded", "source_document", "created_by", "name",
                       ("id", "kind", "reference", "document_date", "commune_code", "created_at"),
                       "Sources (délibérations, approbations, actes…) enregistrées par la personne."),
    PersonalDataSource("source_files_attached", "source_file", "created_by", "name",
                       ("id", "source_id", "file_name", "media_type", "size_bytes", "sha256", "created_at"),
                       "Documents joints par la personne (sans leur contenu).",
                       audit_kind="source_file", audit_key="id"),
    PersonalDataSource("procedures_registered", "tenure_procedure", "created_by", "name",
                       ("id", "reference", "parcel_id", "commune_code", "created_at"),
                       "Demandes d'affectation enregistrées par la personne.",
                       audit_kind="procedure", audit_key="id", audited_also=(("parcel", "parcel_id"),)),
    PersonalDataSource("procedure_steps_recorded", "procedure_step", "author", "name",
                       ("procedure_id", "seq", "step", "occurred_on", "recorded_at"),
                       "Étapes de procédure inscrites par la personne.",
                       audit_kind="procedure", audit_key="procedure_id"),
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
    party_ids: tuple[uuid.UUID, ...] = ()

    def identifier(self, key: Key) -> str | int | tuple[uuid.UUID, ...] | None:
        """The person's identifier of kind ``key`` (``None``: this kind of source cannot name them)."""
        if key == "party_id":
            return self.party_ids or None
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
class Elsewhere:
    """Where the identities are when this node does not hold them: the poles to ask (ADR 0004).

    The national node under ``personal = 'pole'`` receives parties without their names, identity
    numbers or contacts: it can answer on a party id, not on a person. The request goes to each
    pole node too.
    """

    personal: str
    poles: tuple[directory.Node, ...]


@dataclass(frozen=True)
class SubjectReport:
    """What a subject access request answers."""

    subject: Subject
    generated_at: datetime
    sources: list[tuple[PersonalDataSource, Rows]]
    reads: Rows
    limit: int = field(default=1000)
    elsewhere: Elsewhere | None = None


def identities_elsewhere(session: Session) -> Elsewhere | None:
    """The poles to ask, at a national node that does not hold identities; ``None`` where they are held."""
    node = directory.this_node(session)
    if not node.national or node.personal != "pole":
        return None
    return Elsewhere(node.personal, tuple(directory.poles(session)))


def as_dict(report: SubjectReport, lang: Lang = "fr") -> dict[str, Any]:
    """The report as plain data (the API's answer and ``sifc admin subject --json``).

    At a national node without identities, ``federation`` says so and lists the poles to ask.
    """

    def rows(found: Rows) -> dict[str, Any]:
        return {"count": found.count, "truncated": found.truncated, "rows": found.rows}

    who = report.subject
    return {
        "subject": {"query": who.query, "name": who.name, "user_id": who.user_id, "audit_kind": who.audit_kind,
                    "audit_id": who.audit_id, "party_ids": [str(p) for p in who.party_ids]},
        "generated_at": report.generated_at,
        "sources": [{"name": source.name, "table": source.table, "column": source.column,
                     "description": source.description, **rows(found)} for source, found in report.sources],
        "reads": rows(report.reads),
        **({"federation": {
            "identities_held": False, "personal": report.elsewhere.personal,
            "message": translate("federation.identities_elsewhere", lang),
            "ask": [{"node_id": pole.node_id, "pole_code": pole.pole_code, "url": pole.url}
                    for pole in report.elsewhere.poles]}} if report.elsewhere else {}),
    }


def _spaced(value: Any) -> Any:
    """``value`` in lower case with its runs of blanks made one space (the pattern a bound value)."""
    return func.lower(func.btrim(func.regexp_replace(value, r"\s+", " ", "g")))


def parties_named(session: Session, text: str) -> tuple[uuid.UUID, ...]:
    """The parties ``text`` names, in any of their versions: party id, identity number, or full name.

    A full name is the given names and the name (either order), without regard to case or blanks;
    a group or legal entity has only its name. A family name alone names no one.
    """
    party = models.party_version
    wanted = " ".join(text.split()).lower()
    conditions: list[ColumnElement[bool]] = [
        _spaced(party.c.id_number) == wanted,
        _spaced(func.concat_ws(" ", party.c.given_names, party.c.name)) == wanted,
        _spaced(func.concat_ws(" ", party.c.name, party.c.given_names)) == wanted,
    ]
    try:
        conditions.append(party.c.party_id == uuid.UUID(text))
    except ValueError:
        pass
    found = session.execute(select(party.c.party_id).where(or_(*conditions)).distinct()
                            .order_by(party.c.party_id)).scalars()
    return tuple(found)


def resolve(session: Session, query: str) -> Subject:
    """The person named by ``query``: an account id (digits) or name, or else a name as written.

    Names are compared without regard to case, as provenance fields were once typed by hand. The
    parties the query names (:func:`parties_named`) are found either way.
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
    party_ids = parties_named(session, text)
    if row is not None:
        return Subject(text, row.username, int(row.id), "app_user", str(row.id), party_ids)
    digest = hashlib.sha256(text.lower().encode("utf-8")).hexdigest()[:32]
    return Subject(text, text, None, "person", f"sha256:{digest}", party_ids)


def _contained(column: Any, array: str, key: str, party: uuid.UUID) -> ColumnElement[bool]:
    """``column @> document``: the party's id an element of ``array`` (see ``PersonalDataSource.within``)."""
    element: Any = {key: str(party)} if key else str(party)
    contained: ColumnElement[bool] = column.contains([element] if not array else {array: [element]})
    return contained


def _party_matches(source: PersonalDataSource, table: Table, parties: tuple[uuid.UUID, ...]) -> ColumnElement[bool]:
    column = table.c[source.column]
    if source.within:
        return or_(*(_contained(table.c[name], array, key, party)
                     for name, array, key in source.within for party in parties))
    if isinstance(column.type, ARRAY):
        overlaps: ColumnElement[bool] = column.overlap(list(parties))
        return overlaps
    if isinstance(column.type, String):
        return column.in_([str(party) for party in parties])
    matches: ColumnElement[bool] = column.in_(list(parties))
    return matches


def _matches(source: PersonalDataSource, subject: Subject) -> ColumnElement[bool]:
    table = source.sa_table()
    value = subject.identifier(source.key)
    if value is None:
        return false()
    column = table.c[source.column]
    if source.key == "party_id":
        assert isinstance(value, tuple)
        condition = _party_matches(source, table, value)
    elif source.key == "name":
        condition = func.lower(column) == str(value).lower()
    else:
        condition = column == value
    return and_(condition, *(table.c[name] == constant for name, constant in source.where))


def _rows(session: Session, query: Select[Any], *, order: list[Any], limit: int) -> Rows:
    count = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(*order).limit(limit)).mappings().all()
    return Rows(int(count), [dict(row) for row in rows])


def gather(session: Session, subject: Subject, *, limit: int = 1000) -> list[tuple[PersonalDataSource, Rows]]:
    """Every source's rows naming ``subject`` (at most ``limit`` each, with the total count)."""
    found = []
    for source in SOURCES:
        shown = source.shown()
        query = select(*shown).select_from(source.selectable()).where(_matches(source, subject))
        found.append((source, _rows(session, query, order=shown[:2], limit=limit)))
    return found


def reads_of(session: Session, subject: Subject, *, limit: int = 1000) -> Rows:
    """Who read the person's data: log rows about the person, or about records that name them."""
    log = models.access_audit
    about = [and_(log.c.subject_kind == subject.audit_kind, log.c.subject_id == subject.audit_id)]
    for source in SOURCES:
        if subject.identifier(source.key) is None:
            continue
        for kind, column in source.audited():
            records = select(cast(column, Text)).select_from(source.selectable()).where(_matches(source, subject))
            about.append(and_(log.c.subject_kind == kind, log.c.subject_id.in_(records)))
    query = select(log.c.occurred_at, log.c.actor_kind, log.c.actor_id, log.c.actor, log.c.role, log.c.method,
                   log.c.endpoint, log.c.subject_kind, log.c.subject_id, log.c.commune_code,
                   log.c.purpose).where(or_(*about))
    return _rows(session, query, order=[log.c.occurred_at, log.c.id], limit=limit)


def access_request(session: Session, principal: Principal, *, query: str, limit: int = 1000,
                   endpoint: str = SAR_ENDPOINT, method: str = "GET") -> SubjectReport:
    """Answer a subject access request: log the read first, so that the answer includes it.

    A person's whole record spans every commune, so only a national scope may ask for it.
    """
    if not principal.everywhere:
        raise Forbidden("admin.subject_national_scope")
    subject = resolve(session, query)
    audit.record(session, principal.via(method, endpoint), service=f"{__name__}.access_request",
                 subject_kind=subject.audit_kind, subject_id=subject.audit_id, purpose=SAR_PURPOSE)
    generated_at = session.execute(select(func.now())).scalar_one()
    return SubjectReport(subject, generated_at, gather(session, subject, limit=limit),
                         reads_of(session, subject, limit=limit), limit, identities_elsewhere(session))


def list_audit(session: Session, principal: Principal, *, subject: str | None = None, subject_kind: str | None = None,
               user: str | None = None, since: datetime | None = None, limit: int = 100,
               offset: int = 0) -> Rows:
    """Rows of the access log, newest first: about ``subject`` (an id of the log), by ``user``, since a date.

    Outside a national scope, only the rows of the principal's communes (a row without a commune is national).
    """
    log = models.access_audit
    conditions: list[ColumnElement[bool]] = []
    if not principal.everywhere:
        conditions.append(log.c.commune_code.in_(sorted(principal.communes)))
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
