"""``sifc admin``: administration, the data-subject access request (loi 2008-12)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cli.common import State, database, operator, out, say, when

admin_app = typer.Typer(help="Administration : demandes d'accès (loi 2008-12).", no_args_is_help=True)


@admin_app.command("subject")
def admin_subject(
    subject: Annotated[str, typer.Argument(
        help="Identifiant ou numéro de compte, ou nom tel qu'écrit dans les données.")],
    as_json: Annotated[bool, typer.Option("--json", help="Le rapport en JSON, lignes comprises.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Lignes au plus par source.")] = 10_000,
) -> None:
    """Demande d'accès : tout ce qui est détenu sur une personne, et qui l'a lu (inscrit au journal d'accès)."""
    from sifc.auth import subjects

    with database() as session:
        report = subjects.access_request(session, operator(), query=subject, limit=limit, method="CLI",
                                         endpoint="sifc admin subject")
    data = subjects.as_dict(report, State.lang)
    if as_json:
        out.print_json(json.dumps(data, default=str, ensure_ascii=False))
        return
    who = report.subject
    account = say("cli.admin.account", user_id=who.user_id) if who.user_id else say("cli.admin.no_account")
    out.print(say("cli.admin.person_report", name=who.name, account=account, when=when(report.generated_at)),
              highlight=False)
    table = Table(title=say("cli.admin.data_held"))
    for column in (say("cli.admin.source"), say("cli.admin.rows"), "description"):
        table.add_column(column)
    for source, found in report.sources:
        table.add_row(source.name, str(found.count), source.description)
    if report.elsewhere is not None:  # a national node without identities: the poles to ask
        out.print(data["federation"]["message"], highlight=False)
        for pole in report.elsewhere.poles:
            out.print(f"  {pole.node_id}  {pole.url}", highlight=False)
    out.print(table)
    reads = Table(title=say("cli.admin.who_read_their_data"))
    for column in (say("cli.admin.when"), say("cli.admin.who"), say("cli.admin.role"), say("cli.admin.access"),
                   say("cli.admin.subject")):
        reads.add_column(column)
    for row in report.reads.rows:
        reads.add_row(when(row["occurred_at"]), row["actor"], row["role"], f"{row['method']} {row['endpoint']}",
                      f"{row['subject_kind']}:{row['subject_id']}")
    out.print(reads)
    if any(found.truncated for _, found in report.sources) or report.reads.truncated:
        out.print(say("cli.admin.some_sources_have_more"))
