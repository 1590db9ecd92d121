"""Council sessions (ADR 0005 §4): a commission domaniale or a municipal council deliberates on a list.

A session is planned with its date; its agenda lists procedures that wait for the council's
deliberation; attendees (parties or names, personal) make the quorum. Closing the agenda freezes the
list; deliberating the session then records, in ONE transaction, each procedure's step (``deliberated``
for a granted request, ``refused`` or ``deferred`` with a reason) through the very path of a single
step (:func:`sifc.tenure.procedures.record_step`), all citing one délibération (its number, date and
``source_document``). A parcel frozen by a litige since the agenda was set refuses the whole call
(409 listing the blocking procedures) unless the request defers those items: never a partial result.
Approval stays per procedure (its authority follows each parcel's area).

Every write is journaled; a session's attendees' names, the decisions' reasons and the authors are
personal: read in scope only, each read logged. A session's version (``If-Match``) is its ``revision``,
which every change of its agenda, attendees or state increments.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import bounds, journal
from sifc.auth import audit
from sifc.auth.principal import Principal
from sifc.errors import Conflict, InvalidInput, NotFound
from sifc.models import ATTENDEE_CAPACITIES, SESSION_DECISIONS, SESSION_KINDS
from sifc.personal import require_reader
from sifc.tenure import procedures
from sifc.tenure.common import authorise, current_parcel, sources_of
from sifc.versioning import check_expected, litiges, parse_id

# The step each decision records on its procedure.
STEP_OF = {"granted": "deliberated", "refused": "refused", "deferred": "deferred"}
QUORUM_CAPACITIES = ("president", "membre")  # who counts toward the quorum, when present
EARLIEST = date(1960, 1, 1)  # a session planned before independence is a typing error
LATEST_DAYS = 730  # a session is planned at most two years ahead


@dataclass
class SessionInput:
    """A session to plan: its commune, kind and date."""

    commune_code: str
    kind: str
    held_on: date
    reference: str | None = None
    members_in_office: int | None = None


@dataclass
class AttendeeInput:
    """Someone at the session: a party, or a name (personal), in a capacity."""

    capacity: str
    party_id: str | None = None
    name: str | None = None
    present: bool = True


@dataclass
class Decision:
    """The council's decision on one item of the agenda."""

    procedure_id: str
    decision: str
    reason: str | None = None
    votes_for: int | None = None
    votes_against: int | None = None
    abstentions: int | None = None


@dataclass
class DeliberationInput:
    """One délibération covering the whole agenda: its number, date, source document and each decision."""

    number: str
    deliberated_on: date
    source_id: str
    decisions: list[Decision]
    minutes_source_ids: list[str] = field(default_factory=list)


# --- reading --------------------------------------------------------------------------------------

def _head(session: Session, session_id: uuid.UUID, *, lock: bool = False) -> Any:
    head = session.execute(text("SELECT * FROM council_session WHERE id = :id" + (" FOR UPDATE" if lock else "")),
                           {"id": session_id}).mappings().first()
    if head is None:
        raise NotFound("session.not_found", id=str(session_id))
    return head


def _items(session: Session, session_id: uuid.UUID) -> list[Any]:
    return list(session.execute(text("""
        SELECT i.*, p.parcel_id, p.kind, p.reference FROM session_item i
        JOIN tenure_procedure p ON p.id = i.procedure_id
        WHERE i.session_id = :id ORDER BY i.position, i.procedure_id"""), {"id": session_id}).mappings())


def _attendees(session: Session, session_id: uuid.UUID) -> list[Any]:
    return list(session.execute(text("SELECT * FROM session_attendee WHERE session_id = :id ORDER BY seq"),
                                {"id": session_id}).mappings())


def _summary(head: Any, item_count: int) -> dict[str, Any]:
    """What any reader in scope may see of a session: no names, no reasons, no authors."""
    return {"id": str(head["id"]), "commune_code": head["commune_code"], "kind": head["kind"],
            "held_on": head["held_on"].isoformat(), "reference": head["reference"],
            "members_in_office": head["members_in_office"], "state": head["state"], "version": head["revision"],
            "item_count": item_count, "deliberation_number": head["deliberation_number"],
            "deliberated_on": head["deliberated_on"].isoformat() if head["deliberated_on"] else None,
            "deliberation_source_id": str(head["deliberation_source_id"]) if head["deliberation_source_id"] else None,
            "minutes_source_ids": [str(s) for s in head["minutes_source_ids"]],
            "members_present": head["members_present"], "quorum_met": head["quorum_met"],
            "synthetic": head["synthetic"]}


