"""Exports of current parcels and bornes: GeoJSON, GeoPackage, zipped Shapefile, CSV with WKT, FlatGeobuf.

An export is of one layer (:data:`LAYERS`): the current parcels (``parcelles``, the default) or
the current bornes (``bornes``, points). A selection (a commune, a bbox, a CQL2 filter over the
layer's queryables, or any combination: for parcels the same selection as OGC items and tiles,
:mod:`sifc.parcels.selection`; for bornes the same filters as the OGC collection ``bornes``) is
read from the layer's view of current versions through a server-side cursor, a batch at a time,
so memory does not grow with the export:

- GeoJSON and CSV are written as they are read (each feature serialized by PostGIS:
  ``ST_AsGeoJSON``, ``ST_AsText``) and can be streamed straight to an HTTP client;
- GeoPackage, Shapefile and FlatGeobuf need a finished file: the batches become Arrow record
  batches handed to GDAL (``pyogrio.write_arrow`` over a ``RecordBatchReader``) in one pass,
  then the file is sent and deleted.

The exported columns are the explicit public list of the layer (:data:`COLUMNS`,
:data:`BORNE_COLUMNS`); holders, authors and officers' text are never exported
(:mod:`sifc.personal`). GeoJSON is in WGS 84 by default (RFC 7946), the other formats in the storage
CRS, UTM 28N (EPSG:32628), which is what surveyors work in; ``crs`` chooses either for any
format. A shapefile's field names are at most 10 characters (dBASE): the columns fix the
short name of each field, the zip carries the table in ``LISEZMOI.txt``, and the importer reads
the parcels' short names back (:mod:`sifc.imports.mapping`).
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from sifc.bornes import service as bornes
from sifc.crs import STORAGE_SRID
from sifc.errors import InvalidInput, NotFound
from sifc.ogc_filter import feature_conditions
from sifc.ogc_filter import parse as parse_filter
from sifc.parcels import selection as parcel_selection
from sifc.parcels.spatial import parse_bbox
from sifc.text import search_form

# Rows read (and written) at a time. What an export holds at once is about one batch: the rows
# PostgreSQL sent, their Python objects, their Arrow arrays, GDAL's features (about 15 KB a
# parcel all told). A server runs each export in whichever worker thread is free, and the
# allocator keeps memory per thread (glibc arenas), so an export on a thread that has not run one
# yet adds a whole batch's worth to the process's peak RSS: with 2000 rows, 0 or 30-37 MiB at
# random for the same GeoPackage. 500 rows cost at most about 10 MiB and are as fast.
BATCH_SIZE = 500
# Arrow buffers from malloc rather than pyarrow's default mimalloc, which keeps the pages it
# freed in a heap per thread (about 7 MiB more per export thread, for no gain in speed here).
ARROW_POOL = pa.system_memory_pool()
SUPPORTED_CRS = {"EPSG:4326": 4326, f"EPSG:{STORAGE_SRID}": STORAGE_SRID}
# Coordinates written as text (GeoJSON, WKT): about a millimetre, so a round trip stays well
# within a centimetre. Binary formats carry full doubles.
TEXT_DIGITS = {4326: 8, STORAGE_SRID: 3}


@dataclass(frozen=True)
class ExportFormat:
    """One output format: how it is named, sent and written."""

    name: str
    title: str
    suffix: str
    media_type: str
    default_srid: int
    driver: str | None  # GDAL driver for the formats written to a file; None for the streamed ones

    @property
    def streamed(self) -> bool:
        """Whether the export is written as it is read (no finished file needed)."""
        return self.driver is None


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("geojson", "GeoJSON", ".geojson", "application/geo+json", 4326, None),
    ExportFormat("gpkg", "GeoPackage", ".gpkg", "application/geopackage+sqlite3", STORAGE_SRID, "GPKG"),
    ExportFormat("shp", "Shapefile (zip)", ".shp.zip", "application/zip", STORAGE_SRID, "ESRI Shapefile"),
    ExportFormat("csv", "CSV (WKT)", ".csv", "text/csv; charset=utf-8", STORAGE_SRID, None),
    ExportFormat("fgb", "FlatGeobuf", ".fgb", "application/flatgeobuf", STORAGE_SRID, "FlatGeobuf"),
)}
# Shapefile: fields as wide as their longest value, UTF-8 declared in the .cpg. FlatGeobuf: no
# spatial index, because GDAL keeps about 1 KB per feature in memory until it writes one (30 000
# parcels: 26 MB more); ``ogr2ogr -lco SPATIAL_INDEX=YES`` adds it afterwards where wanted.
LAYER_OPTIONS = {"shp": {"RESIZE": "YES", "ENCODING": "UTF-8"}, "fgb": {"SPATIAL_INDEX": "NO"}}
SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".zip": "shp", ".csv": "csv",
            ".fgb": "fgb"}


@dataclass(frozen=True)
class ExportColumn:
    """A public attribute of the export: its SQL over ``t`` (the layer's view), type and shapefile name."""

    name: str
    sql: str
    kind: pa.DataType
    short: str  # dBASE field name, at most 10 characters
    description: str


COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("parcel_id", "t.parcel_id::text", pa.string(), "parcel_id", "identifiant interne stable (UUID)"),
    ExportColumn("version", "t.version", pa.int32(), "version", "numéro de la version en vigueur"),
    ExportColumn("nicad", "t.nicad", pa.string(), "nicad", "NICAD"),
    ExportColumn("nicad_status", "t.nicad_status", pa.string(), "nicad_stat",
                 "statut du NICAD : attribue, absent, a_reattribuer"),
    ExportColumn("commune_code", "t.commune_code", pa.string(), "commune", "code de la commune"),
    ExportColumn("section", "t.section", pa.string(), "section", "section cadastrale"),
    ExportColumn("local_number", "t.local_number", pa.string(), "local_num", "numéro de la parcelle"),
    ExportColumn("source_id", "t.source_id", pa.string(), "source_id", "identifiant dans le fichier source"),
    ExportColumn("area_m2", "round(t.area_m2::numeric, 2)::float8", pa.float64(), "area_m2",
                 "surface calculée (m², EPSG:32628)"),
    ExportColumn("declared_area_m2", "t.declared_area_m2", pa.float64(), "decl_area", "surface déclarée (m²)"),
    ExportColumn("land_use", "t.land_use", pa.string(), "land_use", "usage"),
    ExportColumn("tenure_regime", "t.tenure_regime", pa.string(), "tenure", "régime foncier"),
    ExportColumn("valid_from", "t.valid_from", pa.timestamp("us", tz="UTC"), "valid_from",
                 "début de validité de la version (UTC ; texte ISO 8601 dans un shapefile)"),
)
SHAPEFILE_FIELDS = {c.name: c.short for c in COLUMNS}

