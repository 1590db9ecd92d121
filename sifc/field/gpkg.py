"""The one GeoPackage writer of field packages.

It writes a package, the base a return is judged against, and the rejects sent back to fix.

Every table goes through :func:`write_layer`, so a package and the base regenerated from the
server's record have exactly the same schema (same columns, types, geometry type, CRS), which is
what lets a changeset between them be read column by column (pygeodiff). Rows arrive as Arrow
record batches (one batch in memory at a time) and are written by GDAL through ``pyogrio``:

- GeoPackage **1.2**: GDAL 3.6 (QGIS 3.22, older QField) reads 1.4 files only "partially";
- the ``fid`` column is the GeoPackage's own feature id, kept as given: the return matches a row
  to the server's record by it;
- EPSG:32628 for every layer, geometry type from :mod:`sifc.field.layers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from sifc.crs import STORAGE_SRID
from sifc.field.layers import Layer

ARROW_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(), "int": pa.int64(), "real": pa.float64(), "bool": pa.bool_(), "date": pa.date32(),
}
DATASET_OPTIONS = {"VERSION": "1.2"}
# Every GeoPackage written here is a scratch file, zipped or sent once complete and written again
# from the server's record if anything fails: SQLite need not sync it to disk at each commit (about
# 1.6 s of a package of 20,000 parcels, nearly all its writing time). GDAL reads it when it opens a
# file; it is process-wide, as the other scratch GeoPackages written in the process (exports,
# converted imports) are no more durable.
GDAL_CONFIG = {"OGR_SQLITE_SYNCHRONOUS": "OFF"}
# Arrow buffers from malloc (as sifc.exports does): no per-thread heap kept after the build.
POOL = pa.system_memory_pool()


def arrow_schema(layer: Layer) -> pa.Schema:
    """The Arrow schema of ``layer``: ``fid``, its fields, then ``geometry`` (WKB) when it has one."""
    fields = [pa.field("fid", pa.int64(), nullable=False)]
    fields += [pa.field(f.name, ARROW_TYPES[f.kind]) for f in layer.fields]
    if layer.geometry is not None:
        fields.append(pa.field("geometry", pa.binary(), metadata={"ARROW:extension:name": "geoarrow.wkb"}))
    return pa.schema(fields)


def record_batch(layer: Layer, rows: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
    """One batch of ``layer`` from rows (dicts: ``fid``, field names, ``geometry`` as WKB); missing keys are null."""
    schema = arrow_schema(layer)
    return pa.record_batch([pa.array([row.get(f.name) for row in rows], type=f.type, memory_pool=POOL)
                            for f in schema], schema=schema)


def _batches(layer: Layer, batches: Iterable[pa.RecordBatch], written: list[int]) -> Iterator[pa.RecordBatch]:
    schema = arrow_schema(layer)
    for batch in batches:
        if not batch.schema.equals(schema):
            raise ValueError(f"batch schema differs from layer {layer.name}")
        written[0] += batch.num_rows
        yield batch
        del batch


def write_layer(path: Path, layer: Layer, batches: Iterable[pa.RecordBatch], *, append: bool,
                spatial_index: bool = True) -> int:
    """Write ``layer`` into the GeoPackage ``path`` (a new file unless ``append``); return the rows written.

    ``spatial_index``: the R-tree QGIS and QField need on a tablet; a file only the server reads
    (the base of a return, which geodiff compares without its R-trees) does without it.
    """
    from pyogrio import set_gdal_config_options, write_arrow

    set_gdal_config_options(GDAL_CONFIG)
    schema = arrow_schema(layer)
    written = [0]
    reader = pa.RecordBatchReader.from_batches(schema, _batches(layer, batches, written))
    options: dict[str, Any] = {"layer_options": {"FID": "fid"}}
    if layer.geometry is not None:
        options.update(geometry_name="geometry", geometry_type=layer.geometry, crs=f"EPSG:{STORAGE_SRID}")
        options["layer_options"]["GEOMETRY_NAME"] = "geom"
        if not spatial_index:
            options["layer_options"]["SPATIAL_INDEX"] = "NO"
    else:
        options["geometry_type"] = None
    if not append:
        options["dataset_options"] = DATASET_OPTIONS
    write_arrow(reader, path, layer=layer.name, driver="GPKG", append=append, **options)
    return written[0]
