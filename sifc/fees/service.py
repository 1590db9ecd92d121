"""A procedure's fees: the amount due at registration, payments, cancellations, the balance, the step it blocks.

- :func:`assess` computes the amount once, at registration, from the schedule in force on the
  registration date (none in force: the file pays nothing, no row);
- :func:`pay` records a payment by the régisseur (role ``regisseur``, or an administrator, in scope): in
  the commune's ``receipt_mode`` ``quittance_papier`` the Treasury's paper quittance number is required,
  in ``recu_pdf`` SIFC numbers the receipt per commune and year without gaps (``receipt_counter``, taken
  in the payment's transaction: a rollback gives the number back; concurrent payments queue on the row);
- :func:`cancel` records a cancellation as a new row (the opposite amount, a reason), never an edit;
- :func:`require_paid` refuses the step the commune's ``fees_required_before`` names until the balance
  is nil (409 ``fees.unpaid`` with the amount due).

What a régisseur reads is what a receipt needs: the file's number, kind and state, the parcel's NICAD,
amounts, methods and receipt numbers. Who recorded a payment and why one was cancelled are personal: only
readers of personal data in the commune see them (the read logged).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import bounds, journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal, require
from sifc.errors import Conflict, InvalidInput, NotFound
from sifc.federation import directory
from sifc.fees import schedules, tariff
from sifc.models import PAYMENT_METHODS
from sifc.rules import service as rules

RECEIPT_MODES = ("quittance_papier", "recu_pdf")
MOBILE_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{3,63}$")
MAX_QUITTANCE = 64
MAX_REASON = 2000
LOCK_CLASS = 0x5F330  # advisory locks of a procedure's payments (pg_advisory_xact_lock(class, key))


@dataclass
class PaymentInput:
    """A payment as the régisseur records it."""

    procedure_id: str
    amount: int
    method: str
    paid_on: date
    mobile_reference: str | None = None
    quittance_number: str | None = None


# --- reading a procedure ---------------------------------------------------------------------------

def _procedure(session: Session, procedure_id: str) -> Any:
    try:
        pid = uuid.UUID(str(procedure_id))
    except ValueError as error:
        raise NotFound("procedure.not_found", id=str(procedure_id)[:64]) from error
    row = session.execute(text("""
        SELECT p.id, p.kind, p.reference, p.commune_code, p.parcel_id,
               (SELECT occurred_on FROM procedure_step WHERE procedure_id = p.id AND seq = 1) AS registered_on,
               (SELECT step FROM procedure_step WHERE procedure_id = p.id ORDER BY seq DESC LIMIT 1) AS state,
               (SELECT nicad FROM parcel_version v WHERE v.parcel_id = p.parcel_id
                ORDER BY v.version DESC LIMIT 1) AS nicad
        FROM tenure_procedure p WHERE p.id = :id"""), {"id": pid}).mappings().first()
    if row is None:
        raise NotFound("procedure.not_found", id=str(pid))
    return row


def _may_read(by: Principal, commune_code: str) -> bool:
    return by.may(Action.COLLECT_FEES, commune_code) or by.may(Action.READ_PERSONAL, commune_code)


def _require_reader(by: Principal, commune_code: str) -> None:
    """A reader of a file's fees: the régisseur or a reader of personal data, in scope (401, 403)."""
    if _may_read(by, commune_code):
        return
    action = Action.COLLECT_FEES if by.can(Action.COLLECT_FEES) or not by.can(Action.READ_PERSONAL) \
        else Action.READ_PERSONAL
    require(by, action, communes=[commune_code])


def _collector(session: Session, by: Principal | None, commune_code: str) -> None:
    if by is not None:
        require(by, Action.COLLECT_FEES, communes=[commune_code])
    directory.ensure_owned(session, [commune_code])


def _lock(session: Session, procedure_id: uuid.UUID) -> None:
    """Serialise the payments of one procedure (the balance read then written); the service has no UPDATE here."""
    session.execute(text("SELECT pg_advisory_xact_lock(:class, hashtext(:id))"),
                    {"class": LOCK_CLASS, "id": str(procedure_id)})


