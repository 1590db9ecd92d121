"""The commission domaniale's procedure for an affectation (domain notes; décret 72-1288 as amended).

registered → surveyed (procès-verbal, neighbours consulted) → deliberated (délibération of the
municipal council) → approved (by the State's representative whose level follows the parcel's
area: ``SIFC_APPROVAL_THRESHOLDS_HA``) → notified; it may be refused at any step, with a reason.
Each step records its date, its author and its documents; the affectation exists only once the
procedure completes (notified). A request that follows an affectation ended by its holder's death
(or dissolution) grants a new affectation to the heirs, linked to the first.

A procedure and its steps are append-only; its version (for ``If-Match``) is its number of steps.

Kinds (ADR 0005 §2; which ones a commune uses is its ``procedure_kinds`` setting): ``affectation``;
``reaffectation_heritiers`` (to the heirs, following the ended right: ``follows_rrr_id``);
``regularisation`` (after a systematic survey and its public display, which stand for the survey step:
registered by a campaign); ``desaffectation`` (of the affectation in force: its notification ends the
right through :func:`sifc.tenure.rights.end`, after the commune's notice). A council may defer
(``deferred``, ajourné, with a reason) a request where it would deliberate it, and deliberate it at a
later session: ``deferred`` is the only step that may recur.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import bounds, fees, journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal, require
from sifc.errors import Conflict, InvalidInput, NotFound
from sifc.personal import FREE_TEXT_FIELDS, require_reader
from sifc.rules import service as rules
from sifc.tenure import rights
from sifc.tenure.common import Share as Holder
from sifc.tenure.common import authorise, current_parcel, shares, sources_of
from sifc.tracking import codes as tracking
from sifc.versioning import check_expected, parcel_communes, parse_id, refuse_if_frozen

ORDER = ("registered", "surveyed", "deliberated", "approved", "notified")
# Each kind's steps, in order, and what its notification does (grant an affectation, or end the one in force).
KIND_STEPS = {
    "affectation": ORDER,
    "reaffectation_heritiers": ORDER,
    "regularisation": ("registered", "deliberated", "approved", "notified"),
    "desaffectation": ("registered", "deliberated", "approved", "notified"),
}
KINDS = tuple(KIND_STEPS)
ENDING = ("notified", "refused")  # the steps that close a procedure
# Without a procedure_kinds setting, a commune registers what SIFC always did: affectations (no legal value implied).
DEFAULT_KINDS = ["affectation"]
# The documents each step rests on are the commune's setting ``required_sources`` (ADR 0005 §1).
FOLLOWABLE_CAUSES = ("deces", "dissolution")


@dataclass
class ProcedureInput:
    """A request to the commission domaniale (demande d'affectation, de désaffectation…)."""

    parcel_id: str
    applicants: list[dict[str, Any]]
    registered_on: date
    purpose: str | None = None
    reference: str | None = None
    follows_rrr_id: str | None = None
    source_ids: list[str] = field(default_factory=list)
    kind: str = "affectation"


@dataclass
class StepInput:
    """One step of the procedure."""

    step: str
    occurred_on: date
    source_ids: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


def required_authority(area_m2: float, thresholds_ha: tuple[float, float]) -> str:
    """Who approves a délibération for a parcel of ``area_m2``: sous-préfet, préfet or gouverneur."""
    hectares = area_m2 / 10_000
    if hectares <= thresholds_ha[0]:
        return "sous_prefet"
    if hectares <= thresholds_ha[1]:
        return "prefet"
    return "gouverneur"


def _open_procedures(session: Session, parcel_id: uuid.UUID) -> list[str]:
    return [str(r) for r in session.execute(text("""
        SELECT p.id FROM tenure_procedure p WHERE p.parcel_id = :id
          AND NOT EXISTS (SELECT 1 FROM procedure_step s
                          WHERE s.procedure_id = p.id AND s.step IN ('notified', 'refused'))
        ORDER BY p.created_at"""), {"id": parcel_id}).scalars()]


def _affectation_in_force(session: Session, parcel_id: uuid.UUID) -> str | None:
    found = session.execute(text("""
        SELECT rrr_id FROM rrr_version WHERE parcel_id = :id AND valid_to IS NULL AND type = 'affectation'
          AND (end_date IS NULL OR end_date > current_date) LIMIT 1"""), {"id": parcel_id}).scalar()
    return str(found) if found else None


def _setting(session: Session, *, commune_code: str, key: str, on: date) -> Any | None:
    """The commune's setting ``key`` in force ``on`` that date (ADR 0005 §1); None where none is set."""
    try:
        from sifc.rules import service as rules
    except ImportError:  # the settings slice (ADR 0005 §1) not installed: nothing is set
        return None
    return rules.maybe_in_force(session, commune_code=commune_code, key=key, on=on)


def _refuse_kind_not_enabled(session: Session, *, kind: str, commune_code: str, on: date) -> None:
    if kind not in KIND_STEPS:
        raise InvalidInput("procedure.bad_kind", kind=kind, kinds=", ".join(KINDS))
    enabled = _setting(session, commune_code=commune_code, key="procedure_kinds", on=on) or DEFAULT_KINDS
    if kind not in enabled:
        raise Conflict("procedure.kind_not_enabled", kind=kind, commune=commune_code, kinds=", ".join(enabled))


def _affectation_to_end(session: Session, parcel_id: uuid.UUID) -> str | None:
    """The affectation in force on a parcel that no désaffectation, death or renunciation has set an end to yet."""
    found = session.execute(text("""
        SELECT rrr_id FROM rrr_version WHERE parcel_id = :id AND valid_to IS NULL AND type = 'affectation'
          AND end_date IS NULL LIMIT 1"""), {"id": parcel_id}).scalar()
    return str(found) if found else None


def _predecessor(session: Session, follows: str | None, parcel_id: uuid.UUID, kind: str) -> uuid.UUID | None:
    if kind == "reaffectation_heritiers" and not follows:
        raise InvalidInput("procedure.follows_required")
    if kind in ("desaffectation", "regularisation") and follows:
        raise InvalidInput("procedure.follows_not_allowed", kind=kind)
    if not follows:
        return None
    rid = parse_id(follows, key="rrr.not_found", kind="droit")
    row = session.execute(text("""
        SELECT parcel_id, type, end_cause FROM rrr_version WHERE rrr_id = :id AND valid_to IS NULL"""),
        {"id": rid}).first()
    if row is None:
        raise NotFound("rrr.not_found", id=str(rid))
    if row.parcel_id != parcel_id or row.type != "affectation" or row.end_cause not in FOLLOWABLE_CAUSES:
        raise InvalidInput("procedure.bad_predecessor")
    return rid


def register(session: Session, *, data: ProcedureInput, by: Principal | None, author: str,
             synthetic: bool = False) -> str:
    """Register a request of a kind the commune uses on a parcel; return the procedure's id.

    A désaffectation needs the affectation in force that it ends; every other kind needs none.
    """
    pid = parse_id(data.parcel_id, key="parcel.not_found", kind="parcelle")
    bounds.check("procedure.registered_on", data.registered_on, field="registered_on")
    parcel = current_parcel(session, pid)
    authorise(session, by, parcel.commune_code)
    _refuse_kind_not_enabled(session, kind=data.kind, commune_code=parcel.commune_code, on=data.registered_on)
    parcel = current_parcel(session, pid, lock=True)
    refuse_if_frozen(session, pid)
    held = _affectation_in_force(session, pid)
    if data.kind == "desaffectation" and not _affectation_to_end(session, pid):
        raise Conflict("procedure.nothing_to_end", parcel=str(pid))
    if data.kind != "desaffectation" and held:
        raise Conflict("rrr.affectation_exists", parcel=str(pid))
    pending = _open_procedures(session, pid)
    if pending:
        raise Conflict("procedure.already_open", id=pending[0])
    applicants = shares(session, data.applicants, required=True, by=by)
    predecessor = _predecessor(session, data.follows_rrr_id, pid, data.kind)
    sources = sources_of(session, data.source_ids, commune_code=parcel.commune_code, by=by)
    procedure_id = uuid.uuid4()
    session.execute(text("""
        INSERT INTO tenure_procedure (id, kind, reference, parcel_id, commune_code, applicants, purpose, follows_rrr_id,
                                      synthetic, created_by)
        VALUES (:id, :kind, :reference, :parcel, :commune, CAST(:applicants AS jsonb), :purpose, :follows,
                :synthetic, :author)"""),
        {"id": procedure_id, "kind": data.kind, "reference": data.reference, "parcel": pid,
         "commune": parcel.commune_code,
         "applicants": orjson.dumps([a.as_row() for a in applicants]).decode(), "purpose": data.purpose,
         "follows": predecessor, "synthetic": synthetic, "author": author})
    _insert_step(session, procedure_id, 1, StepInput("registered", data.registered_on,
                                                     [str(s["id"]) for s in sources]), author)
    journal.record(session, by, author=author,
                   operation="procedure.register", object_kind="procedure", object_id=procedure_id,
                   parcel_id=pid, commune_code=parcel.commune_code,
                   after=_get(session, str(procedure_id), personal=True))
    tracking.issue(session, procedure_id=str(procedure_id), by=by, author=author)  # the récépissé's code (§8)
    fees.assess(session, procedure_id=str(procedure_id), by=by, author=author)  # the fee due, if a schedule (§7)
    return str(procedure_id)


def _insert_step(session: Session, procedure_id: uuid.UUID, seq: int, step: StepInput, author: str) -> None:
    session.execute(text("""
        INSERT INTO procedure_step (procedure_id, seq, step, occurred_on, details, source_ids, reason, author)
        VALUES (:id, :seq, :step, :on, CAST(:details AS jsonb), CAST(:sources AS uuid[]), :reason, :author)"""),
        {"id": procedure_id, "seq": seq, "step": step.step, "on": step.occurred_on,
         "details": orjson.dumps(step.details).decode(), "sources": [str(s) for s in step.source_ids],
         "reason": step.reason, "author": author})


def _load(session: Session, procedure_id: uuid.UUID) -> tuple[Any, list[Any]]:
    head = session.execute(text("SELECT * FROM tenure_procedure WHERE id = :id"),
                           {"id": procedure_id}).mappings().first()
    if head is None:
        raise NotFound("procedure.not_found", id=str(procedure_id))
    steps = session.execute(text("SELECT * FROM procedure_step WHERE procedure_id = :id ORDER BY seq"),
                            {"id": procedure_id}).mappings().all()
    return head, list(steps)


def state(steps: list[Any]) -> str:
    """Where a procedure stands: its last step."""
    last: str = steps[-1]["step"]
    return last


def commune_of(session: Session, *, procedure_id: str) -> str | None:
    """The commune of a procedure (its scope); None for an unknown one."""
    try:
        pid = uuid.UUID(str(procedure_id))
    except ValueError:
        return None
    return session.execute(text("SELECT commune_code FROM tenure_procedure WHERE id = :id"), {"id": pid}).scalar()


def _json(session: Session, head: Any, steps: list[Any], *, personal: bool,
          reader: Principal | None = None) -> dict[str, Any]:
    right = session.execute(text("SELECT rrr_id FROM rrr_version WHERE procedure_id = :id AND version = 1"),
                            {"id": head["id"]}).scalar()
    body = {"id": str(head["id"]), "kind": head["kind"], "reference": head["reference"],
            "parcel_id": str(head["parcel_id"]), "commune_code": head["commune_code"],
            "follows_rrr_id": str(head["follows_rrr_id"]) if head["follows_rrr_id"] else None,
            "state": state(steps), "version": len(steps), "rrr_id": str(right) if right else None,
            "synthetic": head["synthetic"], "created_at": head["created_at"].isoformat(),
            "steps": [{"seq": s["seq"], "step": s["step"], "occurred_on": s["occurred_on"].isoformat(),
                       "source_ids": [str(x) for x in s["source_ids"]], "recorded_at": s["recorded_at"].isoformat(),
                       # Officers' free text (a refusal's motive, the survey's observations) and authors: personal.
                       **({"author": s["author"], **{name: s[name] for name in sorted(FREE_TEXT_FIELDS[
                           "procedure_steps"])}} if personal else {})} for s in steps]}
    if personal:
        body.update({name: head[name] for name in sorted(FREE_TEXT_FIELDS["procedures"])})
        # An applicant is named only to a reader of personal data in the party's current commune.
        names = {party: name for party, name, commune in session.execute(text("""
            SELECT party_id::text, concat_ws(' ', given_names, name), commune_code FROM party_version
            WHERE valid_to IS NULL AND party_id = ANY(CAST(:ids AS uuid[]))"""),
            {"ids": [a["party_id"] for a in head["applicants"]]}).all()
            if reader is None or reader.may(Action.READ_PERSONAL, commune)}
        body["applicants"] = [{**a, "name": names.get(a["party_id"])} for a in head["applicants"]]
        body["created_by"] = head["created_by"]
    return body


def reader_commune(session: Session, *, procedure_id: str, reader: Principal) -> str:
    """The procedure's commune, once ``reader`` may read personal data there (401, 403; 404 for no such procedure).

    A request names its applicants: it is personal through and through.
    """
    return require_reader(reader, commune_of(session, procedure_id=procedure_id),
                          NotFound("procedure.not_found", id=procedure_id[:64]))


def get(session: Session, *, procedure_id: str, reader: Principal) -> dict[str, Any]:
    """A procedure with its steps, for a ``reader`` of personal data in its commune; the read is logged.

    An applicant is named only to a reader of the party's current commune.
    """
    commune = reader_commune(session, procedure_id=procedure_id, reader=reader)
    found = _get(session, procedure_id, personal=True, reader=reader)
    audit.record(session, reader, service=f"{__name__}.get", subject_kind="procedure", subject_id=found["id"],
                 commune_code=commune)
    return found


def as_written(session: Session, *, procedure_id: str, by: Principal) -> dict[str, Any]:
    """The procedure as its writer sees it right after registering it (``by`` may write in its commune, else 403).

    No access-log row: the write journal holds this very state under the same actor.
    """
    found = _get(session, procedure_id, personal=True)
    authorise(session, by, found["commune_code"])
    return found


def _get(session: Session, procedure_id: str, *, personal: bool, reader: Principal | None = None) -> dict[str, Any]:
    head, steps = _load(session, parse_id(procedure_id, key="procedure.not_found", kind="procédure"))
    return _json(session, head, steps, personal=personal, reader=reader)


def for_parcel(session: Session, *, parcel_id: str, reader: Principal) -> list[dict[str, Any]]:
    """Every procedure on a parcel, oldest first, for a ``reader`` of personal data in every commune of the parcel.

    Refused as :func:`sifc.personal.require_reader` refuses (404 for an unknown parcel); the read
    is logged, the parcel as its subject.
    """
    communes = parcel_communes(session, parcel_id)
    commune = require_reader(reader, min(communes) if communes else None, NotFound("parcel.not_found", id=parcel_id))
    require(reader, Action.READ_PERSONAL, communes=communes)
    found = _for_parcel(session, parse_id(parcel_id, key="parcel.not_found", kind="parcelle"), personal=True)
    audit.record(session, reader, service=f"{__name__}.for_parcel", subject_kind="parcel", subject_id=parcel_id,
                 commune_code=commune)
    return found


def _for_parcel(session: Session, parcel_id: uuid.UUID, *, personal: bool) -> list[dict[str, Any]]:
    ids = session.execute(text("SELECT id FROM tenure_procedure WHERE parcel_id = :id ORDER BY created_at, id"),
                          {"id": parcel_id}).scalars().all()
    return [_get(session, str(i), personal=personal) for i in ids]


def next_step(kind: str, steps: list[Any]) -> str | None:
    """The step a procedure of ``kind`` expects next (None once notified); a deferral does not move it."""
    sequence = KIND_STEPS[kind]
    done = [s["step"] for s in steps if s["step"] != "deferred"]
    if done[-1] not in sequence:
        return None
    position = sequence.index(done[-1]) + 1
    return sequence[position] if position < len(sequence) else None


def _check_step(kind: str, step: StepInput, steps: list[Any]) -> None:
    """A refusal at any step; a deferral where the council would deliberate; else the kind's next step."""
    current = state(steps)
    if current in ENDING:
        raise Conflict("procedure.closed", state=current)
    expected = next_step(kind, steps)
    if step.step == "refused":
        if not (step.reason or "").strip():
            raise InvalidInput("procedure.refusal_reason")
    elif step.step == "deferred":
        if not (step.reason or "").strip():
            raise InvalidInput("procedure.deferral_reason")
        if expected != "deliberated":
            raise Conflict("procedure.deferral_out_of_order", state=current)
    elif step.step not in KIND_STEPS[kind]:
        raise InvalidInput("procedure.bad_step", step=step.step,
                           steps=", ".join((*KIND_STEPS[kind][1:], "deferred", "refused")))
    elif step.step != expected:
        raise Conflict("procedure.out_of_order", step=step.step, expected=expected, state=current)
    bounds.check("procedure.occurred_on", step.occurred_on, field="occurred_on")
    bounds.check_json(step.details, field="details")
    last = steps[-1]["occurred_on"]
    if step.occurred_on < last:
        raise InvalidInput("procedure.date_before_previous", date=last.isoformat())
    if step.step == "surveyed" and step.details.get("neighbours_consulted") is not True:
        raise InvalidInput("procedure.neighbours_not_consulted")


def _required_sources(session: Session, *, kind: str, step: str, commune_code: str, on: date) -> list[str]:
    """The source kinds a step rests on: the commune's ``required_sources`` in force.

    409 when unset: no text fixes them nationally, so SIFC does not guess (``sifc settings carry-over``
    writes what it used to ask).
    """
    configured = rules.in_force(session, commune_code=commune_code, key="required_sources", on=on)
    return list((configured.get(kind) or {}).get(step) or [])


def advance(session: Session, *, procedure_id: str, step: StepInput, expected_version: int | None,
            thresholds_ha: tuple[float, float] | None = None, by: Principal | None, author: str) -> dict[str, Any]:
    """Record the next step, a deferral or a refusal; the notification has the kind's effect (grant, end).

    The approving authority's thresholds are the commune's ``approval_thresholds_ha`` in force on the
    step's date; ``thresholds_ha`` overrides them (tests of the rule itself).
    """
    procedure = parse_id(procedure_id, key="procedure.not_found", kind="procédure")
    head, steps = _load(session, procedure)
    authorise(session, by, head["commune_code"])
    check_expected(expected_version, len(steps))
    return record_step(session, procedure_id=procedure_id, step=step, by=by, author=author, lock=True,
                       expected_version=expected_version, thresholds_ha=thresholds_ha)


def record_step(session: Session, *, procedure_id: str, step: StepInput, by: Principal | None, author: str,
                lock: bool = False, expected_version: int | None = None,
                thresholds_ha: tuple[float, float] | None = None,
                journal_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check and record one step: the one path of a single :func:`advance` and of a session's deliberation.

    ``lock=False`` when the caller already holds the parcel's row lock (a session locks its agenda's
    parcels in id order, so that it never deadlocks with a single advance, which locks one parcel).
    The steps are re-read here, under that lock. A frozen parcel (litige) refuses every step but a
    refusal or a deferral. ``journal_extra`` is added to the journal entry's ``after`` (the session).
    Returns the procedure as its writer sees it.
    """
    procedure = parse_id(procedure_id, key="procedure.not_found", kind="procédure")
    head, steps = _load(session, procedure)
    authorise(session, by, head["commune_code"])
    parcel = current_parcel(session, head["parcel_id"], lock=lock)
    head, steps = _load(session, procedure)  # under the parcel's lock: the steps another writer added
    check_expected_again(expected_version, len(steps))
    _check_step(head["kind"], step, steps)
    sources = sources_of(session, step.source_ids, commune_code=parcel.commune_code, by=by)
    if step.step not in ("refused", "deferred"):
        refuse_if_frozen(session, parcel.parcel_id)
        fees.require_paid(session, procedure_id=str(procedure), step=step.step, on=step.occurred_on)  # §7
        present = {s["kind"] for s in sources}
        for needed in _required_sources(session, kind=head["kind"], step=step.step,
                                        commune_code=parcel.commune_code, on=step.occurred_on):
            if needed not in present:
                raise InvalidInput("procedure.source_required", step=step.step, kind=needed)
    if step.step == "approved":
        approval = next((s for s in sources if s["kind"] == "approbation"), None)
        if approval is None:
            raise InvalidInput("procedure.source_required", step=step.step, kind="approbation")
        required = required_authority(parcel.area_m2, thresholds_ha or _thresholds(session, parcel.commune_code,
                                                                                    step.occurred_on))
        if approval["authority"] != required:
            raise InvalidInput("procedure.wrong_authority", authority=approval["authority"], required=required,
                               hectares=round(parcel.area_m2 / 10_000, 4))
    before = _json(session, head, steps, personal=True)
    step = StepInput(step.step, step.occurred_on, [str(s["id"]) for s in sources], step.details, step.reason)
    _insert_step(session, procedure, len(steps) + 1, step, author)
    if step.step == "notified":
        if head["kind"] == "desaffectation":
            _end_affectation(session, head, steps, parcel, notified_on=step.occurred_on, by=by, author=author)
        else:
            _grant(session, head, steps, parcel, by=by, author=author)
    after = _get(session, str(procedure), personal=True)
    journal.record(session, by, author=author,
                   operation=f"procedure.{step.step}", object_kind="procedure", object_id=procedure,
                   parcel_id=parcel.parcel_id, commune_code=parcel.commune_code, before=before,
                   after={**after, **(journal_extra or {})})
    return after


def _thresholds(session: Session, commune_code: str, on: date) -> tuple[float, float]:
    found = rules.in_force(session, commune_code=commune_code, key="approval_thresholds_ha", on=on)
    return float(found[0]), float(found[1])


def _notice_days(session: Session, commune_code: str, on: date) -> int:
    return int(rules.in_force(session, commune_code=commune_code, key="desaffectation_notice_days", on=on))


def check_expected_again(expected: int | None, current: int) -> None:
    """Under the lock, a step recorded meanwhile by another writer makes this one stale (412)."""
    from sifc.errors import PreconditionFailed

    if expected is not None and expected != current:
        raise PreconditionFailed("http.precondition_failed")


def _end_affectation(session: Session, head: Any, steps: list[Any], parcel: Any, *, notified_on: date,
                     by: Principal | None, author: str) -> None:
    """A désaffectation notified: the affectation in force ends after the commune's notice, from the notification."""
    from datetime import timedelta

    rrr_id = _affectation_to_end(session, parcel.parcel_id)
    if rrr_id is None:
        raise Conflict("procedure.nothing_to_end", parcel=str(parcel.parcel_id))
    by_step = {s["step"]: s for s in steps}
    sources = list(dict.fromkeys(str(s) for name in ("deliberated", "approved") for s in by_step[name]["source_ids"]))
    days = _notice_days(session, parcel.commune_code, notified_on)
    rights.end(session, rrr_id=rrr_id, end_date=notified_on + timedelta(days=days), cause="desaffectation",
               source_ids=sources, reason=f"procédure {head['reference'] or head['id']}", notice_date=notified_on,
               notice_days=days, expected_version=None, by=by, author=author)


def _grant(session: Session, head: Any, steps: list[Any], parcel: Any, *, by: Principal | None, author: str) -> None:
    from fractions import Fraction

    if _affectation_in_force(session, parcel.parcel_id):
        raise Conflict("rrr.affectation_exists", parcel=str(parcel.parcel_id))
    by_step = {s["step"]: s for s in steps}
    sources = [*by_step["deliberated"]["source_ids"], *by_step["approved"]["source_ids"]]
    holders = [Holder(uuid.UUID(a["party_id"]), Fraction(a["share"])) for a in head["applicants"]]
    rights.grant_affectation(session, parcel=parcel, holders=holders, start_date=by_step["approved"]["occurred_on"],
                             source_ids=list(dict.fromkeys(sources)), procedure_id=head["id"],
                             predecessor_id=head["follows_rrr_id"], by=by, author=author, synthetic=head["synthetic"])
