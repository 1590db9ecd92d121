"""Exports of current parcels: GeoJSON, GeoPackage, zipped Shapefile, CSV with WKT, FlatGeobuf.

A selection (a commune, a bbox, a CQL2 filter over :data:`sifc.parcels.selection.QUERYABLES`, or
any combination: the same selection as OGC items and tiles, :mod:`sifc.parcels.selection`) is read
from the ``parcel`` view through a server-side cursor, a batch at a time, so memory does not grow
with the export:

- GeoJSON and CSV are written as they are read (each feature serialized by PostGIS:
  ``ST_AsGeoJSON``, ``ST_AsText``) and can be streamed straight to an HTTP client;
- GeoPackage, Shapefile and FlatGeobuf need a finished file: the batches become Arrow record
  batches handed to GDAL (``pyogrio.write_arrow`` over a ``RecordBatchReader``) in one pass,
  then the file is sent and deleted.

The exported columns are the explicit public list :data:`COLUMNS`; holders and authors are
never exported. GeoJSON is in WGS 84 by default (RFC 7946), the other formats in the storage
CRS, UTM 28N (EPSG:32628), which is what surveyors work in; ``crs`` chooses either for any
format. A shapefile's field names are at most 10 characters (dBASE): :data:`COLUMNS` fixes the
short name of each field, the zip carries the table in ``LISEZMOI.txt``, and the importer reads
the short names back (:mod:`sifc.imports.mapping`).
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

from sifc.crs import STORAGE_SRID
from sifc.errors import InvalidInput, NotFound
from sifc.ogc_filter import parse as parse_filter
from sifc.parcels import selection as parcel_selection
from sifc.parcels.spatial import parse_bbox
from sifc.text import search_form

LAYER = "parcelles"
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
    """A public attribute of the export: its SQL over the ``parcel`` view, type and shapefile name."""

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
assert all(len(short) <= 10 for short in SHAPEFILE_FIELDS.values())
assert len(set(SHAPEFILE_FIELDS.values())) == len(COLUMNS)


Selection = parcel_selection.Selection
"""Which current parcels an export holds (the selection OGC items and tiles use too)."""


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
           filter_crs: str = "EPSG:4326") -> Selection:
    """The selection of current parcels for an export; every user value is checked and bound.

    ``bbox`` is ``minx,miny,maxx,maxy`` in ``bbox_crs`` (longitude first in EPSG:4326, as in
    ``/parcels/in-bbox``); ``cql`` is a CQL2 text or JSON filter (OGC API - Features Part 3)
    over the parcels' queryables, its geometries in ``filter_crs``.
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
    return parcel_selection.select(bbox=box, cql=parsed, filter_srid=filter_srid, commune=code)


def filename(fmt: ExportFormat, selection: Selection, day: date | None = None) -> str:
    """The file name of an export: ``parcelles_<commune>_<date><suffix>`` (``selection`` without commune)."""
    return f"{LAYER}_{selection.commune or 'selection'}_{(day or date.today()).isoformat()}{fmt.suffix}"


# --- reading ------------------------------------------------------------------------------

def _geometry(srid: int) -> str:
    return "t.geom" if srid == STORAGE_SRID else f"ST_Transform(t.geom, {int(srid)})"


def _batches(session: Session, selection: Selection, columns: str,
             batch_size: int) -> Iterator[Sequence[Row[Any]]]:
    """The selected parcels in id order, ``batch_size`` rows at a time, from a server-side cursor.

    The query runs and its first batch is read before this returns, so a value PostgreSQL
    refuses (a filter comparing a number with a word) fails here, before a response has started.
    A batch is let go before the next one is read (unlike ``Result.partitions``), so only one
    is held at a time when the consumer drops it too.
    """
    result = session.execute(
        text(f"SELECT {columns} FROM {parcel_selection.CURRENT} t WHERE {selection.where} ORDER BY t.parcel_id"),
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


def _attributes_sql() -> str:
    return ", ".join(f"{c.sql} AS {c.name}" for c in COLUMNS)


# --- streamed formats ---------------------------------------------------------------------

def iter_geojson(session: Session, selection: Selection, *, srid: int = 4326, batch_size: int = BATCH_SIZE,
                 stats: ExportStats | None = None) -> Iterator[bytes]:
    """A GeoJSON FeatureCollection, a batch of features at a time (features written by PostGIS)."""
    stats = stats if stats is not None else ExportStats()
    stats.srid = srid
    properties = ", ".join(f"'{c.name}', {c.sql}" for c in COLUMNS)
    feature = (f"json_build_object('type', 'Feature', 'id', t.parcel_id, 'geometry', "
               f"ST_AsGeoJSON({_geometry(srid)}, {TEXT_DIGITS[srid]})::json, "
               f"'properties', json_build_object({properties}))::text")
    head: dict[str, Any] = {"type": "FeatureCollection", "name": LAYER}
    if srid != 4326:  # the 2008 "crs" member, as elsewhere in the API, so GIS tools place the file
        head["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}}
    return _geojson_chunks(orjson.dumps(head), _batches(session, selection, feature, batch_size), stats)


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
             stats: ExportStats | None = None) -> Iterator[bytes]:
    """CSV (RFC 4180, UTF-8, comma): the public columns, then ``wkt``, the geometry in ``srid``."""
    stats = stats if stats is not None else ExportStats()
    stats.srid = srid
    columns = f"{_attributes_sql()}, ST_AsText({_geometry(srid)}, {TEXT_DIGITS[srid]}) AS wkt"
    return _csv_chunks(_batches(session, selection, columns, batch_size), stats)


def _csv_chunks(batches: Iterator[Sequence[Row[Any]]], stats: ExportStats) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.name for c in COLUMNS] + ["wkt"])
    yield buffer.getvalue().encode()
    for rows in batches:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_csv_value(v) for v in row] for row in rows)
        stats.features += len(rows)
        del rows  # not held while the next batch is read
        yield buffer.getvalue().encode()