def _json(session: Session, session_id: uuid.UUID) -> dict[str, Any]:
    head = _head(session, session_id)
    items = _items(session, session_id)
    return {**_summary(head, len(items)), "created_by": head["created_by"],
            "created_at": head["created_at"].isoformat(),
            "items": [{"procedure_id": str(i["procedure_id"]), "position": i["position"], "kind": i["kind"],
                       "reference": i["reference"], "parcel_id": str(i["parcel_id"]), "decision": i["decision"],
                       "reason": i["reason"], "votes_for": i["votes_for"], "votes_against": i["votes_against"],
                       "abstentions": i["abstentions"], "step_seq": i["step_seq"], "added_by": i["added_by"]}
                      for i in items],
            "attendees": [{"seq": a["seq"], "party_id": str(a["party_id"]) if a["party_id"] else None,
                           "name": a["name"], "capacity": a["capacity"], "present": a["present"],
                           "added_by": a["added_by"]} for a in _attendees(session, session_id)]}


def commune_of(session: Session, *, session_id: str) -> str | None:
    """The commune of a session (its scope); None for an unknown one."""
    try:
        sid = uuid.UUID(str(session_id))
    except ValueError:
        return None
    return session.execute(text("SELECT commune_code FROM council_session WHERE id = :id"), {"id": sid}).scalar()


def get(session: Session, *, session_id: str, reader: Principal) -> dict[str, Any]:
    """A session with its agenda, decisions and attendees, for a reader of personal data in its commune; logged."""
    commune = require_reader(reader, commune_of(session, session_id=session_id),
                             NotFound("session.not_found", id=session_id[:64]))
    found = _json(session, uuid.UUID(session_id))
    audit.record(session, reader, service=f"{__name__}.get", subject_kind="council_session", subject_id=found["id"],
                 commune_code=commune)
    return found


def as_written(session: Session, *, session_id: str, by: Principal | None) -> dict[str, Any]:
    """The session as its writer sees it right after a write (no access-log row: the journal holds it)."""
    sid = parse_id(session_id, key="session.not_found", kind="session")
    found = _json(session, sid)
    authorise(session, by, found["commune_code"])
    return found


def list_sessions(session: Session, *, commune_code: str, reader: Principal) -> list[dict[str, Any]]:
    """The sessions of a commune, latest first: their summaries only (no names, no reasons), for readers in scope."""
    require_reader(reader, commune_code, NotFound("territory.not_found", level="commune", code=commune_code[:64]))
    rows = session.execute(text("""
        SELECT s.*, (SELECT count(*) FROM session_item i WHERE i.session_id = s.id) AS item_count
        FROM council_session s WHERE s.commune_code = :c ORDER BY s.held_on DESC, s.created_at DESC"""),
        {"c": commune_code}).mappings().all()
    return [_summary(row, row["item_count"]) for row in rows]


# --- writing --------------------------------------------------------------------------------------

def _writable(session: Session, session_id: str, *, by: Principal | None, expected_version: int | None,
              states: tuple[str, ...]) -> Any:
    """The session, locked, once ``by`` may write in its commune, the version matches and its state allows."""
    sid = parse_id(session_id, key="session.not_found", kind="session")
    head = _head(session, sid)
    authorise(session, by, head["commune_code"])
    head = _head(session, sid, lock=True)
    check_expected(expected_version, head["revision"])
    if head["state"] not in states:
        raise Conflict(f"session.state_{head['state']}", id=str(sid))
    return head


def _touch(session: Session, head: Any, *, by: Principal | None, author: str, operation: str,
           before: dict[str, Any], state: str | None = None) -> dict[str, Any]:
    session.execute(text("UPDATE council_session SET revision = revision + 1, state = coalesce(:state, state) "
                         "WHERE id = :id"), {"id": head["id"], "state": state})
    after = _json(session, head["id"])
    journal.record(session, by, author=author, operation=operation, object_kind="council_session",
                   object_id=head["id"], commune_code=head["commune_code"], before=before, after=after)
    return after


