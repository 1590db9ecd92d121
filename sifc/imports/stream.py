"""First load of an area: the file streamed into the registry, chunk by chunk (ADR 0006).

When no current parcel lies within the file's extent, a parcel import cannot match, replace or overlap
anything of the registry: every feature it keeps is a new parcel. Then the file is not staged and copied
again (the path of :mod:`sifc.imports.parcels`, kept for re-imports, dry runs, campaigns and converted
files); it flows:

- a **reader thread** reads a chunk, runs every check of the file on it (:mod:`sifc.imports.checks`:
  geometry, reprojection, location, NICAD form, areas) and hands it over;
- the **caller's thread** asks the registry which of the chunk's NICADs are current elsewhere, then
  ``COPY``-es the chunk's accepted parcels straight into ``parcel_version`` (final rows) and every
  feature's verdict into the temporary ``stage_parcel``, while the reader checks the next chunk and
  PostgreSQL indexes this one on the other core.

What needs the whole file is kept small: the NICADs repeated in the file are found first, from the NICAD
column alone (64-bit hashes), and those features wait until the end, where they are judged together as
the staged path judges them; the file's own overlaps are searched in memory beside the copy for files up
to :data:`IN_MEMORY_OVERLAPS` features, and above that tile by tile in the registry's spatial index once
the rows are in. A parcel refused at the end is withdrawn from the uncommitted batch (migration 0027).
Memory grows with the chunk, not with the file: a feature's outcome is either a registry row or a staged
issue row, never a Python object kept to the end.
"""

from __future__ import annotations

import bisect
import math
import os
import queue
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyogrio
import shapely
from pyogrio.raw import open_arrow
from pyproj import Transformer
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import journal
from sifc.auth.principal import Principal
from sifc.crs import STORAGE_SRID
from sifc.errors import ImportRejected
from sifc.imports import parcels as pipeline
from sifc.imports.checks import (
    Territory,
    Verdicts,
    check_geometries,
    locate,
    nicad_form_warnings,
    overlapping_pairs,
    resolve_repeated,
)
from sifc.imports.source import SourceInfo
from sifc.parcels import nicad as nicad_rules

# Up to this many features, the file's overlaps are searched in memory while the copy runs (the fastest);
# beyond, tile by tile in the registry once the rows are in (memory bounded by a tile).
IN_MEMORY_OVERLAPS = 1_000_000
# A tile of the overlap search holds about this many parcels.
TILE_PARCELS = 50_000

# Rows are encoded as CSV by Arrow (C++, a chunk at a time): far cheaper than building them in Python.
VERSION_COPY = ("COPY parcel_version (parcel_id, version, nicad, nicad_status, commune_code, section, local_number, "
                "source_id, geom, declared_area_m2, land_use, tenure_regime, batch_id, action, author, reason) "
                "FROM STDIN (FORMAT csv)")
# Every feature's verdict, as the staged path keeps it, without the shape (the accepted ones are in the registry).
STAGE_COPY = ("COPY stage_parcel (ord, nicad_raw, nicad, section, local_number, declared_raw, land_use, tenure_regime, "
              "source_id, declared_area, area, commune_code, change, status, reasons, warnings, parcel_id) "
              "FROM STDIN (FORMAT csv)")


def extent(info: SourceInfo) -> tuple[float, float, float, float] | None:
    """The file's extent in the storage CRS (its corners and edges reprojected), or None when unknown."""
    try:
        meta = pyogrio.read_info(info.path, layer=info.layer, force_total_bounds=True)
    except Exception:  # an unreadable file is refused by the reader with its own message
        return None
    bounds = meta.get("total_bounds")
    if bounds is None or not np.isfinite(np.asarray(bounds, dtype=float)).all():
        return None
    x0, y0, x1, y1 = (float(b) for b in bounds)
    if info.srid != STORAGE_SRID:
        transformer = Transformer.from_crs(info.srid, STORAGE_SRID, always_xy=True)
        x0, y0, x1, y1 = transformer.transform_bounds(x0, y0, x1, y1, densify_pts=21)
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            return None
    return (x0 - 1.0, y0 - 1.0, x1 + 1.0, y1 + 1.0)


