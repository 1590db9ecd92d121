"""Field returns over HTTP: upload a returned package, follow its job, read its report and rejects.

The upload is handled as an import's (streamed to the upload folder, its size counted whatever the
headers say); the checks and the job are :mod:`sifc.field.returns`'. A holder follows the return on
``/field/returns/{id}`` (an agent foncier has no access to ``/imports``); an analyst or administrator
sees the same job among the imports.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import Field
from sqlalchemy import text

from api.deps import SessionDep, SettingsDep, allow
from api.problems import language
from api.responses import binary
from api.routers.imports import (
    GPKG,
    UploadRateLimited,
    _declared_length,
    _discard,
    _job_dir,
    _json,
    job_error_in,
    receive_upload,
)
from api.schemas.records import ImportJobOut, Open
from sifc.auth.principal import Action, Principal
from sifc.errors import Forbidden, NotFound
from sifc.field import returns
from sifc.imports import jobs

router = APIRouter(tags=["Dossiers de terrain"])
FieldWorker = Annotated[Principal, allow(Action.FIELD_WORK)]


class FieldReturnReportOut(Open):
    """The report of a return (``sifc.field.returns_apply.ReturnReport``)."""

    kind: str = Field(description="`field_return`.")
    package_id: str
    dry_run: bool
    already_applied: str | None = Field(default=None, description="La tâche qui a déjà appliqué ce même fichier.")
    counts: dict[str, int] = Field(description="Entités par statut : applied, conflict, refused, "
                                               "proposed_retirement, unchanged ; photos jointes.")
    features: list[dict[str, Any]] = Field(description=(
        "Par entité : couche, fid, statut, motif (clé et message traduit) ; pour un conflit, `registry` et `field` "
        "(géométrie GeoJSON en WGS 84 et attributs)."))
    warnings: list[dict[str, Any]] = Field(description="Photos jointes, manquantes ou refusées, colonnes en lecture "
                                                       "seule modifiées, étape de procédure.")


def _public(job: dict[str, Any], request: Request) -> dict[str, Any]:
    base = request.app.state.settings.public_base + request.app.url_path_for("get_field_return",
                                                                             job_id=str(job["id"]))
    links = {"self": base}
    if job.pop("has_report", False):
        links["report"] = f"{base}/report"
    if job.pop("has_rejects", False):
        links["rejects"] = f"{base}/rejects"
    job["links"] = links
    return job_error_in(job, request)


@router.post("/field/packages/{package_id}/return", status_code=202, response_model=ImportJobOut,
             summary="Retourner un dossier de terrain (aperçu ou application)", dependencies=[UploadRateLimited],
             responses={429: {"description": "Trop d'envois : réessayez après `Retry-After` secondes."}})
async def return_package(
    package_id: str, request: Request, session: SessionDep, settings: SettingsDep, principal: FieldWorker,
    dry_run: Annotated[bool, Query(description="`true` : aperçu, rien n'est écrit.")] = False,
    filename: Annotated[str | None, Query(max_length=200, description="Nom du fichier (envoi brut).")] = None,
) -> Response:
    """Envoi multipart (champ `file`) ou corps brut : le zip du dossier (avec ses photos sous `DCIM/`)
    ou son `data.gpkg`. La réponse (202) décrit la tâche ; son rapport dit, entité par entité, ce qui
    est appliqué, en conflit, refusé ou proposé au retrait. Seul le détenteur du dossier peut le retourner.
    """
    pid = returns.parse_package_id(package_id)
    _declared_length(request, settings.max_field_return_bytes)
    job_id = uuid.uuid4()
    folder = _job_dir(settings, job_id)
    try:
        received = await receive_upload(request, folder, limit=settings.max_field_return_bytes, filename=filename,
                                        max_fields=5, default_name="data.gpkg")
        name, size = received.name, received.size
        job = await run_in_threadpool(
            returns.submit_return, session, package_id=pid, upload_path=folder / name, file_name=name, size=size,
            dry_run=dry_run, by=principal, settings=settings, lang=language(request), job_id=job_id)
    except BaseException:
        _discard(folder)
        raise
    body = _public(job, request)
    return _json(body, 202, headers={"Location": body["links"]["self"]})


def _job(session: SessionDep, job_id: str, principal: Principal) -> uuid.UUID:
    """The return's job id, once ``principal`` may see it: its own, or field work in the package's commune."""
    parsed = jobs.parse_id(job_id)
    row = session.execute(text("""
        SELECT created_by, options ->> 'commune_code' AS commune FROM import_job
        WHERE id = :id AND kind = 'field_return'"""), {"id": parsed}).first()
    if row is None:
        raise NotFound("import_job.not_found", id=str(parsed))
    if row.created_by == principal.name or (row.commune is not None and principal.may(Action.FIELD_WORK, row.commune)):
        return parsed
    raise Forbidden("auth.out_of_scope", communes=row.commune or "?")


@router.get("/field/returns/{job_id}", name="get_field_return", response_model=ImportJobOut,
            summary="État et résumé d'un retour de terrain")
def get_field_return(job_id: str, request: Request, session: SessionDep, principal: FieldWorker) -> Response:
    """Statut de la tâche, nombre d'entités appliquées, en conflit, refusées, proposées au retrait."""
    return _json(_public(jobs.get(session, _job(session, job_id, principal)), request))


@router.get("/field/returns/{job_id}/report", response_model=FieldReturnReportOut,
            summary="Rapport complet d'un retour de terrain (JSON)")
def get_field_return_report(job_id: str, session: SessionDep, principal: FieldWorker) -> Response:
    """Chaque entité traitée : statut, motif traduit ; pour un conflit, les deux géométries (WGS 84) et attributs."""
    report, _issues = jobs.issues_lines(session, _job(session, job_id, principal))
    return _json(report)


@router.get("/field/returns/{job_id}/rejects", summary="Conflits et refus d'un retour (GeoPackage à corriger)",
            response_class=Response,
            responses=binary({GPKG: "GeoPackage au schéma du dossier : conflits et refus, mêmes fid"}))
def get_field_return_rejects(job_id: str, session: SessionDep, principal: FieldWorker) -> Response:
    """Un GeoPackage au schéma du dossier, mêmes identifiants d'entités, à corriger puis retourner."""
    data = jobs.rejects(session, _job(session, job_id, principal))
    return Response(data, media_type=GPKG,
                    headers={"Content-Disposition": f'attachment; filename="retour-{job_id}.gpkg"'})
