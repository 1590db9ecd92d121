"""``sifc fees`` (schedule, pay, cancel, bordereau): the régie de recettes from the server's console.

The rules are :mod:`sifc.fees`'; the operator is an administrator everywhere, each write journaled in the
operator's name. A receipt or a bordereau printed here is sealed and kept like the ones of the API.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from cli.common import State, database, operator, out, say

fees_app = typer.Typer(help="Régie des redevances : barèmes (délibération citée), paiements, annulations, reçus, "
                            "bordereau de versement.", no_args_is_help=True)

Day = Annotated[datetime | None, typer.Option("--on", formats=["%Y-%m-%d"],
                                              help="Date (AAAA-MM-JJ) ; défaut : aujourd'hui.")]


def _day(value: datetime | None) -> date:
    return value.date() if value else date.today()


def _seal() -> tuple[Any, str]:
    from sifc import keyring
    from sifc.documents import verification

    settings = State.settings()
    return keyring.for_settings(settings).current("seal"), settings.public_base + verification.VERIFY_PATH


@fees_app.command("schedule")
def schedule_command(
    commune: Annotated[str, typer.Option("--commune", help="Code de la commune.")],
    kind: Annotated[str, typer.Option("--kind", help="affectation, desaffectation, reaffectation_heritiers, "
                                                     "regularisation.")],
    rule: Annotated[str, typer.Option("--rule", help='La règle en JSON : {"kind": "fixed", "amount": 25000}, '
                                                     '{"kind": "per_m2", "rate": 100}, {"kind": "per_ha_bands", '
                                                     '"bands": [...]}.')],
    deliberation: Annotated[str, typer.Option("--deliberation", help="Id de la délibération (source).")],
    valid_from: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="En vigueur à partir du.")],
    valid_to: Annotated[datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="Jusqu'au (exclu).")] = None,
) -> None:
    """Enregistre le barème qu'une délibération du conseil fixe (montants en francs CFA entiers)."""
    from sifc.errors import InvalidInput
    from sifc.fees import schedules

    try:
        parsed = orjson.loads(rule)
    except orjson.JSONDecodeError as error:
        raise InvalidInput("fees.rule_kind", kind=rule[:40], kinds="fixed, per_m2, per_ha_bands") from error
    by = operator().via("CLI", "sifc fees schedule")
    data = schedules.ScheduleInput(commune_code=commune, procedure_kind=kind, valid_from=valid_from.date(),
                                   valid_to=valid_to.date() if valid_to else None, rule=parsed,
                                   deliberation_source_id=deliberation)
    with database(actor=by.name) as session:
        written = schedules.create(session, data=data, by=by, author=by.name)
    out.print(say("cli.fees.schedule", id=written["id"], commune=commune, kind=kind, start=written["valid_from"]),
              highlight=False)


@fees_app.command("pay")
def pay_command(
    procedure_id: Annotated[str, typer.Argument(help="Id du dossier (procédure).")],
    amount: Annotated[int, typer.Option("--amount", help="Montant en francs CFA.")],
    method: Annotated[str, typer.Option("--method", help="cash ou mobile_money.")] = "cash",
    reference: Annotated[str | None, typer.Option("--reference", help="Référence mobile money.")] = None,
    quittance: Annotated[str | None, typer.Option("--quittance", help="Numéro de la quittance papier.")] = None,
    on: Day = None,
    receipt: Annotated[Path | None, typer.Option("--receipt", help="Écrire le reçu PDF (mode recu_pdf) ici.")] = None,
) -> None:
    """Enregistre un paiement ; le reçu est numéroté par commune et par année, ou c'est la quittance papier."""
    from sifc.fees import receipts, service

    by = operator().via("CLI", "sifc fees pay")
    data = service.PaymentInput(procedure_id=procedure_id, amount=amount, method=method, paid_on=_day(on),
                                mobile_reference=reference, quittance_number=quittance)
    pdf = None
    with database(actor=by.name) as session:
        written = service.pay(session, data=data, by=by, author=by.name)
        if receipt is not None and written["receipt_number"] is not None:
            key, url = _seal()
            pdf = receipts.receipt(session, payment_id=written["id"], reader=by, lang=State.lang, seal_key=key,
                                   verify_url=url, issued_by=by.name)
    if pdf is not None and receipt is not None:
        receipt.write_bytes(pdf)
    out.print(say("cli.fees.paid", id=written["id"], amount=written["amount"],
                  voucher=written["receipt"] or written["quittance_number"]), highlight=False)


@fees_app.command("cancel")
def cancel_command(
    payment_id: Annotated[str, typer.Argument(help="Id du paiement.")],
    reason: Annotated[str, typer.Option("--reason", help="Motif de l'annulation.")],
    on: Day = None,
) -> None:
    """Annule un paiement par un nouvel enregistrement (montant opposé) ; le reçu garde son numéro."""
    from sifc.fees import service

    by = operator().via("CLI", "sifc fees cancel")
    with database(actor=by.name) as session:
        written = service.cancel(session, payment_id=payment_id, reason=reason, on=_day(on), by=by, author=by.name)
    out.print(say("cli.fees.cancelled", id=payment_id, cancellation=written["id"]), highlight=False)


@fees_app.command("bordereau")
def bordereau_command(
    commune: Annotated[str, typer.Option("--commune", help="Code de la commune.")],
    date_from: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="Premier jour.")],
    date_to: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Dernier jour.")],
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Écrire le bordereau PDF scellé ici.")] = None,
) -> None:
    """Bordereau de versement au receveur municipal : paiements de la période, totaux par mode."""
    from sifc.fees import receipts

    by = operator().via("CLI", "sifc fees bordereau")
    with database(actor=by.name) as session:
        facts = receipts.bordereau_facts(session, commune_code=commune, date_from=date_from.date(),
                                         date_to=date_to.date(), by=by, lang=State.lang)
        document = None
        if pdf is not None:
            key, url = _seal()
            document = receipts.bordereau_pdf(session, commune_code=commune, date_from=date_from.date(),
                                              date_to=date_to.date(), by=by, lang=State.lang, seal_key=key,
                                              verify_url=url, issued_by=by.name)
    if document is not None and pdf is not None:
        pdf.write_bytes(document)
    out.print(say("cli.fees.bordereau", commune=commune, count=facts["count"], cancellations=facts["cancellations"],
                  cash=facts["totals"]["cash"], mobile=facts["totals"]["mobile_money"], total=facts["total"]),
              highlight=False)
