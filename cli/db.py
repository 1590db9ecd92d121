"""``sifc db``: provisioning, migrations, backups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import State, out, say

db_app = typer.Typer(help="Base de données : provisionnement, migrations, sauvegardes.",
                     no_args_is_help=True)


@db_app.command("provision")
def db_provision() -> None:
    """Crée la base si besoin, active PostGIS et applique les migrations (superutilisateur)."""
    from sifc.provision import describe, provision

    settings = State.settings()
    version = provision(settings)
    out.print(say("cli.db.database_ready_postgis_migrated", describe=describe(settings.db_url), version=version))


@db_app.command("migrate")
def db_migrate(revision: str = "head") -> None:
    """Applique les migrations Alembic jusqu'à REVISION."""
    from sifc.provision import migrate

    migrate(State.settings(), revision)
    out.print(say("cli.db.migrations_applied"))


@db_app.command("backup")
def db_backup(file: Annotated[Path, typer.Argument(help="Fichier de sauvegarde (format pg_dump custom).")]) -> None:
    """Sauvegarde la base dans FILE (format personnalisé de pg_dump)."""
    from sifc.provision import backup

    backup(State.settings(), file)
    out.print(say("cli.db.backup_written", file=file))


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="Sauvegarde produite par « sifc db backup ».")],
    database: Annotated[str | None, typer.Option(
        help="Base cible, nouvelle ou vide (par défaut : celle du service).")] = None,
) -> None:
    """Restaure FILE dans une base nouvelle ou vide."""
    from sifc.provision import restore

    settings = State.settings()
    target = database or settings.db_url.database or "sifc"
    restore(settings, file, target)
    out.print(say("cli.db.backup_restored_into_database", target=target))
