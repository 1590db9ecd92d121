"""``sifc import``: cadastral files into the parcel register, all or nothing."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from cli.common import State, err, out, say

import_app = typer.Typer(help="Imports de fichiers cadastraux.", no_args_is_help=True)


@import_app.command("parcels")
def import_parcels_command(
    path: Annotated[Path, typer.Argument(help="Shapefile (dossier, .shp ou .zip), GeoPackage, GeoJSON, GML, DXF "
                                              "ou tableau de bornes .csv (DXF et .csv : --crs obligatoire).")],
    commune: Annotated[str | None, typer.Option(help="Commune (code, code national ou nom) ; sinon déduite.")] = None,
    crs: Annotated[str | None, typer.Option(help="SCR du fichier s'il n'a pas de .prj (ex. EPSG:32628).")] = None,
    layer: Annotated[str | None, typer.Option(help="Couche (GeoPackage).")] = None,
    mapping: Annotated[Path | None, typer.Option(help="Correspondance YAML champ de parcelle → colonne.")] = None,
    encoding: Annotated[str | None, typer.Option(help="Encodage des attributs (sinon .cpg, .dbf, Latin-1).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Tout vérifier sans rien enregistrer.")] = False,
    on_invalid: Annotated[str, typer.Option(help="Géométries invalides : repair ou reject.")] = "repair",
    overlap_tolerance_m2: Annotated[float, typer.Option(help="Chevauchement toléré (m²).")] = 1.0,
    overlap_tolerance_ratio: Annotated[float, typer.Option(
        help="Chevauchement toléré (part de la plus petite).")] = 0.01,
    area_tolerance: Annotated[float, typer.Option(help="Écart toléré superficie déclarée / calculée.")] = 0.10,
    report: Annotated[Path | None, typer.Option(help="Écrire le rapport JSON dans ce fichier.")] = None,
    rejects: Annotated[Path | None, typer.Option(
        help="GeoPackage des entités rejetées (défaut : NOM_rejets.gpkg).")] = None,
    user: Annotated[str | None, typer.Option(help="Auteur enregistré du lot.")] = None,
    campaign: Annotated[str | None, typer.Option(help=(
        "Campagne systématique (ouverte) : les parcelles s'y ajoutent avec les détenteurs présumés que nomme le "
        "fichier (holder_name, holder_given_names, holder_id_number, holder_sex)."))] = None,
) -> None:
    """Importe les parcelles d'un fichier : tout ou rien, avec rapport et entités rejetées."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from sifc.db import make_engine, make_sessionmaker
    from sifc.errors import InvalidInput
    from sifc.imports.mapping import read_mapping_file
    from sifc.imports.parcels import ParcelImportOptions, import_parcels, spool_issues, write_rejects, write_report
    from sifc.imports.summary import print_summary

    if on_invalid not in ("repair", "reject"):
        raise InvalidInput("import.on_invalid", value=on_invalid)
    options = ParcelImportOptions(
        commune=commune, crs=crs, layer=layer, mapping=read_mapping_file(mapping) if mapping else None,
        encoding=encoding, dry_run=dry_run, on_invalid=on_invalid,  # type: ignore[arg-type]
        overlap_tolerance_m2=overlap_tolerance_m2, overlap_tolerance_ratio=overlap_tolerance_ratio,
        area_tolerance_ratio=area_tolerance, campaign=campaign)
    if user:
        options.author = user
    settings = State.settings()
    engine = make_engine(settings.db_url, application_name="sifc-import")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar, \
            make_sessionmaker(engine)() as session:
        tasks: dict[str, object] = {}

        def progress(stage: str, done: int, total: int) -> None:
            label = {"staging": say("cli.imports.reading"), "validating": say("cli.imports.checks")}.get(stage)
            if label is None:
                return
            if stage not in tasks:
                tasks[stage] = bar.add_task(label, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)  # type: ignore[arg-type]

        result = import_parcels(session, path, options, progress=progress)
        spool = None
        if report and not result.already_imported:  # every issue, read before the transaction ends
            spool = Path(tempfile.mkstemp(prefix="sifc-issues-", suffix=".jsonl")[1])
            spool_issues(session, spool)
        if (result.rejected or result.duplicates) and not result.already_imported:
            target = rejects or Path(f"{path.stem}_rejets.gpkg")
            write_rejects(session, target, State.lang)
            result_rejects = str(target)
        else:
            result_rejects = None
        if dry_run:
            session.rollback()
        else:
            started = time.perf_counter()
            session.commit()
            result.timings["commit"] += time.perf_counter() - started
    engine.dispose()
    print_summary(out, result, State.lang)
    if result_rejects:
        out.print(say("cli.imports.rejected_features_reasons", result_rejects=result_rejects))
    if report:
        write_report(result, report, spool)
    if spool:
        spool.unlink(missing_ok=True)