# --- assessment ------------------------------------------------------------------------------------

def assess(session: Session, *, procedure_id: str, by: Principal | None, author: str) -> dict[str, Any] | None:
    """Compute and keep the fee of a procedure just registered; None when no schedule is in force.

    Called by :func:`sifc.tenure.procedures.register` in its transaction (``by`` already allowed to
    register there). The schedule is the one in force on the registration date for the procedure's kind;
    the area is the parcel's current area.
    """
    head = _procedure(session, procedure_id)
    schedule = schedules.in_force(session, commune_code=head["commune_code"], procedure_kind=head["kind"],
                                  on=head["registered_on"])
    if schedule is None:
        return None
    area = session.execute(text("SELECT area_m2 FROM parcel_version WHERE parcel_id = :id AND valid_to IS NULL"),
                           {"id": head["parcel_id"]}).scalar()
    due = tariff.amount(schedule["rule"], area_m2=float(area or 0.0))
    session.execute(text("""
        INSERT INTO procedure_fee (procedure_id, commune_code, schedule_id, amount, area_m2, assessed_on, assessed_by)
        VALUES (:id, :commune, :schedule, :amount, :area, :on, :author)"""),
        {"id": head["id"], "commune": head["commune_code"], "schedule": schedule["id"], "amount": due,
         "area": float(area or 0.0), "on": head["registered_on"], "author": author})
    written = {"procedure_id": str(head["id"]), "schedule_id": str(schedule["id"]), "amount": due,
               "area_m2": round(float(area or 0.0), 2), "assessed_on": head["registered_on"].isoformat()}
    journal.record(session, by, author=author, operation="fee.assess", object_kind="procedure_fee",
                   object_id=head["id"], parcel_id=head["parcel_id"], commune_code=head["commune_code"],
                   after=written)
    return written


def _fee(session: Session, procedure_id: uuid.UUID) -> Any | None:
    return session.execute(text("""
        SELECT f.amount, f.area_m2, f.assessed_on, f.schedule_id, s.rule, s.valid_from, s.deliberation_source_id,
               d.reference AS deliberation_reference, d.document_date AS deliberation_date
        FROM procedure_fee f JOIN fee_schedule s ON s.id = f.schedule_id
        JOIN source_document d ON d.id = s.deliberation_source_id
        WHERE f.procedure_id = :id"""), {"id": procedure_id}).mappings().first()


def _paid(session: Session, procedure_id: uuid.UUID) -> int:
    return int(session.execute(text("SELECT coalesce(sum(amount), 0) FROM payment WHERE procedure_id = :id"),
                               {"id": procedure_id}).scalar_one())


# --- payments --------------------------------------------------------------------------------------

def receipt_label(year: int | None, number: int | None) -> str | None:
    """A receipt's number as printed: ``2026-000012``."""
    return f"{year}-{number:06d}" if year is not None and number is not None else None


def _check_payment(data: PaymentInput) -> None:
    if isinstance(data.amount, bool) or not isinstance(data.amount, int) or not 0 < data.amount <= tariff.MAX_AMOUNT:
        raise InvalidInput("fees.bad_amount")
    if data.method not in PAYMENT_METHODS:
        raise InvalidInput("fees.bad_method", method=str(data.method)[:40], methods=", ".join(PAYMENT_METHODS))
    reference = (data.mobile_reference or "").strip()
    if data.method == "mobile_money" and not MOBILE_REFERENCE.match(reference):
        raise InvalidInput("fees.mobile_reference_required")
    if data.method == "cash" and reference:
        raise InvalidInput("fees.mobile_reference_cash")
    bounds.check("procedure.occurred_on", data.paid_on, field="paid_on")


def _next_receipt(session: Session, commune_code: str, year: int) -> int:
    """The commune's next receipt number of ``year``, taken in the caller's transaction.

    The counter row is created at the year's first receipt; later ones update it. Either way the row stays
    locked until the transaction ends: a concurrent payment waits, and a rollback gives the number back.
    """
    number: int = session.execute(text("""
        INSERT INTO receipt_counter (id, commune_code, year, last_number) VALUES (:id, :commune, :year, 1)
        ON CONFLICT (commune_code, year) DO UPDATE SET last_number = receipt_counter.last_number + 1
        RETURNING last_number"""), {"id": uuid.uuid4(), "commune": commune_code, "year": year}).scalar_one()
    return number


