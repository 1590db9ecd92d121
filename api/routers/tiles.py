"""Vector tiles (MVT) on the WebMercatorQuad grid and their TileJSON."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import Response

from api import tilejson as tilejson_document
from api.deps import ReaderDep, SessionDep, SettingsDep
from api.preconditions import content_etag, not_modified
from api.responses import BINARY_SCHEMA, described
from api.schemas.tiles import TileJSON, TileJSONDocument, TileLayers, TileLayersOut
from sifc import tiles

router = APIRouter(prefix="/tiles", tags=["Tuiles vectorielles"])
Collection = Annotated[str, Path(max_length=64, description="poles, regions, departments, arrondissements, "
                                                            "communes ou parcels")]
Properties = Annotated[str | None, Query(max_length=1000, description=(
    "Attributs à inclure, séparés par des virgules (tous les attributs publics si absent, aucun si vide)."))]
TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {tiles.MEDIA_TYPE: {"schema": BINARY_SCHEMA}}, "description": "Tuile Mapbox Vector Tile 2.1"},
    204: {"description": "Tuile vide (rien dans la tuile, ou niveau de zoom sous le minimum de la couche)"},
    304: {"description": "Inchangée depuis l'ETag donné dans If-None-Match"},
}


@router.get("", responses=described(TileLayersOut), summary="Couches tuilées")
def index(settings: SettingsDep) -> TileLayers:
    """Les collections servies en tuiles vectorielles, avec leur TileJSON."""
    base = settings.public_base  # SIFC_PUBLIC_URL: never the Host a client sent
    return {"tileMatrixSet": "WebMercatorQuad", "layers": [
        {"id": spec.id, "title": spec.title, "minzoom": spec.minzoom, "maxzoom": spec.maxzoom,
         "tilejson": tilejson_document.tilejson_url(base, spec), "tiles": tilejson_document.tile_url(base, spec)}
        for spec in tiles.LAYERS.values()]}


@router.get("/{collection}/tilejson.json", responses=described(TileJSON), summary="TileJSON 3.0.0 d'une couche")
def tilejson(collection: Collection, session: SessionDep, settings: SettingsDep,
             properties: Properties = None) -> TileJSONDocument:
    """Modèle d'URL des tuiles, zooms, emprise (WGS 84) et attributs de la couche ; `properties` est reporté
    dans le modèle d'URL."""
    names = tiles.properties(collection, properties)
    query = "" if properties is None else urlencode({"properties": properties})
    return tilejson_document.document(tiles.layer(collection), bounds=tiles.bounds(session, collection), names=names,
                                      base=settings.public_base, query=query)


@router.get("/{collection}/{z}/{x}/{y}.mvt", response_class=Response, responses=TILE_RESPONSES,
            summary="Une tuile vectorielle (WebMercatorQuad)")
async def tile(collection: Collection, z: int, x: int, y: int, reader: ReaderDep, settings: SettingsDep,
               properties: Properties = None,
               if_none_match: Annotated[str | None, Header(max_length=2000)] = None) -> Response:
    """Tuile `z/x/y` de la grille WebMercatorQuad (EPSG:3857), calque nommé comme la collection ;
    204 si elle est vide ; `ETag` et 304 sur `If-None-Match`."""
    # Hot path: the read pool on the event loop, no session, no thread (bench/serve_bench).
    statement = tiles.tile_statement(collection, z=z, x=x, y=y, names=tiles.properties(collection, properties))
    body = tiles.tile_bytes((await reader.row(statement))[0]) if statement is not None else b""
    tag = content_etag(body)
    headers = {"ETag": tag, "Cache-Control": settings.tile_cache_control}
    if not_modified(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    if not body:
        return Response(status_code=204, headers=headers)
    return Response(body, media_type=tiles.MEDIA_TYPE, headers=headers)
