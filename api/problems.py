"""Errors as RFC 9457 ``application/problem+json``, in the caller's language.

One table maps domain exceptions to HTTP; anything unexpected is a logged 500
(a bug), never a traceback in the response.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DataError, DBAPIError, OperationalError, SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sifc.errors import NotOwner, SifcError
from sifc.federation import directory
from sifc.i18n import Lang, known, pick_language, translate

log = logging.getLogger("sifc.api")
PROBLEM_JSON = "application/problem+json"


def language(request: Request) -> Lang:
    """The language of the answer, from ``Accept-Language`` (French by default)."""
    return pick_language(request.headers.get("accept-language"))


def problem(status: int, *, key: str, detail: str, lang: Lang, instance: str,
            errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
            title: str | None = None, extensions: dict[str, Any] | None = None) -> Response:
    """Build one problem response; ``extensions`` are members of its own (RFC 9457 §3.2), never a standard one."""
    body: dict[str, Any] = {
        "type": f"urn:sifc:problem:{key}",
        "title": title or _title(status, lang),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = errors
    for name, value in (extensions or {}).items():
        body.setdefault(name, value)
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON,
                    headers={"Content-Language": lang, **(headers or {})})


def _title(status: int, lang: Lang) -> str:
    key = f"http.title.{status}"
    if lang != "en" and known(key):
        return translate(key, lang)
    return HTTPStatus(status).phrase


def _field_errors(error: RequestValidationError, lang: Lang) -> list[dict[str, Any]]:
    items = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        message = item.get("msg", "")
        # The validation errors users actually cause (pydantic error types) have the msgids
        # ``validation.<type>``; English answers keep pydantic's own message.
        key = f"validation.{item.get('type')}"
        if lang != "en" and known(key):
            try:
                message = translate(key, lang, **(item.get("ctx") or {}))
            except (KeyError, IndexError):
                pass
        items.append({"field": ".".join(location[1:]) or ".".join(location),
                      "in": location[0] if location else None, "message": message,
                      "type": item.get("type")})
    return items


def _ogc_status(request: Request, status: int) -> int:
    # OGC API - Features answers an invalid parameter with 400 (/req/core/query-param-invalid).
    return 400 if status == 422 and request.url.path.startswith("/ogc") else status


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem", "description": "Un problème (RFC 9457), en français ou en anglais (`Accept-Language`).",
    "type": "object", "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string", "description": "`urn:sifc:problem:<clé>`"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"}, "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "in": {"type": ["string", "null"]}, "message": {"type": "string"},
            "type": {"type": ["string", "null"]}}}},
        "commune": {"type": "string", "description": "Refus `federation.not-owner` : la commune de l'écriture."},
        "owner_node": {"type": ["string", "null"], "description": "Le nœud (pôle) qui gère cette commune."},
        "owner_url": {"type": ["string", "null"], "description": "L'adresse de ce nœud, où écrire."},
    },
}


def _document(app: FastAPI) -> None:
    """Describe the problems in the OpenAPI document: what FastAPI documents is not what is answered.

    FastAPI lists a 422 ``HTTPValidationError`` in ``application/json``; the service answers every
    error as ``application/problem+json`` (400 rather than 422 under ``/ogc``), including the 404s
    of unknown codes and the 400s of values PostgreSQL refuses, which FastAPI cannot know of.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, item in document.get("paths", {}).items():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    invalid = "400" if path.startswith("/ogc") else "422"
                    responses[invalid] = {"description": "Paramètres invalides", "content": content}
                    if invalid != "422":
                        del responses["422"]
                for status, answer in list(responses.items()):
                    if status[0] in "45":
                        responses[status] = {**answer, "content": content}
                responses.setdefault("4XX", {"description": "Requête refusée ou ressource introuvable",
                                             "content": content})
                responses.setdefault("503", {"description": "Base de données injoignable", "content": content})
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app`` and describe them in its OpenAPI document."""
    _document(app)

    @app.exception_handler(SifcError)
    async def _domain(request: Request, exc: SifcError) -> Response:
        lang = language(request)
        title = translate(exc.title_key, lang) if exc.title_key else None
        return problem(_ogc_status(request, exc.status), key=exc.key, detail=exc.message(lang), lang=lang,
                       instance=request.url.path, headers=exc.headers, title=title, extensions=exc.extensions)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        lang = language(request)
        errors = _field_errors(exc, lang)
        summary = "; ".join(translate("validation.field_message", lang, field=e["field"], message=e["message"])
                            for e in errors)
        return problem(_ogc_status(request, 422), key="http.validation",
                       detail=f"{translate('http.validation', lang)} {summary}".strip(),
                       lang=lang, instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        lang = language(request)
        key = {404: "http.not_found", 405: "http.method_not_allowed"}.get(exc.status_code)
        detail = translate(key, lang) if key else str(exc.detail)
        return problem(exc.status_code, key=key or f"http.{exc.status_code}", detail=detail,
                       lang=lang, instance=request.url.path)

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> Response:
        log.error("database unavailable on %s: %s", request.url.path, type(exc.orig).__name__)
        lang = language(request)
        return problem(503, key="http.database_unavailable",
                       detail=translate("http.database_unavailable", lang), lang=lang,
                       instance=request.url.path)

    @app.exception_handler(DataError)
    async def _bad_value(request: Request, exc: DataError) -> Response:
        # SQLSTATE class 22 (data exception): a value the user sent that PostgreSQL cannot hold.
        log.warning("data exception on %s: %s", request.url.path, type(exc.orig).__name__)
        lang = language(request)
        return problem(400, key="http.bad_value", detail=translate("http.bad_value", lang), lang=lang,
                       instance=request.url.path)

    @app.exception_handler(DBAPIError)
    async def _database_refusal(request: Request, exc: DBAPIError) -> Response:
        # The ownership guard (SQLSTATE SF403) refused a write into another node's commune, on a path that
        # did not ask first (sifc.federation.directory.ensure_owned): the same 403 as if it had.
        if directory.refused_commune(exc) is not None:
            refusal = await run_in_threadpool(_not_owner, request, exc)
            return await _domain(request, refusal)
        return await _bug(request, exc)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        lang = language(request)
        return problem(500, key="http.internal", detail=translate("http.internal", lang),
                       lang=lang, instance=request.url.path)


def _not_owner(request: Request, exc: DBAPIError) -> NotOwner:
    """The guard's refusal with the owning node, looked up on a session of its own (the request's was rolled back).

    Without the app's pool (an app whose lifespan has not run) or when the lookup fails, the commune alone.
    """
    commune = directory.refused_commune(exc) or "?"
    factory = getattr(request.app.state, "sessionmaker", None)
    if factory is None:
        return NotOwner(commune=commune)
    try:
        with factory() as session:
            return directory.translate(session, exc) or NotOwner(commune=commune)
    except SQLAlchemyError:
        log.warning("owner of commune %s not looked up", commune)
        return NotOwner(commune=commune)
