"""The disputes register (litiges, ADR 0005 §6): a case with its parcels, parties, dated steps and outcome.

A dispute belongs to one commune (a case across communes is refused: each commune's land office,
and in a federation each pole, keeps its own register). Opening one creates today's ``litige``
restriction on each of its parcels through :mod:`sifc.tenure.rights`, so the parcels freeze exactly
as before; closing it records the outcome and lifts each restriction with ``mainlevee``.

declared (at opening) → mediation → resolved | sent_to_court → closed. Every table is append-only:
the state of a dispute is its last step and its version (``If-Match``) its number of steps, like a
procedure. A dispute names its parties: every read is for a reader of personal data in its commune,
and is logged.
"""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import bounds, journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal
from sifc.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from sifc.models import DISPUTE_KINDS, DISPUTE_ROLES, DISPUTE_STEPS
from sifc.parcels.quality import NOISE_M2
from sifc.personal import FREE_TEXT_FIELDS, require_reader
from sifc.tenure import rights
from sifc.tenure.common import authorise, current_parcel, linkable_parties, sources_of
from sifc.versioning import check_expected, parse_id

# The steps an officer records after the declaration, and what may follow each state.
NEXT = {"declared": ("mediation", "resolved", "sent_to_court"), "mediation": ("resolved", "sent_to_court"),
        "sent_to_court": ("resolved",), "resolved": (), "closed": ()}
CLOSABLE = ("resolved", "sent_to_court")  # a case ends by a settlement or a court's decision
MAX_PARCELS = 50


@dataclass
class DisputeInput:
    """A dispute to open: parcels of one commune, parties with their roles, the grounds and documents."""

    commune_code: str
    kind: str
    parcel_ids: list[str]
    opened_on: date
    source_ids: list[str]
    parties: list[dict[str, Any]] = field(default_factory=list)  # [{"party_id": ..., "role": ...}]
    description: str | None = None
    origin: dict[str, Any] = field(default_factory=dict)  # ids only: an overlap, a claim


def _parcels(session: Session, data: DisputeInput) -> list[uuid.UUID]:
    ids = [parse_id(p, key="parcel.not_found", kind="parcelle") for p in data.parcel_ids]
    if not ids:
        raise InvalidInput("dispute.parcels_required")
    if len(ids) > MAX_PARCELS:
        raise InvalidInput("dispute.too_many_parcels", max=MAX_PARCELS)
    if len(set(ids)) != len(ids):
        raise InvalidInput("dispute.duplicate_parcel")
    return sorted(ids)  # locked in one order: two openings on the same parcels never deadlock


def _check(session: Session, data: DisputeInput, parcels: list[uuid.UUID]) -> list[tuple[uuid.UUID, str]]:
    if data.kind not in DISPUTE_KINDS:
        raise InvalidInput("dispute.bad_kind", kind=str(data.kind)[:40], kinds=", ".join(DISPUTE_KINDS))
    bounds.check("rrr.start_date", data.opened_on, field="opened_on")
    if not data.source_ids:
        raise InvalidInput("dispute.source_required")
    roles: list[tuple[uuid.UUID, str]] = []
    for party in data.parties:
        pid = parse_id(party.get("party_id"), key="party.not_found", kind="partie")
        role = party.get("role") or "autre"
        if role not in DISPUTE_ROLES:
            raise InvalidInput("dispute.bad_role", role=str(role)[:40], roles=", ".join(DISPUTE_ROLES))
        if pid in {p for p, _ in roles}:
            raise InvalidInput("dispute.duplicate_party", party=str(pid))
        roles.append((pid, role))
    for pid in parcels:
        parcel = current_parcel(session, pid)
        if parcel.commune_code != data.commune_code:
            raise InvalidInput("dispute.other_commune", parcel=str(pid), commune=parcel.commune_code,
                               dispute_commune=data.commune_code)
    return roles