# --- file formats -------------------------------------------------------------------------

def _schema(short_names: bool) -> pa.Schema:
    fields = [pa.field(c.short if short_names else c.name, c.kind) for c in COLUMNS]
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
                batch_size: int = BATCH_SIZE, stats: ExportStats | None = None) -> ExportStats:
    """Write a GeoPackage, FlatGeobuf or zipped Shapefile to ``target`` in one pass over the batches."""
    from pyogrio import write_arrow

    assert fmt.driver is not None
    stats = stats if stats is not None else ExportStats()
    stats.srid = srid
    shapefile = fmt.name == "shp"
    schema = _schema(short_names=shapefile)
    columns = f"{_attributes_sql()}, ST_AsBinary({_geometry(srid)}) AS wkb"
    batches = _batches(session, selection, columns, batch_size)
    reader = pa.RecordBatchReader.from_batches(schema, _record_batches(batches, schema, stats))
    options: dict[str, Any] = {"layer_options": LAYER_OPTIONS.get(fmt.name, {})}
    with tempfile.TemporaryDirectory(prefix="sifc-export-", dir=target.parent) as scratch:
        layer_path = Path(scratch) / (f"{LAYER}.shp" if shapefile else target.name)
        write_arrow(reader, layer_path, layer=LAYER, driver=fmt.driver, geometry_name="geometry",
                    geometry_type="MultiPolygon", crs=f"EPSG:{srid}", **options)
        if shapefile:
            (Path(scratch) / "LISEZMOI.txt").write_text(shapefile_readme(srid), encoding="utf-8")
            partial = target.with_name(target.name + ".part")
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
                for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                    bundle.write(layer_path.with_suffix(suffix), f"{LAYER}{suffix}")
                bundle.write(Path(scratch) / "LISEZMOI.txt", "LISEZMOI.txt")
            partial.replace(target)
        else:
            shutil.move(layer_path, target)
    return stats


def shapefile_readme(srid: int) -> str:
    """The text beside an exported shapefile: its CRS, encoding and the field-name mapping."""
    width = max(len(c.short) for c in COLUMNS)
    lines = [
        "SIFC — export de parcelles en vigueur (shapefile) / current parcels export",
        "",
        f"SCR / CRS : EPSG:{srid} (parcelles.prj) ; encodage / encoding : UTF-8 (parcelles.cpg)",
        "Les noms de champs dBASE ont au plus 10 caractères ; correspondance avec les noms complets",
        "(GeoJSON, GeoPackage, CSV, FlatGeobuf, API). « sifc import parcels » les relit tels quels.",
        "dBASE field names have at most 10 characters; mapping to the full names:",
        "",
    ]
    lines += [f"{c.short.ljust(width)}  {c.name.ljust(17)} {c.description}" for c in COLUMNS]
    return "\n".join(lines) + "\n"


def export(session: Session, selection: Selection, fmt: ExportFormat, target: Path, *, srid: int | None = None,
           batch_size: int = BATCH_SIZE) -> ExportStats:
    """Write the selection to the file ``target`` in ``fmt`` (the CLI's entry point)."""
    chosen = fmt.default_srid if srid is None else srid
    stats = ExportStats(srid=chosen)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not fmt.streamed:
        return write_layer(session, selection, fmt, target, srid=chosen, batch_size=batch_size, stats=stats)
    chunks = (iter_geojson if fmt.name == "geojson" else iter_csv)(
        session, selection, srid=chosen, batch_size=batch_size, stats=stats)
    partial = target.with_name(target.name + ".part")
    with partial.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    partial.replace(target)
    return stats
