"""Exports of current parcels and bornes: GeoJSON, GeoPackage, zipped Shapefile, CSV (WKT), FlatGeobuf.

The selection is checked first, so a bad commune, bbox or filter is a 4xx problem before
any byte is sent. GeoJSON and CSV are then streamed from a server-side cursor; the other
formats are written batch by batch to a temporary file, sent, and deleted. Either way the
session lives until the response is sent (``scope="request"``) and memory does not grow
with the export.
"""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from api.deps import get_session
from api.limits import rate_limited
from api.responses import BINARY_SCHEMA, GeoJSONResponse
from api.schemas.features import BorneExportCollection, ExportCollection
from sifc import exports

router = APIRouter(tags=["Exports"])

# The session stays open until the streamed body is sent (the default "function" scope would close it first).
StreamSessionDep = Annotated[Session, Depends(get_session, scope="request")]
FormatParam = Annotated[Literal["geojson", "gpkg", "shp", "csv", "fgb"], Query(
    description="geojson (WGS 84 par défaut), gpkg, shp (zip : .shp, .shx, .dbf, .prj, .cpg, LISEZMOI.txt), "
                "csv (colonne wkt) ou fgb ; ces quatre derniers en EPSG:32628 par défaut.")]
CrsParam = Annotated[Literal["EPSG:4326", "EPSG:32628"] | None, Query(
    description="SCR du fichier (par défaut : EPSG:4326 pour GeoJSON, EPSG:32628 pour les autres formats).")]
BboxParam = Annotated[str | None, Query(max_length=200, description="minx,miny,maxx,maxy (dans `bbox-crs`)")]
BboxCrsParam = Annotated[Literal["EPSG:4326", "EPSG:32628"], Query(
    alias="bbox-crs", description="SCR de `bbox` (EPSG:4326 : longitude d'abord).")]
FilterParam = Annotated[str | None, Query(max_length=20_000, description="Filtre CQL2 sur les propriétés "
                                          "interrogeables de la couche (/ogc/collections/parcels/queryables, "
                                          "/ogc/collections/bornes/queryables).")]
FilterLangParam = Annotated[Literal["cql2-text", "cql2-json"], Query(alias="filter-lang")]
FilterCrsParam = Annotated[Literal["EPSG:4326", "EPSG:32628"], Query(alias="filter-crs")]
CommuneParam = Annotated[str | None, Query(max_length=100, description="Code, code national ou nom.")]


def _responses(layer: exports.ExportLayer) -> dict[int | str, dict[str, Any]]:
    """The documented answers of an export of ``layer``: GeoJSON by the route's response model, the rest files."""
    csv_columns = ", ".join([c.name for c in layer.columns] + ["wkt"])
    return {200: {
        "description": f"Le fichier (Content-Disposition : {layer.name}_<commune>_<date>.<ext>)",
        "content": {f.media_type.split(";")[0]: {"schema": {**BINARY_SCHEMA, "description": (
            f"{f.title} ; colonnes : {csv_columns}" if f.name == "csv" else f.title)}}
            for f in exports.FORMATS.values() if f.name != "geojson"}},
        429: {"description": "Trop d'exports : réessayez après `Retry-After` secondes."}}


EXPORT_RESPONSES = _responses(exports.PARCELS)


RateLimited = rate_limited("export", lambda settings: settings.export_rate_per_minute, "export.rate_limited")


def _send(session: Session, selection: exports.Selection, fmt_name: str, crs: str | None,
          layer: exports.ExportLayer = exports.PARCELS) -> Response:
    fmt = exports.get_format(fmt_name)
    srid = exports.output_srid(fmt, crs)
    name = exports.filename(fmt, selection, layer=layer)
    headers = {"Content-Disposition": f'attachment; filename="{name}"',
               "Content-Crs": f"<http://www.opengis.net/def/crs/EPSG/0/{srid}>"}
    if fmt.streamed:
        chunks = (exports.iter_geojson if fmt.name == "geojson" else exports.iter_csv)(session, selection, srid=srid,
                                                                                       layer=layer)
        return StreamingResponse(chunks, media_type=fmt.media_type, headers=headers)
    folder = FilePath(tempfile.mkdtemp(prefix="sifc-export-"))
    target = folder / name
    try:
        exports.write_layer(session, selection, fmt, target, srid=srid, layer=layer)
    except BaseException:
        _remove(folder)
        raise
    return FileResponse(target, media_type=fmt.media_type, headers=headers,
                        background=BackgroundTask(_remove, folder))


def _remove(folder: FilePath) -> None:
    for part in folder.iterdir():
        part.unlink(missing_ok=True)
    folder.rmdir()


def _selection(layer: exports.ExportLayer) -> Any:
    """The dependency that reads and checks a selection of ``layer`` (commune, bbox, CQL2 filter) from the query."""
    def selected(session: StreamSessionDep, commune: CommuneParam = None, bbox: BboxParam = None,
                 bbox_crs: BboxCrsParam = "EPSG:4326", filter: FilterParam = None,
                 filter_lang: FilterLangParam = "cql2-text",
                 filter_crs: FilterCrsParam = "EPSG:4326") -> exports.Selection:
        return exports.select(session, commune=commune, bbox=bbox, bbox_crs=bbox_crs, cql=filter,
                              filter_lang=filter_lang, filter_crs=filter_crs, layer=layer)
    return Depends(selected)


@router.get("/exports/parcels", response_model=ExportCollection, response_class=GeoJSONResponse,
            responses=EXPORT_RESPONSES, dependencies=[RateLimited],
            summary="Exporter des parcelles en vigueur (commune, emprise, filtre CQL2)")
def export_parcels(session: StreamSessionDep,
                   selection: Annotated[exports.Selection, _selection(exports.PARCELS)],
                   format: FormatParam = "geojson", crs: CrsParam = None) -> Response:
    """Toutes les parcelles en vigueur qui répondent à tous les critères donnés (aucun : tout le cadastre)."""
    return _send(session, selection, format, crs)


@router.get("/exports/bornes", response_model=BorneExportCollection, response_class=GeoJSONResponse,
            responses=_responses(exports.BORNES), dependencies=[RateLimited],
            summary="Exporter des bornes en vigueur (commune, emprise, filtre CQL2)")
def export_bornes(session: StreamSessionDep, selection: Annotated[exports.Selection, _selection(exports.BORNES)],
                  format: FormatParam = "geojson", crs: CrsParam = None) -> Response:
    """Les bornes en vigueur (points levés, champs publics : ni auteur ni motif) qui répondent à tous les critères."""
    return _send(session, selection, format, crs, exports.BORNES)


@router.get("/communes/{code}/parcels/export", response_model=ExportCollection, response_class=GeoJSONResponse,
            responses=EXPORT_RESPONSES,
            dependencies=[RateLimited],
            summary="Exporter les parcelles en vigueur d'une commune")
def export_commune_parcels(code: Annotated[str, Path(max_length=100)], session: StreamSessionDep,
                           format: FormatParam = "geojson", filter: FilterParam = None,
                           filter_lang: FilterLangParam = "cql2-text", crs: CrsParam = None) -> Response:
    """Les parcelles en vigueur de la commune (code, code national ou nom), éventuellement filtrées (CQL2)."""
    selection = exports.select(session, commune=code, cql=filter, filter_lang=filter_lang)
    return _send(session, selection, format, crs)
