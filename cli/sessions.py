"""``sifc session`` (create, agenda, add, remove, attendee, close, deliberate, show, list): council sessions.

The rules are :mod:`sifc.commission.sessions`'; the operator is an administrator everywhere, each write
is journaled in the operator's name and each read of a session (attendees, motives) logged in the access
audit. Deliberating is all or nothing: one French line says why nothing was recorded.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from cli.common import database, operator, out, say

session_app = typer.Typer(help="Sessions du conseil : ordre du jour, participants, délibération de toute la "
                               "session en une fois.", no_args_is_help=True)

Day = Annotated[datetime | None, typer.Option("--on", formats=["%Y-%m-%d"], help="Date (AAAA-MM-JJ) ; défaut : "
                                                                                 "aujourd'hui.")]
SessionId = Annotated[str, typer.Argument(help="Id de la session.")]


def _day(value: datetime | None) -> date:
    return value.date() if value else date.today()


def _version(session: object, session_id: str) -> int:
    from sifc.commission import sessions

    return int(sessions.as_written(session, session_id=session_id, by=operator())["version"])  # type: ignore[arg-type]


def _decisions(values: list[str]) -> list[Any]:
    """``ID:granted``, ``ID:refused:motif`` or ``ID:deferred:motif``."""
    from sifc.commission import sessions

    found = []
    for value in values:
        procedure, _, rest = value.partition(":")
        decision, _, reason = rest.partition(":")
        found.append(sessions.Decision(procedure_id=procedure.strip(), decision=decision.strip(),
                                       reason=reason.strip() or None))
    return found


@session_app.command("create")
def create_command(
    commune: Annotated[str, typer.Option("--commune", help="Code de la commune.")],
    kind: Annotated[str, typer.Option("--kind", help="commission_domaniale ou conseil_municipal.")],
    on: Day = None,
    reference: Annotated[str | None, typer.Option("--reference", help="Référence publique de la session.")] = None,
    members: Annotated[int | None, typer.Option("--members", help="Membres en exercice (quorum en fraction).")] = None,
) -> None:
    """Prévoit une session ; son ordre du jour se fixe ensuite."""
    from sifc.commission import sessions

    by = operator().via("CLI", "sifc session create")
    data = sessions.SessionInput(commune_code=commune, kind=kind, held_on=_day(on), reference=reference,
                                 members_in_office=members)
    with database(actor=by.name) as session:
        session_id = sessions.create(session, data=data, by=by, author=by.name)
    out.print(say("cli.session.created", id=session_id), highlight=False)


@session_app.command("agenda")
def agenda_command(
    session_id: SessionId,
    procedure: Annotated[list[str], typer.Option("--procedure", help="Id d'une procédure, dans l'ordre ; répétable.")],
) -> None:
    """Fixe l'ordre du jour d'une session en préparation (remplace la liste)."""
    from sifc.commission import sessions

    by = operator().via("CLI", "sifc session agenda")
    with database(actor=by.name) as session:
        found = sessions.set_agenda(session, session_id=session_id, procedure_ids=procedure,
                                    expected_version=_version(session, session_id), by=by, author=by.name)
    out.print(say("cli.session.agenda", id=found["id"], items=found["item_count"]), highlight=False)


@session_app.command("add")
def add_command(session_id: SessionId,
                procedure: Annotated[str, typer.Option("--procedure", help="Id de la procédure.")]) -> None:
    """Inscrit une procédure à la fin de l'ordre du jour."""
    from sifc.commission import sessions

    by = operator().via("CLI", "sifc session add")
    with database(actor=by.name) as session:
        found = sessions.add_item(session, session_id=session_id, procedure_id=procedure,
                                  expected_version=_version(session, session_id), by=by, author=by.name)
    out.print(say("cli.session.agenda", id=found["id"], items=found["item_count"]), highlight=False)


@session_app.command("remove")
def remove_command(session_id: SessionId,
                   procedure: Annotated[str, typer.Option("--procedure", help="Id de la procédure.")]) -> None:
    """Retire une procédure de l'ordre du jour (session en préparation)."""
    from sifc.commission import sessions

    by = operator().via("CLI", "sifc session remove")
    with database(actor=by.name) as session:
        found = sessions.remove_item(session, session_id=session_id, procedure_id=procedure,
                                     expected_version=_version(session, session_id), by=by, author=by.name)
    out.print(say("cli.session.agenda", id=found["id"], items=found["item_count"]), highlight=False)