def _voucher(session: Session, data: PaymentInput, commune_code: str) -> tuple[str | None, int | None, int | None]:
    """``(quittance_number, receipt_year, receipt_number)`` by the commune's receipt mode on the payment date."""
    mode = rules.in_force(session, commune_code=commune_code, key="receipt_mode", on=data.paid_on)
    quittance = (data.quittance_number or "").strip() or None
    if mode == "quittance_papier":
        if quittance is None:
            raise InvalidInput("fees.quittance_required")
        if len(quittance) > MAX_QUITTANCE:
            raise InvalidInput("fees.quittance_too_long", max=MAX_QUITTANCE)
        taken = session.execute(text("SELECT 1 FROM payment WHERE commune_code = :c AND quittance_number = :q"),
                                {"c": commune_code, "q": quittance}).scalar()
        if taken:
            raise Conflict("fees.quittance_taken", number=quittance)
        return quittance, None, None
    if quittance is not None:
        raise InvalidInput("fees.quittance_not_expected")
    year = data.paid_on.year
    return None, year, _next_receipt(session, commune_code, year)


def pay(session: Session, *, data: PaymentInput, by: Principal | None, author: str) -> dict[str, Any]:
    """Record a payment on a procedure's fees; return it (with its receipt number in ``recu_pdf`` mode).

    Refused: a file with no fee (409 ``fees.none_due``), more than the balance (409 ``fees.overpaid``), a
    missing or reused paper quittance, a receipt mode the commune has not set (409 ``setting.missing``).
    """
    head = _procedure(session, data.procedure_id)
    _collector(session, by, head["commune_code"])
    _check_payment(data)
    _lock(session, head["id"])
    fee = _fee(session, head["id"])
    if fee is None:
        raise Conflict("fees.none_due", reference=head["reference"] or str(head["id"]))
    balance = int(fee["amount"]) - _paid(session, head["id"])
    if data.amount > balance:
        raise Conflict("fees.overpaid", amount=data.amount, balance=balance)
    quittance, year, number = _voucher(session, data, head["commune_code"])
    payment_id = uuid.uuid4()
    session.execute(text("""
        INSERT INTO payment (id, commune_code, procedure_id, amount, method, mobile_reference, paid_on,
                             quittance_number, receipt_year, receipt_number, recorded_by)
        VALUES (:id, :commune, :procedure, :amount, :method, :mobile, :on, :quittance, :year, :number, :author)"""),
        {"id": payment_id, "commune": head["commune_code"], "procedure": head["id"], "amount": data.amount,
         "method": data.method, "mobile": (data.mobile_reference or "").strip() or None, "on": data.paid_on,
         "quittance": quittance, "year": year, "number": number, "author": author})
    written = _get_payment(session, payment_id=str(payment_id), personal=True)
    journal.record(session, by, author=author, operation="payment.record", object_kind="payment",
                   object_id=payment_id, parcel_id=head["parcel_id"], commune_code=head["commune_code"],
                   after=written)
    return written


