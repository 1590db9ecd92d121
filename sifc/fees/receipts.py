"""The printed receipt (reçu) of a payment and the bordereau de versement of a period, both sealed.

The receipt exists in the commune's ``recu_pdf`` mode: its number (per commune and year, without gaps)
was taken when the payment was recorded; each print is a sealed document of kind ``recu`` kept in the
register of issued documents, so it verifies like any other (``POST /documents/verify``); a print after
the first says it is a duplicate, one of a cancelled payment says so. In ``quittance_papier`` mode the
Treasury's paper quittance is the receipt: SIFC prints none.

The bordereau de versement lists the payments a régisseur hands over to the receveur municipal for a
period (by date of payment or of cancellation), with the totals by method; kind ``bordereau_versement``.
Neither names a person: the file's number, the parcel's NICAD and the amounts identify the payment (ADR
0005 §7; whether a receipt names the payer is each commune's choice, open question 5, not made here).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth.principal import Action, Principal, require
from sifc.documents import layout, verification
from sifc.documents.layout import label
from sifc.documents.verification import Issue, Sealed
from sifc.errors import Conflict, InvalidInput
from sifc.fees import service
from sifc.keyring import SigningKey
from sifc.models import PAYMENT_METHODS

RECEIPT = "recu"
BORDEREAU = "bordereau_versement"
MAX_PERIOD_DAYS = 366


def francs(amount: int, lang: str) -> str:
    """An amount as printed: ``125 000 FCFA`` (``125,000 XOF`` in English)."""
    return f"{amount:,} XOF" if lang == "en" else f"{amount:,} FCFA".replace(",", "\u202f")


def _commune_name(session: Session, code: str) -> str:
    return str(session.execute(text("SELECT name FROM commune WHERE code = :c"), {"c": code}).scalar() or code)


# --- receipt ---------------------------------------------------------------------------------------

def _receipt_facts(session: Session, row: Any, lang: str) -> dict[str, Any]:
    head = service._procedure(session, str(row["procedure_id"]))
    printed = session.execute(text("""
        SELECT count(*) FROM issued_document WHERE kind = 'recu' AND subject_kind = 'payment' AND subject_id = :id"""),
        {"id": str(row["id"])}).scalar()
    paid = service._paid(session, head["id"])
    fee = service._fee(session, head["id"])
    return {**verification.new_header(RECEIPT, lang),
            "commune": {"code": row["commune_code"], "name": _commune_name(session, row["commune_code"])},
            "receipt": {"year": row["receipt_year"], "number": row["receipt_number"],
                        "label": service.receipt_label(row["receipt_year"], row["receipt_number"]),
                        "duplicate": bool(printed), "cancelled": row["cancelled_by"] is not None},
            "payment": {"id": str(row["id"]), "amount": int(row["amount"]), "currency": "XOF",
                        "method": row["method"], "mobile_reference": row["mobile_reference"],
                        "paid_on": row["paid_on"].isoformat()},
            "procedure": {"id": str(head["id"]), "file_number": head["reference"] or str(head["id"]),
                          "kind": head["kind"], "nicad": head["nicad"]},
            "fee": {"amount": int(fee["amount"]) if fee is not None else 0, "paid": paid,
                    "balance": (int(fee["amount"]) if fee is not None else 0) - paid}}


def _receipt_story(facts: dict[str, Any], frame: layout.Frame) -> list[Any]:
    from reportlab.platypus import Paragraph, Spacer

    lang, style = frame.lang, layout.styles()
    receipt, payment, procedure, fee = facts["receipt"], facts["payment"], facts["procedure"], facts["fee"]
    marks = [label(name, lang) for name in ("fees_duplicate", "fees_cancelled") if receipt[name.split("_")[1]]]
    return [
        Paragraph(layout.escape(label("republic", lang, commune=facts["commune"]["name"])), style["small"]),
        Paragraph(layout.escape(label("fees_receipt", lang, number=receipt["label"])), style["title"]),
        *([Paragraph(f"<b>{layout.escape(' — '.join(marks))}</b>", style["head"])] if marks else []),
        Paragraph(layout.escape(label("issued_on", lang, date=facts["issued_at"][:10])) + " — "
                  + layout.escape(label("number", lang, number=facts["number"])), style["small"]),
        Spacer(1, 6),
        Paragraph(layout.escape(label("fees_receipt_text", lang)), style["body"]),
        layout.facts([(label("fees_amount", lang), francs(payment["amount"], lang)),
                      (label("fees_method", lang), label(f"fees_{payment['method']}", lang)),
                      (label("fees_mobile_reference", lang), payment["mobile_reference"]),
                      (label("fees_paid_on", lang), payment["paid_on"]),
                      (label("fees_file", lang), procedure["file_number"]),
                      (label("nicad", lang), procedure["nicad"]),
                      (label("commune", lang), f"{facts['commune']['name']} ({facts['commune']['code']})"),
                      (label("fees_due", lang), francs(fee["amount"], lang)),
                      (label("fees_paid", lang), francs(fee["paid"], lang)),
                      (label("fees_balance", lang), francs(fee["balance"], lang))]),
        Spacer(1, 18),
        Paragraph(layout.escape(label("fees_regisseur", lang)), style["body"]),
        *layout.code_block(frame),
    ]


def receipt(session: Session, *, payment_id: str, reader: Principal, lang: str, seal_key: SigningKey,
            verify_url: str, issued_by: str) -> bytes:
    """Print a payment's receipt (régisseur or administrator in scope), sealed and kept; 409 without a number."""
    row = service._payment_row(session, payment_id)
    require(reader, Action.COLLECT_FEES, communes=[row["commune_code"]])
    if row["receipt_number"] is None:
        raise Conflict("fees.no_receipt", id=str(row["id"]))
    facts = _receipt_facts(session, row, lang)
    title = label("fees_receipt", lang, number=facts["receipt"]["label"])

    def pdf(sealed: Sealed) -> bytes:
        frame = layout.Frame(title, sealed.code, verify_url, lang, title)
        return layout.render(_receipt_story(facts, frame), frame)

    summary = {k: v for k, v in facts.items() if k not in ("lang", "format")}
    summary["payment"] = {k: v for k, v in facts["payment"].items() if k != "mobile_reference"}
    issued = Issue(RECEIPT, "payment", str(row["id"]), row["commune_code"], summary, False, issued_by)
    return layout.issue(session, seal_key=seal_key, content=facts, issued=issued, build=pdf, title=title)