@session_app.command("attendee")
def attendee_command(
    session_id: SessionId,
    capacity: Annotated[str, typer.Option("--capacity", help="president, membre, secretaire ou invite.")],
    name: Annotated[str | None, typer.Option("--name", help="Nom (donnée personnelle).")] = None,
    party: Annotated[str | None, typer.Option("--party", help="Id d'une partie enregistrée.")] = None,
    absent: Annotated[bool, typer.Option("--absent", help="Excusé ou absent.")] = False,
) -> None:
    """Inscrit un participant ; les présidents et membres présents font le quorum."""
    from sifc.commission import sessions

    by = operator().via("CLI", "sifc session attendee")
    data = sessions.AttendeeInput(capacity=capacity, party_id=party, name=name, present=not absent)
    with database(actor=by.name) as session:
        found = sessions.add_attendee(session, session_id=session_id, data=data,
                                      expected_version=_version(session, session_id), by=by, author=by.name)
    out.print(say("cli.session.attendee", id=found["id"], count=len(found["attendees"])), highlight=False)


@session_app.command("close")
def close_command(session_id: SessionId) -> None:
    """Ferme l'ordre du jour : la liste ne change plus, la session peut délibérer."""
    from sifc.commission import sessions

    by = operator().via("CLI", "sifc session close")
    with database(actor=by.name) as session:
        found = sessions.close_agenda(session, session_id=session_id, expected_version=_version(session, session_id),
                                      by=by, author=by.name)
    out.print(say("cli.session.closed", id=found["id"], items=found["item_count"]), highlight=False)


@session_app.command("deliberate")
def deliberate_command(
    session_id: SessionId,
    number: Annotated[str, typer.Option("--number", help="Numéro de la délibération.")],
    source: Annotated[str, typer.Option("--source", help="Id de la délibération (source de type deliberation).")],
    decision: Annotated[list[str], typer.Option("--decision", help="ID:granted, ID:refused:motif ou "
                                                                    "ID:deferred:motif ; une par procédure.")],
    on: Day = None,
    minutes: Annotated[list[str] | None, typer.Option("--minutes", help="Id du procès-verbal ; répétable.")] = None,
) -> None:
    """Délibère toute la session en une transaction ; rien n'est inscrit si une procédure est refusée."""
    from sifc.commission import sessions

    by = operator().via("CLI", "sifc session deliberate")
    data = sessions.DeliberationInput(number=number, deliberated_on=_day(on), source_id=source,
                                      decisions=_decisions(decision), minutes_source_ids=minutes or [])
    with database(actor=by.name) as session:
        found = sessions.deliberate(session, session_id=session_id, data=data,
                                    expected_version=_version(session, session_id), by=by, author=by.name)
    out.print(say("cli.session.deliberated", id=found["id"], number=found["deliberation_number"],
                  items=found["item_count"]), highlight=False)


@session_app.command("show")
def show_command(session_id: SessionId) -> None:
    """Affiche une session (ordre du jour, décisions, participants) en JSON ; la lecture est journalisée."""
    from sifc.commission import sessions

    by = operator().via("CLI", "sifc session show")
    with database(actor=by.name) as session:
        found = sessions.get(session, session_id=session_id, reader=by)
    out.print_json(orjson.dumps(found).decode())


@session_app.command("list")
def list_command(commune: Annotated[str, typer.Option("--commune", help="Code de la commune.")]) -> None:
    """Liste les sessions d'une commune, les plus récentes d'abord."""
    from sifc.commission import sessions

    by = operator().via("CLI", "sifc session list")
    with database(actor=by.name) as session:
        found = sessions.list_sessions(session, commune_code=commune, reader=by)
    table = Table("id", say("cli.session.kind"), say("cli.session.held_on"), say("cli.session.state"),
                  say("cli.session.items"), say("cli.session.number"))
    for item in found:
        table.add_row(item["id"], item["kind"], item["held_on"], item["state"], str(item["item_count"]),
                      item["deliberation_number"] or "")
    out.print(table)