def cancel(session: Session, *, payment_id: str, reason: str, on: date | None = None, by: Principal | None,
           author: str) -> dict[str, Any]:
    """Cancel a payment by a new row of the opposite amount citing it and a reason; return the cancellation.

    A receipt keeps its number (a cancelled receipt stays in the sequence, marked cancelled).
    """
    original = _payment_row(session, payment_id)
    _collector(session, by, original["commune_code"])
    motive = (reason or "").strip()
    if not motive:
        raise InvalidInput("fees.cancel_reason")
    if len(motive) > MAX_REASON:
        raise InvalidInput("fees.reason_too_long", max=MAX_REASON)
    when = on or date.today()
    bounds.check("procedure.occurred_on", when, field="on")
    if when < original["paid_on"]:
        raise InvalidInput("fees.cancel_before_payment", date=original["paid_on"].isoformat())
    _lock(session, original["procedure_id"])
    if original["cancels_payment_id"] is not None:
        raise Conflict("fees.cancel_cancellation")
    if session.execute(text("SELECT 1 FROM payment WHERE cancels_payment_id = :id"), {"id": original["id"]}).scalar():
        raise Conflict("fees.already_cancelled", id=str(original["id"]))
    cancellation_id = uuid.uuid4()
    session.execute(text("""
        INSERT INTO payment (id, commune_code, procedure_id, amount, method, mobile_reference, paid_on,
                             cancels_payment_id, reason, recorded_by)
        VALUES (:id, :commune, :procedure, :amount, :method, :mobile, :on, :cancels, :reason, :author)"""),
        {"id": cancellation_id, "commune": original["commune_code"], "procedure": original["procedure_id"],
         "amount": -int(original["amount"]), "method": original["method"], "mobile": original["mobile_reference"],
         "on": when, "cancels": original["id"], "reason": motive, "author": author})
    written = _get_payment(session, payment_id=str(cancellation_id), personal=True)
    journal.record(session, by, author=author, operation="payment.cancel", object_kind="payment",
                   object_id=cancellation_id, commune_code=original["commune_code"],
                   before=_get_payment(session, payment_id=str(original["id"]), personal=True), after=written)
    return written


def _payment_row(session: Session, payment_id: str) -> Any:
    try:
        pid = uuid.UUID(str(payment_id))
    except ValueError as error:
        raise NotFound("fees.payment_not_found", id=str(payment_id)[:64]) from error
    row = session.execute(text("""
        SELECT p.*, t.reference, t.kind AS procedure_kind,
               (SELECT c.id FROM payment c WHERE c.cancels_payment_id = p.id) AS cancelled_by
        FROM payment p JOIN tenure_procedure t ON t.id = p.procedure_id WHERE p.id = :id"""),
        {"id": pid}).mappings().first()
    if row is None:
        raise NotFound("fees.payment_not_found", id=str(pid))
    return row


def _payment_json(row: Any, *, personal: bool) -> dict[str, Any]:
    body = {"id": str(row["id"]), "procedure_id": str(row["procedure_id"]), "commune_code": row["commune_code"],
            "amount": int(row["amount"]), "method": row["method"], "mobile_reference": row["mobile_reference"],
            "paid_on": row["paid_on"].isoformat(), "quittance_number": row["quittance_number"],
            "receipt_year": row["receipt_year"], "receipt_number": row["receipt_number"],
            "receipt": receipt_label(row["receipt_year"], row["receipt_number"]),
            "cancels_payment_id": str(row["cancels_payment_id"]) if row["cancels_payment_id"] else None,
            "cancelled_by": str(row["cancelled_by"]) if row.get("cancelled_by") else None,
            "recorded_at": row["recorded_at"].isoformat()}
    if personal:
        body.update({"recorded_by": row["recorded_by"], "reason": row["reason"]})
    return body


def _get_payment(session: Session, *, payment_id: str, personal: bool = False) -> dict[str, Any]:
    """One payment (no reader check: for the services and their writers)."""
    row = _payment_row(session, payment_id)
    return _payment_json(row, personal=personal)


def payment_for(session: Session, *, payment_id: str, reader: Principal) -> Any:
    """A payment's row for a reader of the commune's fees (401, 403; 404 for none)."""
    row = _payment_row(session, payment_id)
    _require_reader(reader, row["commune_code"])
    return row


# --- balance and the step it blocks ---------------------------------------------------------------

def _required_before(session: Session, head: Any, on: date) -> str | None:
    found = rules.maybe_in_force(session, commune_code=head["commune_code"], key="fees_required_before", on=on)
    step = (found or {}).get(head["kind"]) if isinstance(found, dict) else None
    return str(step) if step else None


