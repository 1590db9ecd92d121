"""The web application for land officers at ``/``, served offline.

Its own files come from ``web/src``; its one third-party asset, MapLibre GL JS, is installed from the npm
registry at build time (``scripts/web.sh``: ``npm ci --prefix web``) and served from
``web/node_modules/maplibre-gl/dist`` under ``/app/vendor/maplibre-gl/`` — never from a CDN, so the map works
on a commune's network without Internet. MapLibre's licence (BSD-3-Clause) is served beside it
(``/app/vendor/maplibre-gl/LICENSE.txt``). The API documentation (Swagger UI at ``/docs``, ReDoc at ``/redoc``)
is served the same way, from ``swagger-ui-dist`` and ``redoc``, with start-up scripts of its own in
``web/src/docs`` (the Content-Security-Policy forbids inline scripts: docs/security-headers.md).

Every route is explicit (nothing catches all paths, so no API route is shadowed), the router is included
last, and the routes stay out of the OpenAPI document (``include_in_schema=False``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse

from api.deps import SettingsDep
from sifc.errors import NotFound
from sifc.i18n import LANGUAGES, section

router = APIRouter(include_in_schema=False)
WEB = Path(__file__).resolve().parents[2] / "web"
SOURCE = WEB / "src"
MAPLIBRE = WEB / "node_modules" / "maplibre-gl" / "dist"
DOCS = SOURCE / "docs"
# The API documentation's assets (Swagger UI at /docs, ReDoc at /redoc), from the npm registry too
# (web/package.json): only the files the pages load, and each package's licence.
SWAGGER_UI = WEB / "node_modules" / "swagger-ui-dist"
REDOC = WEB / "node_modules" / "redoc"
VENDORED = {
    "swagger-ui": {"swagger-ui-bundle.js": SWAGGER_UI, "swagger-ui-bundle.js.map": SWAGGER_UI,
                   "swagger-ui.css": SWAGGER_UI, "swagger-ui.css.map": SWAGGER_UI,
                   "favicon-32x32.png": SWAGGER_UI, "favicon-16x16.png": SWAGGER_UI, "oauth2-redirect.js": SWAGGER_UI,
                   "LICENSE.txt": SWAGGER_UI / "LICENSE"},
    "redoc": {"redoc.standalone.js": REDOC / "bundles", "redoc.standalone.js.map": REDOC / "bundles",
              "LICENSE.txt": REDOC / "LICENSE"},
}
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".map": "application/json", ".txt": "text/plain; charset=utf-8",
               ".svg": "image/svg+xml", ".png": "image/png"}
NO_CACHE = {"Cache-Control": "no-cache"}  # revalidated each time: a new release is seen at once


def _file(folder: Path, name: str) -> FileResponse:
    """``folder/name`` if it is a served file inside ``folder`` (no ``..``, no other suffix), else 404."""
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents or path.suffix not in MEDIA_TYPES or not path.is_file():
        raise NotFound()
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=NO_CACHE)


@router.get("/")
def index() -> FileResponse:
    """The application's single page."""
    return _file(SOURCE, "index.html")


@router.get("/sw.js")
def service_worker() -> FileResponse:
    """The map's service worker (``web/src/sw.js``), at the root so that its scope is the whole application.

    It keeps the application and the public map data viewed (tiles, public GeoJSON) for a read-only map when
    the service cannot be reached (docs/web.md, « Hors ligne »); revalidated at each visit like the other files.
    """
    return _file(SOURCE, "sw.js")


@router.get("/app/vendor/maplibre-gl/{name}")
def maplibre(name: str) -> FileResponse:
    """MapLibre GL JS (script, style sheet, source maps) and its LICENSE.txt, as installed by npm."""
    return _file(MAPLIBRE, name)


@router.get("/app/vendor/{package}/{name}")
def vendored(package: str, name: str) -> FileResponse:
    """Swagger UI's and ReDoc's files (and licences) as installed by npm; nothing else of their packages."""
    where = VENDORED.get(package, {}).get(name)
    if where is None:
        raise NotFound()
    if where.name == "LICENSE":
        if not where.is_file():
            raise NotFound()
        return FileResponse(where, media_type=MEDIA_TYPES[".txt"], headers=NO_CACHE)
    return _file(where, name)


@router.get("/docs")
def swagger_ui() -> FileResponse:
    """The interactive documentation of the API (Swagger UI), every file from the service."""
    return _file(DOCS, "swagger.html")


@router.get("/docs/oauth2-redirect")
def swagger_ui_oauth2_redirect() -> FileResponse:
    """Swagger UI's OAuth2 redirect page (its script is a file of its own: no inline script)."""
    return _file(SWAGGER_UI, "oauth2-redirect.html")


@router.get("/docs/oauth2-redirect.js")
def swagger_ui_oauth2_redirect_script() -> FileResponse:
    """The script of the redirect page, which names it relatively."""
    return _file(SWAGGER_UI, "oauth2-redirect.js")


@router.get("/redoc")
def redoc() -> FileResponse:
    """The reference documentation of the API (ReDoc), every file from the service."""
    return _file(DOCS, "redoc.html")


@router.get("/app/docs/{name}")
def docs_asset(name: str) -> FileResponse:
    """The documentation pages' own start-up scripts (no inline script: the policy forbids them)."""
    return _file(DOCS, name)


@router.get("/app/pages/{name}")
def page(name: str) -> FileResponse:
    """The application's other pages (commission, régie, suivi…) and their scripts, from ``web/src/pages``.

    Each page is one HTML file with its own script (no inline script: the policy forbids them), sharing
    ``common.js`` (sign-in token, language, API calls) with the others.
    """
    return _file(SOURCE / "pages", name)


@router.get("/app/config.json")
def config(settings: SettingsDep) -> JSONResponse:
    """What the page needs from the service's settings: the optional base layer (``SIFC_BASEMAP_URL``)."""
    basemap = None
    if settings.basemap_url:
        basemap = {"tiles": [settings.basemap_url], "attribution": settings.basemap_attribution,
                   "maxzoom": settings.basemap_max_zoom}
    return JSONResponse({"basemap": basemap}, headers=NO_CACHE)


@router.get("/app/i18n/{lang}.json")
def strings(lang: str) -> JSONResponse:
    """The map's strings in ``lang``, from the service's message catalogue (the ``web.`` msgids of
    ``sifc/locale/<lang>/LC_MESSAGES/sifc.po``: docs/translation.md)."""
    if lang not in LANGUAGES:
        raise NotFound()
    return JSONResponse(section("web.", lang), headers=NO_CACHE)


@router.get("/app/{name}")
def asset(name: str) -> FileResponse:
    """The application's own files (``app.js``, ``app.css``…)."""
    return _file(SOURCE, name)
