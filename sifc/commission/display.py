"""The public display (affichage public) of a campaign, and its close.

A display period shows the campaign's results — per localité or for the whole campaign — during the
number of days the commune's ``display_days`` setting says on its first day (dated configuration:
the length depends on the commune's practice and texts, never on code). Claims are received during
the period (:mod:`sifc.commission.claims`). Once it has ended, closing it registers one
``regularisation`` procedure per campaign parcel without an open claim, its presumed holders as
applicants (:func:`sifc.tenure.procedures.register`), ready for a council session; parcels with an
open claim, or without presumed holders, wait and are listed in the close's report.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import bounds, journal
from sifc.auth.principal import Principal
from sifc.errors import Conflict, InvalidInput, NotFound, SifcError
from sifc.tenure import procedures
from sifc.tenure.common import authorise
from sifc.versioning import parse_id

REGULARISATION = "regularisation"
# A localité's display covers the campaign parcels whose nearest current localité of the commune it is
# (a village shows its own parcels); a display without localité covers the whole campaign.
COVERED = """(CAST(:l AS uuid) IS NULL OR (
    SELECT l.localite_id FROM localite_version l WHERE l.valid_to IS NULL AND l.commune_code = v.commune_code
    ORDER BY l.geom <-> ST_PointOnSurface(v.geom) LIMIT 1) = CAST(:l AS uuid))"""


def _display_days(session: Session, *, commune_code: str, on: date) -> int:
    """``display_days`` in force on ``on`` for the commune (409 naming the key when the commune set none)."""
    from sifc.rules import service as rules

    days = rules.in_force(session, commune_code=commune_code, key="display_days", on=on)
    return int(days)


def open_period(session: Session, *, campaign_id: str, starts_on: date, localite_id: str | None = None,
                by: Principal | None, author: str) -> dict[str, Any]:
    """Open a display period of a campaign (whole, or one localité); the campaign goes on display."""
    cid = parse_id(campaign_id, key="campaign.not_found", kind="campagne")
    campaign = session.execute(text("SELECT id, commune_code, state FROM campaign WHERE id = :id FOR UPDATE"),
                               {"id": cid}).first()
    if campaign is None:
        raise NotFound("campaign.not_found", id=str(cid))
    authorise(session, by, campaign.commune_code)
    if campaign.state == "closed":
        raise Conflict("campaign.closed")
    bounds.check("procedure.registered_on", starts_on, field="starts_on")
    if not session.execute(text("SELECT 1 FROM campaign_parcel WHERE campaign_id = :id LIMIT 1"), {"id": cid}).scalar():
        raise Conflict("campaign.empty")
    localite = parse_id(localite_id, key="campaign.localite_not_found", kind="localité") if localite_id else None
    if localite is not None and not session.execute(text("""
            SELECT 1 FROM localite_version WHERE localite_id = :l AND valid_to IS NULL AND commune_code = :c"""),
            {"l": localite, "c": campaign.commune_code}).scalar():
        raise NotFound("campaign.localite_not_found", id=str(localite))
    days = _display_days(session, commune_code=campaign.commune_code, on=starts_on)
    if days <= 0:
        raise InvalidInput("display.bad_days", days=days)
    ends_on = starts_on + timedelta(days=days - 1)
    clash = session.execute(text("""
        SELECT starts_on, ends_on FROM display_period
        WHERE campaign_id = :id AND closed_at IS NULL AND starts_on <= :ends AND :starts <= ends_on
          AND (localite_id IS NULL OR CAST(:l AS uuid) IS NULL OR localite_id = CAST(:l AS uuid)) LIMIT 1"""),
        {"id": cid, "starts": starts_on, "ends": ends_on, "l": localite}).first()
    if clash is not None:
        raise Conflict("display.overlaps", starts=clash.starts_on.isoformat(), ends=clash.ends_on.isoformat())
    period_id = uuid.uuid4()
    session.execute(text("""
        INSERT INTO display_period (id, campaign_id, commune_code, localite_id, starts_on, ends_on, display_days,
                                    opened_by)
        VALUES (:id, :c, :commune, :l, :starts, :ends, :days, :author)"""),
        {"id": period_id, "c": cid, "commune": campaign.commune_code, "l": localite, "starts": starts_on,
         "ends": ends_on, "days": days, "author": author})
    session.execute(text("UPDATE campaign SET state = 'display', updated_at = now() WHERE id = :id"), {"id": cid})
    found = _period(session, period_id)
    journal.record(session, by, author=author, operation="display.open", object_kind="display_period",
                   object_id=period_id, commune_code=campaign.commune_code, after=found)
    return found


def _period(session: Session, period_id: uuid.UUID) -> dict[str, Any]:
    row = session.execute(text("SELECT * FROM display_period WHERE id = :id"), {"id": period_id}).mappings().first()
    if row is None:
        raise NotFound("display.not_found", id=str(period_id))
    return {"id": str(row["id"]), "campaign_id": str(row["campaign_id"]), "commune_code": row["commune_code"],
            "localite_id": str(row["localite_id"]) if row["localite_id"] else None,
            "starts_on": row["starts_on"].isoformat(), "ends_on": row["ends_on"].isoformat(),
            "display_days": row["display_days"], "closed": row["closed_at"] is not None}


def close_period(session: Session, *, campaign_id: str, period_id: str, closed_on: date, by: Principal | None,
                 author: str) -> dict[str, Any]:
    """Close an ended display period: register a régularisation procedure per parcel ready for a session.

    Refused before the period's last day has passed (claims may still come). The report lists the
    procedures registered and the parcels that wait, each with why (an open claim, no presumed holder,
    or the refusal the registration met: a litige, an affectation in force, a request already open).
    """
    pid = parse_id(period_id, key="display.not_found", kind="affichage")
    period = session.execute(text("SELECT * FROM display_period WHERE id = :id FOR UPDATE"),
                             {"id": pid}).mappings().first()
    if period is None or str(period["campaign_id"]) != str(campaign_id):
        raise NotFound("display.not_found", id=str(pid))
    authorise(session, by, period["commune_code"])
    if period["closed_at"] is not None:
        raise Conflict("display.closed")
    if closed_on <= period["ends_on"]:
        raise Conflict("display.not_ended", ends=period["ends_on"].isoformat())
    bounds.check("procedure.registered_on", closed_on, field="closed_on")
    report = register_ready(session, campaign_id=str(period["campaign_id"]), registered_on=closed_on, by=by,
                            author=author, localite_id=period["localite_id"])
    session.execute(text("UPDATE display_period SET closed_at = now(), closed_by = :a WHERE id = :id"),
                    {"id": pid, "a": author})
    journal.record(session, by, author=author, operation="display.close", object_kind="display_period",
                   object_id=pid, commune_code=period["commune_code"], after={**_period(session, pid), **report})
    return {**_period(session, pid), **report}


def register_ready(session: Session, *, campaign_id: str, registered_on: date, by: Principal | None,
                   author: str, localite_id: Any = None) -> dict[str, Any]:
    """Register a régularisation procedure for each campaign parcel whose display has ended without open claim.

    Also what an officer runs once the claims a close left open are resolved. The campaign closes when
    every parcel has its procedure.
    """
    cid = parse_id(campaign_id, key="campaign.not_found", kind="campagne")
    campaign = session.execute(text("SELECT id, commune_code, state FROM campaign WHERE id = :id FOR UPDATE"),
                               {"id": cid}).first()
    if campaign is None:
        raise NotFound("campaign.not_found", id=str(cid))
    authorise(session, by, campaign.commune_code)
    ended = session.execute(text("""
        SELECT max(ends_on) FROM display_period WHERE campaign_id = :id"""), {"id": cid}).scalar()
    if ended is None or ended >= registered_on:
        raise Conflict("display.not_ended", ends=ended.isoformat() if ended else "—")
    rows = session.execute(text("""
        SELECT cp.parcel_id, cp.presumed_holders,
               EXISTS (SELECT 1 FROM claim k WHERE k.campaign_id = cp.campaign_id AND k.parcel_id = cp.parcel_id
                         AND k.state = 'received') AS claimed,
               EXISTS (SELECT 1 FROM claim k WHERE k.campaign_id = cp.campaign_id AND k.parcel_id = cp.parcel_id
                         AND k.state = 'disputed') AS disputed
        FROM campaign_parcel cp
        JOIN parcel_version v ON v.parcel_id = cp.parcel_id AND v.valid_to IS NULL
        WHERE cp.campaign_id = :id AND cp.procedure_id IS NULL AND """ + COVERED + """
        ORDER BY cp.parcel_id"""), {"id": cid, "l": localite_id}).mappings().all()
    registered: list[dict[str, str]] = []
    waiting: list[dict[str, str]] = []
    for row in rows:
        parcel = str(row["parcel_id"])
        if row["claimed"] or row["disputed"]:
            waiting.append({"parcel_id": parcel, "reason": "claim_open" if row["claimed"] else "disputed"})
            continue
        if not row["presumed_holders"]:
            waiting.append({"parcel_id": parcel, "reason": "no_presumed_holder"})
            continue
        try:
            with session.begin_nested():
                procedure_id = _register(session, row, registered_on=registered_on, by=by, author=author)
        except SifcError as error:
            waiting.append({"parcel_id": parcel, "reason": error.key})
            continue
        session.execute(text("UPDATE campaign_parcel SET procedure_id = :p WHERE campaign_id = :c AND parcel_id = :x"),
                        {"p": procedure_id, "c": cid, "x": row["parcel_id"]})
        registered.append({"parcel_id": parcel, "procedure_id": procedure_id})
    left = session.execute(text(
        "SELECT count(*) FROM campaign_parcel WHERE campaign_id = :id AND procedure_id IS NULL"), {"id": cid}).scalar()
    if not left and campaign.state != "closed":
        session.execute(text("UPDATE campaign SET state = 'closed', updated_at = now() WHERE id = :id"), {"id": cid})
    return {"registered": registered, "waiting": waiting}


def _register(session: Session, row: Any, *, registered_on: date, by: Principal | None, author: str) -> str:
    fields = procedures.ProcedureInput.__dataclass_fields__
    extra: dict[str, Any] = {"kind": REGULARISATION} if "kind" in fields else {}
    data = procedures.ProcedureInput(parcel_id=str(row["parcel_id"]), applicants=list(row["presumed_holders"]),
                                     registered_on=registered_on, **extra)
    return procedures.register(session, data=data, by=by, author=author)