BORNE_COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("borne_id", "t.borne_id::text", pa.string(), "borne_id", "identifiant interne stable (UUID)"),
    ExportColumn("version", "t.version", pa.int32(), "version", "numéro de la version en vigueur"),
    ExportColumn("code", "t.code", pa.string(), "code", "numéro national de la borne, s'il en existe un"),
    ExportColumn("commune_code", "t.commune_code", pa.string(), "commune", "code de la commune"),
    ExportColumn("label", "t.label", pa.string(), "label", "numéro du géomètre (« B12 »)"),
    ExportColumn("source_id", "t.source_id", pa.string(), "source_id", "identifiant dans le fichier source"),
    ExportColumn("precision_m", "t.precision_m", pa.float64(), "precision", "précision du levé (m)"),
    ExportColumn("survey_method", "t.survey_method", pa.string(), "method",
                 "méthode : gnss_rtk, gnss, station_totale, ruban, numerisation, inconnu"),
    ExportColumn("surveyed_on", "t.surveyed_on", pa.date32(), "surveyed", "date du levé"),
    ExportColumn("valid_from", "t.valid_from", pa.timestamp("us", tz="UTC"), "valid_from",
                 "début de validité de la version (UTC ; texte ISO 8601 dans un shapefile)"),
)


@dataclass(frozen=True)
class ExportLayer:
    """What an export reads and writes: the view of current versions, its public columns, its geometry."""

    name: str  # the layer's and the files' name
    view: str  # the view of current versions, read as ``t``
    key: str  # the stable id over ``t``: the feature id and the order of the rows
    columns: tuple[ExportColumn, ...]
    geometry_type: str  # as GDAL names it
    queryables: dict[str, tuple[str, str]]  # what a CQL2 filter may name: name -> (SQL over ``t``, JSON type)
    readme_title: str
    readme_reread: str = ""  # how the project reads the shapefile back, if it does


PARCELS = ExportLayer("parcelles", parcel_selection.CURRENT, "t.parcel_id", COLUMNS, "MultiPolygon",
                      parcel_selection.QUERYABLES,
                      "export de parcelles en vigueur (shapefile) / current parcels export",
                      " « sifc import parcels » les relit tels quels.")