# --- bordereau de versement ------------------------------------------------------------------------

def bordereau_facts(session: Session, *, commune_code: str, date_from: date, date_to: date, by: Principal,
                    lang: str = "fr") -> dict[str, Any]:
    """The payments and cancellations of a period in a commune, with totals by method (régisseur in scope)."""
    require(by, Action.COLLECT_FEES, communes=[commune_code])
    if not session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": commune_code}).scalar():
        from sifc.errors import NotFound

        raise NotFound("territory.not_found", level="commune", code=commune_code[:64])
    if date_to < date_from or (date_to - date_from).days >= MAX_PERIOD_DAYS:
        raise InvalidInput("fees.bad_period", days=MAX_PERIOD_DAYS)
    rows = session.execute(text("""
        SELECT y.id, y.amount, y.method, y.paid_on, y.quittance_number, y.receipt_year, y.receipt_number,
               y.cancels_payment_id, c.receipt_year AS cancels_year, c.receipt_number AS cancels_number,
               c.quittance_number AS cancels_quittance, p.reference, p.id AS procedure_id, p.kind
        FROM payment y JOIN tenure_procedure p ON p.id = y.procedure_id
        LEFT JOIN payment c ON c.id = y.cancels_payment_id
        WHERE y.commune_code = :commune AND y.paid_on BETWEEN :from AND :to
        ORDER BY y.paid_on, y.recorded_at, y.receipt_number NULLS LAST, y.id"""),
        {"commune": commune_code, "from": date_from, "to": date_to}).mappings().all()
    lines = [{"payment_id": str(r["id"]), "paid_on": r["paid_on"].isoformat(), "amount": int(r["amount"]),
              "method": r["method"], "file_number": r["reference"] or str(r["procedure_id"]), "kind": r["kind"],
              "voucher": (service.receipt_label(r["receipt_year"], r["receipt_number"]) or r["quittance_number"]
                          or service.receipt_label(r["cancels_year"], r["cancels_number"])
                          or r["cancels_quittance"]),
              "cancellation": r["cancels_payment_id"] is not None} for r in rows]
    totals = {method: sum(line["amount"] for line in lines if line["method"] == method) for method in PAYMENT_METHODS}
    return {**verification.new_header(BORDEREAU, lang),
            "commune": {"code": commune_code, "name": _commune_name(session, commune_code)},
            "period": {"from": date_from.isoformat(), "to": date_to.isoformat()},
            "lines": lines, "totals": totals, "total": sum(totals.values()),
            "count": sum(1 for line in lines if not line["cancellation"]),
            "cancellations": sum(1 for line in lines if line["cancellation"]), "currency": "XOF"}


