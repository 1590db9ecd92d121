"""``sifc localites`` (load, list, add, move, rename, retire) and ``sifc indicators refresh``.

The rules are :mod:`sifc.localites.service`' and :mod:`sifc.localites.indicators`'; the console's
operator is an administrator everywhere, and each change is a version in the operator's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from cli.common import database, operator, out, say

localites_app = typer.Typer(help="Localités (villages, quartiers) : chargement OpenStreetMap, liste, ajout, "
                                 "déplacement, renommage, retrait.", no_args_is_help=True)
indicators_app = typer.Typer(help="Indicateurs agrégés (titulaires par sexe), petits effectifs masqués.",
                             no_args_is_help=True)

Crs = Annotated[str, typer.Option("--crs", help="SCR des coordonnées : EPSG:4326 (lon lat) ou EPSG:32628 (x y).")]
Reason = Annotated[str, typer.Option("--reason", help="Motif (obligatoire).")]


def _srid(crs: str) -> int:
    from sifc.errors import InvalidInput

    chosen = crs.upper().removeprefix("EPSG:")
    if chosen not in ("4326", "32628"):
        raise InvalidInput("export.bad_crs", crs=crs[:50], supported="EPSG:4326, EPSG:32628")
    return int(chosen)


def _point(x: float, y: float) -> dict[str, object]:
    return {"type": "Point", "coordinates": [x, y]}


def _tag(session: object, localite_id: str) -> int:
    from sifc.localites import service

    return int(service.current(session, localite_id=localite_id)["version"])  # type: ignore[arg-type]


@localites_app.command("load")
def load_command(
    path: Annotated[Path, typer.Argument(help="Le GeoPackage (couche « localites »), p. ex. "
                                              "../shared/data/senegal/localites_osm.gpkg.")],
    commune: Annotated[list[str] | None, typer.Option("--commune", help="Une commune (code) ; répétable. "
                                                      "Défaut : les communes de ce nœud.")] = None,
) -> None:
    """Charge les localités nommées d'OpenStreetMap (© les contributeurs d'OpenStreetMap, ODbL 1.0)."""
    from sifc.localites import service

    by = operator().via("CLI", "sifc localites load")
    with database(actor=by.name) as session:
        report = service.load_osm(session, path=path, communes=commune or None, by=by, author=by.name)
    out.print(say("cli.localites.loaded", created=report["created"], known=report["known"],
                  disagreements=len(report["disagreements"]), outside=len(report["outside"])), highlight=False)
    for item in report["disagreements"]:
        out.print(say("cli.localites.disagreement", **item), highlight=False)


@localites_app.command("list")
def list_command(
    commune: Annotated[str, typer.Option("--commune", help="Code de la commune.")],
    json_output: Annotated[bool, typer.Option("--json", help="Le GeoJSON tel que l'API le donne.")] = False,
) -> None:
    """Liste les localités en vigueur d'une commune."""
    from sifc.localites import service

    with database() as session:
        body = orjson.loads(service.list_commune(session, commune_code=commune))
    if json_output:
        out.print_json(orjson.dumps(body).decode())
        return
    table = Table("id", say("cli.localites.name"), say("cli.localites.kind"), say("cli.localites.origin"), "lon, lat")
    for feature in body["features"]:
        p, c = feature["properties"], feature["geometry"]["coordinates"]
        table.add_row(str(feature["id"]), p["name"], p["kind"], p["origin"], f"{c[0]:.5f}, {c[1]:.5f}")
    out.print(table)
    out.print(body["attribution"], highlight=False)


