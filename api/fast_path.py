"""``GET /parcels/at`` with its plain query answered before FastAPI's routing.

The point lookup is one statement on the read pool, and a busy one: profiles of it under load
(``bench/serve_bench --profile at``) put about a third of the service's own time in the machinery
around that statement — matching the path against the routes before it, solving the dependencies,
validating three query parameters, wrapping the answer — more than the statement's own client work.

For a query that is exactly ``lon=<decimal>&lat=<decimal>`` (in either order, ``crs=EPSG:4326`` or
``EPSG:32628`` optional, nothing else, nothing repeated), :class:`PointLookup` checks the values as
the route's ``Query`` declarations do (finite decimals within ±180 and ±90) and calls the route's own
function, so the statement and the answer are the route's. Anything else — another parameter, a
repeated or percent-encoded value, an exponent, a value out of range, HEAD, a root path — goes on
through FastAPI as before, which answers or refuses (``application/problem+json``) as it always did.

It is the innermost middleware: the security headers, the Host check, the body limit, the NUL guard
and the data age apply to its answers as to every other, and uvicorn's access log writes their line.
A failure of the statement is answered by the app's own exception handlers (503 when the database is
unreachable, …); one they leave to the server's error middleware is raised to it, as from the route.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Literal

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import get_reader
from api.routers import spatial
from sifc.db import Reader

PATH = "/parcels/at"
# A plain decimal, as clients and the web map write coordinates: no sign but minus, no leading zero, no
# exponent, no space, no percent-encoding. Python's float() and pydantic's both round it correctly:
# the same number on either path.
DECIMAL = re.compile(rb"-?(?:0|[1-9][0-9]{0,2})(?:\.[0-9]{1,20})?")
BOUNDS = {b"lon": 180.0, b"lat": 90.0}  # the route's Query(ge=-bound, le=bound)
CrsName = Literal["EPSG:4326", "EPSG:32628"]
CRS: dict[bytes, CrsName] = {b"EPSG:4326": "EPSG:4326", b"EPSG%3A4326": "EPSG:4326",
       b"EPSG:32628": "EPSG:32628", b"EPSG%3A32628": "EPSG:32628"}


def plain_query(query: bytes) -> tuple[float, float, CrsName] | None:
    """``(lon, lat, crs)`` of a plain, valid query of ``GET /parcels/at``; ``None`` for any other query."""
    lon = lat = None
    crs: CrsName | None = None
    for pair in query.split(b"&"):
        name, equals, value = pair.partition(b"=")
        if name in BOUNDS and equals and DECIMAL.fullmatch(value):
            number = float(value)
            if not -BOUNDS[name] <= number <= BOUNDS[name]:
                return None
            if name == b"lon" and lon is None:
                lon = number
            elif name == b"lat" and lat is None:
                lat = number
            else:
                return None  # repeated
        elif name == b"crs" and crs is None and value in CRS:
            crs = CRS[value]
        else:
            return None
    if lon is None or lat is None:
        return None
    return lon, lat, crs or "EPSG:4326"


def _reader(app: Any) -> Reader | None:
    """The reader the route would be given: the app's read pool, or a test's plain override of ``get_reader``.

    ``None`` (FastAPI's path, then) for an override that needs dependencies of its own, or no pool yet.
    """
    override = app.dependency_overrides.get(get_reader)
    if override is None:  # no pool before the lifespan opened it: FastAPI's path answers as it would
        reader: Reader | None = getattr(app.state, "reader", None)
        return reader
    if inspect.iscoroutinefunction(override) or inspect.signature(override).parameters:
        return None
    overridden: Reader = override()
    return overridden


def _handler(app: Any, error: Exception) -> Any:
    """The app's handler of ``error`` as the route's exception middleware finds it (by class, nearest first).

    The handler of ``Exception`` (the 500) belongs to the server's error middleware, outside this one.
    """
    for kind in type(error).__mro__:
        if kind is Exception:
            return None
        if kind in app.exception_handlers:
            return app.exception_handlers[kind]
    return None


class PointLookup:
    """Answer ``GET /parcels/at?lon=…&lat=…`` with the route's function, without FastAPI's routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET"
                and not scope.get("root_path")):
            query = plain_query(scope["query_string"])
            app = scope.get("app")
            reader = _reader(app) if query is not None and app is not None else None
            if query is not None and reader is not None:
                await self._answer(app, reader, query, scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(app: Any, reader: Reader, query: tuple[float, float, CrsName], scope: Scope, receive: Receive,
                      send: Send) -> None:
        lon, lat, crs = query
        try:
            response = await spatial.parcels_at(reader, lon, lat, crs)
        except Exception as error:
            handler = _handler(app, error)
            if handler is None:
                raise
            request = Request(scope, receive)
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, error)
            else:
                response = await run_in_threadpool(handler, request, error)
        await response(scope, receive, send)
