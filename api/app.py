"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import access_log, openapi_links, problems
from api.fast_path import PointLookup
from api.middleware import BodyLimit, DataAge, PublicHost, RefuseNul, SecurityHeaders, document_body_limits
from api.routers import (
    admin,
    auth,
    bornes,
    campaigns,
    dashboards,
    disputes,
    document_jobs,
    documents,
    exports,
    fees,
    field,
    field_returns,
    health,
    imports,
    localites,
    mutations,
    ogc,
    parcels,
    rules,
    sessions,
    spatial,
    tenure,
    territories,
    tiles,
    tracking,
    web,
)
from sifc import __version__
from sifc.db import PoolReader, make_engine, make_read_pool, make_sessionmaker
from sifc.settings import Settings

DESCRIPTION = """
Système d'Information Foncière Communale (programme E-Territoire, Sénégal).

Référentiel territorial national (pôles, régions, départements, arrondissements, communes)
et cadastre communal. Géométries servies en GeoJSON WGS 84 (RFC 7946) par défaut, stockées
en UTM 28N (EPSG:32628). Erreurs au format `application/problem+json` (RFC 9457), en français
ou en anglais (`Accept-Language`).
"""


def create_app(settings: Settings) -> FastAPI:
    """Build the FastAPI app for ``settings``; the pool opens in the lifespan, not here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.db_url, pool_size=settings.pool_size,
                             application_name="sifc-api")
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        # The hot read-only questions (GET /parcels/at…) run on an async pool of their own, on the streaming
        # replica when SIFC_READ_DATABASE_URL names one: they tolerate its lag; writes stay on the engine.
        read_pool = make_read_pool(settings.read_url, size=settings.pool_size, application_name="sifc-api",
                                   timeout=settings.read_timeout_s)
        await read_pool.open(wait=False)
        app.state.reader = PoolReader(read_pool)
        try:
            yield
        finally:
            await read_pool.close()
            engine.dispose()

    # /docs and /redoc are pages of the web router: their assets come from the service, not a CDN.
    app = FastAPI(title="SIFC", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.settings = settings
    problems.install(app)
    access_log.install()

    # The last added runs first: headers on every answer, then the Host, then the body's size; at the
    # national node, the age of each pole's data on every read; innermost, the point lookup's plain
    # queries answered without the routing (api.fast_path).
    app.add_middleware(PointLookup)
    app.add_middleware(DataAge)
    app.add_middleware(RefuseNul)
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(PublicHost, settings=settings)
    app.add_middleware(SecurityHeaders, settings=settings)

    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(territories.router)
    app.include_router(spatial.router)  # before /parcels/{parcel_id}
    app.include_router(mutations.router)  # POST /parcels/merge
    app.include_router(parcels.router)
    app.include_router(bornes.router)
    app.include_router(localites.router)
    app.include_router(tenure.router)
    app.include_router(sessions.router)
    app.include_router(imports.router)
    app.include_router(field.router)
    app.include_router(field_returns.router)
    app.include_router(ogc.router)
    app.include_router(tiles.router)
    app.include_router(exports.router)
    app.include_router(documents.router)
    app.include_router(dashboards.router)
    app.include_router(disputes.router)
    app.include_router(document_jobs.router)
    app.include_router(tracking.router)
    app.include_router(campaigns.router)
    app.include_router(fees.router)
    app.include_router(rules.router)
    app.include_router(web.router)  # last: the web application at /
    document_body_limits(app, settings)  # a 413 on every request body, with its limit
    openapi_links.install(app)  # links between operations and request examples, in one table
    return app
