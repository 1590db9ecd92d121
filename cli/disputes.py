"""``sifc dispute`` (open, step, close, show, list): the disputes register from the server's console.

The rules are :mod:`sifc.commission.disputes`'; the operator is an administrator everywhere, each
write is journaled in the operator's name and each read logged in the access audit.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import orjson
import typer
from rich.table import Table

from cli.common import database, operator, out, say

dispute_app = typer.Typer(help="Registre des litiges : ouverture (la parcelle est gelée), étapes, clôture "
                               "(mainlevée), consultation.", no_args_is_help=True)

Day = Annotated[datetime | None, typer.Option("--on", formats=["%Y-%m-%d"], help="Date (AAAA-MM-JJ) ; défaut : "
                                                                                 "aujourd'hui.")]
Sources = Annotated[list[str] | None, typer.Option("--source", help="Id d'une source ; répétable.")]
Note = Annotated[str | None, typer.Option("--note", help="Observations (données personnelles).")]


def _day(value: datetime | None) -> date:
    return value.date() if value else date.today()


def _parties(values: list[str]) -> list[dict[str, str]]:
    """``ID`` or ``ID:role`` (demandeur, defendeur, temoin, autre)."""
    found = []
    for value in values:
        party, _, role = value.partition(":")
        found.append({"party_id": party.strip(), "role": role.strip() or "autre"})
    return found


def _version(session: object, dispute_id: str) -> int:
    from sifc.commission import disputes

    return int(disputes.as_written(session, dispute_id=dispute_id, by=operator())["version"])  # type: ignore[arg-type]


@dispute_app.command("open")
def open_command(
    commune: Annotated[str, typer.Option("--commune", help="Code de la commune du litige.")],
    kind: Annotated[str, typer.Option("--kind", help="limites, succession, double_affectation, occupation, autre.")],
    parcel: Annotated[list[str], typer.Option("--parcel", help="Id d'une parcelle (de la commune) ; répétable.")],
    source: Annotated[list[str], typer.Option("--source", help="Id d'une source (plainte, PV) ; répétable.")],
    party: Annotated[list[str] | None, typer.Option("--party", help="ID:rôle (demandeur, defendeur, temoin, "
                                                                     "autre) ; répétable.")] = None,
    on: Day = None,
    description: Annotated[str | None, typer.Option("--description", help="Les motifs.")] = None,
) -> None:
    """Ouvre un litige : une restriction « litige » gèle chaque parcelle jusqu'à la clôture."""
    from sifc.commission import disputes

    by = operator().via("CLI", "sifc dispute open")
    data = disputes.DisputeInput(commune_code=commune, kind=kind, parcel_ids=parcel, opened_on=_day(on),
                                 source_ids=source, parties=_parties(party or []), description=description)
    with database(actor=by.name) as session:
        dispute_id = disputes.open(session, data=data, by=by, author=by.name)
    out.print(say("cli.dispute.opened", id=dispute_id, parcels=len(parcel)), highlight=False)


@dispute_app.command("step")
def step_command(
    dispute_id: Annotated[str, typer.Argument(help="Id du litige.")],
    step: Annotated[str, typer.Option("--step", help="mediation, resolved ou sent_to_court.")],
    on: Day = None,
    source: Sources = None,
    note: Note = None,
    court_reference: Annotated[str | None, typer.Option("--court-reference", help="Numéro au tribunal.")] = None,
) -> None:
    """Inscrit l'étape suivante du litige."""
    from sifc.commission import disputes

    by = operator().via("CLI", "sifc dispute step")
    with database(actor=by.name) as session:
        found = disputes.add_step(session, dispute_id=dispute_id, step=step, occurred_on=_day(on),
                                  source_ids=source or [], note=note, court_reference=court_reference,
                                  expected_version=_version(session, dispute_id), by=by, author=by.name)
    out.print(say("cli.dispute.stepped", id=found["id"], state=found["state"]), highlight=False)


@dispute_app.command("close")
def close_command(
    dispute_id: Annotated[str, typer.Argument(help="Id du litige.")],
    outcome: Annotated[str, typer.Option("--outcome", help="L'issue du litige.")],
    on: Day = None,
    source: Sources = None,
    note: Note = None,
) -> None:
    """Clôt un litige résolu ou jugé : son issue, et la mainlevée de chaque restriction « litige »."""
    from sifc.commission import disputes

    by = operator().via("CLI", "sifc dispute close")
    with database(actor=by.name) as session:
        found = disputes.close(session, dispute_id=dispute_id, closed_on=_day(on), outcome=outcome,
                               source_ids=source or [], note=note, expected_version=_version(session, dispute_id),
                               by=by, author=by.name)
    out.print(say("cli.dispute.closed", id=found["id"], parcels=len(found["parcels"])), highlight=False)


@dispute_app.command("show")
def show_command(dispute_id: Annotated[str, typer.Argument(help="Id du litige.")]) -> None:
    """Affiche un litige (parcelles, parties, étapes, issue) en JSON ; la lecture est journalisée."""
    from sifc.commission import disputes

    by = operator().via("CLI", "sifc dispute show")
    with database(actor=by.name) as session:
        found = disputes.get(session, dispute_id=dispute_id, reader=by)
    out.print_json(orjson.dumps(found).decode())


@dispute_app.command("list")
def list_command(
    commune: Annotated[str, typer.Option("--commune", help="Code de la commune.")],
    state: Annotated[str | None, typer.Option("--state", help="declared, mediation, resolved, sent_to_court, "
                                                               "closed.")] = None,
) -> None:
    """Liste les litiges d'une commune, les plus récents d'abord."""
    from sifc.commission import disputes

    by = operator().via("CLI", "sifc dispute list")
    with database(actor=by.name) as session:
        found = disputes.list_for(session, commune_code=commune, reader=by, state=state)
    table = Table("id", say("cli.dispute.kind"), say("cli.dispute.state"), say("cli.dispute.opened_on"),
                  say("cli.dispute.parcels"))
    for item in found:
        table.add_row(item["id"], item["kind"], item["state"], item["opened_on"],
                      ", ".join(item["nicads"] or item["parcel_ids"]))
    out.print(table)
