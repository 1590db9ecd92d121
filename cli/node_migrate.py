"""``sifc node beat`` and ``sifc node migrate``: a pole's heartbeat, and a migration across the federation.

Registered on the ``sifc node`` group (``cli/node.py``); the domain is ``sifc.federation.heartbeat`` and
``sifc.federation.migration``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import State, database, err, out, say
from sifc.errors import InvalidInput


def beat() -> None:
    """Écrit maintenant le battement de ce pôle (l'âge des données vu du nœud national)."""
    from sifc.federation.heartbeat import beat as write_beat

    with database() as session:
        node_id = write_beat(session)
    if node_id is None:
        raise InvalidInput("cli.node.beat_not_pole")
    out.print(say("cli.node.beat_written", node=node_id), highlight=False)


def migrate(
    node: Annotated[list[str] | None, typer.Option(
        "--node", help="URL d'administration d'un nœud (superutilisateur), une fois par nœud : "
                       "le national et chaque pôle.")] = None,
    federation: Annotated[Path | None, typer.Option(
        help="Fichier des nœuds : une URL d'administration par ligne (# : commentaire).")] = None,
    to: Annotated[str, typer.Option(help="Révision visée.")] = "head",
) -> None:
    """Applique les migrations sur toute la fédération, dans l'ordre qu'exige la réplication.

    Abonnements en pause (les pôles continuent d'écrire), chaque nœud migré, nouvelles tables ajoutées aux
    publications, abonnements rafraîchis puis repris (docs/federation.md).
    """
    from sifc.federation.migration import migrate_federation, read_federation_file

    urls = list(node or [])
    if federation is not None:
        urls += read_federation_file(federation)

    def report(key: str, params: dict[str, Any]) -> None:
        err.print(say(key, **params), highlight=False)

    outcome = migrate_federation(urls, State.settings(), target=to, report=report)
    for node_id, names in outcome.left_disabled.items():
        err.print(say("cli.node.left_disabled", node=node_id, names=", ".join(names)), highlight=False)
    for node_id, tables in outcome.not_ready.items():
        err.print(say("cli.node.still_copying", node=node_id, tables=", ".join(tables)), highlight=False)
    out.print(say("cli.node.migrated", revision=outcome.target), highlight=False)
