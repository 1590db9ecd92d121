"""ASGI middleware of the app: plain ASGI callables, no per-request task or stream.

Starlette's ``@app.middleware("http")`` (``BaseHTTPMiddleware``) runs every request through a
task group and a memory stream; a plain ASGI middleware costs one function call.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from sifc.i18n import translate
from sifc.settings import Settings

log = logging.getLogger("sifc.api")


class RefuseNul:
    """Refuse a path or query string holding NUL (raw or ``%00``) with a 400 problem.

    PostgreSQL text cannot hold NUL: refuse it at the door rather than fail in the database.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = (scope.get("root_path", "") + scope["path"] + "?"
                   + scope.get("query_string", b"").decode("latin-1")).lower()
            if "%00" in raw or "\x00" in raw:
                request = Request(scope)
                lang = problems.language(request)
                response = problems.problem(400, key="http.nul_character",
                                            detail=translate("http.nul_character", lang), lang=lang,
                                            instance=request.url.path)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _refusal(scope: Scope, status: int, key: str, **params: object) -> Response:
    request = Request(scope)
    lang = problems.language(request)
    return problems.problem(status, key=key, detail=translate(key, lang, **params), lang=lang,
                            instance=request.url.path)


def host_name(host: str) -> str:
    """The name of a Host header without its port (``[::1]:8000`` → ``::1``), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class PublicHost:
    """Refuse an unknown ``Host`` (400); make every URL the app builds start with the public base URL.

    ``request.base_url``, ``request.url`` and ``url_for`` are built from the scope's scheme and its Host
    header: a client choosing ``Host: evil.example`` would choose the links of the OGC pages, the
    TileJSON, the import ``Location`` and the verification URL printed on documents. The Host is first
    checked against ``settings.public_hosts`` (DNS rebinding is refused there), then the scope's scheme,
    server and Host are replaced by those of ``settings.public_base``, so no route can echo another.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        public = urlsplit(settings.public_base)
        self.scheme = public.scheme
        self.netloc = public.netloc.encode("latin-1")
        self.server = (public.hostname or "", public.port or (443 if public.scheme == "https" else 80))
        self.public = settings.public_base
        self.allowed = settings.public_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hosts = [value.decode("latin-1") for name, value in scope["headers"] if name == b"host"]
        if len(hosts) > 1 or (hosts and host_name(hosts[0]) not in self.allowed):
            await _refusal(scope, 400, "http.host_not_allowed", public=self.public)(scope, receive, send)
            return
        headers = [(name, value) for name, value in scope["headers"] if name != b"host"]
        scope = {**scope, "scheme": self.scheme, "server": self.server,
                 "headers": [(b"host", self.netloc), *headers]}
        await self.app(scope, receive, send)