def _open_on(session: Session, parcel_id: uuid.UUID) -> str | None:
    """The open dispute a parcel is already in, if any."""
    found = session.execute(text("""
        SELECT d.dispute_id FROM dispute_parcel d WHERE d.parcel_id = :p
          AND NOT EXISTS (SELECT 1 FROM dispute_step s WHERE s.dispute_id = d.dispute_id AND s.step = 'closed')
        LIMIT 1"""), {"p": parcel_id}).scalar()
    return str(found) if found else None


def open(session: Session, *, data: DisputeInput, by: Principal | None, author: str) -> str:  # noqa: A001
    """Open a dispute: a ``litige`` restriction on each parcel (the parcel freezes); return its id.

    Every parcel must be of ``data.commune_code`` (422 otherwise: one commune keeps the case),
    in no open dispute already (409), and the opening rests on at least one source (the letter
    of complaint, the procès-verbal of the declaration).
    """
    if not data.commune_code:
        raise InvalidInput("dispute.commune_required")
    authorise(session, by, data.commune_code)
    parcels = _parcels(session, data)
    roles = _check(session, data, parcels)
    linkable_parties(session, [p for p, _ in roles], by=by)
    sources = sources_of(session, data.source_ids, commune_code=data.commune_code, by=by)
    source_ids = [str(s["id"]) for s in sources]
    bounds.check_json(data.origin, field="origin")
    dispute_id = uuid.uuid4()
    session.execute(text("""
        INSERT INTO dispute (id, commune_code, kind, opened_on, description, source_ids, origin, created_by)
        VALUES (:id, :commune, :kind, :on, :description, CAST(:sources AS uuid[]), CAST(:origin AS jsonb), :author)"""),
        {"id": dispute_id, "commune": data.commune_code, "kind": data.kind, "on": data.opened_on,
         "description": data.description, "sources": source_ids, "origin": orjson.dumps(data.origin).decode(),
         "author": author})
    for pid in parcels:
        current_parcel(session, pid, lock=True)
        already = _open_on(session, pid)
        if already:
            raise Conflict("dispute.parcel_in_dispute", parcel=str(pid), id=already)
        rrr_id = rights.create(session, parcel_id=str(pid), data=rights.RightInput(
            type="litige", start_date=data.opened_on, source_ids=source_ids,
            reason=f"litige {dispute_id} ouvert ({data.kind})"), by=by, author=author)
        session.execute(text("""
            INSERT INTO dispute_parcel (dispute_id, parcel_id, rrr_id, commune_code)
            VALUES (:d, :p, :r, :c)"""), {"d": dispute_id, "p": pid, "r": uuid.UUID(rrr_id), "c": data.commune_code})
    for pid, role in roles:
        session.execute(text("""
            INSERT INTO dispute_party (dispute_id, party_id, role, commune_code) VALUES (:d, :p, :r, :c)"""),
            {"d": dispute_id, "p": pid, "r": role, "c": data.commune_code})
    _insert_step(session, dispute_id, 1, "declared", data.opened_on, source_ids, data.commune_code, author)
    journal.record(session, by, author=author, operation="dispute.open", object_kind="dispute",
                   object_id=dispute_id, commune_code=data.commune_code, after=_get(session, dispute_id))
    return str(dispute_id)


def _insert_step(session: Session, dispute_id: uuid.UUID, seq: int, step: str, on: date, source_ids: list[str],
                 commune: str, author: str, *, note: str | None = None, outcome: str | None = None,
                 court_reference: str | None = None) -> None:
    session.execute(text("""
        INSERT INTO dispute_step (dispute_id, seq, step, occurred_on, source_ids, note, outcome, court_reference,
                                  author, commune_code)
        VALUES (:d, :seq, :step, :on, CAST(:sources AS uuid[]), :note, :outcome, :court, :author, :commune)"""),
        {"d": dispute_id, "seq": seq, "step": step, "on": on, "sources": source_ids, "note": note,
         "outcome": outcome, "court": court_reference, "author": author, "commune": commune})


def _head(session: Session, dispute_id: uuid.UUID) -> Any:
    head = session.execute(text("SELECT * FROM dispute WHERE id = :id"), {"id": dispute_id}).mappings().first()
    if head is None:
        raise NotFound("dispute.not_found", id=str(dispute_id))
    return head