def eligible(session: Session, info: SourceInfo, options: Any, box: tuple[float, float, float, float] | None) -> bool:
    """Whether the file is a first load: nothing current within its extent, and nothing the staged path needs."""
    if options.dry_run or options.campaign or info.points or pipeline.PRE_REJECT_FIELD in info.fields or box is None:
        return False
    return not bool(session.execute(text(f"""
        SELECT EXISTS (SELECT 1 FROM parcel WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID}))
    """), {"x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3]}).scalar())


@dataclass
class _Chunk:
    """One chunk of the file, checked, as the reader hands it to the writer."""

    offset: int
    size: int
    verdicts: Verdicts
    geoms: np.ndarray
    areas: np.ndarray
    codes: np.ndarray
    declared: np.ndarray
    columns: dict[str, pa.Array]  # the mapped attributes, normalised (TARGETS_COPIED)
    nicads: list[str | None]
    nicad_array: pa.Array
    fids: list[int]
    held: np.ndarray  # features whose NICAD is repeated in the file: judged at the end
    counts: dict[str, int] = field(default_factory=dict)
    head: bytes = b""  # the first 12 bytes of the chunk's new ids (time-ordered)
    encoded: tuple[tuple[bytes, int], tuple[bytes, int]] | None = None  # its copies, made by the reader


@dataclass
class _Held:
    """Features with a NICAD repeated in the file, kept (they are few) until all are read."""

    ords: list[int] = field(default_factory=list)
    nicads: list[str] = field(default_factory=list)
    geoms: list[Any] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    warnings: dict[int, tuple[str, ...]] = field(default_factory=dict)  # pending ones: their warnings
    chunks: dict[int, tuple[Any, ...]] = field(default_factory=dict)  # pending ones: their values (_kept)


def _hashes(values: pa.Array) -> np.ndarray:
    """64-bit hashes of a chunk's NICADs (nulls left out)."""
    return np.fromiter((hash(v) for v in values.to_pylist() if v is not None), dtype=np.int64)


def repeated_nicads(info: SourceInfo, columns: dict[str, str], chunk_size: int) -> set[int]:
    """Hashes of the NICADs found more than once in the file, from its NICAD column alone."""
    if "nicad" not in columns:
        return set()
    encoding = info.encoding if info.fmt == "ESRI Shapefile" else None
    parts = []
    with open_arrow(info.path, layer=info.layer, encoding=encoding, use_pyarrow=True, columns=[columns["nicad"]],
                    read_geometry=False, batch_size=chunk_size) as (_meta, reader):
        for batch in reader:
            parts.append(_hashes(pipeline._clean_nicads(pipeline._normalized(batch.column(columns["nicad"])))))
    hashes = np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
    del parts
    twice = hashes[1:][hashes[1:] == hashes[:-1]]
    return set(np.unique(twice).tolist())


def _chunks(info: SourceInfo, columns: dict[str, str], options: Any, territory: Territory, commune: str | None,
            repeated: set[int]) -> Iterator[_Chunk]:
    """The file's chunks, each checked: everything that needs neither the registry nor the whole file."""
    encoding = info.encoding if info.fmt == "ESRI Shapefile" else None
    offset = 0
    with open_arrow(info.path, layer=info.layer, encoding=encoding, use_pyarrow=True, return_fids=True,
                    batch_size=options.chunk_size) as (meta, reader):
        geometry_column = meta.get("geometry_name") or "wkb_geometry"
        fid_column = meta.get("fid_column") or "OGC_FID"
        for batch in reader:
            size = batch.num_rows
            names = batch.schema.names
            mapped = {target: pipeline._normalized(batch.column(column)) for target, column in columns.items()}
            nicads = (pipeline._clean_nicads(mapped["nicad"]) if "nicad" in columns
                      else pa.nulls(size, pa.string()))
            declared = (pipeline._declared(batch.column(columns["declared_area"]), mapped["declared_area"])
                        if "declared_area" in columns else np.full(size, np.nan))
            wkb = (batch.column(geometry_column) if geometry_column in names
                   else pa.nulls(size, pa.binary())).to_numpy(zero_copy_only=False)
            verdicts = Verdicts(size)
            checked = check_geometries(wkb, info.srid, on_invalid=options.on_invalid, verdicts=verdicts.window(0, size))
            del wkb
            if checked["non_polygon_types"]:
                raise ImportRejected("import.not_polygons", found=", ".join(sorted(
                    pipeline.GEOMETRY_NAMES.get(k, str(k)).upper() for k in checked["non_polygon_types"])))
            geoms = checked["geoms"]
            areas = np.nan_to_num(shapely.area(geoms))
            codes = locate(geoms, areas, territory, verdicts, commune=commune,
                           tolerance_m2=options.outside_tolerance_m2, tolerance_ratio=options.outside_tolerance_ratio)
            nicad_form_warnings(nicads, codes, territory, verdicts,
                                standard_lengths=tuple(nicad_rules.STANDARD_LENGTHS),
                                prefix_length=nicad_rules.COMMUNE_PREFIX_LENGTH)
            declared = pipeline.area_warnings(geoms, areas, declared, "declared_area" in columns, verdicts, options)
            texts = nicads.to_pylist()
            # As the staged path groups them: features with a NICAD and a shape (refused ones count too).
            held = np.zeros(size, dtype=bool)
            if repeated:
                held = np.array([t is not None and hash(t) in repeated and g is not None
                                 for t, g in zip(texts, geoms, strict=True)], dtype=bool)
            yield _Chunk(offset=offset, size=size, verdicts=verdicts, geoms=geoms, areas=areas, codes=codes,
                         declared=declared,
                         columns={t: mapped[t] if t in mapped else pa.nulls(size, pa.string())
                                  for t in pipeline.TARGETS_COPIED},
                         nicads=texts, nicad_array=nicads, fids=batch.column(fid_column).to_pylist(), held=held,
                         counts={k: checked[k] for k in ("null", "empty", "invalid")})
            offset += size


def _kept(chunk: _Chunk, i: int) -> tuple[Any, ...]:
    """Feature ``i`` of ``chunk`` as plain values, kept while its namesakes are read (see :func:`_one`).

    Plain values, not slices: a numpy or Arrow slice would keep the whole chunk (its shapes, its record
    batch) alive to the end, and the file with it; a chunk of one per feature weighs kilobytes.
    """
    return (chunk.offset + i, {k: v[i].as_py() for k, v in chunk.columns.items()}, chunk.nicads[i],
            chunk.geoms[i], float(chunk.areas[i]), chunk.codes[i], float(chunk.declared[i]), chunk.fids[i],
            chunk.head)


def _one(kept: tuple[Any, ...]) -> _Chunk:
    """A kept feature as a chunk of its own, to be written like any other."""
    offset, columns, nicad, geom, area, code, declared, fid, head = kept
    geoms = np.empty(1, dtype=object)
    geoms[0] = geom
    codes = np.empty(1, dtype=object)
    codes[0] = code
    return _Chunk(offset=offset, size=1, verdicts=Verdicts(1), geoms=geoms, areas=np.array([area]), codes=codes,
                  declared=np.array([declared]),
                  columns={k: pa.array([v], type=pa.string()) for k, v in columns.items()},
                  nicads=[nicad], nicad_array=pa.array([nicad], type=pa.string()), fids=[fid],
                  held=np.ones(1, dtype=bool), head=head)


class _Reader(threading.Thread):
    """Reads and checks the chunks ahead of the writer; an error reaches the writer in the queue."""

    DONE = object()

    def __init__(self, chunks: Iterator[_Chunk], *, bound: int, keep_shapes: bool, writer: _Writer) -> None:
        super().__init__(name="sifc-import-reader", daemon=True)
        self.chunks, self.writer = chunks, writer
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=bound)
        self.keep_shapes = keep_shapes
        self.shapes: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # pending (ords, shapes, areas)
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            for chunk in self.chunks:
                if self.stop.is_set():
                    return
                if self.keep_shapes:
                    live = np.flatnonzero(chunk.verdicts.pending)
                    self.shapes.append((live + chunk.offset, chunk.geoms[live], chunk.areas[live]))
                chunk.head = pipeline.time_ordered_ids(1, self.writer.prefix, 0)[0][:12]
                chunk.encoded = self.writer.encode(chunk)  # while the writer copies the previous chunk
                self._put(chunk)
            self._put(self.DONE)
        except BaseException as error:  # handed to the writer, which raises it in the caller's thread
            self._put(error)

    def _put(self, item: Any) -> None:
        while not self.stop.is_set():  # a writer that failed stops taking: give up rather than wait forever
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[_Chunk]:
        while True:
            item = self.queue.get()
            if item is self.DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def _multi(geoms: np.ndarray, *, hex_: bool = False) -> np.ndarray:
    """Storage EWKB of each shape, as a MultiPolygon (ST_Multi); in hexadecimal with ``hex_``."""
    single = shapely.get_type_id(geoms) == 3
    out = geoms.copy()
    if single.any():
        out[single] = shapely.multipolygons(geoms[single], indices=np.arange(int(single.sum())))
    encoded: np.ndarray = shapely.to_wkb(shapely.set_srid(out, STORAGE_SRID), include_srid=True, hex=hex_)
    return encoded


def violated(error: BaseException, constraint: str) -> bool:
    """Whether ``error`` (the driver's, or SQLAlchemy's wrapping it) is a violation of ``constraint``."""
    diag = getattr(getattr(error, "orig", error), "diag", None)
    return getattr(diag, "constraint_name", None) == constraint


def _csv(table: pa.Table) -> bytes:
    """A table as COPY's CSV (no header; a null is an empty unquoted field), written by Arrow in C++."""
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
    return bytes(sink.getvalue())


def _array_literals(codes: list[tuple[str, ...]]) -> pa.Array:
    """Codes as PostgreSQL array literals (codes are plain identifiers: nothing to quote)."""
    literal = {c: "{" + ",".join(c) + "}" for c in set(codes)}
    return pa.array([literal[c] for c in codes], type=pa.string())


class _Writer:
    """The caller's side: the registry's answers, the copies, and the file's outcome so far."""

    def __init__(self, session: Session, batch_id: uuid.UUID, options: Any, report: Any) -> None:
        self.session, self.batch_id, self.options, self.report = session, batch_id, options, report
        self.reason = f"import {report.file}"
        self.prefix = os.urandom(6)
        raw = session.connection().connection.driver_connection
        assert raw is not None  # a live psycopg connection: the session holds it for the transaction
        self.raw = raw
        self.held = _Held()
        self.written = 0
        self.heads: list[tuple[int, bytes]] = []  # (first ord, first 12 bytes of its chunk's ids)

    def parcel_id(self, ord_: int) -> bytes:
        """The id the writer gave the feature ``ord_`` (its chunk's head, then its position)."""
        head = self.heads[bisect.bisect_right(self.heads, (ord_, b"\xff" * 12)) - 1][1]
        return head + ord_.to_bytes(4, "big")

    def _ids(self, head_bytes: bytes, ords: np.ndarray) -> pa.Array:
        """The ids of the features ``ords`` (all of one chunk, whose ids start with ``head_bytes``) as texts."""
        head = head_bytes.hex()
        text_head = f"{head[:8]}-{head[8:12]}-{head[12:16]}-{head[16:20]}-{head[20:24]}"
        return pa.array([f"{text_head}{o:08x}" for o in ords.tolist()], type=pa.string())

    def _taken(self, nicads: list[str]) -> set[str]:
        if not nicads:
            return set()
        return set(self.session.execute(text(
            "SELECT nicad FROM parcel_version WHERE valid_to IS NULL AND nicad = ANY(:nicads)"),
            {"nicads": nicads}).scalars())

    def chunk(self, chunk: _Chunk) -> None:
        verdicts = chunk.verdicts
        names = {"null": "null_geometries", "empty": "empty_geometries", "invalid": "invalid"}
        for key, value in chunk.counts.items():
            setattr(self.report, names[key], getattr(self.report, names[key]) + value)
        self.heads.append((chunk.offset, chunk.head))
        for i in np.flatnonzero(chunk.held).tolist():  # judged with their namesakes at the end
            self.held.ords.append(chunk.offset + i)
            self.held.nicads.append(str(chunk.nicads[i]))
            self.held.geoms.append(chunk.geoms[i])
            self.held.status.append(str(verdicts.status[i]))
            if verdicts.status[i] == "pending":
                self.held.warnings[chunk.offset + i] = verdicts.codes(verdicts.warnings, i, i + 1)[0]
                self.held.chunks[chunk.offset + i] = _kept(chunk, i)
        # A NICAD current elsewhere (one index probe each; a savepoint per chunk to let the unique index find
        # them instead held memory in the server to the end of the transaction: 2 GB at ten million parcels).
        accepted = verdicts.pending & ~chunk.held
        taken = self._taken([n for n in (chunk.nicads[i] for i in np.flatnonzero(accepted)) if n is not None])
        if taken:
            verdicts.reject(np.array([accepted[i] and chunk.nicads[i] in taken for i in range(chunk.size)],
                                     dtype=bool), "nicad_taken")
        versions, stage = chunk.encoded if chunk.encoded and not taken else self.encode(chunk)
        self._copy(VERSION_COPY, versions)
        self._copy(STAGE_COPY, stage)

    def encode(self, chunk: _Chunk) -> tuple[tuple[bytes, int], tuple[bytes, int]]:
        """The chunk's copies (registry rows, verdicts) as CSV, with their row counts.

        Made by the reader thread ahead of the writer; made again by the writer if the registry holds a NICAD.
        """
        verdicts = chunk.verdicts
        accepted = verdicts.pending & ~chunk.held
        versions = self._versions(chunk, np.flatnonzero(accepted), chunk.head)
        staged = np.flatnonzero(~(chunk.held & verdicts.pending))  # held pending ones: once judged
        stage = self._stage(chunk, staged, verdicts, staged, accepted[staged], chunk.head)
        return (_csv(versions), versions.num_rows), (_csv(stage), stage.num_rows)

    def _versions(self, chunk: _Chunk, index: np.ndarray, head: bytes) -> pa.Table:
        """The chunk's features ``index`` as registry rows, in VERSION_COPY's columns."""
        n = len(index)
        take = pa.array(index, type=pa.int64())
        nicads = chunk.nicad_array.take(take)
        cols = {k: v.take(take) for k, v in chunk.columns.items()}
        declared = chunk.declared[index]
        return pa.table({
            "parcel_id": self._ids(head, chunk.offset + index), "version": pa.repeat(1, n),
            "nicad": nicads,
            "nicad_status": pc.if_else(pc.is_null(nicads), pa.scalar("absent"), pa.scalar("attribue")),
            "commune_code": pa.array(chunk.codes[index], type=pa.string()),
            "section": cols["section"], "local_number": cols["local_number"], "source_id": cols["source_id"],
            "geom": pa.array(_multi(chunk.geoms[index], hex_=True) if n else [], type=pa.string()),
            "declared_area_m2": pa.array(declared, type=pa.float64(), mask=np.isnan(declared)),
            "land_use": cols["land_use"], "tenure_regime": cols["tenure_regime"],
            "batch_id": pa.repeat(str(self.batch_id), n), "action": pa.repeat("import", n),
            "author": pa.repeat(self.options.author, n), "reason": pa.repeat(self.reason, n),
        })

    def _copy(self, statement: str, data: tuple[bytes, int]) -> None:
        if data[1] == 0:
            return
        with self.raw.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(data[0])
        if statement is VERSION_COPY:
            self.written += data[1]

    def _stage(self, chunk: _Chunk, index: np.ndarray, verdicts: Verdicts, local: np.ndarray,
               accepted: np.ndarray, head: bytes) -> pa.Table:
        """Each feature's verdict (no shape: accepted ones are in the registry), as the staged path keeps it.

        ``index``: the features in the chunk; ``local``: their positions in ``verdicts``.
        """
        all_reasons = verdicts.codes(verdicts.reasons, 0, verdicts.n)
        all_warnings = verdicts.codes(verdicts.warnings, 0, verdicts.n)
        status = np.where(verdicts.status[local] == "pending", "accepted", verdicts.status[local])
        take = pa.array(index, type=pa.int64())
        cols = {k: v.take(take) for k, v in chunk.columns.items()}
        declared = chunk.declared[index]
        areas = chunk.areas[index]
        present = ~shapely.is_missing(chunk.geoms[index])
        ids = self._ids(head, chunk.offset + index)
        return pa.table({
            "ord": pa.array(chunk.offset + index, type=pa.int64()),
            "nicad_raw": cols["nicad"], "nicad": chunk.nicad_array.take(take),
            **{k: cols[k] for k in ("section", "local_number", "declared_area", "land_use", "tenure_regime",
                                    "source_id")},
            "declared_area_num": pa.array(declared, type=pa.float64(), mask=np.isnan(declared)),
            "area": pa.array(areas, type=pa.float64(), mask=~present),
            "commune_code": pa.array(chunk.codes[index], type=pa.string()),
            "change": pa.array(np.where(accepted, "new", ""), type=pa.string(), mask=~accepted),
            "status": pa.array(status.tolist(), type=pa.string()),
            "reasons": _array_literals([all_reasons[j] for j in local.tolist()]),
            "warnings": _array_literals([all_warnings[j] for j in local.tolist()]),
            "parcel_id": pc.if_else(pa.array(accepted), ids, pa.scalar(None, pa.string())),
        })

    def resolve_held(self) -> None:
        """The features with a repeated NICAD, judged together (as the staged path does), then written."""
        if not self.held.ords:
            return
        n = len(self.held.ords)
        verdicts = Verdicts(n)
        verdicts.status[:] = self.held.status
        for local, ord_ in enumerate(self.held.ords):  # their warnings as their chunk gave them
            for code in self.held.warnings.get(ord_, ()):
                verdicts.warn_any(np.array([local]), code)
        geoms = np.empty(n, dtype=object)
        geoms[:] = self.held.geoms
        groups: dict[str, list[int]] = {}
        for local, nicad in enumerate(self.held.nicads):
            groups.setdefault(nicad, []).append(local)
        resolve_repeated(groups, geoms, verdicts)
        keep = [local for local in range(n) if verdicts.status[local] == "pending"]
        taken = self._taken([self.held.nicads[local] for local in keep])
        verdicts.reject(np.array([local for local in keep if self.held.nicads[local] in taken], dtype=np.int64),
                        "nicad_taken")
        versions, stage = [], []
        for local, ord_ in enumerate(self.held.ords):
            if ord_ not in self.held.chunks:
                continue  # refused when read: listed then
            one = _one(self.held.chunks[ord_])
            head = one.head  # the id it would have had in its chunk
            kept = verdicts.status[local] == "pending"
            if kept:
                versions.append(self._versions(one, np.array([0]), head))
            stage.append(self._stage(one, np.array([0]), verdicts, np.array([local]), np.array([kept]), head))
        if versions:
            table = pa.concat_tables(versions)
            self._copy(VERSION_COPY, (_csv(table), table.num_rows))
        if stage:
            table = pa.concat_tables(stage)
            self._copy(STAGE_COPY, (_csv(table), table.num_rows))


def _territory(session: Session, box: tuple[float, float, float, float]) -> Territory:
    rows = session.execute(text(f"""
        SELECT level, code, ST_AsBinary(geom) FROM territory_piece
        WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID})
    """), {"x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3]}).all()
    communes = session.execute(text("SELECT code, boundary_status, national_code FROM commune")).all()
    pieces = np.empty(len(rows), dtype=object)
    pieces[:] = shapely.from_wkb([bytes(r[2]) for r in rows]) if rows else []
    return Territory(pieces=pieces, level=np.array([r[0] for r in rows], dtype=object),
                     code=np.array([r[1] for r in rows], dtype=object),
                     commune_status={c[0]: c[1] for c in communes}, national_code={c[0]: c[2] for c in communes})


def _ord(parcel_id: uuid.UUID) -> int:
    return int.from_bytes(parcel_id.bytes[12:], "big")


def _tiles(session: Session, x0: float, y0: float, x1: float, y1: float, side: float) -> Iterator[tuple[float, ...]]:
    """Tiles of a grid over the box holding current parcels, those with more than 2 x TILE_PARCELS quartered.

    A first load's extent held no current parcel before it (``eligible``): what the registry's spatial
    index finds there now is the batch's own.
    """
    count = text(f"""SELECT count(*) FROM parcel_version
                     WHERE valid_to IS NULL AND geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID})""")
    stack = [(float(tx), float(ty), float(tx + side), float(ty + side))
             for tx in np.arange(x0, x1 + side, side) for ty in np.arange(y0, y1 + side, side)]
    while stack:
        tile = stack.pop()
        n = session.execute(count, dict(zip(("x0", "y0", "x1", "y1"), tile, strict=True))).scalar() or 0
        if n < 2:
            continue
        if n > 2 * TILE_PARCELS and tile[2] - tile[0] > 100.0:
            mx, my = (tile[0] + tile[2]) / 2, (tile[1] + tile[3]) / 2
            stack += [(tile[0], tile[1], mx, my), (mx, tile[1], tile[2], my), (tile[0], my, mx, tile[3]),
                      (mx, my, tile[2], tile[3])]
            continue
        yield tile


def _overlaps_in_registry(session: Session, batch_id: uuid.UUID, options: Any, count: int) -> np.ndarray:
    """The batch's overlapping pairs (ords), searched tile by tile in the registry's spatial index.

    Memory is bounded by a tile (at most about 2 x TILE_PARCELS parcels), not by the file.
    """
    box = session.execute(text("""
        SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
        FROM (SELECT ST_Extent(geom) AS e FROM parcel_version WHERE batch_id = :b AND valid_to IS NULL) x
    """), {"b": batch_id}).one()
    if box[0] is None or count < 2:
        return np.zeros((0, 2), dtype=np.int64)
    x0, y0, x1, y1 = (float(v) for v in box)
    # Square tiles holding about TILE_PARCELS parcels were they spread evenly; the empty ones cost one probe.
    side = max(math.sqrt((x1 - x0) * (y1 - y0) * TILE_PARCELS / count), 500.0)
    found = []
    for tile in _tiles(session, x0, y0, x1, y1, side):
        rows = session.execute(text(f"""
            SELECT parcel_id, ST_AsBinary(geom), batch_id = :b FROM parcel_version
            WHERE valid_to IS NULL AND geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID})
        """), {"b": batch_id, **dict(zip(("x0", "y0", "x1", "y1"), tile, strict=True))}).all()
        rows = [r for r in rows if r[2]]
        if len(rows) < 2:
            continue
        ords = np.array([_ord(r[0]) for r in rows], dtype=np.int64)
        geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
        del rows
        pairs = overlapping_pairs(geoms, shapely.area(geoms), np.ones(len(geoms), dtype=bool),
                                  tolerance_m2=options.overlap_tolerance_m2,
                                  tolerance_ratio=options.overlap_tolerance_ratio)
        if len(pairs):
            found.append(np.sort(ords[pairs], axis=1))
    result: np.ndarray = np.unique(np.concatenate(found), axis=0) if found else np.zeros((0, 2), dtype=np.int64)
    return result


def _withdraw(session: Session, batch_id: uuid.UUID, ids: list[bytes], ords: list[int], reason: str) -> None:
    """Refuse written parcels of the batch: their versions withdrawn, their verdicts say why."""
    if not ids:
        return
    session.execute(text("SELECT set_config('sifc.withdraw_batch', :b, true)"), {"b": str(batch_id)})
    session.execute(text("""
        DELETE FROM parcel_version WHERE batch_id = :b AND valid_to IS NULL AND parcel_id = ANY(CAST(:ids AS uuid[]))
    """), {"b": batch_id, "ids": [uuid.UUID(bytes=i) for i in ids]})
    session.execute(text("SELECT set_config('sifc.withdraw_batch', '', true)"))
    pipeline._reject_accepted(session, reason, "s.ord = ANY(:ords)", ords=ords)
    session.execute(text("UPDATE stage_parcel SET parcel_id = NULL WHERE ord = ANY(:ords)"), {"ords": ords})


def load(session: Session, info: SourceInfo, columns: dict[str, str], options: Any, commune: str | None,
         report: Any, box: tuple[float, float, float, float], notify: Any, timings: dict[str, float],
         clock: Any) -> None:
    """Stream ``info``'s features into the registry as a new batch (see the module's docstring)."""
    started = clock()
    repeated = repeated_nicads(info, columns, options.chunk_size)
    territory = _territory(session, box)
    pipeline.create_stage(session)
    batch_id = uuid.uuid4()
    report.batch_id = str(batch_id)
    # The batch row first (each copy checks its rows name an existing batch), completed at the end.
    batch_commune = commune or _first_commune(territory, box)
    session.execute(text("""
        INSERT INTO import_batch (id, kind, file_name, sha256, options, counts, report, created_by, synthetic,
                                  commune_code)
        VALUES (:id, 'parcels', :file, :sha, CAST(:options AS jsonb), '{}', '{}', :author, :synthetic, :commune)
    """), {"id": batch_id, "file": report.file, "sha": report.sha256, "options": orjson.dumps(report.options).decode(),
           "author": options.author, "synthetic": options.synthetic, "commune": batch_commune})
    keep_shapes = info.features <= IN_MEMORY_OVERLAPS
    writer = _Writer(session, batch_id, options, report)
    reader = _Reader(_chunks(info, columns, options, territory, commune, repeated),
                     bound=0 if keep_shapes else 2, keep_shapes=keep_shapes, writer=writer)
    timings["read"] += clock() - started
    mark = clock()
    pool_future = None
    reader.start()
    try:
        read = 0
        for chunk in reader:
            writer.chunk(chunk)
            read += chunk.size
            notify("inserting", read, info.features)
            if pool_future is None and keep_shapes and not reader.is_alive():
                pool_future = _search_in_memory(reader, options)
        report.read = read
        if keep_shapes and pool_future is None:
            pool_future = _search_in_memory(reader, options)
        writer.resolve_held()
    finally:
        reader.stop.set()
    timings["stage"] += clock() - mark
    mark = clock()
    pairs = pool_future.result() if pool_future is not None else _overlaps_in_registry(
        session, batch_id, options, writer.written)
    if len(pairs):
        refused = set(session.execute(text("""
            SELECT ord FROM stage_parcel WHERE ord = ANY(:ords) AND status <> 'accepted'"""),
            {"ords": sorted({int(o) for o in pairs.ravel()})}).scalars())
        hit = sorted({int(o) for a, b in pairs.tolist() if a not in refused and b not in refused for o in (a, b)})
        _withdraw(session, batch_id, [writer.parcel_id(o) for o in hit], hit, "overlap_in_file")
    timings["validate"] += clock() - mark
    mark = clock()
    pipeline._summarize(session, report)
    final_commune = commune or min(report.communes, default=batch_commune)
    counts = {"read": report.read, "accepted": report.accepted, "rejected": report.rejected,
              "duplicates": report.duplicates, "warnings": report.warnings_by_code, "changes": report.changes}
    session.execute(text("""
        UPDATE import_batch SET counts = CAST(:counts AS jsonb), report = CAST(:report AS jsonb), commune_code = :c
        WHERE id = :id"""), {"id": batch_id, "counts": orjson.dumps(counts).decode(),
                             "report": orjson.dumps(report.as_dict()).decode(), "c": final_commune})
    actor = Principal(kind=options.actor_kind, role=options.actor_role, name=options.author)
    journal.record(session, actor, operation="import.batch", object_kind="import_batch", object_id=batch_id,
                   after={"file": report.file, "sha256": report.sha256, "counts": counts, "communes": report.communes})
    timings["commit"] += clock() - mark


def _first_commune(territory: Territory, box: tuple[float, float, float, float]) -> str:
    """A commune of the file's extent, for the batch row until the file's own are known (see _summarize)."""
    codes = sorted(c for c in territory.codes.tolist() if c)
    if not codes:
        raise ImportRejected("import.no_commune")
    return str(codes[0])


def _search_in_memory(reader: _Reader, options: Any) -> Any:
    """The file's overlapping pairs, searched in a thread (GEOS releases the GIL) beside the copy."""
    from concurrent.futures import ThreadPoolExecutor

    reader.join()
    ords = np.concatenate([s[0] for s in reader.shapes]) if reader.shapes else np.empty(0, dtype=np.int64)
    geoms = np.concatenate([s[1] for s in reader.shapes]) if reader.shapes else np.empty(0, dtype=object)
    areas = np.concatenate([s[2] for s in reader.shapes]) if reader.shapes else np.empty(0)
    reader.shapes = []
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sifc-overlaps")

    def search() -> np.ndarray:
        pairs = overlapping_pairs(geoms, areas, np.ones(len(geoms), dtype=bool),
                                  tolerance_m2=options.overlap_tolerance_m2,
                                  tolerance_ratio=options.overlap_tolerance_ratio)
        return ords[pairs] if len(pairs) else np.zeros((0, 2), dtype=np.int64)

    future = executor.submit(search)
    executor.shutdown(wait=False)
    return future


def keep_rejected_sources(session: Session, info: SourceInfo) -> None:
    """The refused features' attributes and shapes as read, from the file again (by position), for the rejects."""
    ords = list(session.execute(text("SELECT ord FROM stage_parcel WHERE status <> 'accepted' ORDER BY ord"))
                .scalars())
    if not ords:
        return
    encoding = info.encoding if info.fmt == "ESRI Shapefile" else None
    wanted = set(ords)
    found: dict[int, tuple[str, str | None]] = {}
    position = 0
    fields = [f for f in info.fields if f != pipeline.PRE_REJECT_FIELD]
    with open_arrow(info.path, layer=info.layer, encoding=encoding, use_pyarrow=True,
                    batch_size=20_000) as (meta, reader):
        geometry_column = meta.get("geometry_name") or "wkb_geometry"
        for batch in reader:
            local = [o - position for o in range(position, position + batch.num_rows) if o in wanted]
            if local:
                part = batch.take(pa.array(local))
                shapes = shapely.force_2d(shapely.from_wkb(part.column(geometry_column).to_numpy(
                    zero_copy_only=False), on_invalid="ignore")) if geometry_column in part.schema.names \
                    else [None] * len(local)
                for row, (o, shape) in enumerate(zip(local, shapes, strict=True)):
                    attrs = {f: part.column(f)[row].as_py() for f in fields if f in part.schema.names}
                    found[position + o] = (orjson.dumps(attrs, default=pipeline._json_default,
                                                        option=orjson.OPT_NON_STR_KEYS).decode(),
                                           None if shape is None else shapely.to_wkb(shape, hex=True))
            position += batch.num_rows
    session.execute(text("""
        UPDATE stage_parcel s SET attrs = CAST(v.attrs AS jsonb),
               src = ST_SetSRID(ST_GeomFromWKB(decode(v.src, 'hex')), CAST(:srid AS integer))
        FROM unnest(CAST(:ords AS integer[]), CAST(:attrs AS text[]), CAST(:sources AS text[])) v(ord, attrs, src)
        WHERE s.ord = v.ord
    """), {"ords": list(found), "attrs": [v[0] for v in found.values()], "sources": [v[1] for v in found.values()],
           "srid": info.srid})