def create(session: Session, *, data: SessionInput, by: Principal | None, author: str,
           synthetic: bool = False) -> str:
    """Plan a session of the commune's council or commission domaniale; return its id."""
    if data.kind not in SESSION_KINDS:
        raise InvalidInput("session.bad_kind", kind=data.kind, kinds=", ".join(SESSION_KINDS))
    if data.members_in_office is not None and data.members_in_office < 1:
        raise InvalidInput("session.bad_members")
    if not EARLIEST <= data.held_on <= date.today() + timedelta(days=LATEST_DAYS):
        raise InvalidInput("session.bad_date", earliest=EARLIEST.isoformat())
    if not session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": data.commune_code}).scalar():
        raise NotFound("territory.not_found", level="commune", code=data.commune_code[:64])
    authorise(session, by, data.commune_code)
    session_id = uuid.uuid4()
    session.execute(text("""
        INSERT INTO council_session (id, commune_code, kind, held_on, reference, members_in_office, synthetic,
                                     created_by)
        VALUES (:id, :commune, :kind, :held_on, :reference, :members, :synthetic, :author)"""),
        {"id": session_id, "commune": data.commune_code, "kind": data.kind, "held_on": data.held_on,
         "reference": data.reference, "members": data.members_in_office, "synthetic": synthetic, "author": author})
    journal.record(session, by, author=author, operation="session.create", object_kind="council_session",
                   object_id=session_id, commune_code=data.commune_code, after=_json(session, session_id))
    return str(session_id)


def _ready(session: Session, head: Any, procedure_id: str, *, by: Principal | None) -> uuid.UUID:
    """A procedure of the session's commune that waits for the council, on no other open agenda."""
    pid = parse_id(procedure_id, key="procedure.not_found", kind="procédure")
    row = session.execute(text("SELECT kind, commune_code FROM tenure_procedure WHERE id = :id"),
                          {"id": pid}).first()
    if row is None or row.commune_code != head["commune_code"]:  # another commune's: not on this agenda
        raise NotFound("procedure.not_found", id=str(pid))
    steps = list(session.execute(text("SELECT step FROM procedure_step WHERE procedure_id = :id ORDER BY seq"),
                                 {"id": pid}).mappings())
    current = procedures.state(steps)
    if current in procedures.ENDING or procedures.next_step(row.kind, steps) != "deliberated":
        raise Conflict("session.not_ready", id=str(pid), state=current)
    elsewhere = session.execute(text("""
        SELECT s.id FROM session_item i JOIN council_session s ON s.id = i.session_id
        WHERE i.procedure_id = :p AND s.state <> 'deliberated' AND s.id <> :s LIMIT 1"""),
        {"p": pid, "s": head["id"]}).scalar()
    if elsewhere:
        raise Conflict("session.on_another_agenda", id=str(pid), session=str(elsewhere))
    return pid


def _insert_item(session: Session, head: Any, pid: uuid.UUID, position: int, author: str) -> None:
    session.execute(text("""
        INSERT INTO session_item (session_id, procedure_id, commune_code, position, added_by)
        VALUES (:s, :p, :c, :position, :author)"""),
        {"s": head["id"], "p": pid, "c": head["commune_code"], "position": position, "author": author})


def set_agenda(session: Session, *, session_id: str, procedure_ids: list[str], expected_version: int | None,
               by: Principal | None, author: str) -> dict[str, Any]:
    """Replace the agenda of a planned session by ``procedure_ids``, in that order."""
    head = _writable(session, session_id, by=by, expected_version=expected_version, states=("planned",))
    if len(set(procedure_ids)) != len(procedure_ids):
        raise InvalidInput("session.duplicate_item")
    before = _json(session, head["id"])
    checked = [_ready(session, head, pid, by=by) for pid in procedure_ids]
    session.execute(text("DELETE FROM session_item WHERE session_id = :s"), {"s": head["id"]})
    for position, pid in enumerate(checked, start=1):
        _insert_item(session, head, pid, position, author)
    return _touch(session, head, by=by, author=author, operation="session.agenda", before=before)


def add_item(session: Session, *, session_id: str, procedure_id: str, expected_version: int | None,
             by: Principal | None, author: str) -> dict[str, Any]:
    """Add one procedure at the end of a planned session's agenda."""
    head = _writable(session, session_id, by=by, expected_version=expected_version, states=("planned",))
    before = _json(session, head["id"])
    pid = _ready(session, head, procedure_id, by=by)
    if any(item["procedure_id"] == pid for item in _items(session, head["id"])):
        raise InvalidInput("session.duplicate_item")
    last = session.execute(text("SELECT coalesce(max(position), 0) FROM session_item WHERE session_id = :s"),
                           {"s": head["id"]}).scalar_one()
    _insert_item(session, head, pid, int(last) + 1, author)
    return _touch(session, head, by=by, author=author, operation="session.agenda_add", before=before)


