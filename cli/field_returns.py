"""``sifc field return``: a returned field package checked and applied (or previewed) at the server's console.

The same intake and job as over HTTP (:mod:`sifc.field.returns`), run at once in this process
rather than by the worker: the job, its report and the writes commit together, or nothing does.
The operator returns a package issued to the console (``sifc field package``); a package issued to
an officer is returned by that officer, over HTTP.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Annotated

import orjson
import typer

from cli.common import State, operator, out


def return_package_command(
    path: Annotated[Path, typer.Argument(help="Le zip du dossier de terrain (photos sous DCIM/) ou son data.gpkg.")],
    dry_run: Annotated[bool, typer.Option(help="Tout vérifier sans rien enregistrer (aperçu).")] = False,
    package: Annotated[str | None, typer.Option(help="Identifiant du dossier (sinon celui que nomme le fichier).")]
    = None,
    report: Annotated[Path | None, typer.Option(help="Écrire le rapport JSON dans ce fichier.")] = None,
    rejects: Annotated[Path | None, typer.Option(
        help="GeoPackage des conflits et refus, à corriger puis retourner (défaut : NOM_rejets.gpkg).")] = None,
) -> None:
    """Retourne un dossier de terrain : appliqué entité par entité (conflits et refus dans le rapport)."""
    from cli.common import database
    from sifc.field import returns
    from sifc.imports import worker

    settings = State.settings()
    by = operator().via("CLI", "sifc field return")
    job_id = uuid.uuid4()
    folder = settings.upload_dir / str(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / path.name
    shutil.copyfile(path, stored)
    try:
        with database(actor=by.name) as session, tempfile.TemporaryDirectory(prefix="sifc-return-") as scratch:
            job = returns.submit_return(session, package_id=package, upload_path=stored, file_name=path.name,
                                        size=stored.stat().st_size, dry_run=dry_run, by=by, settings=settings,
                                        lang=State.lang, job_id=job_id)
            row = dict(session.execute(returns.JOB_SQL, {"id": job["id"]}).mappings().one())
            outcome = returns.run(session, row, Path(scratch), settings)
            worker._finish(session, job_id, outcome)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    body = outcome["report"].as_dict()
    counts = body["counts"]
    if body.get("already_applied"):
        out.print(f"Déjà appliqué (tâche {body['already_applied']}) : rien n'a changé.")
    else:
        out.print(" · ".join(f"{name} {counts[name]}" for name in ("applied", "conflict", "refused",
                                                                  "proposed_retirement", "unchanged")))
    if report is not None:
        report.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    if outcome.get("rejects_gpkg"):
        target = rejects or path.with_name(f"{path.stem}_rejets.gpkg")
        target.write_bytes(outcome["rejects_gpkg"])
        out.print(f"Conflits et refus : {target}")


def register(field_app: typer.Typer) -> None:
    """Add ``return`` to the ``sifc field`` group (defined with the package commands in ``cli/field.py``)."""
    field_app.command("return")(return_package_command)
