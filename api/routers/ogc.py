"""OGC API - Features at ``/ogc``: Part 1 core, Part 2 CRS, Part 3 CQL2 filtering."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.deps import ReaderDep, SessionDep
from api.ogc import documents, openapi, paging
from api.responses import GeoJSONResponse, described, geojson
from api.schemas.features import OgcFeature, OgcFeatureCollection
from api.schemas.ogc import (
    OgcCollection,
    OgcCollectionOut,
    OgcCollections,
    OgcCollectionsOut,
    OgcConformance,
    OgcConformanceOut,
    OgcFunctions,
    OgcFunctionsOut,
    OgcLanding,
    OgcLandingOut,
)
from api.schemas.records import JSON_SCHEMA, OPENAPI_30_SCHEMA
from sifc import ogc, ogc_filter
from sifc.settings import Settings

router = APIRouter(prefix="/ogc", tags=["OGC API - Features"])
OPENAPI_30 = "application/vnd.oai.openapi+json;version=3.0"
CollectionId = Annotated[str, Path(max_length=64)]
CrsParam = Annotated[str | None, Query(max_length=200, description="SCR servi (URI) : CRS84 par défaut, EPSG:4326 "
                                                                  "(latitude d'abord), EPSG:32628, EPSG:3857.")]

PropertiesParam = Annotated[str | None, Query(max_length=2000, description="Propriétés à renvoyer, séparées par "
                                                                          "des virgules (toutes par défaut).")]


def _base(request: Request) -> str:
    """The public base URL (``SIFC_PUBLIC_URL``): links never echo the Host a client sent."""
    settings: Settings = request.app.state.settings
    return settings.public_base


Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def _get(path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """A GET at ``path`` and at ``path/``, both answered (no redirect), the second not in the OpenAPI document.

    The abstract test suite of OGC API - Features Part 1 requests ``{root}/`` and wants 200 (/ats/core/root-op):
    a client that does not follow redirects must find every resource with or without its trailing slash.
    """

    def register(endpoint: Endpoint) -> Endpoint:
        router.get(f"{path}/", include_in_schema=False, **options)(endpoint)
        return router.get(path, **options)(endpoint)

    return register


@_get("", responses=described(OgcLandingOut), summary="Page d'accueil OGC API - Features")
def landing(request: Request) -> OgcLanding:
    """Liens vers la définition de l'API, la conformité et les collections."""
    return documents.landing(_base(request))


@_get("/api", summary="Définition OpenAPI 3.0 de l'API OGC", response_class=Response,
            responses={200: {"content": {OPENAPI_30: {"schema": OPENAPI_30_SCHEMA}}}})
def api_definition(request: Request) -> Response:
    """Le document OpenAPI 3.0 de `/ogc` (paramètres `limit`, filtres par propriété de chaque collection)."""
    return Response(orjson.dumps(openapi.document(_base(request))), media_type=OPENAPI_30)


@_get("/conformance", responses=described(OgcConformanceOut), summary="Classes de conformité")
def conformance() -> OgcConformance:
    """Les classes de conformité déclarées."""
    return {"conformsTo": documents.CONFORMANCE}


@_get("/functions", responses=described(OgcFunctionsOut), summary="Fonctions CQL2")
def functions() -> OgcFunctions:
    """Les fonctions qu'un filtre CQL2 peut appeler (S_DWITHIN)."""
    return documents.FUNCTIONS


@_get("/collections", responses=described(OgcCollectionsOut), summary="Collections")
def collections(request: Request, session: SessionDep) -> OgcCollections:
    """Pôles, régions, départements, arrondissements, communes et parcelles en vigueur."""
    return documents.collections(session, _base(request))


@_get("/collections/{collection_id}", responses=described(OgcCollectionOut), summary="Une collection")
def collection(collection_id: CollectionId, request: Request, session: SessionDep) -> OgcCollection:
    """Description et emprise (CRS84) d'une collection."""
    return documents.collection(session, collection_id, _base(request))


@_get("/collections/{collection_id}/queryables", summary="Propriétés interrogeables (CQL2)",
            response_class=Response, responses={200: {"content": {"application/schema+json": {"schema": JSON_SCHEMA}}}})