def remove_item(session: Session, *, session_id: str, procedure_id: str, expected_version: int | None,
                by: Principal | None, author: str) -> dict[str, Any]:
    """Take one procedure off a planned session's agenda."""
    head = _writable(session, session_id, by=by, expected_version=expected_version, states=("planned",))
    before = _json(session, head["id"])
    pid = parse_id(procedure_id, key="procedure.not_found", kind="procédure")
    removed = session.execute(text("DELETE FROM session_item WHERE session_id = :s AND procedure_id = :p"),
                              {"s": head["id"], "p": pid})
    if removed.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("session.item_not_found", id=str(pid))
    return _touch(session, head, by=by, author=author, operation="session.agenda_remove", before=before)


def add_attendee(session: Session, *, session_id: str, data: AttendeeInput, expected_version: int | None,
                 by: Principal | None, author: str) -> dict[str, Any]:
    """Record someone at the session (a party of the commune, or a name), before it is deliberated."""
    head = _writable(session, session_id, by=by, expected_version=expected_version,
                     states=("planned", "agenda_closed"))
    if data.capacity not in ATTENDEE_CAPACITIES:
        raise InvalidInput("session.bad_capacity", capacity=data.capacity, capacities=", ".join(ATTENDEE_CAPACITIES))
    name = (data.name or "").strip() or None
    party = None
    if data.party_id:
        party = parse_id(data.party_id, key="party.not_found", kind="partie")
        commune = session.execute(text("SELECT commune_code FROM party_version WHERE party_id = :id "
                                       "AND valid_to IS NULL"), {"id": party}).scalar()
        if commune != head["commune_code"]:
            raise NotFound("party.not_found", id=str(party))
    elif name is None:
        raise InvalidInput("session.attendee_unnamed")
    before = _json(session, head["id"])
    seq = session.execute(text("SELECT coalesce(max(seq), 0) + 1 FROM session_attendee WHERE session_id = :s"),
                          {"s": head["id"]}).scalar()
    session.execute(text("""
        INSERT INTO session_attendee (session_id, seq, commune_code, party_id, name, capacity, present, added_by)
        VALUES (:s, :seq, :c, :party, :name, :capacity, :present, :author)"""),
        {"s": head["id"], "seq": seq, "c": head["commune_code"], "party": party, "name": name,
         "capacity": data.capacity, "present": data.present, "author": author})
    return _touch(session, head, by=by, author=author, operation="session.attendee", before=before)


def close_agenda(session: Session, *, session_id: str, expected_version: int | None, by: Principal | None,
                 author: str) -> dict[str, Any]:
    """Close the agenda of a planned session: its list no longer changes; the session may be deliberated."""
    head = _writable(session, session_id, by=by, expected_version=expected_version, states=("planned",))
    if not _items(session, head["id"]):
        raise InvalidInput("session.empty_agenda")
    before = _json(session, head["id"])
    return _touch(session, head, by=by, author=author, operation="session.close_agenda", before=before,
                  state="agenda_closed")


# --- deliberating ---------------------------------------------------------------------------------

def quorum(session: Session, head: Any) -> tuple[int, int]:
    """Members present and members required, from the commune's ``session_quorum`` in force on the session's date.

    ``fraction`` f of the members in office: at least ⌈f × members⌉ present; ``count`` n: at least n.
    No setting for the commune: 409 ``setting.missing`` (a quorum is law, never guessed).
    """
    from sifc.rules import service as rules

    rule = rules.in_force(session, commune_code=head["commune_code"], key="session_quorum", on=head["held_on"])
    present = session.execute(text("""
        SELECT count(*) FROM session_attendee WHERE session_id = :s AND present AND capacity = ANY(:capacities)"""),
        {"s": head["id"], "capacities": list(QUORUM_CAPACITIES)}).scalar() or 0
    kind_rule = rule.get(head["kind"]) if isinstance(rule, dict) else None
    if kind_rule is None:
        raise Conflict("setting.missing", key=f"session_quorum.{head['kind']}", commune=head["commune_code"],
                       on=head["held_on"].isoformat())
    if kind_rule["kind"] == "count":
        return int(present), math.ceil(float(kind_rule["value"]))
    if not head["members_in_office"]:
        raise InvalidInput("session.members_required")
    return int(present), math.ceil(float(kind_rule["value"]) * head["members_in_office"])


