"""``sifc field``: field packages at the server's console (check one out, list, declare lost, hand over).

The rules are :mod:`sifc.field.packages`' (the console's operator is an administrator everywhere);
``sifc field return`` is :mod:`cli.field_returns`'.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from cli.common import State, database, operator, out, say
from cli.field_returns import register

field_app = typer.Typer(help="Dossiers de terrain (QGIS/QField) : remise, liste, perte, réattribution, retour.",
                        no_args_is_help=True)
register(field_app)


def _expiry(day: str | None) -> datetime | None:
    """``YYYY-MM-DD``: the package is valid through that day (it expires at the next midnight, UTC)."""
    from sifc.errors import InvalidInput

    if day is None:
        return None
    try:
        return datetime.combine(datetime.strptime(day, "%Y-%m-%d").date() + timedelta(days=1), time(), tzinfo=UTC)
    except ValueError as error:
        raise InvalidInput("cli.field.bad_date", date=day[:40]) from error


@field_app.command("package")
def package_command(
    out_file: Annotated[Path, typer.Option("--out", help="Le zip à écrire.")],
    commune: Annotated[str, typer.Option(help="Commune (code, code national ou nom).")],
    section: Annotated[str | None, typer.Option(help="Une section de la commune.")] = None,
    bbox: Annotated[str | None, typer.Option(help="Emprise minx,miny,maxx,maxy (dans --bbox-crs).")] = None,
    bbox_crs: Annotated[str, typer.Option(help="SCR de l'emprise : EPSG:4326 ou EPSG:32628.")] = "EPSG:4326",
    polygon: Annotated[Path | None, typer.Option(help="Fichier GeoJSON d'un polygone (WGS 84).")] = None,
    holders: Annotated[bool, typer.Option("--holders", help="Inclure les titulaires (motif obligatoire).")] = False,
    purpose: Annotated[str | None, typer.Option(help="Motif de la remise.")] = None,
    expires: Annotated[str | None, typer.Option(help="Dernier jour de validité, AAAA-MM-JJ (défaut : 30 jours).")]
    = None,
    overwrite: Annotated[bool, typer.Option(help="Remplacer le fichier s'il existe.")] = False,
) -> None:
    """Remet un dossier de terrain à l'opérateur et en écrit le zip."""
    from sifc import keyring
    from sifc.errors import InvalidInput
    from sifc.field import packages

    if out_file.exists() and not overwrite:
        raise InvalidInput("export.target_exists", path=str(out_file))
    shape = None
    if polygon is not None:
        try:
            document = orjson.loads(polygon.read_bytes())
        except (OSError, orjson.JSONDecodeError) as error:
            raise InvalidInput("field.bad_polygon", reason=str(error)[:200]) from error
        if isinstance(document, dict) and document.get("type") == "FeatureCollection" and document.get("features"):
            document = document["features"][0]
        shape = document.get("geometry") if isinstance(document, dict) and document.get("type") == "Feature" \
            else document
        if not isinstance(shape, dict):
            raise InvalidInput("field.bad_polygon", reason=type(shape).__name__)
    settings = State.settings()
    by = operator().via("CLI", "sifc field package")
    srid = int(bbox_crs.upper().removeprefix("EPSG:")) if bbox_crs.upper() in ("EPSG:4326", "EPSG:32628") else 0
    if bbox is not None and not srid:
        raise InvalidInput("export.bad_crs", crs=bbox_crs[:50], supported="EPSG:4326, EPSG:32628")
    with database(actor=by.name) as session:
        record = packages.build(
            session, by=by, keys=keyring.for_settings(settings), upload_dir=settings.upload_dir, commune=commune,
            section=section, bbox=bbox, bbox_crs=srid or 4326, polygon=shape, purpose=purpose,
            include_holders=holders, expires_at=_expiry(expires), service_url=settings.public_base,
            default_days=settings.field_package_default_days, max_days=settings.field_package_max_days)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(packages.zip_file(settings.upload_dir, record["id"]), out_file)
    out.print(say("cli.field.issued", id=record["id"], items=record["item_count"], commune=record["commune_code"],
                  expires_at=record["expires_at"], output=out_file), highlight=False)


@field_app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="open, returned, expired ou lost.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Les dossiers de terrain récents."""
    from sifc.field import packages

    by = operator().via("CLI", "sifc field list")
    with database(actor=by.name) as session:
        rows = packages.list_packages(session, by=by, status=status, limit=limit, offset=0)
    table = Table(title=say("cli.field.packages"))
    for column in ("id", "commune", say("cli.field.holder"), say("cli.field.status"), say("cli.field.parcels"),
                   say("cli.field.expires")):
        table.add_column(column)
    for row in rows:
        table.add_row(row["id"], row["commune_code"], row["issued_to"], row["status"], str(row["item_count"]),
                      row["expires_at"][:10])
    out.print(table)


@field_app.command("lost")
def lost_command(
    package_id: Annotated[str, typer.Argument(help="Identifiant du dossier.")],
    reason: Annotated[str, typer.Option(help="Ce qui s'est passé (journalisé).")],
) -> None:
    """Déclare un dossier de terrain perdu : plus aucun retour n'en est accepté."""
    from sifc.field import packages

    by = operator().via("CLI", "sifc field lost")
    with database(actor=by.name) as session:
        record = packages.declare_lost(session, package_id, by=by, reason=reason)
    out.print(say("cli.field.lost", id=record["id"]), highlight=False)


@field_app.command("reassign")
def reassign_command(
    package_id: Annotated[str, typer.Argument(help="Identifiant du dossier.")],
    to: Annotated[str, typer.Option("--to", help="Le compte qui reçoit le dossier.")],
    reason: Annotated[str, typer.Option(help="Pourquoi (journalisé).")],
) -> None:
    """Remet un dossier de terrain ouvert à un autre agent de la commune."""
    from sifc.field import packages

    by = operator().via("CLI", "sifc field reassign")
    with database(actor=by.name) as session:
        record = packages.reassign(session, package_id, by=by, to_user=to, reason=reason)
    out.print(say("cli.field.reassigned", id=record["id"], holder=record["issued_to"]), highlight=False)