def balance(session: Session, *, procedure_id: str, reader: Principal) -> dict[str, Any]:
    """A file's fees for the régisseur: amount due (and the schedule it came from), payments, balance.

    Readers of personal data in the commune also see who recorded each payment and why one was
    cancelled (the read logged); the régisseur sees amounts, methods and receipt numbers only.
    """
    head = _procedure(session, procedure_id)
    _require_reader(reader, head["commune_code"])
    personal = reader.may(Action.READ_PERSONAL, head["commune_code"])
    fee = _fee(session, head["id"])
    rows = session.execute(text("""
        SELECT p.*, (SELECT c.id FROM payment c WHERE c.cancels_payment_id = p.id) AS cancelled_by
        FROM payment p WHERE p.procedure_id = :id ORDER BY p.recorded_at, p.id"""),
        {"id": head["id"]}).mappings().all()
    paid = sum(int(r["amount"]) for r in rows)
    due = int(fee["amount"]) if fee is not None else 0
    body = {"procedure": {"id": str(head["id"]), "reference": head["reference"], "kind": head["kind"],
                          "commune_code": head["commune_code"], "state": head["state"], "nicad": head["nicad"],
                          "registered_on": head["registered_on"].isoformat() if head["registered_on"] else None},
            "fee": None if fee is None else {
                "amount": due, "area_m2": round(float(fee["area_m2"]), 2),
                "assessed_on": fee["assessed_on"].isoformat(),
                "schedule_id": str(fee["schedule_id"]), "rule": fee["rule"],
                "deliberation_reference": fee["deliberation_reference"],
                "deliberation_date": fee["deliberation_date"].isoformat()},
            "paid": paid, "balance": due - paid,
            "required_before": _required_before(session, head, date.today()),
            "payments": [_payment_json(r, personal=personal) for r in rows]}
    if personal and rows:
        audit.record(session, reader, service=f"{__name__}.balance", subject_kind="procedure",
                     subject_id=str(head["id"]), commune_code=head["commune_code"])
    return body


def require_paid(session: Session, *, procedure_id: str, step: str, on: date | None = None) -> None:
    """Refuse ``step`` (409 ``fees.unpaid``, the amount due) while the commune requires the fees paid before it.

    The commune's ``fees_required_before`` in force on ``on`` (today by default) names, per procedure kind,
    the step that waits for payment; a file without a fee, or with a nil balance, passes.
    """
    head = _procedure(session, procedure_id)
    if _required_before(session, head, on or date.today()) != step:
        return
    fee = _fee(session, head["id"])
    if fee is None:
        return
    left = int(fee["amount"]) - _paid(session, head["id"])
    if left > 0:
        raise Conflict("fees.unpaid", step=step, due=left, amount=int(fee["amount"]),
                       file=head["reference"] or str(head["id"]))


# --- the régisseur's search ------------------------------------------------------------------------

def files(session: Session, *, commune_code: str, number: str | None, unpaid: bool, reader: Principal,
          limit: int = 50) -> list[dict[str, Any]]:
    """The commune's files with a fee, found by their number (the start of it), with their balances."""
    _require_reader(reader, commune_code)
    rows = session.execute(text("""
        SELECT p.id, p.reference, p.kind, f.amount, coalesce(sum(y.amount), 0) AS paid,
               (SELECT nicad FROM parcel_version v WHERE v.parcel_id = p.parcel_id ORDER BY v.version DESC LIMIT 1)
                   AS nicad
        FROM tenure_procedure p JOIN procedure_fee f ON f.procedure_id = p.id
        LEFT JOIN payment y ON y.procedure_id = p.id
        WHERE p.commune_code = :commune
          AND (CAST(:number AS text) IS NULL OR p.reference ILIKE :prefix OR p.id::text = :number)
        GROUP BY p.id, p.reference, p.kind, f.amount, p.parcel_id, p.created_at
        HAVING NOT CAST(:unpaid AS boolean) OR f.amount > coalesce(sum(y.amount), 0)
        ORDER BY p.created_at DESC, p.id LIMIT :limit"""),
        {"commune": commune_code, "number": number or None,
         "prefix": (number or "").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",
         "unpaid": unpaid, "limit": limit}).mappings().all()
    return [{"procedure_id": str(r["id"]), "reference": r["reference"], "kind": r["kind"], "nicad": r["nicad"],
             "amount": int(r["amount"]), "paid": int(r["paid"]), "balance": int(r["amount"]) - int(r["paid"])}
            for r in rows]