def _bordereau_story(facts: dict[str, Any], frame: layout.Frame) -> list[Any]:
    from reportlab.platypus import Paragraph, Spacer

    lang, style = frame.lang, layout.styles()
    rows = [[label("fees_paid_on", lang), label("fees_voucher", lang), label("fees_file", lang),
             label("fees_method", lang), label("fees_amount", lang)]]
    for line in facts["lines"]:
        voucher = line["voucher"] or "—"
        if line["cancellation"]:
            voucher = f"{label('fees_cancellation_of', lang)} {voucher}"
        rows.append([line["paid_on"], voucher, line["file_number"], label(f"fees_{line['method']}", lang),
                     francs(line["amount"], lang)])
    period = facts["period"]
    return [
        Paragraph(layout.escape(label("republic", lang, commune=facts["commune"]["name"])), style["small"]),
        Paragraph(layout.escape(label("fees_bordereau", lang)), style["title"]),
        Paragraph(layout.escape(label("issued_on", lang, date=facts["issued_at"][:10])) + " — "
                  + layout.escape(label("number", lang, number=facts["number"])), style["small"]),
        Spacer(1, 6),
        Paragraph(layout.escape(label("fees_bordereau_text", lang, start=period["from"], end=period["to"])),
                  style["body"]),
        layout.table(rows, [70, 110, 120, 80, 90]),
        Spacer(1, 8),
        layout.facts([(label("fees_cash", lang), francs(facts["totals"]["cash"], lang)),
                      (label("fees_mobile_money", lang), francs(facts["totals"]["mobile_money"], lang)),
                      (label("fees_total", lang), francs(facts["total"], lang)),
                      (label("fees_count", lang), f"{facts['count']} / {facts['cancellations']}")]),
        Spacer(1, 18),
        Paragraph(layout.escape(label("fees_signatures", lang)), style["body"]),
        *layout.code_block(frame),
    ]


def bordereau_pdf(session: Session, *, commune_code: str, date_from: date, date_to: date, by: Principal,
                  lang: str, seal_key: SigningKey, verify_url: str, issued_by: str) -> bytes:
    """The bordereau de versement of a period as a sealed PDF, kept in the register of issued documents."""
    facts = bordereau_facts(session, commune_code=commune_code, date_from=date_from, date_to=date_to, by=by,
                            lang=lang)
    title = f"{label('fees_bordereau', lang)} {facts['commune']['name']} {date_from.isoformat()}"

    def pdf(sealed: Sealed) -> bytes:
        frame = layout.Frame(title, sealed.code, verify_url, lang, title)
        return layout.render(_bordereau_story(facts, frame), frame)

    summary = {k: v for k, v in facts.items() if k not in ("lang", "format", "lines")}
    issued = Issue(BORDEREAU, "commune", f"{commune_code}:{date_from.isoformat()}:{date_to.isoformat()}",
                   commune_code, summary, False, issued_by)
    return layout.issue(session, seal_key=seal_key, content=facts, issued=issued, build=pdf, title=title)
