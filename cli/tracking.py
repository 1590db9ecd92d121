"""``sifc tracking`` (recepisse, overdue): the récépissé with a new tracking code, and the overdue files.

The rules are :mod:`sifc.tracking`'s; the operator is an administrator everywhere and each print is
journaled in the operator's name. The tracking code is printed once, here and on the PDF: only its hash is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import State, database, operator, out, say

tracking_app = typer.Typer(help="Suivi des dossiers : récépissé avec code de suivi, dossiers en retard.",
                           no_args_is_help=True)


@tracking_app.command("recepisse")
def recepisse_command(
    procedure_id: Annotated[str, typer.Argument(help="Id de la procédure.")],
    output: Annotated[Path, typer.Option("--out", help="Fichier PDF à écrire.")] = Path("recepisse.pdf"),
) -> None:
    """Imprime le récépissé d'une demande avec un nouveau code de suivi (le précédent est révoqué)."""
    from sifc import keyring
    from sifc.documents import recepisse, verification

    settings = State.settings()
    by = operator().via("CLI", "sifc tracking recepisse")
    with database(actor=by.name) as session:
        pdf, code = recepisse.build_with_code(
            session, procedure_id=procedure_id, by=by, author=by.name, lang=State.lang,
            seal_key=keyring.for_settings(settings).current("seal"),
            verify_url=settings.public_base + verification.VERIFY_PATH, base_url=settings.public_base)
    output.write_bytes(pdf)
    out.print(say("cli.tracking.printed", path=str(output), code=code), highlight=False)


@tracking_app.command("overdue")
def overdue_command(commune: Annotated[str, typer.Argument(help="Code de la commune.")]) -> None:
    """Les dossiers en retard d'une commune (procédures, réclamations, litiges) : identifiants et dates."""
    from sqlalchemy import text

    from sifc.errors import NotFound
    from sifc.tracking import deadlines

    with database() as session:
        if not session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": commune}).scalar():
            raise NotFound("territory.not_found", level="commune", code=commune)
        files = deadlines.overdue(session, communes=[commune])
    if not files:
        out.print(say("cli.tracking.none", commune=commune), highlight=False)
        return
    table = Table("file", "id", "kind", "step", "due_on", "days_late")
    for found in files:
        table.add_row(found["file"], found["id"], found["kind"], found["step"], found["due_on"],
                      str(found["days_late"]))
    out.print(table)
