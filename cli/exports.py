"""``sifc export``: the parcels or bornes in force, as GeoJSON, GeoPackage, Shapefile, CSV or FlatGeobuf."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from cli.common import State, out, say

export_app = typer.Typer(help="Exports de parcelles ou de bornes (GeoJSON, GeoPackage, Shapefile, CSV, FlatGeobuf).",
                         no_args_is_help=True)


def _command(layer_name: str) -> Callable[..., None]:
    """The export command of one layer (``parcelles`` or ``bornes``): the same options, the same steps."""

    def command(
        output: Annotated[Path, typer.Argument(
            help="Fichier à écrire : .geojson, .gpkg, .zip (shapefile), .csv, .fgb.")],
        format: Annotated[str | None, typer.Option(
            "--format", help="geojson, gpkg, shp, csv ou fgb (sinon d'après l'extension).")] = None,
        commune: Annotated[str | None, typer.Option(help="Commune (code, code national ou nom).")] = None,
        bbox: Annotated[str | None, typer.Option(help="Emprise minx,miny,maxx,maxy (dans --bbox-crs).")] = None,
        bbox_crs: Annotated[str, typer.Option(help="SCR de l'emprise : EPSG:4326 (longitude d'abord) ou EPSG:32628.")]
        = "EPSG:4326",
        filter: Annotated[str | None, typer.Option(
            "--filter", help="Filtre CQL2 (ex. \"land_use = 'habitation' AND area_m2 > 400\", "
                             "\"precision_m <= 0.05\" pour des bornes).")] = None,
        filter_lang: Annotated[str, typer.Option(help="cql2-text ou cql2-json.")] = "cql2-text",
        filter_crs: Annotated[str, typer.Option(help="SCR des géométries du filtre.")] = "EPSG:4326",
        crs: Annotated[str | None, typer.Option(
            help="SCR du fichier : EPSG:4326 ou EPSG:32628 (défaut : 4326 pour GeoJSON, 32628 sinon).")] = None,
        overwrite: Annotated[bool, typer.Option(help="Remplacer le fichier s'il existe.")] = False,
    ) -> None:
        from sifc import exports
        from sifc.db import make_engine, make_sessionmaker
        from sifc.errors import InvalidInput

        layer = exports.LAYERS[layer_name]
        fmt = exports.get_format(format) if format else exports.format_for_path(output)
        srid = exports.output_srid(fmt, crs)
        if output.exists() and not overwrite:
            raise InvalidInput("export.target_exists", path=str(output))
        settings = State.settings()
        engine = make_engine(settings.db_url, application_name="sifc-export")
        try:
            with make_sessionmaker(engine)() as session:
                selection = exports.select(session, commune=commune, bbox=bbox, bbox_crs=bbox_crs, cql=filter,
                                           filter_lang=filter_lang, filter_crs=filter_crs, layer=layer)
                stats = exports.export(session, selection, fmt, output, srid=srid, layer=layer)
                session.rollback()
        finally:
            engine.dispose()
        out.print(say("cli.exports.parcel_s_exported_as" if layer_name == "parcelles"
                      else "cli.exports.borne_s_exported_as", features=stats.features, title=fmt.title, srid=srid,
                      output=output))

    return command


export_app.command("parcels", help="Exporte les parcelles en vigueur d'une commune ou d'une sélection "
                                   "(emprise, filtre CQL2).")(_command("parcelles"))
export_app.command("bornes", help="Exporte les bornes en vigueur d'une commune ou d'une sélection (emprise, filtre "
                                  "CQL2) : champs publics seulement, sans auteur ni motif.")(_command("bornes"))