def _steps(session: Session, dispute_id: uuid.UUID) -> list[Any]:
    return list(session.execute(text("SELECT * FROM dispute_step WHERE dispute_id = :id ORDER BY seq"),
                                {"id": dispute_id}).mappings().all())


def _get(session: Session, dispute_id: uuid.UUID, *, reader: Principal | None = None) -> dict[str, Any]:
    """The whole dispute, personal fields included (the callers decided who reads it)."""
    head = _head(session, dispute_id)
    steps = _steps(session, dispute_id)
    parcels = session.execute(text("""
        SELECT d.parcel_id, d.rrr_id, p.nicad,
               (SELECT r.end_date FROM rrr_version r WHERE r.rrr_id = d.rrr_id AND r.valid_to IS NULL) AS lifted_on
        FROM dispute_parcel d LEFT JOIN parcel_version p ON p.parcel_id = d.parcel_id AND p.valid_to IS NULL
        WHERE d.dispute_id = :id ORDER BY d.parcel_id"""), {"id": dispute_id}).mappings().all()
    parties = session.execute(text("""
        SELECT d.party_id, d.role, concat_ws(' ', p.given_names, p.name) AS name, p.commune_code
        FROM dispute_party d LEFT JOIN party_version p ON p.party_id = d.party_id AND p.valid_to IS NULL
        WHERE d.dispute_id = :id ORDER BY d.role, d.party_id"""), {"id": dispute_id}).mappings().all()
    return {
        "id": str(head["id"]), "commune_code": head["commune_code"], "kind": head["kind"],
        "opened_on": head["opened_on"].isoformat(), "state": steps[-1]["step"], "version": len(steps),
        "source_ids": [str(s) for s in head["source_ids"]], "origin": head["origin"],
        "created_by": head["created_by"], "created_at": head["created_at"].isoformat(),
        **{name: head[name] for name in sorted(FREE_TEXT_FIELDS["disputes"])},
        "parcels": [{"parcel_id": str(p["parcel_id"]), "nicad": p["nicad"], "rrr_id": str(p["rrr_id"]),
                     "lifted_on": p["lifted_on"].isoformat() if p["lifted_on"] else None} for p in parcels],
        # A party is named only to a reader of personal data in the party's current commune.
        "parties": [{"party_id": str(p["party_id"]), "role": p["role"],
                     "name": p["name"] if reader is None or reader.may(Action.READ_PERSONAL, p["commune_code"])
                     else None} for p in parties],
        "steps": [{"seq": s["seq"], "step": s["step"], "occurred_on": s["occurred_on"].isoformat(),
                   "source_ids": [str(x) for x in s["source_ids"]], "court_reference": s["court_reference"],
                   "author": s["author"], "recorded_at": s["recorded_at"].isoformat(),
                   **{name: s[name] for name in sorted(FREE_TEXT_FIELDS["dispute_steps"])}} for s in steps],
    }


def commune_of(session: Session, *, dispute_id: str) -> str | None:
    """The commune of a dispute (its scope); None for an unknown one."""
    try:
        did = uuid.UUID(str(dispute_id))
    except ValueError:
        return None
    return session.execute(text("SELECT commune_code FROM dispute WHERE id = :id"), {"id": did}).scalar()


def get(session: Session, *, dispute_id: str, reader: Principal) -> dict[str, Any]:
    """A dispute with its parcels, parties and steps, for a reader of personal data in its commune; logged."""
    commune = require_reader(reader, commune_of(session, dispute_id=dispute_id),
                             NotFound("dispute.not_found", id=str(dispute_id)[:64]))
    found = _get(session, parse_id(dispute_id, key="dispute.not_found", kind="litige"), reader=reader)
    audit.record(session, reader, service=f"{__name__}.get", subject_kind="dispute", subject_id=found["id"],
                 commune_code=commune)
    return found