@localites_app.command("add")
def add_command(
    name: Annotated[str, typer.Option("--name", help="Nom en usage.")],
    kind: Annotated[str, typer.Option("--kind", help="ville, village, hameau, quartier, lieu_dit, habitation_isolee.")],
    x: Annotated[float, typer.Option("--x", help="Longitude (EPSG:4326) ou abscisse (EPSG:32628).")],
    y: Annotated[float, typer.Option("--y", help="Latitude (EPSG:4326) ou ordonnée (EPSG:32628).")],
    commune: Annotated[str | None, typer.Option("--commune", help="Code ; défaut : la commune du point.")] = None,
    crs: Crs = "EPSG:4326",
    reason: Annotated[str | None, typer.Option("--reason", help="Motif.")] = None,
) -> None:
    """Place une nouvelle localité (elle doit être dans la limite de sa commune)."""
    from sifc.localites import service

    by = operator().via("CLI", "sifc localites add")
    values = {"name": name, "kind": kind, **({"commune_code": commune} if commune else {})}
    with database(actor=by.name) as session:
        lid = service.create(session, data=service.LocaliteInput(geometry=_point(x, y), input_crs=_srid(crs),
                                                                 values=values, reason=reason),
                             by=by, author=by.name)
    out.print(say("cli.localites.added", id=lid), highlight=False)


def _update(localite_id: str, data: object, command: str) -> None:
    from sifc.localites import service

    by = operator().via("CLI", command)
    with database(actor=by.name) as session:
        version = service.update(session, localite_id=localite_id, data=data,  # type: ignore[arg-type]
                                 expected_version=_tag(session, localite_id), by=by, author=by.name)
    out.print(say("cli.localites.updated", id=localite_id, version=version), highlight=False)


@localites_app.command("move")
def move_command(
    localite_id: Annotated[str, typer.Argument(help="Id de la localité.")],
    x: Annotated[float, typer.Option("--x")],
    y: Annotated[float, typer.Option("--y")],
    reason: Reason,
    crs: Crs = "EPSG:4326",
) -> None:
    """Déplace une localité (une nouvelle version)."""
    from sifc.localites.service import LocaliteInput

    _update(localite_id, LocaliteInput(geometry=_point(x, y), input_crs=_srid(crs), reason=reason),
            "sifc localites move")


@localites_app.command("rename")
def rename_command(
    localite_id: Annotated[str, typer.Argument(help="Id de la localité.")],
    name: Annotated[str, typer.Option("--name", help="Le nouveau nom.")],
    reason: Reason,
    kind: Annotated[str | None, typer.Option("--kind", help="Un autre type, s'il change.")] = None,
) -> None:
    """Renomme une localité (ou en change le type) : une nouvelle version."""
    from sifc.localites.service import LocaliteInput

    values = {"name": name, **({"kind": kind} if kind else {})}
    _update(localite_id, LocaliteInput(values=values, reason=reason), "sifc localites rename")


@localites_app.command("retire")
def retire_command(
    localite_id: Annotated[str, typer.Argument(help="Id de la localité.")],
    reason: Reason,
) -> None:
    """Retire une localité (rien n'est effacé : l'historique reste)."""
    from sifc.localites import service

    by = operator().via("CLI", "sifc localites retire")
    with database(actor=by.name) as session:
        service.retire(session, localite_id=localite_id, reason=reason, expected_version=_tag(session, localite_id),
                       by=by, author=by.name)
    out.print(say("cli.localites.retired", id=localite_id), highlight=False)


@indicators_app.command("refresh")
def refresh_command(
    commune: Annotated[list[str] | None, typer.Option("--commune", help="Une commune (code) ; répétable. "
                                                      "Défaut : les communes de ce nœud qui ont des affectations.")]
    = None,
) -> None:
    """Recompte les titulaires d'affectations en vigueur par sexe, par commune (petits effectifs masqués)."""
    from sifc.localites import indicators

    by = operator().via("CLI", "sifc indicators refresh")
    with database(actor=by.name) as session:
        rows = indicators.refresh(session, communes=commune or None, by=by, author=by.name)
    for row in rows:
        if row["withheld"]:
            out.print(say("cli.indicators.withheld", commune=row["commune_code"], holders=row["holders"],
                          reason=say(f"cli.indicators.why.{row['withheld']}")), highlight=False)
        else:
            out.print(say("cli.indicators.published", commune=row["commune_code"], holders=row["holders"],
                          women=row["women"], men=row["men"], unrecorded=row["unrecorded"]), highlight=False)
    out.print(say("cli.indicators.done", count=len(rows)), highlight=False)
