"""Each commune's fee schedules (barèmes des redevances), per procedure kind, dated, citing their délibération.

A schedule is the transcription of a délibération of the municipal council: no amount exists without
one (``deliberation_source_id``, a source of kind ``deliberation`` of the commune). Schedules are
append-only: a new délibération is a new row from its date; the one in force on a date is the latest
``valid_from`` not after it whose ``valid_to`` (when the délibération set an end) is later. Schedules are
public (a délibération on fees is public); who recorded one is not.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import journal
from sifc.auth.principal import Action, Principal, require
from sifc.errors import InvalidInput, NotFound
from sifc.federation import directory
from sifc.fees import tariff
from sifc.models import FEE_PROCEDURE_KINDS

# A délibération on fees is dated from the communes' creation (loi 96-06, 1996; rural communities before) to a
# few years ahead: a schedule may be voted before the year it applies to.
EARLIEST = date(1972, 1, 1)
LATEST = date(2100, 12, 31)


@dataclass
class ScheduleInput:
    """A fee schedule as a délibération sets it."""

    commune_code: str
    procedure_kind: str
    valid_from: date
    rule: dict[str, Any]
    deliberation_source_id: str
    valid_to: date | None = None


def _known_commune(session: Session, commune_code: str) -> None:
    if not session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": commune_code}).scalar():
        raise NotFound("territory.not_found", level="commune", code=commune_code[:64])


def _deliberation(session: Session, source_id: str, commune_code: str, by: Principal | None) -> uuid.UUID:
    from sifc.tenure.common import sources_of

    found = sources_of(session, [source_id], commune_code=commune_code, by=by)
    if found[0]["kind"] != "deliberation":
        raise InvalidInput("fees.source_not_deliberation", kind=found[0]["kind"])
    return uuid.UUID(str(found[0]["id"]))


def _row(row: Any, *, personal: bool = False) -> dict[str, Any]:
    body = {"id": str(row["id"]), "commune_code": row["commune_code"], "procedure_kind": row["procedure_kind"],
            "valid_from": row["valid_from"].isoformat(),
            "valid_to": row["valid_to"].isoformat() if row["valid_to"] else None, "rule": row["rule"],
            "deliberation_source_id": str(row["deliberation_source_id"]),
            "deliberation_reference": row.get("deliberation_reference"),
            "deliberation_date": row["deliberation_date"].isoformat() if row.get("deliberation_date") else None,
            "recorded_at": row["recorded_at"].isoformat()}
    if personal:
        body["recorded_by"] = row["recorded_by"]
    return body


SELECT = """
    SELECT f.*, s.reference AS deliberation_reference, s.document_date AS deliberation_date
    FROM fee_schedule f JOIN source_document s ON s.id = f.deliberation_source_id"""


def create(session: Session, *, data: ScheduleInput, by: Principal | None, author: str) -> dict[str, Any]:
    """Record a schedule (land officers and administrators of the commune, at the node that owns it).

    The rule is checked (:func:`sifc.fees.tariff.validate`); the délibération must be a source of kind
    ``deliberation`` of the same commune that ``by`` may read.
    """
    _known_commune(session, data.commune_code)
    if by is not None:
        require(by, Action.WRITE_TENURE, communes=[data.commune_code])
    directory.ensure_owned(session, [data.commune_code])
    if data.procedure_kind not in FEE_PROCEDURE_KINDS:
        raise InvalidInput("fees.bad_procedure_kind", kind=data.procedure_kind[:40],
                           kinds=", ".join(FEE_PROCEDURE_KINDS))
    if not EARLIEST <= data.valid_from <= LATEST:
        raise InvalidInput("fees.bad_dates", earliest=EARLIEST.isoformat(), latest=LATEST.isoformat())
    if data.valid_to is not None and not data.valid_from < data.valid_to <= LATEST:
        raise InvalidInput("fees.bad_dates", earliest=EARLIEST.isoformat(), latest=LATEST.isoformat())
    rule = tariff.validate(data.rule)
    source = _deliberation(session, data.deliberation_source_id, data.commune_code, by)
    schedule_id = uuid.uuid4()
    session.execute(text("""
        INSERT INTO fee_schedule (id, commune_code, procedure_kind, valid_from, valid_to, rule,
                                  deliberation_source_id, recorded_by)
        VALUES (:id, :commune, :kind, :from, :to, CAST(:rule AS jsonb), :source, :author)"""),
        {"id": schedule_id, "commune": data.commune_code, "kind": data.procedure_kind, "from": data.valid_from,
         "to": data.valid_to, "rule": orjson.dumps(rule).decode(), "source": source, "author": author})
    written = _get(session, schedule_id=str(schedule_id), personal=True)
    journal.record(session, by, author=author, operation="fee_schedule.create", object_kind="fee_schedule",
                   object_id=schedule_id, commune_code=data.commune_code, after=written)
    return written


def get(session: Session, *, schedule_id: str) -> dict[str, Any]:
    """One schedule, public fields only (who recorded it is not)."""
    return _get(session, schedule_id=schedule_id, personal=False)


def _get(session: Session, *, schedule_id: str, personal: bool) -> dict[str, Any]:
    """One schedule; ``personal`` adds who recorded it, for its writer's answer."""
    try:
        sid = uuid.UUID(str(schedule_id))
    except ValueError as error:
        raise NotFound("fees.schedule_not_found", id=str(schedule_id)[:64]) from error
    row = session.execute(text(SELECT + " WHERE f.id = :id"), {"id": sid}).mappings().first()
    if row is None:
        raise NotFound("fees.schedule_not_found", id=str(sid))
    return _row(row, personal=personal)


def list_(session: Session, *, commune_code: str, procedure_kind: str | None = None,
          on: date | None = None) -> list[dict[str, Any]]:
    """The commune's schedules, by kind then date (public); ``on`` keeps those in force on that date."""
    _known_commune(session, commune_code)
    rows = session.execute(text(SELECT + """
        WHERE f.commune_code = :commune AND (CAST(:kind AS text) IS NULL OR f.procedure_kind = :kind)
        ORDER BY f.procedure_kind, f.valid_from, f.recorded_at"""),
        {"commune": commune_code, "kind": procedure_kind}).mappings().all()
    found = [_row(row) for row in rows]
    if on is not None:
        kinds = {row["procedure_kind"] for row in found}
        current = [in_force_row(session, commune_code=commune_code, procedure_kind=k, on=on) for k in sorted(kinds)]
        keep = {str(row["id"]) for row in current if row is not None}
        found = [row for row in found if row["id"] in keep]
    return found


def in_force_row(session: Session, *, commune_code: str, procedure_kind: str, on: date) -> Any | None:
    """The schedule in force on ``on`` (the latest from a date not after it, the last recorded on a tie)."""
    return session.execute(text("""
        SELECT * FROM fee_schedule
        WHERE commune_code = :commune AND procedure_kind = :kind AND valid_from <= :on
        ORDER BY valid_from DESC, recorded_at DESC, id DESC LIMIT 1"""),
        {"commune": commune_code, "kind": procedure_kind, "on": on}).mappings().first()


def in_force(session: Session, *, commune_code: str, procedure_kind: str, on: date) -> Any | None:
    """The schedule in force on ``on``, or None (none recorded, or the latest one ended before ``on``)."""
    row = in_force_row(session, commune_code=commune_code, procedure_kind=procedure_kind, on=on)
    if row is None or (row["valid_to"] is not None and row["valid_to"] <= on):
        return None
    return row