BORNES = ExportLayer("bornes", "borne", "t.borne_id", BORNE_COLUMNS, "Point", bornes.QUERYABLES,
                     "export de bornes en vigueur (shapefile) / current bornes export")
LAYERS: dict[str, ExportLayer] = {layer.name: layer for layer in (PARCELS, BORNES)}
for _layer in LAYERS.values():
    assert all(len(c.short) <= 10 for c in _layer.columns), _layer.name
    assert len({c.short for c in _layer.columns}) == len(_layer.columns), _layer.name


Selection = parcel_selection.Selection
"""Which current parcels (or bornes, with :data:`BORNES`) an export holds (for parcels, the selection OGC items
and tiles use too): a condition over ``t`` and its bound values."""


@dataclass
class ExportStats:
    """What an export wrote (filled in as it goes)."""

    features: int = 0
    srid: int = STORAGE_SRID


def get_format(name: str) -> ExportFormat:
    """The format called ``name`` (``geojson``, ``gpkg``, ``shp``, ``csv``, ``fgb``)."""
    found = FORMATS.get(name.strip().lower())
    if found is None:
        raise InvalidInput("export.bad_format", format=name[:50], supported=", ".join(FORMATS))
    return found


def format_for_path(path: Path) -> ExportFormat:
    """The format a file name asks for by its suffix (``.zip``: a zipped shapefile)."""
    name = SUFFIXES.get(path.suffix.lower())
    if name is None:
        raise InvalidInput("export.bad_suffix", path=path.name, suffixes=", ".join(SUFFIXES))
    return FORMATS[name]


def output_srid(fmt: ExportFormat, crs: str | None) -> int:
    """The SRID to write: ``crs`` when given (EPSG:4326 or EPSG:32628), else the format's default."""
    if crs is None:
        return fmt.default_srid
    return _crs_srid(crs)


def _crs_srid(crs: str) -> int:
    srid = SUPPORTED_CRS.get(crs.strip().upper())
    if srid is None:
        raise InvalidInput("export.bad_crs", crs=crs[:100], supported=", ".join(SUPPORTED_CRS))
    return srid


def resolve_commune(session: Session, reference: str) -> str:
    """A commune's code from its code, national code or name (accents, case and hyphens ignored)."""
    codes = session.execute(text("""
        SELECT code FROM commune WHERE code = :ref OR national_code = :ref
        UNION SELECT code FROM commune WHERE name_search = :search
    """), {"ref": reference, "search": search_form(reference)}).scalars().all()
    if not codes:
        raise NotFound("territory.not_found", level="commune", code=reference[:100])
    if len(codes) > 1:
        raise InvalidInput("import.ambiguous_commune", commune=reference[:100], codes=", ".join(sorted(codes)))
    return str(codes[0])


def select(session: Session, *, commune: str | None = None, bbox: str | None = None,
           bbox_crs: str = "EPSG:4326", cql: str | None = None, filter_lang: str = "cql2-text",
           filter_crs: str = "EPSG:4326", layer: ExportLayer = PARCELS) -> Selection:
    """The selection of the current features of ``layer`` for an export; every user value is checked and bound.

    ``bbox`` is ``minx,miny,maxx,maxy`` in ``bbox_crs`` (longitude first in EPSG:4326, as in
    ``/parcels/in-bbox``); ``cql`` is a CQL2 text or JSON filter (OGC API - Features Part 3)
    over the layer's queryables (those of its OGC collection), its geometries in ``filter_crs``.
    """
    code = resolve_commune(session, commune) if commune is not None else None
    box = None
    if bbox is not None:
        srid = _crs_srid(bbox_crs)
        box = (*parse_bbox(bbox, srid), srid)
    parsed, filter_srid = None, 4326
    if cql is not None:
        if filter_lang not in ("cql2-text", "cql2-json"):
            raise InvalidInput("ogc.bad_filter", reason=f"langage inconnu : {filter_lang[:50]}")
        filter_srid = _crs_srid(filter_crs)
        parsed = parse_filter(cql, filter_lang)
    if layer is PARCELS:
        return parcel_selection.select(bbox=box, cql=parsed, filter_srid=filter_srid, commune=code)
    conditions, params = feature_conditions(layer.queryables, bbox=box, cql=parsed, filter_srid=filter_srid)
    if code is not None:
        conditions.append("t.commune_code = :selection_commune")
        params["selection_commune"] = code
    return Selection(" AND ".join(conditions) or "TRUE", params, code)


