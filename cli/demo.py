"""``sifc demo``: synthetic demonstration data."""

from __future__ import annotations

import typer

from cli.common import State, _say, out

demo_app = typer.Typer(help="Données de démonstration (synthétiques).", no_args_is_help=True)


@demo_app.command("load")
def demo_load() -> None:
    """Génère et importe des parcelles synthétiques dans Bargny, Mont-Rolland et Sandiara."""
    from sifc.db import make_engine, transaction
    from sifc.demo import load_demo

    settings = State.settings()
    engine = make_engine(settings.db_url, application_name="sifc-demo")
    with transaction(engine) as session:
        outcome = load_demo(session)
    engine.dispose()
    if outcome is None:
        out.print(_say("Démonstration déjà chargée : rien à faire.", "Demo already loaded: nothing to do."))
    else:
        out.print(_say(f"Démonstration chargée : {outcome.accepted} parcelles synthétiques ({outcome.communes}), "
                       f"{outcome.parties} parties, {outcome.sources} sources, {outcome.rights} droits et "
                       f"restrictions, {outcome.procedures} procédures d'affectation.",
                       f"Demo loaded: {outcome.accepted} synthetic parcels ({outcome.communes}), {outcome.parties} "
                       f"parties, {outcome.sources} sources, {outcome.rights} rights and restrictions, "
                       f"{outcome.procedures} affectation procedures."))