def queryables(collection_id: CollectionId, request: Request) -> Response:
    """Le schéma JSON des propriétés qu'un filtre CQL2 peut nommer."""
    body = orjson.dumps(documents.queryables(collection_id, _base(request)))
    return Response(body, media_type="application/schema+json")


@_get("/collections/{collection_id}/sortables", summary="Propriétés triables (sortby)",
            response_class=Response, responses={200: {"content": {"application/schema+json": {"schema": JSON_SCHEMA}}}})
def sortables(collection_id: CollectionId, request: Request) -> Response:
    """Le schéma JSON des propriétés que `sortby` peut nommer."""
    body = orjson.dumps(documents.sortables(collection_id, _base(request)))
    return Response(body, media_type="application/schema+json")


@_get("/collections/{collection_id}/items", response_model=OgcFeatureCollection, response_class=GeoJSONResponse,
            summary="Entités d'une collection")
async def items(collection_id: CollectionId, request: Request, reader: ReaderDep,
          limit: Annotated[int, Query(ge=1, description=f"Au plus {ogc.MAX_LIMIT} (au-delà : ramené à ce maximum).")]
          = ogc.DEFAULT_LIMIT,
          offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
          bbox: Annotated[str | None, Query(max_length=200, description=(
              "minx,miny,maxx,maxy, ou minx,miny,minz,maxx,maxy,maxz (z ignoré), dans `bbox-crs`"))]
          = None, bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=200)] = None,
          crs: CrsParam = None,
          filter: Annotated[str | None, Query(max_length=20_000, description="Filtre CQL2 (Part 3).")] = None,
          filter_lang: Annotated[Literal["cql2-text", "cql2-json", "cql-text"], Query(
              alias="filter-lang", description="`cql-text` : l'ancien nom (brouillon) qu'envoie GDAL, lu comme ECQL.")]
          = "cql2-text",
          filter_crs: Annotated[str | None, Query(alias="filter-crs", max_length=200)] = None,
          properties: PropertiesParam = None,
          sortby: Annotated[str | None, Query(max_length=500, description="Tri : `+nom,-area_m2` "
                                                                          "(voir `sortables`).")] = None) -> Response:
    """GeoJSON (CRS84 par défaut, `crs` sinon) ; liens `next` et `prev` ; `numberMatched` quand le compte exact
    est bon marché. Toute propriété interrogeable peut aussi servir de filtre d'égalité (`?land_use=habitation`)."""
    served = ogc.check_crs(crs)
    query = dict(request.query_params)
    box = ogc.parse_bbox(bbox, ogc.check_crs(bbox_crs)) if bbox is not None else None
    cql = ogc_filter.parse(filter, filter_lang) if filter is not None else None
    page = ogc.items_page(collection_id, limit=limit, offset=offset, bbox=box, crs=served, cql=cql,
                          filter_crs=ogc.check_crs(filter_crs),
                          properties=ogc.select_properties(collection_id, properties),
                          sortby=ogc.parse_sortby(collection_id, sortby),
                          equals=ogc.property_filters(collection_id, query))
    # Hot path: the read pool on the event loop, no session, no thread (bench/serve_bench).
    matched = (await reader.row(page.count))[0] if page.count is not None else None
    body = paging.page_body(page, await reader.row(page.features), matched, base=_base(request), query=query)
    return geojson(body, headers={"Content-Crs": f"<{served}>"})


@_get("/collections/{collection_id}/items/{feature_id}", response_model=OgcFeature,
            response_class=GeoJSONResponse, summary="Une entité")
def item(collection_id: CollectionId, feature_id: Annotated[str, Path(max_length=100)], request: Request,
         session: SessionDep, crs: CrsParam = None, properties: PropertiesParam = None) -> Response:
    """Une entité (code du territoire, ou identifiant de la parcelle)."""
    served = ogc.check_crs(crs)
    feature = ogc.feature(session, collection_id, feature_id, crs=served,
                          properties=ogc.select_properties(collection_id, properties))
    body = paging.feature_body(feature, base=_base(request), collection_id=collection_id, feature_id=feature_id)
    return geojson(body, headers={"Content-Crs": f"<{served}>"})
