"""Rights, restrictions and responsibilities on a parcel (LADM ``LA_RRR``), with holders and shares.

A right is the series of its versions in ``rrr_version`` (holders in ``rrr_holder``, per version).
Its legal life is ``start_date``/``end_date``; its record's life is ``valid_from``/``valid_to``, so
that an as-of read answers what the register said at any instant. Rules (domain notes):

- an affectation comes only from a completed procedure (:mod:`sifc.tenure.procedures`), is never
  sold or transferred (its holders never change: it is withdrawn and granted again) and there is
  at most one in force per parcel (a shared one has several holders);
- a litige freezes every change to the parcel until it is lifted (``mainlevee``);
- the désaffectation of an affectation needs a délibération and a formal notice given at least
  ``SIFC_DESAFFECTATION_NOTICE_DAYS`` before it takes effect;
- the shares of a right sum to 1.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sifc import bounds, journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal
from sifc.errors import Conflict, InvalidInput, NotFound
from sifc.models import RRR_TYPES
from sifc.personal import FREE_TEXT_FIELDS, may_reveal
from sifc.rules import service as rules
from sifc.tenure.common import ParcelState, Share, authorise, current_parcel, shares, sources_of
from sifc.versioning import check_expected, close_version, parcel_communes, parse_id, refuse_if_frozen

END_CAUSES = ("desaffectation", "deces", "dissolution", "renonciation", "expiration", "mainlevee", "resiliation",
              "autre")
CLASS_OF = {kind: cls for cls, kinds in RRR_TYPES.items() for kind in kinds}


@dataclass
class RightInput:
    """A right, restriction or responsibility a land officer records directly (every type but affectation)."""

    type: str
    start_date: date
    source_ids: list[str]
    holders: list[dict[str, Any]] = field(default_factory=list)
    tf_number: str | None = None
    description: str | None = None
    reason: str | None = None


SELECT = """SELECT rrr_id, version, parcel_id, commune_code, class, type, tf_number, description, start_date, end_date,
                   end_cause, notice_date, source_ids, procedure_id, predecessor_id, synthetic, action, author, reason,
                   valid_from, valid_to, closed_by, close_reason FROM rrr_version"""


def _holders(session: Session, keys: list[tuple[uuid.UUID, int]], *, personal: bool,
             reader: Principal | None = None) -> dict[tuple[uuid.UUID, int], list[dict[str, Any]]]:
    """The holders of each right version, named with ``personal`` when ``reader`` may read their party's data.

    A party moved to a commune out of the reader's scope is given by its id alone.
    """
    if not keys:
        return {}
    rows = session.execute(text("""
        SELECT h.rrr_id, h.version, h.party_id, h.share_numerator, h.share_denominator, p.kind, p.name, p.given_names,
               p.commune_code
        FROM rrr_holder h
        JOIN unnest(CAST(:ids AS uuid[]), CAST(:versions AS int[])) AS k(id, version)
          ON k.id = h.rrr_id AND k.version = h.version
        LEFT JOIN party_version p ON p.party_id = h.party_id AND p.valid_to IS NULL
        ORDER BY h.share_numerator::numeric / h.share_denominator DESC, h.party_id"""),
        {"ids": [k[0] for k in keys], "versions": [k[1] for k in keys]}).mappings().all()
    found: dict[tuple[uuid.UUID, int], list[dict[str, Any]]] = {k: [] for k in keys}
    for row in rows:
        holder = {"party_id": str(row["party_id"]), "share": f"{row['share_numerator']}/{row['share_denominator']}"}
        if personal and (reader is None or reader.may(Action.READ_PERSONAL, row["commune_code"])):
            holder.update({"kind": row["kind"], "name": row["name"], "given_names": row["given_names"]})
        found[(row["rrr_id"], row["version"])].append(holder)
    return found


def _status(row: Any, day: date) -> str:
    if row["start_date"] > day:
        return "future"
    if row["end_date"] is not None and row["end_date"] <= day:
        return "ended"
    return "in_force"


def _rows_json(session: Session, rows: list[Any], *, personal: bool, day: date,
               reader: Principal | None = None) -> list[dict[str, Any]]:
    holders = _holders(session, [(r["rrr_id"], r["version"]) for r in rows], personal=personal, reader=reader)
    out = []
    for row in rows:
        body = {"id": str(row["rrr_id"]), "version": row["version"], "parcel_id": str(row["parcel_id"]),
                "commune_code": row["commune_code"], "class": row["class"], "type": row["type"],
                "status": _status(row, day), "tf_number": row["tf_number"],
                "start_date": row["start_date"].isoformat(),
                "end_date": row["end_date"].isoformat() if row["end_date"] else None, "end_cause": row["end_cause"],
                "notice_date": row["notice_date"].isoformat() if row["notice_date"] else None,
                "source_ids": [str(s) for s in row["source_ids"]],
                "procedure_id": str(row["procedure_id"]) if row["procedure_id"] else None,
                "predecessor_id": str(row["predecessor_id"]) if row["predecessor_id"] else None,
                "synthetic": row["synthetic"], "valid_from": row["valid_from"].isoformat(),
                "valid_to": row["valid_to"].isoformat() if row["valid_to"] else None}
        if personal:
            # Free text written by land officers may name people: served with the personal fields only.
            body.update({"holders": holders[(row["rrr_id"], row["version"])], "author": row["author"],
                         "closed_by": row["closed_by"],
                         **{name: row[name] for name in sorted(FREE_TEXT_FIELDS["rights"])}})
        out.append(body)
    return out


def _today(at: datetime | None) -> date:
    return (at or datetime.now().astimezone()).date()


def for_parcel(session: Session, *, parcel_id: str, reader: Principal,
               at: datetime | None = None) -> list[dict[str, Any]]:
    """The rights, restrictions and responsibilities recorded on a parcel now (or as recorded at ``at``).

    Holders, authors and free text only if ``reader`` may read personal data in every commune of
    the parcel (each holder named only to a reader of the party's current commune); such a read is
    logged, the parcel as its subject.
    """
    communes = parcel_communes(session, parcel_id)
    personal = may_reveal(reader, communes)
    found = _for_parcel(session, parcel_id, personal=personal, at=at, reader=reader)
    if personal:
        audit.record(session, reader, service=f"{__name__}.for_parcel", subject_kind="parcel", subject_id=parcel_id,
                     commune_code=min(communes))
    return found


def _for_parcel(session: Session, parcel_id: str, *, personal: bool, at: datetime | None = None,
                reader: Principal | None = None) -> list[dict[str, Any]]:
    pid = parse_id(parcel_id, key="parcel.not_found", kind="parcelle")
    if at is None:
        rows = session.execute(text(SELECT + " WHERE parcel_id = :id AND valid_to IS NULL ORDER BY start_date, rrr_id"),
                               {"id": pid}).mappings().all()
    else:
        rows = session.execute(text(SELECT + """ WHERE parcel_id = :id AND valid_from <= :at
            AND (valid_to IS NULL OR valid_to > :at) ORDER BY start_date, rrr_id"""), {"id": pid, "at": at}
        ).mappings().all()
    return _rows_json(session, list(rows), personal=personal, day=_today(at), reader=reader)


def _history(session: Session, parcel_id: uuid.UUID, *, personal: bool) -> list[dict[str, Any]]:
    """Every version of every right of a parcel, by right then version (``sifc.history`` decided ``personal``)."""
    rows = session.execute(text(SELECT + " WHERE parcel_id = :id ORDER BY start_date, rrr_id, version"),
                           {"id": parcel_id}).mappings().all()
    return _rows_json(session, list(rows), personal=personal, day=_today(None))


def _one(session: Session, rid: uuid.UUID, at: datetime | None = None) -> Any:
    if at is None:
        row = session.execute(text(SELECT + " WHERE rrr_id = :id AND valid_to IS NULL"), {"id": rid}).mappings().first()
    else:
        row = session.execute(text(SELECT + """ WHERE rrr_id = :id AND valid_from <= :at
            AND (valid_to IS NULL OR valid_to > :at)"""), {"id": rid, "at": at}).mappings().first()
    if row is None:
        raise NotFound("rrr.not_found", id=str(rid))
    return row


def get(session: Session, *, rrr_id: str, reader: Principal, at: datetime | None = None) -> dict[str, Any]:
    """A right's current version (or the one recorded at ``at``).

    Holders, authors and free text only if ``reader`` may read personal data in every commune of
    the right (each holder named only to a reader of the party's current commune); such a read is logged.
    """
    communes = communes_of(session, rrr_id=rrr_id)
    personal = may_reveal(reader, communes)
    found = _get(session, rrr_id, personal=personal, at=at, reader=reader)
    if personal:
        audit.record(session, reader, service=f"{__name__}.get", subject_kind="rrr", subject_id=found["id"],
                     commune_code=min(communes))
    return found


def as_written(session: Session, *, rrr_id: str, by: Principal) -> dict[str, Any]:
    """The right as its writer sees it right after a write: personal fields included.

    ``by`` must be allowed to write tenure records in the right's communes (403 otherwise). No
    access-log row: the write journal holds this very state under the same actor.
    """
    authorise(session, by, *communes_of(session, rrr_id=rrr_id))
    return _get(session, rrr_id, personal=True)


def _get(session: Session, rrr_id: str, *, personal: bool, at: datetime | None = None,
         reader: Principal | None = None) -> dict[str, Any]:
    return _rows_json(session, [_one(session, parse_id(rrr_id, key="rrr.not_found", kind="droit"), at)],
                      personal=personal, day=_today(at), reader=reader)[0]


def versions(session: Session, *, rrr_id: str, reader: Principal) -> list[dict[str, Any]]:
    """Every version of a right, oldest first (personal fields and logging as :func:`get`)."""
    rid = parse_id(rrr_id, key="rrr.not_found", kind="droit")
    rows = session.execute(text(SELECT + " WHERE rrr_id = :id ORDER BY version"), {"id": rid}).mappings().all()
    if not rows:
        raise NotFound("rrr.not_found", id=str(rid))
    communes = communes_of(session, rrr_id=rrr_id)
    personal = may_reveal(reader, communes)
    found = _rows_json(session, list(rows), personal=personal, day=_today(None), reader=reader)
    if personal:
        audit.record(session, reader, service=f"{__name__}.versions", subject_kind="rrr", subject_id=found[0]["id"],
                     commune_code=min(communes))
    return found


def communes_of(session: Session, *, rrr_id: str) -> set[str]:
    """The communes of a right's versions (empty for an unknown right)."""
    try:
        rid = uuid.UUID(str(rrr_id))
    except ValueError:
        return set()
    return set(session.execute(text("SELECT DISTINCT commune_code FROM rrr_version WHERE rrr_id = :id"),
                               {"id": rid}).scalars())


def _insert(session: Session, rid: uuid.UUID, version: int, values: dict[str, Any], holders: list[Share], *,
            action: str, author: str) -> None:
    try:
        with session.begin_nested():
            session.execute(text("""
                INSERT INTO rrr_version (rrr_id, version, parcel_id, commune_code, class, type, tf_number, description,
                    start_date, end_date, end_cause, notice_date, source_ids, procedure_id, predecessor_id, synthetic,
                    action, author, reason)
                VALUES (:rid, :version, :parcel_id, :commune_code, :class, :type, :tf_number, :description,
                    :start_date, :end_date, :end_cause, :notice_date, CAST(:source_ids AS uuid[]), :procedure_id,
                    :predecessor_id, :synthetic, :action, :author, :reason)"""),
                {"rid": rid, "version": version, "action": action, "author": author,
                 **{k: values.get(k) for k in ("parcel_id", "commune_code", "class", "type", "tf_number",
                                               "description", "start_date", "end_date", "end_cause", "notice_date",
                                               "procedure_id", "predecessor_id", "reason")},
                 "source_ids": [str(s) for s in values["source_ids"]], "synthetic": bool(values.get("synthetic"))})
            if holders:
                session.execute(text("""
                    INSERT INTO rrr_holder (rrr_id, version, party_id, share_numerator, share_denominator)
                    SELECT :rid, :version, h.party, h.num, h.den
                    FROM unnest(CAST(:parties AS uuid[]), CAST(:nums AS int[]), CAST(:dens AS int[]))
                         AS h(party, num, den)
                """), {"rid": rid, "version": version, "parties": [h.party_id for h in holders],
                       "nums": [h.share.numerator for h in holders], "dens": [h.share.denominator for h in holders]})
    except IntegrityError as error:
        if "uq_rrr_version_one_affectation" in str(error.orig):
            raise Conflict("rrr.affectation_exists", parcel=str(values["parcel_id"])) from error
        raise


def _check_sources(session: Session, parcel: ParcelState, source_ids: list[Any], by: Principal | None
                   ) -> list[uuid.UUID]:
    if not source_ids:
        raise InvalidInput("rrr.source_required")
    return [uuid.UUID(s["id"]) if isinstance(s["id"], str) else s["id"]
            for s in sources_of(session, source_ids, commune_code=parcel.commune_code, by=by)]


def create(session: Session, *, parcel_id: str, data: RightInput, by: Principal | None, author: str,
           synthetic: bool = False) -> str:
    """Record a right (other than an affectation), a restriction or a responsibility on a parcel."""
    pid = parse_id(parcel_id, key="parcel.not_found", kind="parcelle")
    cls = CLASS_OF.get(data.type)
    if cls is None:
        raise InvalidInput("rrr.bad_type", type=data.type, types=", ".join(CLASS_OF))
    if data.type == "affectation":
        raise InvalidInput("rrr.affectation_needs_procedure")
    if data.type == "titre_foncier" and not (data.tf_number or "").strip():
        raise InvalidInput("rrr.tf_number_required")
    bounds.check("rrr.start_date", data.start_date, field="start_date")
    parcel = current_parcel(session, pid)
    authorise(session, by, parcel.commune_code)
    parcel = current_parcel(session, pid, lock=True)
    if data.type != "litige":
        refuse_if_frozen(session, pid)
    holders = shares(session, data.holders, required=cls == "right", by=by)
    values = {"parcel_id": pid, "commune_code": parcel.commune_code, "class": cls, "type": data.type,
              "tf_number": data.tf_number, "description": data.description, "start_date": data.start_date,
              "source_ids": _check_sources(session, parcel, data.source_ids, by), "reason": data.reason,
              "synthetic": synthetic}
    rid = uuid.uuid4()
    _insert(session, rid, 1, values, holders, action="api:create", author=author)
    journal.record(session, by, author=author,
                   operation=f"rrr.create.{data.type}", object_kind="rrr", object_id=rid, parcel_id=pid,
                   commune_code=parcel.commune_code, after=_get(session, str(rid), personal=True))
    return str(rid)


def grant_affectation(session: Session, *, parcel: ParcelState, holders: list[Share], start_date: date,
                      source_ids: list[uuid.UUID], procedure_id: uuid.UUID, predecessor_id: uuid.UUID | None,
                      by: Principal | None, author: str, synthetic: bool = False) -> str:
    """The affectation a completed procedure creates (the only way one comes to exist)."""
    rid = uuid.uuid4()
    values = {"parcel_id": parcel.parcel_id, "commune_code": parcel.commune_code, "class": "right",
              "type": "affectation", "start_date": start_date, "source_ids": source_ids, "procedure_id": procedure_id,
              "predecessor_id": predecessor_id, "reason": "procédure d'affectation achevée", "synthetic": synthetic}
    _insert(session, rid, 1, values, holders, action="procedure:notified", author=author)
    journal.record(session, by, author=author, operation="rrr.create.affectation", object_kind="rrr", object_id=rid,
                   parcel_id=parcel.parcel_id, commune_code=parcel.commune_code,
                   after=_get(session, str(rid), personal=True))
    return str(rid)


def _current_holders(session: Session, row: Any) -> list[Share]:
    from fractions import Fraction

    return [Share(r[0], Fraction(r[1], r[2])) for r in session.execute(text(
        "SELECT party_id, share_numerator, share_denominator FROM rrr_holder WHERE rrr_id = :id AND version = :v"),
        {"id": row["rrr_id"], "v": row["version"]}).all()]


def _new_version(session: Session, row: Any, values: dict[str, Any], holders: list[Share], *, by: Principal | None,
                 author: str, operation: str, reason: str) -> int:
    before = _get(session, str(row["rrr_id"]), personal=True)
    version: int = row["version"] + 1
    close_version(session, "rrr_version", "rrr_id", row["rrr_id"], row["version"], author=author,
                  reason=f"remplacée par la version {version}")
    _insert(session, row["rrr_id"], version, {**values, "reason": reason}, holders, action=f"api:{operation}",
            author=author)
    journal.record(session, by, author=author, operation=f"rrr.{operation}", object_kind="rrr", object_id=row["rrr_id"],
                   parcel_id=row["parcel_id"], commune_code=row["commune_code"], before=before,
                   after=_get(session, str(row["rrr_id"]), personal=True))
    return version


def _writable(session: Session, rrr_id: str, by: Principal | None, expected_version: int | None) -> Any:
    rid = parse_id(rrr_id, key="rrr.not_found", kind="droit")
    row = _one(session, rid)
    authorise(session, by, row["commune_code"])
    check_expected(expected_version, row["version"])
    current_parcel(session, row["parcel_id"], lock=True)
    if row["end_date"] is not None:
        raise Conflict("rrr.ended", id=str(rid), date=row["end_date"].isoformat())
    return row


def update(session: Session, *, rrr_id: str, changes: dict[str, Any], reason: str | None,
           expected_version: int | None, by: Principal | None, author: str) -> int:
    """A new version of a right: its holders and shares, TF number, description, sources."""
    if not reason:
        raise InvalidInput("rrr.reason_required")
    row = _writable(session, rrr_id, by, expected_version)
    if row["type"] != "litige":
        refuse_if_frozen(session, row["parcel_id"])
    values = dict(row)
    holders = _current_holders(session, row)
    if "holders" in changes:
        if row["type"] == "affectation":
            raise Conflict("rrr.affectation_not_transferable")
        # ``"holders": null`` removes them (JSON merge patch): none left, which a right refuses (422).
        holders = shares(session, changes["holders"] or [], required=row["class"] == "right", by=by)
    for name in ("tf_number", "description"):
        if name in changes:
            values[name] = changes[name]
    if values["type"] == "titre_foncier" and not (values["tf_number"] or "").strip():
        raise InvalidInput("rrr.tf_number_required")
    if "source_ids" in changes:
        parcel = current_parcel(session, row["parcel_id"])
        values["source_ids"] = _check_sources(session, parcel, changes["source_ids"], by)
    same_holders = sorted((h.party_id, h.share) for h in holders) == sorted(
        (h.party_id, h.share) for h in _current_holders(session, row))
    if same_holders and all(values[k] == row[k] for k in ("tf_number", "description", "source_ids")):
        raise InvalidInput("rrr.no_change")
    return _new_version(session, row, values, holders, by=by, author=author, operation="update", reason=reason)


def end(session: Session, *, rrr_id: str, end_date: date, cause: str, source_ids: list[str], reason: str | None,
        notice_date: date | None, notice_days: int | None = None, expected_version: int | None,
        by: Principal | None, author: str) -> int:
    """End a right (désaffectation, death, lifting of a litige…): a new version with its end date and cause.

    A désaffectation takes effect no sooner than ``notice_days`` after the notice; without it, the
    commune's ``desaffectation_notice_days`` in force on the notice's date (ADR 0005 §1; 409 if unset).
    """
    if cause not in END_CAUSES:
        raise InvalidInput("rrr.bad_end_cause", cause=cause, causes=", ".join(END_CAUSES))
    if not reason:
        raise InvalidInput("rrr.reason_required")
    row = _writable(session, rrr_id, by, expected_version)
    if row["type"] == "litige":
        if cause != "mainlevee":
            raise InvalidInput("rrr.litige_lifted_by_mainlevee")
    else:
        refuse_if_frozen(session, row["parcel_id"])
        if cause == "mainlevee":
            raise InvalidInput("rrr.mainlevee_for_restrictions")
    bounds.check("rrr.end_date", end_date, field="end_date")
    bounds.check("rrr.notice_date", notice_date, field="notice_date")
    if end_date < row["start_date"]:
        raise InvalidInput("rrr.end_before_start", start=row["start_date"].isoformat())
    parcel = current_parcel(session, row["parcel_id"])
    sources = _check_sources(session, parcel, source_ids, by) if source_ids else []
    if row["type"] == "affectation" and cause == "desaffectation":
        kinds = {s["kind"] for s in sources_of(session, sources, commune_code=parcel.commune_code, by=by)}
        if "deliberation" not in kinds:
            raise InvalidInput("rrr.desaffectation_needs_deliberation")
        if notice_date is None:
            raise InvalidInput("rrr.desaffectation_needs_notice")
        if notice_days is None:
            notice_days = int(rules.in_force(session, commune_code=parcel.commune_code,
                                             key="desaffectation_notice_days", on=notice_date))
        if end_date < notice_date + timedelta(days=notice_days):
            raise InvalidInput("rrr.notice_too_short", days=notice_days, notice=notice_date.isoformat())
    values = {**dict(row), "end_date": end_date, "end_cause": cause, "notice_date": notice_date,
              "source_ids": [*row["source_ids"], *[s for s in sources if s not in row["source_ids"]]]}
    return _new_version(session, row, values, _current_holders(session, row), by=by, author=author, operation="end",
                        reason=reason)
