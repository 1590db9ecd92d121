"""``sifc territories``: the territorial reference (pôles → communes) and official commune limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.common import State, out, say

if TYPE_CHECKING:
    from sifc.territories.loader import LoadReport

territories_app = typer.Typer(help="Référentiel territorial (pôles → communes).",
                              no_args_is_help=True)


@territories_app.command("load")
def territories_load(
    report: Annotated[Path | None, typer.Option(help="Écrire aussi le rapport JSON dans ce fichier.")] = None,
) -> None:
    """Charge (ou met à jour) le référentiel livré dans data/ ; deux chargements donnent la même base."""
    from sifc.db import make_engine, transaction
    from sifc.territories.loader import load_reference

    settings = State.settings()
    engine = make_engine(settings.db_url, application_name="sifc-cli")
    with transaction(engine) as session:
        result = load_reference(session, settings.data_dir)
    engine.dispose()
    _print_load(result)
    if report:
        report.write_text(json.dumps(result.as_dict(), ensure_ascii=False, indent=2, default=str),
                          encoding="utf-8")


def _print_load(result: LoadReport) -> None:
    table = Table(title=say("cli.territories.territorial_reference"))
    for column in (say("cli.territories.level"), say("cli.territories.read"), say("cli.territories.inserted"),
                   say("cli.territories.updated"), say("cli.territories.unchanged")):
        table.add_column(column)
    for level, counts in result.levels.items():
        table.add_row(level, str(counts.read), str(counts.inserted), str(counts.updated),
                      str(counts.unchanged))
    out.print(table)
    for repair in result.repairs:
        out.print(say("cli.territories.repaired_st_makevalid_km", level=repair['level'], code=repair['code'],
                      name=repair['name'], invalid_reason=repair['invalid_reason'],
                      area_after_km2=repair['area_after_km2']))
    for defect in result.defects:
        out.print(say("cli.territories.source_defect")
                  + f"{defect['level']} {defect['code']} — {defect['defect']}")
    if not result.changed:
        out.print(say("cli.territories.no_change_database_already"))


@territories_app.command("import-communes")
def territories_import_communes(
    file: Annotated[Path, typer.Argument(help="Limites officielles (shapefile, GeoPackage, GeoJSON).")],
    crs: Annotated[str | None, typer.Option(help="CRS du fichier s'il n'en déclare pas (ex. EPSG:32628).")] = None,
    name_field: Annotated[str | None, typer.Option(help="Champ du nom de commune (deviné sinon).")] = None,
    code_field: Annotated[str | None, typer.Option(help="Champ du code national (ex. COD_ENTITE).")] = None,
    department_field: Annotated[str | None, typer.Option(help="Champ du nom de département (deviné sinon).")] = None,
    layer: Annotated[str | None, typer.Option(help="Couche (GeoPackage).")] = None,
    aliases: Annotated[Path | None, typer.Option(help="CSV d'alias : alias,commune (nom ou code).")] = None,
    strict: Annotated[bool, typer.Option(
        help="Refuser tout le fichier si une entité ne correspond à aucune commune.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Tout vérifier et rapporter sans rien enregistrer.")] = False,
    report: Annotated[Path | None, typer.Option(help="Écrire aussi le rapport JSON dans ce fichier.")] = None,
) -> None:
    """Remplace des limites provisoires par des limites officielles, appariées par code ou par nom."""
    from sifc.db import make_engine, make_sessionmaker
    from sifc.territories.communes_import import ImportOptions, import_communes, read_alias_file

    settings = State.settings()
    options = ImportOptions(crs=crs, name_field=name_field, code_field=code_field,
                            department_field=department_field, layer=layer, strict=strict,
                            aliases=read_alias_file(aliases) if aliases else [])
    engine = make_engine(settings.db_url, application_name="sifc-cli")
    with make_sessionmaker(engine)() as session:
        result = import_communes(session, file, options)
        if dry_run:
            session.rollback()
        else:
            session.commit()
    engine.dispose()
    from sifc.territories.communes_import import print_report

    print_report(out, result, State.lang, dry_run=dry_run)
    if report:
        report.write_text(json.dumps(result.as_dict(), ensure_ascii=False, indent=2, default=str),
                          encoding="utf-8")