def as_written(session: Session, *, dispute_id: str, by: Principal) -> dict[str, Any]:
    """The dispute as its writer sees it right after a write (no access-log row: the journal holds it)."""
    found = _get(session, parse_id(dispute_id, key="dispute.not_found", kind="litige"))
    authorise(session, by, found["commune_code"])
    return found


def list_for(session: Session, *, commune_code: str, reader: Principal, state: str | None = None,
             limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
    """The disputes of a commune, newest first: kind, state, dates, parcels; no names, no free text.

    For a reader of personal data in the commune (a dispute tells who is in conflict over what):
    each dispute listed is logged as read.
    """
    require_reader(reader, commune_code if _commune_exists(session, commune_code) else None,
                   NotFound("territory.not_found", level="commune", code=str(commune_code)[:64]))
    if state is not None and state not in DISPUTE_STEPS:
        raise InvalidInput("dispute.bad_state", state=str(state)[:40], states=", ".join(DISPUTE_STEPS))
    rows = session.execute(text("""
        SELECT d.id, d.kind, d.opened_on, last.step AS state, last.occurred_on AS since, last.seq AS version,
               ARRAY(SELECT p.parcel_id::text FROM dispute_parcel p WHERE p.dispute_id = d.id
                     ORDER BY p.parcel_id) AS parcel_ids,
               ARRAY(SELECT v.nicad FROM dispute_parcel p JOIN parcel_version v ON v.parcel_id = p.parcel_id
                     AND v.valid_to IS NULL WHERE p.dispute_id = d.id AND v.nicad IS NOT NULL
                     ORDER BY p.parcel_id) AS nicads
        FROM dispute d
        CROSS JOIN LATERAL (SELECT s.step, s.occurred_on, s.seq FROM dispute_step s WHERE s.dispute_id = d.id
                            ORDER BY s.seq DESC LIMIT 1) last
        WHERE d.commune_code = :commune AND (CAST(:state AS text) IS NULL OR last.step = :state)
        ORDER BY d.opened_on DESC, d.created_at DESC, d.id LIMIT :limit OFFSET :offset"""),
        {"commune": commune_code, "state": state, "limit": limit, "offset": offset}).mappings().all()
    late = _overdue_ids(session, commune_code) if rows else None
    found = [{"id": str(r["id"]), "kind": r["kind"], "opened_on": r["opened_on"].isoformat(), "state": r["state"],
              "since": r["since"].isoformat(), "version": r["version"], "parcel_ids": list(r["parcel_ids"]),
              "nicads": list(r["nicads"]),
              "overdue": None if late is None else str(r["id"]) in late} for r in rows]
    audit.record_many(session, reader, service=f"{__name__}.list_for", subject_kind="dispute",
                      subjects=[(d["id"], commune_code) for d in found])
    return found


def _commune_exists(session: Session, code: str) -> bool:
    return session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": code}).first() is not None


def _overdue_ids(session: Session, commune_code: str) -> set[str] | None:
    """The commune's disputes past their target days in their current state (``target_days.dispute``).

    The deadlines are the tracking slice's (:func:`sifc.tracking.deadlines.overdue_disputes`); None
    when that is not there, so the list says nothing rather than something wrong.
    """
    try:
        deadlines = importlib.import_module("sifc.tracking.deadlines")
    except ImportError:
        return None
    check = getattr(deadlines, "overdue_disputes", None)
    if check is None:
        return None
    return {str(item["id"]) for item in check(session, communes=[commune_code])}


def _writable(session: Session, dispute_id: str, by: Principal | None, expected_version: int | None
              ) -> tuple[Any, list[Any], list[Any]]:
    """The dispute under its parcels' locks, its steps re-read under them, the expected version checked."""
    did = parse_id(dispute_id, key="dispute.not_found", kind="litige")
    head = _head(session, did)
    authorise(session, by, head["commune_code"])
    check_expected(expected_version, len(_steps(session, did)))
    parcels = session.execute(text("""
        SELECT parcel_id, rrr_id FROM dispute_parcel WHERE dispute_id = :id ORDER BY parcel_id"""),
        {"id": did}).mappings().all()
    for p in parcels:
        session.execute(text("SELECT 1 FROM parcel_version WHERE parcel_id = :p AND valid_to IS NULL FOR UPDATE"),
                        {"p": p["parcel_id"]})
    steps = _steps(session, did)
    if expected_version is not None and expected_version != len(steps):
        raise PreconditionFailed("http.precondition_failed")
    return head, steps, list(parcels)


def _check_date(on: date, steps: list[Any]) -> None:
    bounds.check("rrr.start_date", on, field="occurred_on")
    last = steps[-1]["occurred_on"]
    if on < last:
        raise InvalidInput("dispute.date_before_previous", date=last.isoformat())


def add_step(session: Session, *, dispute_id: str, step: str, occurred_on: date, source_ids: list[str],
             note: str | None = None, court_reference: str | None = None, expected_version: int | None,
             by: Principal | None, author: str) -> dict[str, Any]:
    """Record the dispute's next state (mediation, resolved, sent_to_court), dated, with its documents.

    The parcels stay frozen until :func:`close`; sending to court may name the court's case number.
    """
    head, steps, _ = _writable(session, dispute_id, by, expected_version)
    current = steps[-1]["step"]
    if current == "closed":
        raise Conflict("dispute.closed", id=str(head["id"]))
    if step not in ("mediation", "resolved", "sent_to_court"):
        raise InvalidInput("dispute.bad_step", step=str(step)[:40], steps="mediation, resolved, sent_to_court")
    if step not in NEXT[current]:
        raise Conflict("dispute.out_of_order", step=step, state=current,
                       expected=", ".join(NEXT[current]) or "closed")
    _check_date(occurred_on, steps)
    sources = [str(s["id"]) for s in sources_of(session, source_ids, commune_code=head["commune_code"], by=by)]
    before = _get(session, head["id"])
    _insert_step(session, head["id"], len(steps) + 1, step, occurred_on, sources, head["commune_code"], author,
                 note=note, court_reference=court_reference if step == "sent_to_court" else None)
    after = _get(session, head["id"])
    journal.record(session, by, author=author, operation=f"dispute.{step}", object_kind="dispute",
                   object_id=head["id"], commune_code=head["commune_code"], before=before, after=after)
    return after


def close(session: Session, *, dispute_id: str, closed_on: date, outcome: str, source_ids: list[str],
          note: str | None = None, expected_version: int | None, by: Principal | None, author: str
          ) -> dict[str, Any]:
    """Close a resolved dispute (or one a court decided): record the outcome, lift each ``litige`` (mainlevée).

    A restriction already lifted by hand (``POST /rights/{id}/end``) stays as it is.
    """
    if not (outcome or "").strip():
        raise InvalidInput("dispute.outcome_required")
    head, steps, parcels = _writable(session, dispute_id, by, expected_version)
    current = steps[-1]["step"]
    if current == "closed":
        raise Conflict("dispute.closed", id=str(head["id"]))
    if current not in CLOSABLE:
        raise Conflict("dispute.not_closable", state=current)
    _check_date(closed_on, steps)
    sources = [str(s["id"]) for s in sources_of(session, source_ids, commune_code=head["commune_code"], by=by)]
    before = _get(session, head["id"])
    for p in parcels:
        right = session.execute(text("""
            SELECT version, end_date FROM rrr_version WHERE rrr_id = :r AND valid_to IS NULL"""),
            {"r": p["rrr_id"]}).first()
        if right is None or right.end_date is not None:
            continue
        rights.end(session, rrr_id=str(p["rrr_id"]), end_date=closed_on, cause="mainlevee", source_ids=sources,
                   reason=f"mainlevée : litige {head['id']} clos", notice_date=None, notice_days=0,
                   expected_version=right.version, by=by, author=author)
    _insert_step(session, head["id"], len(steps) + 1, "closed", closed_on, sources, head["commune_code"], author,
                 note=note, outcome=outcome.strip())
    after = _get(session, head["id"])
    journal.record(session, by, author=author, operation="dispute.close", object_kind="dispute",
                   object_id=head["id"], commune_code=head["commune_code"], before=before, after=after)
    return after


# --- an overlap turned into a dispute ----------------------------------------------------------------

def overlap_parcels(session: Session, *, job_id: str | None = None, feature: int | None = None,
                    parcel_ids: list[str] | None = None) -> list[str]:
    """The parcels of an overlap: a field return's refused feature, or parcels the registry shows overlapping.

    - ``job_id`` and ``feature``: the feature of a field return refused for an overlap
      (``parcel.overlap``): the returned parcel (when it is one of the register's) and the parcels
      it overlapped. An import's rejected feature is not a parcel of the register: the overlap it
      reported is opened from the registry's pairs (``/communes/{code}/overlaps``) once recorded.
    - ``parcel_ids``: current parcels each of which overlaps another of them (as the pairs of
      ``/communes/{code}/overlaps``).
    """
    if job_id is not None:
        return _from_job(session, job_id, feature)
    ids = [parse_id(p, key="parcel.not_found", kind="parcelle") for p in parcel_ids or []]
    if len(set(ids)) < 2:
        raise InvalidInput("dispute.overlap_needs_two")
    lonely = session.execute(text("""
        SELECT a.parcel_id FROM parcel_version a WHERE a.parcel_id = ANY(:ids) AND a.valid_to IS NULL
          AND NOT EXISTS (SELECT 1 FROM parcel_version b WHERE b.parcel_id = ANY(:ids) AND b.valid_to IS NULL
                          AND b.parcel_id <> a.parcel_id AND b.geom && a.geom
                          AND overlap_area(a.geom, b.geom) > :noise)"""),
        {"ids": ids, "noise": NOISE_M2}).scalars().all()
    if lonely:
        raise InvalidInput("dispute.not_overlapping", ids=", ".join(str(p) for p in lonely))
    return [str(p) for p in dict.fromkeys(ids)]


def _from_job(session: Session, job_id: str, feature: int | None) -> list[str]:
    jid = parse_id(job_id, key="dispute.overlap_not_found", kind="tâche")
    job = session.execute(text("SELECT kind, report FROM import_job WHERE id = :id"), {"id": jid}).mappings().first()
    if job is None or feature is None:
        raise NotFound("dispute.overlap_not_found", job=str(job_id)[:64], feature=str(feature))
    report = job["report"] or {}
    for entry in report.get("features", []) if isinstance(report, dict) else []:
        if entry.get("fid") != feature or entry.get("layer") not in ("parcels", "new_parcels"):
            continue
        if entry.get("reason") != "parcel.overlap":
            break
        others = str((entry.get("params") or {}).get("ids", "")).split(",")
        found = [entry["parcel_id"]] if entry.get("parcel_id") else []
        found += [o.strip() for o in others if o.strip()]
        if found:
            return list(dict.fromkeys(found))
    raise NotFound("dispute.overlap_not_found", job=str(job_id)[:64], feature=str(feature))


def from_overlap(session: Session, *, opened_on: date, source_ids: list[str], by: Principal | None, author: str,
                 job_id: str | None = None, feature: int | None = None, parcel_ids: list[str] | None = None,
                 kind: str = "limites", parties: list[dict[str, Any]] | None = None,
                 description: str | None = None) -> str:
    """Open a dispute on the parcels of an overlap in one step (kind ``limites`` unless told otherwise)."""
    found = overlap_parcels(session, job_id=job_id, feature=feature, parcel_ids=parcel_ids)
    first = current_parcel(session, parse_id(found[0], key="parcel.not_found", kind="parcelle"))
    origin: dict[str, Any] = {"overlap": {"parcel_ids": found}}
    if job_id is not None:
        origin["overlap"].update(job_id=str(job_id), feature=feature)
    return open(session, data=DisputeInput(commune_code=first.commune_code, kind=kind, parcel_ids=found,
                                           opened_on=opened_on, source_ids=source_ids, parties=parties or [],
                                           description=description, origin=origin), by=by, author=author)
