"""``sifc demo``: synthetic demonstration data."""

from __future__ import annotations

import typer

from cli.common import State, out, say

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
        out.print(say("cli.demo.demo_already_loaded_nothing"))
    else:
        out.print(say("cli.demo.demo_loaded_synthetic_parcels", accepted=outcome.accepted, communes=outcome.communes,
                      parties=outcome.parties, sources=outcome.sources, rights=outcome.rights,
                      procedures=outcome.procedures))
