"""Import jobs over HTTP: upload a file, follow its job, download the report and the rejects."""

from __future__ import annotations

import gzip
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.types import Message

from api.deps import SessionDep, SettingsDep, allow
from api.limits import rate_limited
from api.problems import language
from api.responses import GeoJSONResponse, binary
from api.schemas.features import RejectCollection
from api.schemas.records import ImportJobOut, ImportJobsOut, ImportReportOut
from sifc.auth.principal import Action, Principal
from sifc.errors import InvalidInput, TooLarge, UnsupportedFormat
from sifc.imports import jobs, rejects
from sifc.imports.source import check_archive
from sifc.settings import Settings

router = APIRouter(prefix="/imports", tags=["Imports"])
# analyste_sig or administrateur (401/403 before any byte of an upload is read); jobs in scope.
Importer = Annotated[Principal, allow(Action.RUN_IMPORTS)]
CHUNK = 1 << 20
GPKG = "application/geopackage+sqlite3"
JOB_EXAMPLE = {"id": "5f0c…", "status": "running", "stage": "validating", "progress_done": 120000,
               "progress_total": 200000, "file_name": "levé.zip",
               "links": {"self": "https://sifc.example.sn/imports/5f0c…"}}


def _safe_name(raw: str | None) -> str:
    name = Path((raw or "").replace("\\", "/")).name.strip()
    name = re.sub(r"[^\w.\- ()]+", "_", name)[:120]
    if not name or not name.lower().endswith(jobs.UPLOAD_SUFFIXES):
        raise UnsupportedFormat("upload.unsupported", name=name or "?", suffixes=", ".join(jobs.UPLOAD_SUFFIXES))
    return name


