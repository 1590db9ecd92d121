"""Batch documents over HTTP: a session's documents queued as a job, its progress, its PDF and zip.

A writer of tenure (``agent_foncier``, ``administrateur``) in the session's commune queues the job
(202 with ``Location``); the same roles in that commune follow it and download its files. The files
name holders: each download is written to the access audit. Every document of a batch is sealed
and recorded as the single ones are, so each verifies with ``/documents/verify``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from api.deps import SessionDep, SettingsDep, allow
from api.problems import language
from api.responses import binary
from api.schemas.records import ImportFailure, Open
from sifc.auth.principal import Action, Principal
from sifc.documents import jobs, session_batch


class DocumentJobLinks(BaseModel):
    """Where to follow a documents job and fetch its files once done."""

    self: str
    pdf: str | None = None
    zip: str | None = None


class DocumentJobOut(Open):
    """A documents job: its builder and parameters, stage, progress, error, report, the links to its files."""

    id: str
    status: str = Field(description="queued, running, done ou failed.")
    stage: str | None = Field(default=None, description="building (les documents), writing (PDF et zip).")
    progress_done: int
    progress_total: int
    attempts: int | None = None
    builder: str | None = None
    params: dict[str, Any] | None = None
    commune_code: str | None = None
    error: ImportFailure | None = None
    report: dict[str, Any] | None = Field(default=None, description=(
        "Sans donnée personnelle : documents, fichiers (pdf, zip, pages), procédures imprimées et écartées."))
    created_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    links: DocumentJobLinks


router = APIRouter(tags=["Documents"])
Writer = Annotated[Principal, allow(Action.WRITE_TENURE)]
Id = Annotated[str, Path(max_length=64)]
JOB_EXAMPLE = {"id": "5f0c…", "status": "running", "stage": "building", "progress_done": 40, "progress_total": 61,
               "builder": "session_batch", "links": {"self": "https://sifc.example.sn/document-jobs/5f0c…"}}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body, default=str), status_code=status, media_type="application/json",
                    headers=headers)


def _public(job: dict[str, Any], request: Request) -> dict[str, Any]:
    base = request.app.state.settings.public_base + request.app.url_path_for("get_document_job",
                                                                             job_id=str(job["id"]))
    links = {"self": base}
    files = (job.get("report") or {}).get("files") or {}
    if job["status"] == "done" and files.get("pdf"):
        links["pdf"] = f"{base}/pdf"
    if job["status"] == "done" and files.get("zip"):
        links["zip"] = f"{base}/zip"
    job["links"] = links
    from api.routers.imports import job_error_in

    return job_error_in(job, request)


@router.post("/sessions/{session_id}/documents", status_code=202, response_model=DocumentJobOut,
             summary="Imprimer les documents d'une session délibérée (tâche : extraits, certificats, registre)",
             responses={202: {"content": {"application/json": {"example": JOB_EXAMPLE}}},
                        409: {"description": "La session n'est pas encore délibérée."}})
def print_session_documents(session_id: Id, request: Request, session: SessionDep, principal: Writer) -> Response:
    """Met en file la construction des documents : pour chaque procédure accordée, l'extrait de délibération
    et le certificat d'affectation (une fois la procédure notifiée), puis le registre de la session ; un PDF
    unique et un zip d'un PDF par document. Suivez la tâche sur `Location`.
    """
    job_id = session_batch.submit_session(session, session_id=session_id, by=principal, author=principal.name,
                                          lang=language(request))
    body = _public(jobs.get(session, job_id=jobs.parse_id(job_id), by=principal), request)
    return _json(body, 202, headers={"Location": body["links"]["self"]})


@router.get("/document-jobs/{job_id}", name="get_document_job", response_model=DocumentJobOut,
            summary="État d'une tâche de documents")
def get_document_job(job_id: Id, request: Request, session: SessionDep, principal: Writer) -> Response:
    """Statut (queued, running, done, failed), étape, progression, rapport (sans donnée personnelle), liens."""
    return _json(_public(jobs.get(session, job_id=jobs.parse_id(job_id), by=principal), request))


def _file(job_id: str, session: SessionDep, settings: SettingsDep, principal: Principal, which: str,
          media_type: str) -> FileResponse:
    path = jobs.file_of(session, job_id=jobs.parse_id(job_id), by=principal, settings=settings, which=which)
    return FileResponse(path, media_type=media_type, filename=f"documents-{job_id}.{which}",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.get("/document-jobs/{job_id}/pdf", response_class=FileResponse,
            responses=binary({"application/pdf": "Tous les documents du lot en un PDF"}),
            summary="Le PDF unique d'une tâche de documents terminée")
def document_job_pdf(job_id: Id, session: SessionDep, settings: SettingsDep, principal: Writer) -> FileResponse:
    """409 tant que la tâche n'est pas terminée ; 410 une fois ses fichiers supprimés (conservation écoulée)."""
    return _file(job_id, session, settings, principal, "pdf", "application/pdf")


@router.get("/document-jobs/{job_id}/zip", response_class=FileResponse,
            responses=binary({"application/zip": "Un PDF par document du lot"}),
            summary="Le zip d'une tâche de documents terminée (un PDF par document)")
def document_job_zip(job_id: Id, session: SessionDep, settings: SettingsDep, principal: Writer) -> FileResponse:
    """Chaque PDF se vérifie tel quel avec `POST /documents/verify`."""
    return _file(job_id, session, settings, principal, "zip", "application/zip")