def filename(fmt: ExportFormat, selection: Selection, day: date | None = None, layer: ExportLayer = PARCELS) -> str:
    """The file name of an export: ``<layer>_<commune>_<date><suffix>`` (``selection`` without commune)."""
    return f"{layer.name}_{selection.commune or 'selection'}_{(day or date.today()).isoformat()}{fmt.suffix}"


# --- reading ------------------------------------------------------------------------------

def _geometry(srid: int) -> str:
    return "t.geom" if srid == STORAGE_SRID else f"ST_Transform(t.geom, {int(srid)})"


def _batches(session: Session, selection: Selection, columns: str, batch_size: int,
             layer: ExportLayer) -> Iterator[Sequence[Row[Any]]]:
    """The selected features of ``layer`` in id order, ``batch_size`` rows at a time, from a server-side cursor.

    The query runs and its first batch is read before this returns, so a value PostgreSQL
    refuses (a filter comparing a number with a word) fails here, before a response has started.
    A batch is let go before the next one is read (unlike ``Result.partitions``), so only one
    is held at a time when the consumer drops it too.
    """
    # An export reads every row it selects: the plan is chosen for all of them, not for the first 10 %
    # (a cursor's default), which walked every current parcel in id order to find one commune's.
    session.execute(text("SET LOCAL cursor_tuple_fraction = 1"))
    result = session.execute(
        text(f"SELECT {columns} FROM {layer.view} t WHERE {selection.where} ORDER BY {layer.key}"),
        selection.params, execution_options={"stream_results": True, "max_row_buffer": batch_size})
    try:
        pending = [result.fetchmany(batch_size)]
    except BaseException:
        result.close()
        raise

    def rest() -> Iterator[Sequence[Row[Any]]]:
        try:
            while rows := pending.pop():
                yield rows
                del rows
                pending.append(result.fetchmany(batch_size))
        finally:
            result.close()

    return rest()


def _attributes_sql(layer: ExportLayer) -> str:
    return ", ".join(f"{c.sql} AS {c.name}" for c in layer.columns)


# --- streamed formats ---------------------------------------------------------------------

def iter_geojson(session: Session, selection: Selection, *, srid: int = 4326, batch_size: int = BATCH_SIZE,
                 stats: ExportStats | None = None, layer: ExportLayer = PARCELS) -> Iterator[bytes]:
    """A GeoJSON FeatureCollection, a batch of features at a time (features written by PostGIS)."""
    stats = stats if stats is not None else ExportStats()
    stats.srid = srid
    properties = ", ".join(f"'{c.name}', {c.sql}" for c in layer.columns)
    feature = (f"json_build_object('type', 'Feature', 'id', {layer.key}, 'geometry', "
               f"ST_AsGeoJSON({_geometry(srid)}, {TEXT_DIGITS[srid]})::json, "
               f"'properties', json_build_object({properties}))::text")
    head: dict[str, Any] = {"type": "FeatureCollection", "name": layer.name}
    if srid != 4326:  # the 2008 "crs" member, as elsewhere in the API, so GIS tools place the file
        head["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}}
    return _geojson_chunks(orjson.dumps(head), _batches(session, selection, feature, batch_size, layer), stats)


def _geojson_chunks(head: bytes, batches: Iterator[Sequence[Row[Any]]], stats: ExportStats) -> Iterator[bytes]:
    yield head[:-1] + b',"features":['
    separator = b"\n"
    for rows in batches:
        chunk = separator + ",\n".join(row[0] for row in rows).encode()
        stats.features += len(rows)
        del rows  # not held while the next batch is read
        yield chunk
        del chunk
        separator = b",\n"
    yield b"\n]}\n"


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value


def iter_csv(session: Session, selection: Selection, *, srid: int = STORAGE_SRID, batch_size: int = BATCH_SIZE,
             stats: ExportStats | None = None, layer: ExportLayer = PARCELS) -> Iterator[bytes]:
    """CSV (RFC 4180, UTF-8, comma): the public columns, then ``wkt``, the geometry in ``srid``."""
    stats = stats if stats is not None else ExportStats()
    stats.srid = srid
    columns = f"{_attributes_sql(layer)}, ST_AsText({_geometry(srid)}, {TEXT_DIGITS[srid]}) AS wkt"
    return _csv_chunks(_batches(session, selection, columns, batch_size, layer), stats, layer)


def _csv_chunks(batches: Iterator[Sequence[Row[Any]]], stats: ExportStats, layer: ExportLayer) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.name for c in layer.columns] + ["wkt"])
    yield buffer.getvalue().encode()
    for rows in batches:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_csv_value(v) for v in row] for row in rows)
        stats.features += len(rows)
        del rows  # not held while the next batch is read
        yield buffer.getvalue().encode()