def _decisions(items: list[Any], decisions: list[Decision]) -> dict[uuid.UUID, Decision]:
    by_id: dict[uuid.UUID, Decision] = {}
    for decision in decisions:
        pid = parse_id(decision.procedure_id, key="procedure.not_found", kind="procédure")
        if pid in by_id:
            raise InvalidInput("session.duplicate_item")
        if decision.decision not in SESSION_DECISIONS:
            raise InvalidInput("session.bad_decision", decision=decision.decision,
                               decisions=", ".join(SESSION_DECISIONS))
        if decision.decision != "granted" and not (decision.reason or "").strip():
            raise InvalidInput("session.reason_required", id=str(pid))
        for votes in (decision.votes_for, decision.votes_against, decision.abstentions):
            if votes is not None and votes < 0:
                raise InvalidInput("session.bad_votes")
        by_id[pid] = decision
    agenda = {item["procedure_id"] for item in items}
    missing = sorted(str(p) for p in agenda - set(by_id))
    if missing:
        raise InvalidInput("session.decision_missing", ids=", ".join(missing))
    foreign = sorted(str(p) for p in set(by_id) - agenda)
    if foreign:
        raise InvalidInput("session.not_on_agenda", ids=", ".join(foreign))
    return by_id


def deliberate(session: Session, *, session_id: str, data: DeliberationInput, expected_version: int | None,
               by: Principal | None, author: str) -> dict[str, Any]:
    """Deliberate the whole agenda in one transaction, each item with its decision, under one délibération.

    The agenda's parcels are locked in id order (no deadlock with a single advance, which locks one
    parcel), then every item is checked again under those locks; a parcel under litige refuses the
    whole call with the blocking procedures listed, unless its item is deferred. Any refusal leaves
    nothing written: the caller's transaction is rolled back.
    """
    head = _writable(session, session_id, by=by, expected_version=expected_version, states=("agenda_closed",))
    number = (data.number or "").strip()
    if not number:
        raise InvalidInput("session.number_required")
    bounds.check("procedure.occurred_on", data.deliberated_on, field="deliberated_on")
    if data.deliberated_on < head["held_on"]:
        raise InvalidInput("session.deliberated_before_held", date=head["held_on"].isoformat())
    items = _items(session, head["id"])
    decisions = _decisions(items, data.decisions)
    source = sources_of(session, [data.source_id], commune_code=head["commune_code"], by=by)[0]
    if source["kind"] != "deliberation":
        raise InvalidInput("session.source_not_deliberation", kind=source["kind"])
    minutes = sources_of(session, data.minutes_source_ids, commune_code=head["commune_code"], by=by)
    present, required = quorum(session, head)
    if present < required:
        raise Conflict("session.no_quorum", present=present, required=required)

    for parcel_id in sorted({item["parcel_id"] for item in items}):
        current_parcel(session, parcel_id, lock=True)
    frozen = {item["procedure_id"] for item in items
              if decisions[item["procedure_id"]].decision != "deferred" and litiges(session, item["parcel_id"])}
    blocking = [f"{item['reference'] or item['procedure_id']} ({item['procedure_id']})" for item in items
                if item["procedure_id"] in frozen]
    if blocking:
        refused = Conflict("session.frozen", procedures="; ".join(blocking))
        refused.extensions = {"blocking_procedures": [str(item["procedure_id"]) for item in items
                                                      if item["procedure_id"] in frozen]}
        raise refused

    before = _json(session, head["id"])
    context = {"session": {"id": str(head["id"]), "deliberation_number": number}}
    for item in items:
        decision = decisions[item["procedure_id"]]
        votes = {name: value for name, value in (("votes_for", decision.votes_for),
                                                 ("votes_against", decision.votes_against),
                                                 ("abstentions", decision.abstentions)) if value is not None}
        step = procedures.StepInput(STEP_OF[decision.decision], data.deliberated_on, [str(source["id"])],
                                    {"session_id": str(head["id"]), "deliberation_number": number, **votes},
                                    (decision.reason or "").strip() or None)
        written = procedures.record_step(session, procedure_id=str(item["procedure_id"]), step=step, by=by,
                                         author=author, lock=False, journal_extra=context)
        session.execute(text("""
            UPDATE session_item SET decision = :decision, reason = :reason, votes_for = :for, votes_against = :against,
                                    abstentions = :abstentions, step_seq = :seq
            WHERE session_id = :s AND procedure_id = :p"""),
            {"decision": decision.decision, "reason": step.reason, "for": decision.votes_for,
             "against": decision.votes_against, "abstentions": decision.abstentions, "seq": written["version"],
             "s": head["id"], "p": item["procedure_id"]})
    session.execute(text("""
        UPDATE council_session SET deliberation_number = :number, deliberated_on = :on, deliberation_source_id = :src,
               minutes_source_ids = CAST(:minutes AS uuid[]), members_present = :present, quorum_met = true
        WHERE id = :id"""),
        {"number": number, "on": data.deliberated_on, "src": source["id"],
         "minutes": [str(m["id"]) for m in minutes], "present": present, "id": head["id"]})
    return _touch(session, head, by=by, author=author, operation="session.deliberate", before=before,
                  state="deliberated")