class BodyTooLarge(HTTPException):
    """Raised by the counting ``receive`` of :class:`BodyLimit` when a streamed body passes its limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body larger than {limit} bytes")
        self.limit = limit


# Bodies that are files, with their own limits; a multipart envelope around the file adds a little.
MULTIPART_ENVELOPE = 64 * 1024
UPLOAD_ROUTES = re.compile(r"^/imports/?$")
DOCUMENT_ROUTES = re.compile(r"^/(sources/[^/]+/files|documents/verify)/?$")


def body_limit(settings: Settings, path: str) -> int:
    """The largest body ``path`` accepts: uploads, scanned documents, else a JSON or form body."""
    if UPLOAD_ROUTES.match(path):  # the route itself holds the file to max_upload_bytes
        return settings.max_upload_bytes + MULTIPART_ENVELOPE
    if DOCUMENT_ROUTES.match(path):
        return settings.max_document_bytes + MULTIPART_ENVELOPE
    return settings.max_json_bytes


def document_body_limits(app: Any, settings: Settings) -> None:
    """Name each operation's body limit in the OpenAPI document: a 413 on every operation that takes a body."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document: dict[str, Any] = generate()
        problem = {problems.PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, item in document.get("paths", {}).items():
            for method, operation in item.items():
                if isinstance(operation, dict) and ("requestBody" in operation or method in ("post", "put", "patch")):
                    operation.setdefault("responses", {})["413"] = {
                        "description": f"Corps de requête de plus de {body_limit(settings, path)} octets, refusé "
                                       "avant d'être lu (docs/limits.md).", "content": problem}
        return document

    app.openapi = openapi


class BodyLimit:
    """Refuse a body over its route's limit with 413 before anything parses it.

    A ``Content-Length`` over the limit is refused before a byte is read; a body without one
    (``Transfer-Encoding: chunked``) is counted as it arrives, and refused as soon as the count
    passes the limit, whatever the route was doing with it.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(self.settings, scope["path"])
        lengths = [value for name, value in scope["headers"] if name == b"content-length"]
        try:
            declared = int(lengths[0]) if lengths else 0
        except ValueError:
            declared = limit + 1
        if declared > limit:
            await _refusal(scope, 413, "http.body_too_large", limit=limit)(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the route answered once the body was cut: the 413 instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _refusal(scope, 413, "http.body_too_large", limit=limit)(scope, receive, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
            if not started:
                await _refusal(scope, 413, "http.body_too_large", limit=limit)(scope, receive, send)


def basemap_origin(url: str | None) -> str | None:
    """The origin of the base map's tile URL template (``{s}`` in the host: any sub-domain)."""
    if not url:
        return None
    parts = urlsplit(re.sub(r"\{[^}]*\}", "x", url))
    host = parts.netloc
    if "{" in urlsplit(url).netloc.split(".", 1)[0]:
        host = "*." + host.split(".", 1)[1]
    return f"{parts.scheme}://{host}"


def content_security_policy(settings: Settings, *, inline_styles: bool = False) -> str:
    """The Content-Security-Policy of every answer (written out in docs/security-headers.md).

    Everything comes from the service itself: MapLibre, Swagger UI and ReDoc are served from
    ``/app/vendor``, no script is inline. MapLibre runs its workers from ``blob:`` URLs and draws
    images from ``data:`` and ``blob:``; the optional base map (``SIFC_BASEMAP_URL``) is the one
    other origin, for its tiles. ``inline_styles``: ReDoc's styled-components write ``<style>``
    elements, which only its page allows.
    """
    extra = basemap_origin(settings.basemap_url)
    tiles = f" {extra}" if extra else ""
    styles = " 'unsafe-inline'" if inline_styles else ""
    return ("default-src 'self'; script-src 'self'; "
            f"style-src 'self'{styles}; img-src 'self' data: blob:{tiles}; connect-src 'self'{tiles}; "
            "font-src 'self' data:; worker-src 'self' blob:; child-src blob:; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


# Paths whose page needs inline styles (ReDoc), and no other relaxation.
INLINE_STYLE_PATHS = frozenset({"/redoc"})


class SecurityHeaders:
    """Add the security headers to every answer (errors included) unless the route set its own."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        common = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                  (b"referrer-policy", b"same-origin"), (b"cross-origin-opener-policy", b"same-origin")]
        self.headers = [(b"content-security-policy", content_security_policy(settings).encode()), *common]
        self.relaxed = [(b"content-security-policy",
                         content_security_policy(settings, inline_styles=True).encode()), *common]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = self.relaxed if scope["path"].rstrip("/") in INLINE_STYLE_PATHS else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *(pair for pair in added if pair[0] not in present)]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


DATA_AGE_HEADER = b"x-sifc-data-age"
DATA_AGE_TTL_S = 2.0  # the heartbeats come every 10 s: a read of the directory per 2 s at most


def data_age_value(ages: dict[str, float | None], elapsed: float = 0.0) -> str:
    """``X-SIFC-Data-Age``'s value: ``<node_id>=<seconds>`` per pole, ``unknown`` before its first heartbeat."""
    return ", ".join(f"{node}={'unknown' if age is None else int(age + elapsed)}" for node, age in sorted(ages.items()))


class DataAge:
    """At the national node, every GET answer says how old each pole's data is (``X-SIFC-Data-Age``, ADR 0004).

    The national node reads copies that each pole's subscription keeps up to date: a reader of its
    parcels, OGC items, tiles, exports or dashboards is told, per pole, the age of the latest
    heartbeat that pole's copy holds. The role and the ages are read at most every
    :data:`DATA_AGE_TTL_S` seconds on a session of their own (the age then grows with the time
    since); elsewhere (a single node, a pole) nothing is added, and a failed read adds nothing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._read_at = -DATA_AGE_TTL_S
        self._ages: dict[str, float | None] | None = None
        self._reading = False  # one read in flight: the requests meanwhile use the ages read before

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        value = await self._value(scope.get("app"))
        if value is None:
            await self.app(scope, receive, send)
            return
        header = (DATA_AGE_HEADER, value.encode("latin-1"))

        async def send_with_age(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        await self.app(scope, receive, send_with_age)

    async def _value(self, app: Any) -> str | None:
        now = time.monotonic()
        if now - self._read_at >= DATA_AGE_TTL_S and not self._reading:
            factory = getattr(getattr(app, "state", None), "sessionmaker", None)
            self._reading = True
            try:
                self._ages = await run_in_threadpool(_national_ages, factory) if factory is not None else None
            finally:
                self._reading = False
            self._read_at = now
        if not self._ages:  # not the national node, or no pole in its directory yet
            return None
        return data_age_value(self._ages, now - self._read_at)


def _national_ages(factory: Any) -> dict[str, float | None] | None:
    """Each pole's data age at the national node (every pole of the directory); ``None`` on any other node."""
    from sifc.federation import directory

    try:
        with factory() as session:
            if not directory.this_node(session).national:
                return None
            return {feed.node_id: feed.data_age_s for feed in directory.pole_feeds(session)}
    except SQLAlchemyError:
        log.warning("data age of the poles not read")
        return None
