"""``sifc settings`` (show, set, history, carry-over): the commune settings from the server's console.

The rules are :mod:`sifc.rules.service`'s; the operator is an administrator everywhere, each write is
journaled in the operator's name, and reading who set a value (``history``) is logged in the access audit.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from cli.common import State, database, operator, out, say
from sifc.errors import InvalidInput

settings_app = typer.Typer(help="Réglages de la commune, datés et sourcés : seuils, délais, pièces exigées…",
                           no_args_is_help=True)

Commune = Annotated[str, typer.Argument(help="Code de la commune (ex. SN0104-bargny).")]
Key = Annotated[str, typer.Argument(help="Nom du réglage (ex. display_days).")]
AsJson = Annotated[bool, typer.Option("--json", help="Sortie JSON.")]


def _text(value: Any) -> str:
    return "—" if value is None else orjson.dumps(value).decode()


@settings_app.command("show")
def show_command(
    commune: Commune,
    on: Annotated[datetime | None, typer.Option("--on", formats=["%Y-%m-%d"],
                                                help="Date (AAAA-MM-JJ) ; défaut : aujourd'hui.")] = None,
    as_json: AsJson = False,
) -> None:
    """Les réglages en vigueur à une date : valeur, origine (commune, défaut national, environnement), source."""
    from sifc.rules import service as rules

    with database() as session:
        found = rules.current(session, commune_code=commune, on=on.date() if on else date.today())
    if as_json:
        out.print_json(orjson.dumps(found).decode())
        return
    table = Table(title=say("cli.settings.title", commune=commune))
    for column in ("key", "value", "origin", "since", "source"):
        table.add_column(say(f"cli.settings.{column}"))
    for row in found:
        table.add_row(row["key"], _text(row["value"]), say(f"cli.settings.origin_{row['origin']}"),
                      row["valid_from"] or "—", row["source"] or "—")
    out.print(table)


@settings_app.command("set")
def set_command(
    commune: Commune,
    key: Key,
    value: Annotated[str, typer.Argument(help="La valeur, en JSON (ex. 30, [10, 50], \"recu_pdf\").")],
    valid_from: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"],
                                                 help="Date d'effet (AAAA-MM-JJ).")],
    source: Annotated[str, typer.Option("--source", help="Le texte qui la fixe : délibération ou arrêté, "
                                                         "numéro et date.")],
    document: Annotated[str | None, typer.Option("--document", help="Id de la source numérisée (facultatif).")
                        ] = None,
) -> None:
    """Fixe la valeur d'un réglage à partir d'une date, en citant sa source (une ligne de plus, jamais une retouche)."""
    from sifc.rules import service as rules

    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidInput("setting.bad_value", key=key, where="valeur", problem="JSON illisible") from None
    by = operator().via("CLI", "sifc settings set")
    with database(actor=by.name) as session:
        written = rules.set(session, commune_code=commune, key=key, value=parsed, valid_from=valid_from.date(),
                            source=source, source_document_id=document, by=by, author=by.name)
    out.print(say("cli.settings.set", key=key, commune=commune, value=_text(written["value"]),
                  since=written["valid_from"]), highlight=False)


@settings_app.command("history")
def history_command(commune: Commune, key: Key, as_json: AsJson = False) -> None:
    """Toutes les valeurs d'un réglage pour la commune, et les valeurs nationales par défaut."""
    from sifc.rules import service as rules

    by = operator().via("CLI", "sifc settings history")
    with database(actor=by.name) as session:
        found = rules.history(session, commune_code=commune, key=key, reader=by)
    if as_json:
        out.print_json(orjson.dumps(found).decode())
        return
    table = Table(title=say("cli.settings.history_title", key=key, commune=commune))
    for column in ("since", "value", "source", "set_by", "recorded_at"):
        table.add_column(say(f"cli.settings.{column}"))
    for row in found["defaults"]:
        table.add_row(row["valid_from"], _text(row["value"]), row["source"], say("cli.settings.origin_default"), "—")
    for row in found["commune"]:
        table.add_row(row["valid_from"], _text(row["value"]), row["source"], row.get("set_by") or "—",
                      row["recorded_at"][:16].replace("T", " "))
    out.print(table)


@settings_app.command("carry-over")
def carry_over_command(
    commune: Annotated[list[str] | None, typer.Option("--commune", help="Code d'une commune ; répétable. Défaut : "
                                                                        "les communes du nœud qui ont des parcelles.")
                       ] = None,
) -> None:
    """Reprend les valeurs de SIFC 0.5 comme réglages de la commune, à remplacer par leur vraie source.

    SIFC_APPROVAL_THRESHOLDS_HA, SIFC_DESAFFECTATION_NOTICE_DAYS et les pièces exigées à chaque étape,
    avec la source « reprise de SIFC_… (source à citer) ».
    """
    from sifc.rules import carry_over

    by = operator().via("CLI", "sifc settings carry-over")
    with database(actor=by.name) as session:
        communes = commune or carry_over.communes_in_use(session)
        written = carry_over.carry_over(session, settings=State.settings(), communes=communes, by=by,
                                        author=by.name)
    out.print(say("cli.settings.carried", rows=len(written), communes=len(communes)), highlight=False)
