"""Claims (réclamations, oppositions) against the results of a campaign, or against any parcel.

A claim names the parcel, the claimant (a registered party, or a name as given at the counter), the
grounds and the documents brought. On a parcel of a campaign on display, it is received only during
an open display period covering the parcel (the affichage public is the window in which neighbours
object); outside it, it is refused with the period's dates. Elsewhere it is a plain réclamation.

Resolution: ``accepted`` (the officer then changes the record through the ordinary routes — parcel,
party, procedure — and the claim records that it was accepted), ``rejected`` with a reason, or
``disputed`` (a litige is opened through :mod:`sifc.commission.disputes`, which freezes the parcel).
A claim's claimant, grounds and resolution reason are personal: served in scope only, each read logged.
Its version (for ``If-Match``) is 1 while received, 2 once resolved.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import bounds, journal
from sifc.auth import audit
from sifc.auth.principal import Principal
from sifc.errors import Conflict, InvalidInput, NotFound
from sifc.personal import require_reader
from sifc.tenure.common import authorise, current_parcel, linkable_parties, not_future, sources_of
from sifc.versioning import check_expected, parse_id

DECISIONS = ("accepted", "rejected", "disputed")
KINDS = ("reclamation", "opposition")


@dataclass
class ClaimInput:
    """A claim as the officer records it."""

    parcel_id: str
    grounds: str
    received_on: date
    kind: str = "reclamation"
    claimant_party_id: str | None = None
    claimant_name: str | None = None
    source_ids: list[str] = field(default_factory=list)


@dataclass
class Resolution:
    """How a claim ends: accepted, rejected (reason required) or turned into a dispute."""

    decision: str
    resolved_on: date
    reason: str | None = None
    dispute: dict[str, Any] = field(default_factory=dict)


def _display_of(session: Session, parcel_id: uuid.UUID) -> Any:
    """The campaign on display that lists the parcel (its latest), with its periods covering the parcel."""
    return session.execute(text("""
        SELECT c.id, c.state FROM campaign_parcel cp JOIN campaign c ON c.id = cp.campaign_id
        WHERE cp.parcel_id = :p AND c.state <> 'closed' ORDER BY c.created_at DESC LIMIT 1"""),
        {"p": parcel_id}).first()


def _period_for(session: Session, campaign_id: uuid.UUID, parcel_id: uuid.UUID, on: date) -> Any:
    """The open display period of the campaign showing the parcel on ``on`` (its localité's, or the whole's)."""
    return session.execute(text("""
        SELECT d.id, d.starts_on, d.ends_on FROM display_period d, parcel_version v
        WHERE d.campaign_id = :c AND d.closed_at IS NULL AND d.starts_on <= :on AND :on <= d.ends_on
          AND v.parcel_id = :p AND v.valid_to IS NULL
          AND (d.localite_id IS NULL OR d.localite_id = (
              SELECT l.localite_id FROM localite_version l WHERE l.valid_to IS NULL AND l.commune_code = v.commune_code
              ORDER BY l.geom <-> ST_PointOnSurface(v.geom) LIMIT 1))
        ORDER BY d.starts_on LIMIT 1"""), {"c": campaign_id, "p": parcel_id, "on": on}).first()


def _window(session: Session, campaign: Any, parcel_id: uuid.UUID, on: date) -> Any:
    """The open display period covering the parcel on ``on``; a clear refusal otherwise."""
    period = _period_for(session, campaign.id, parcel_id, on)
    if period is not None:
        return period
    known = session.execute(text("""
        SELECT starts_on, ends_on, closed_at FROM display_period WHERE campaign_id = :c
        ORDER BY starts_on DESC LIMIT 1"""), {"c": campaign.id}).first()
    if known is None:
        raise Conflict("claim.no_display", campaign=str(campaign.id))
    raise Conflict("claim.outside_display", date=on.isoformat(), starts=known.starts_on.isoformat(),
                   ends=known.ends_on.isoformat())


def record(session: Session, *, data: ClaimInput, by: Principal | None, author: str) -> str:
    """Record a claim received at the office; return its id."""
    pid = parse_id(data.parcel_id, key="parcel.not_found", kind="parcelle")
    parcel = current_parcel(session, pid)
    authorise(session, by, parcel.commune_code)
    if data.kind not in KINDS:
        raise InvalidInput("claim.bad_kind", kind=str(data.kind)[:32], kinds=", ".join(KINDS))
    if not (data.grounds or "").strip():
        raise InvalidInput("claim.grounds_required")
    claimant = _claimant(session, data, by)
    bounds.check("procedure.registered_on", data.received_on, field="received_on")
    not_future(data.received_on, "received_on")
    sources = sources_of(session, data.source_ids, commune_code=parcel.commune_code, by=by)
    campaign = _display_of(session, pid)
    period = _window(session, campaign, pid, data.received_on) if campaign is not None else None
    claim_id = uuid.uuid4()
    session.execute(text("""
        INSERT INTO claim (id, commune_code, parcel_id, campaign_id, display_period_id, kind, claimant_party_id,
                           claimant_name, grounds, source_ids, received_on, created_by)
        VALUES (:id, :commune, :parcel, :campaign, :period, :kind, :party, :name, :grounds, CAST(:sources AS uuid[]),
                :on, :author)"""),
        {"id": claim_id, "commune": parcel.commune_code, "parcel": pid,
         "campaign": campaign.id if campaign else None, "period": period.id if period else None, "kind": data.kind,
         "party": claimant, "name": (data.claimant_name or "").strip() or None, "grounds": data.grounds.strip(),
         "sources": [str(s["id"]) for s in sources], "on": data.received_on, "author": author})
    journal.record(session, by, author=author, operation="claim.record", object_kind="claim", object_id=claim_id,
                   parcel_id=pid, commune_code=parcel.commune_code, after=_get(session, claim_id))
    return str(claim_id)


def _claimant(session: Session, data: ClaimInput, by: Principal | None) -> uuid.UUID | None:
    if data.claimant_party_id:
        party = parse_id(data.claimant_party_id, key="party.not_found", kind="partie")
        linkable_parties(session, [party], by=by)
        return party
    if not (data.claimant_name or "").strip():
        raise InvalidInput("claim.claimant_required")
    return None


def _get(session: Session, claim_id: uuid.UUID) -> dict[str, Any]:
    row = session.execute(text("""
        SELECT k.*, v.nicad, concat_ws(' ', p.given_names, p.name) AS party_name FROM claim k
        LEFT JOIN parcel_version v ON v.parcel_id = k.parcel_id AND v.valid_to IS NULL
        LEFT JOIN party_version p ON p.party_id = k.claimant_party_id AND p.valid_to IS NULL
        WHERE k.id = :id"""), {"id": claim_id}).mappings().first()
    if row is None:
        raise NotFound("claim.not_found", id=str(claim_id))
    return _json(row)


def _json(row: Any) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    def ident(value: Any) -> str | None:
        return str(value) if value is not None else None

    return {"id": str(row["id"]), "commune_code": row["commune_code"], "parcel_id": str(row["parcel_id"]),
            "nicad": row["nicad"], "campaign_id": ident(row["campaign_id"]),
            "display_period_id": ident(row["display_period_id"]), "kind": row["kind"],
            "claimant_party_id": ident(row["claimant_party_id"]),
            "claimant_name": row["claimant_name"] or row["party_name"] or None,
            "grounds": row["grounds"], "source_ids": [str(s) for s in row["source_ids"]],
            "received_on": iso(row["received_on"]), "state": row["state"], "resolved_on": iso(row["resolved_on"]),
            "resolution_reason": row["resolution_reason"], "resolved_by": row["resolved_by"],
            "dispute_id": ident(row["dispute_id"]), "created_by": row["created_by"],
            "created_at": iso(row["created_at"]), "version": 1 if row["state"] == "received" else 2}


def commune_of(session: Session, *, claim_id: str) -> str | None:
    """The commune of a claim; None for an unknown one."""
    try:
        cid = uuid.UUID(str(claim_id))
    except ValueError:
        return None
    return session.execute(text("SELECT commune_code FROM claim WHERE id = :id"), {"id": cid}).scalar()


def get(session: Session, *, claim_id: str, reader: Principal) -> dict[str, Any]:
    """A claim (personal through and through: claimant, grounds), for a reader in its commune; logged."""
    commune = require_reader(reader, commune_of(session, claim_id=claim_id),
                             NotFound("claim.not_found", id=str(claim_id)[:64]))
    found = _get(session, uuid.UUID(str(claim_id)))
    audit.record(session, reader, service=f"{__name__}.get", subject_kind="claim", subject_id=found["id"],
                 commune_code=commune)
    return found


def list_(session: Session, *, reader: Principal, commune_code: str | None = None, campaign_id: str | None = None,
          state: str | None = None) -> list[dict[str, Any]]:
    """Claims of a commune or of a campaign, oldest first, for a reader in that commune; each read logged."""
    if campaign_id:
        from sifc.commission import campaigns

        commune = campaigns.reader_commune(session, campaign_id=campaign_id, reader=reader)
    else:
        commune = require_reader(reader, commune_code,
                                 NotFound("campaign.unknown_commune", commune=str(commune_code)[:64]))
    ids = session.execute(text("""
        SELECT id FROM claim WHERE commune_code = :c AND (CAST(:k AS uuid) IS NULL OR campaign_id = CAST(:k AS uuid))
          AND (CAST(:s AS text) IS NULL OR state = :s) ORDER BY received_on, created_at"""),
        {"c": commune, "k": campaign_id, "s": state}).scalars().all()
    found = [_get(session, i) for i in ids]
    audit.record_many(session, reader, service=f"{__name__}.list", subject_kind="claim",
                      subjects=[(f["id"], commune) for f in found])
    return found


def resolve(session: Session, *, claim_id: str, resolution: Resolution, expected_version: int | None,
            by: Principal | None, author: str) -> dict[str, Any]:
    """Close a received claim: accepted, rejected with a reason, or turned into a dispute (the parcel freezes)."""
    cid = parse_id(claim_id, key="claim.not_found", kind="réclamation")
    row = session.execute(text("SELECT * FROM claim WHERE id = :id FOR UPDATE"), {"id": cid}).mappings().first()
    if row is None:
        raise NotFound("claim.not_found", id=str(cid))
    authorise(session, by, row["commune_code"])
    check_expected(expected_version, 1 if row["state"] == "received" else 2)
    if row["state"] != "received":
        raise Conflict("claim.resolved", state=row["state"])
    if resolution.decision not in DECISIONS:
        raise InvalidInput("claim.bad_decision", decision=str(resolution.decision)[:32],
                           decisions=", ".join(DECISIONS))
    reason = (resolution.reason or "").strip() or None
    if resolution.decision == "rejected" and not reason:
        raise InvalidInput("claim.reason_required")
    bounds.check("procedure.occurred_on", resolution.resolved_on, field="resolved_on")
    not_future(resolution.resolved_on, "resolved_on")
    if resolution.resolved_on < row["received_on"]:
        raise InvalidInput("claim.date_before_received", date=row["received_on"].isoformat())
    before = _get(session, cid)
    dispute_id = _open_dispute(session, row, resolution, by=by, author=author) \
        if resolution.decision == "disputed" else None
    session.execute(text("""
        UPDATE claim SET state = :state, resolved_on = :on, resolution_reason = :reason, resolved_by = :author,
                         dispute_id = :dispute
        WHERE id = :id"""), {"id": cid, "state": resolution.decision, "on": resolution.resolved_on,
                             "reason": reason, "author": author, "dispute": dispute_id})
    after = _get(session, cid)
    journal.record(session, by, author=author, operation=f"claim.{resolution.decision}", object_kind="claim",
                   object_id=cid, parcel_id=row["parcel_id"], commune_code=row["commune_code"], before=before,
                   after=after)
    return after


def _open_dispute(session: Session, row: Any, resolution: Resolution, *, by: Principal | None,
                  author: str) -> uuid.UUID:
    """Open a dispute (litige) on the claim's parcel through the disputes register (ADR 0005 §6).

    The claimant, when a registered party, is its ``demandeur``; the claim's grounds describe the case.
    """
    from sifc.commission import disputes

    data = disputes.DisputeInput(
        commune_code=row["commune_code"], kind=resolution.dispute.get("kind") or "autre",
        parcel_ids=[str(row["parcel_id"])], opened_on=resolution.resolved_on,
        source_ids=list(dict.fromkeys([*(str(s) for s in row["source_ids"]),
                                       *(str(s) for s in resolution.dispute.get("source_ids") or [])])),
        parties=[{"party_id": str(row["claimant_party_id"]), "role": "demandeur"}] if row["claimant_party_id"] else [],
        description=row["grounds"], origin={"claim_id": str(row["id"])})
    return uuid.UUID(str(disputes.open(session, data=data, by=by, author=author)))