def _declared_length(request: Request, limit: int) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise TooLarge("upload.too_large", limit_mb=limit // 1024**2)


def _counting(request: Request, limit: int) -> Request:
    """The same request, whose body refuses to grow beyond ``limit`` bytes whatever its headers say."""
    received = 0
    receive = request.receive

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise TooLarge("upload.too_large", limit_mb=limit // 1024**2)
        return message

    return Request(request.scope, counted)


async def _save_stream(chunks: AsyncIterator[bytes], target: Path) -> int:
    size = 0
    with target.open("wb") as out:
        async for chunk in chunks:
            out.write(chunk)
            size += len(chunk)
    return size


async def _upload_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


@dataclass(frozen=True)
class Received:
    """An uploaded file saved in a job's folder, and the text fields sent with it."""

    name: str
    size: int
    fields: list[tuple[str, str]]


async def receive_upload(request: Request, folder: Path, *, limit: int, filename: str | None, max_fields: int,
                         default_name: str | None = None) -> Received:
    """Save the one file of an upload in ``folder``, counting its bytes against ``limit`` as they come.

    Multipart (the field ``file``; the other text fields are returned) or a raw body named by
    ``?filename=``, ``Content-Disposition`` or ``default_name``. An empty file is refused.
    """
    _declared_length(request, limit)
    counted = _counting(request, limit)
    fields: list[tuple[str, str]] = []
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with counted.form(max_files=1, max_fields=max_fields) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidInput("upload.no_file")
            name = _safe_name(upload.filename)
            size = await _save_stream(_upload_chunks(upload), folder / name)
            fields = [(key, value) for key, value in form.multi_items() if key != "file" and isinstance(value, str)]
    else:
        name = _safe_name(filename or _disposition_name(request.headers.get("content-disposition")) or default_name)
        size = await _save_stream(counted.stream(), folder / name)
    if size == 0:
        raise InvalidInput("upload.empty")
    return Received(name, size, fields)


def _job_dir(settings: Settings, job_id: uuid.UUID) -> Path:
    folder = settings.upload_dir / str(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _discard(folder: Path) -> None:
    for part in folder.glob("*"):
        part.unlink(missing_ok=True)
    folder.rmdir()


def _public(job: dict[str, Any], request: Request) -> dict[str, Any]:
    # From the public base URL (SIFC_PUBLIC_URL), never the Host the client sent.
    base = request.app.state.settings.public_base + request.app.url_path_for("get_import", job_id=str(job["id"]))
    links = {"self": base}
    if job.pop("has_report"):
        links["report"] = f"{base}/report"
    if job.pop("has_rejects"):
        links["rejects"] = f"{base}/rejects"
    if job["status"] == "failed":
        links["retry"] = f"{base}/retry"
    job["links"] = links
    return job_error_in(job, request)


def job_error_in(job: dict[str, Any], request: Request) -> dict[str, Any]:
    """``job`` with its error (if any) as the caller reads it: key, stage and message in the request's language.

    A job reaped after its worker died has no params: its message names the stage it stopped in.
    """
    error = job.get("error")
    if error:
        from sifc.i18n import translate

        lang = language(request)
        params = error.get("params") or {"stage": error.get("stage") or "?"}
        job["error"] = {"key": error.get("key"), "stage": error.get("stage"),
                        "message": error.get(lang) or translate(error["key"], lang, **params)}
    return job


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body, default=str), status_code=status, media_type="application/json",
                    headers=headers)


UploadRateLimited = rate_limited("import", lambda settings: settings.import_rate_per_minute, "import_job.rate_limited")


@router.post("", status_code=202, response_model=ImportJobOut,
             summary="Téléverser un fichier à importer (tâche d'import)",
             dependencies=[UploadRateLimited],
             responses={202: {"content": {"application/json": {"example": JOB_EXAMPLE}}},
                        429: {"description": "Trop d'envois : réessayez après `Retry-After` secondes."}})
async def create_import(
    request: Request, session: SessionDep, settings: SettingsDep, principal: Importer,
    filename: Annotated[str | None, Query(max_length=200, description="Nom du fichier (envoi brut).")] = None,
    commune: Annotated[str | None, Query(max_length=200)] = None,
    crs: Annotated[str | None, Query(max_length=200)] = None,
    layer: Annotated[str | None, Query(max_length=200)] = None,
    encoding: Annotated[str | None, Query(max_length=50)] = None,
    dry_run: bool = False,
    on_invalid: Annotated[Literal["repair", "reject"], Query()] = "repair",
) -> Response:
    """Envoi multipart (champ `file`, options en champs de formulaire) ou corps brut (`?filename=`).

    Formats : shapefile zippé, GeoPackage, GeoJSON, GML, DXF, CSV de bornes. La réponse (202)
    décrit la tâche ; suivez-la sur son lien `self`. Un périmètre plus petit que le pays doit
    donner l'option `commune`, dans ce périmètre (403 sinon).
    """
    _declared_length(request, settings.max_upload_bytes)
    options: dict[str, Any] = {"commune": commune, "crs": crs, "layer": layer, "encoding": encoding,
                               "on_invalid": on_invalid, "lang": language(request)}
    job_id = uuid.uuid4()
    folder = _job_dir(settings, job_id)
    try:
        received = await receive_upload(request, folder, limit=settings.max_upload_bytes, filename=filename,
                                        max_fields=20)
        name, size = received.name, received.size
        for key, value in received.fields:
            if key == "dry_run":
                dry_run = value.lower() in ("1", "true", "yes", "oui", "on")
            else:
                options[key] = value
        if name.lower().endswith(".zip"):
            check_archive(folder / name)
        checked = await run_in_threadpool(jobs.authorize_submit, session, by=principal,
                                          options=jobs.check_options(options))
    except BaseException:
        _discard(folder)
        raise
    job = await run_in_threadpool(
        jobs.submit, session, job_id=job_id, file_name=name, upload_path=str(folder / name), size_bytes=size,
                      options=checked, dry_run=dry_run, author=principal.name)
    body = _public(job, request)
    return _json(body, 202, headers={"Location": body["links"]["self"]})


def _disposition_name(header: str | None) -> str | None:
    if not header:
        return None
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', header, flags=re.IGNORECASE)
    if not match:
        return None
    from urllib.parse import unquote

    return unquote(match.group(1))


@router.get("", response_model=ImportJobsOut, summary="Tâches d'import récentes")
def list_imports(
    request: Request, session: SessionDep, principal: Importer,
    status: Annotated[Literal["queued", "running", "done", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Les plus récentes d'abord : les siennes et celles des communes de son périmètre."""
    rows = jobs.list_jobs(session, status=status, limit=limit, offset=offset, by=principal)
    return _json({"jobs": [_public(r, request) for r in rows], "limit": limit, "offset": offset})


@router.get("/{job_id}", name="get_import", response_model=ImportJobOut, summary="État d'une tâche d'import")
def get_import(job_id: str, request: Request, session: SessionDep, principal: Importer) -> Response:
    """Statut (queued, running, done, failed), étape, progression, résumé du rapport, liens."""
    return _json(_public(jobs.get(session, _job(session, job_id, principal)), request))


def _job(session: SessionDep, job_id: str, principal: Principal) -> uuid.UUID:
    """The job's id, once ``principal`` is allowed to see it (its own, or in its scope)."""
    parsed = jobs.parse_id(job_id)
    jobs.authorize(session, parsed, by=principal)
    return parsed


@router.get("/{job_id}/report", response_model=ImportReportOut, summary="Rapport complet d'une tâche d'import (JSON)")
def get_import_report(job_id: str, session: SessionDep, principal: Importer) -> Response:
    """Le rapport avec toutes les anomalies (pas seulement les 1 000 premières)."""
    report, issues = jobs.issues_lines(session, _job(session, job_id, principal))
    if issues is None:
        return _json(report)
    head = dict(report)
    head.pop("issues", None)
    head["issues_truncated"] = False

    def body() -> Iterator[bytes]:
        yield orjson.dumps(head)[:-1] + b',"issues":['
        lines = gzip.decompress(issues).splitlines()
        for number, line in enumerate(lines):
            yield (b"," if number else b"") + line
        yield b"]}"

    return StreamingResponse(body(), media_type="application/json")


@router.get("/{job_id}/rejects", summary="Entités rejetées (GeoPackage, ou GeoJSON pour une carte)",
            response_model=RejectCollection, response_class=GeoJSONResponse,
            responses=binary({GPKG: "GeoPackage des entités rejetées, dans le SCR du fichier"}))
def get_import_rejects(
    job_id: str, session: SessionDep, principal: Importer,
    output: Annotated[Literal["gpkg", "geojson"], Query(alias="format", description=(
        "`gpkg` (défaut) : dans le SCR du fichier, à corriger dans QGIS ; `geojson` : en WGS 84, pour une "
        "carte web."))] = "gpkg",
) -> Response:
    """Les entités rejetées et leurs motifs, dans le SCR du fichier, à corriger dans QGIS."""
    data = jobs.rejects(session, _job(session, job_id, principal))
    if output == "geojson":
        return Response(rejects.to_geojson(data), media_type="application/geo+json")
    return Response(data, media_type=GPKG,
                    headers={"Content-Disposition": f'attachment; filename="rejets-{job_id}.gpkg"'})


@router.post("/{job_id}/retry", status_code=202, response_model=ImportJobOut, summary="Relancer une tâche échouée")
def retry_import(job_id: str, request: Request, session: SessionDep, principal: Importer) -> Response:
    """Remet en file une tâche en échec (son fichier est conservé)."""
    return _json(_public(jobs.retry(session, _job(session, job_id, principal)), request), 202)