# --- file formats -------------------------------------------------------------------------

def _schema(short_names: bool, layer: ExportLayer) -> pa.Schema:
    fields = [pa.field(c.short if short_names else c.name, c.kind) for c in layer.columns]
    fields.append(pa.field("geometry", pa.binary(), metadata={"ARROW:extension:name": "geoarrow.wkb"}))
    return pa.schema(fields)


def _record_batches(batches: Iterator[Sequence[Row[Any]]], schema: pa.Schema,
                    stats: ExportStats) -> Iterator[pa.RecordBatch]:
    for rows in batches:
        batch = pa.record_batch([pa.array([row[i] for row in rows], type=f.type, memory_pool=ARROW_POOL)
                                 for i, f in enumerate(schema)], schema=schema)
        stats.features += len(rows)
        del rows  # neither the rows nor this batch are held while the next batch is read
        yield batch
        del batch


def write_layer(session: Session, selection: Selection, fmt: ExportFormat, target: Path, *, srid: int,
                batch_size: int = BATCH_SIZE, stats: ExportStats | None = None,
                layer: ExportLayer = PARCELS) -> ExportStats:
    """Write a GeoPackage, FlatGeobuf or zipped Shapefile to ``target`` in one pass over the batches."""
    from pyogrio import write_arrow

    assert fmt.driver is not None
    stats = stats if stats is not None else ExportStats()
    stats.srid = srid
    shapefile = fmt.name == "shp"
    schema = _schema(shapefile, layer)
    columns = f"{_attributes_sql(layer)}, ST_AsBinary({_geometry(srid)}) AS wkb"
    batches = _batches(session, selection, columns, batch_size, layer)
    reader = pa.RecordBatchReader.from_batches(schema, _record_batches(batches, schema, stats))
    options: dict[str, Any] = {"layer_options": LAYER_OPTIONS.get(fmt.name, {})}
    with tempfile.TemporaryDirectory(prefix="sifc-export-", dir=target.parent) as scratch:
        layer_path = Path(scratch) / (f"{layer.name}.shp" if shapefile else target.name)
        write_arrow(reader, layer_path, layer=layer.name, driver=fmt.driver, geometry_name="geometry",
                    geometry_type=layer.geometry_type, crs=f"EPSG:{srid}", **options)
        if shapefile:
            (Path(scratch) / "LISEZMOI.txt").write_text(shapefile_readme(srid, layer), encoding="utf-8")
            partial = target.with_name(target.name + ".part")
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
                for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                    bundle.write(layer_path.with_suffix(suffix), f"{layer.name}{suffix}")
                bundle.write(Path(scratch) / "LISEZMOI.txt", "LISEZMOI.txt")
            partial.replace(target)
        else:
            shutil.move(layer_path, target)
    return stats


def shapefile_readme(srid: int, layer: ExportLayer = PARCELS) -> str:
    """The text beside an exported shapefile: its CRS, encoding and the field-name mapping."""
    width = max(len(c.short) for c in layer.columns)
    lines = [
        f"SIFC — {layer.readme_title}",
        "",
        f"SCR / CRS : EPSG:{srid} ({layer.name}.prj) ; encodage / encoding : UTF-8 ({layer.name}.cpg)",
        "Les noms de champs dBASE ont au plus 10 caractères ; correspondance avec les noms complets",
        f"(GeoJSON, GeoPackage, CSV, FlatGeobuf, API).{layer.readme_reread}",
        "dBASE field names have at most 10 characters; mapping to the full names:",
        "",
    ]
    lines += [f"{c.short.ljust(width)}  {c.name.ljust(17)} {c.description}" for c in layer.columns]
    return "\n".join(lines) + "\n"


def export(session: Session, selection: Selection, fmt: ExportFormat, target: Path, *, srid: int | None = None,
           batch_size: int = BATCH_SIZE, layer: ExportLayer = PARCELS) -> ExportStats:
    """Write the selection of ``layer`` to the file ``target`` in ``fmt`` (the CLI's entry point)."""
    chosen = fmt.default_srid if srid is None else srid
    stats = ExportStats(srid=chosen)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not fmt.streamed:
        return write_layer(session, selection, fmt, target, srid=chosen, batch_size=batch_size, stats=stats,
                           layer=layer)
    chunks = (iter_geojson if fmt.name == "geojson" else iter_csv)(
        session, selection, srid=chosen, batch_size=batch_size, stats=stats, layer=layer)
    partial = target.with_name(target.name + ".part")
    with partial.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    partial.replace(target)
    return stats
