"""ASGI middleware of the app: plain ASGI callables, no per-request task or stream.

Starlette's ``@app.middleware("http")`` (``BaseHTTPMiddleware``) runs every request through a
task group and a memory stream; a plain ASGI middleware costs one function call.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api import problems
from sifc.i18n import translate


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
