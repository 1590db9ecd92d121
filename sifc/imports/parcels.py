"""``sifc import parcels``: load a surveyor's file into the parcel registry.

The file is streamed in chunks into a temporary staging table with ``COPY`` (memory does
not grow with the file), then every check runs in PostGIS with spatial indexes, feature
by feature, each outcome under a stable reason code:

- rejected: null or empty geometry; invalid geometry with ``on_invalid="reject"`` (else
  repaired with ``ST_MakeValid`` and reported); outside Senegal; in no commune, or outside
  the given commune beyond the tolerance; one NICAD on two different geometries (both); a
  NICAD already held by a current parcel; interiors overlapping another parcel of the file
  or a current parcel beyond the tolerance (default 1 m² and 1 % of the smaller);
- imported once: an exact duplicate (same NICAD, same geometry);
- warnings: declared vs computed area, missing declared area, non-standard NICAD, NICAD
  prefix other than the commune's national code, parcel in a provisional commune, parcel
  straddling communes, repaired geometry.

The accepted parcels and the batch record are written in the caller's transaction: the
batch commits whole or not at all. A refusal of the whole file raises
:class:`ImportRejected` before anything is written.
"""

from __future__ import annotations

import copy
import functools
import getpass
import hashlib
import os
import struct
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyogrio.raw import open_arrow, read_arrow
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sifc import bounds, journal
from sifc.auth.principal import Principal
from sifc.bornes import service as bornes
from sifc.crs import STORAGE_SRID
from sifc.db import act_as
from sifc.errors import ImportRejected
from sifc.i18n import Lang, known, translate
from sifc.imports import mapping as field_mapping
from sifc.imports.checks import (
    Territory,
    Verdicts,
    check_geometries,
    check_nicads,
    locate,
    overlapping_pairs,
)
from sifc.imports.source import SourceInfo, open_source
from sifc.parcels import nicad as nicad_rules
from sifc.text import search_form

Progress = Callable[[str, int, int], None]
MAX_LISTED_ISSUES = 1000

# Why a feature is refused: their words are the msgids ``import.reason.<code>`` of the catalogues.
REASONS = frozenset({
    "null_geometry", "empty_geometry", "invalid_geometry", "unrepairable_geometry", "reprojection_failed",
    "outside_senegal", "no_commune", "outside_commune", "nicad_conflict", "nicad_taken", "duplicate",
    "overlap_in_file", "overlap_existing", "under_litige", "ring_open", "ring_too_few_vertices",
    "ring_self_intersecting"
})
# What is noted on an accepted feature: their words are the msgids ``import.warning.<code>`` of the catalogues.
WARNINGS = frozenset({
    "invalid_repaired", "area_mismatch", "declared_area_missing", "declared_area_out_of_bounds",
    "nicad_nonstandard", "nicad_prefix", "provisional_commune", "straddles_communes", "sliver"
})
SLIVER_MEAN_WIDTH_M = 0.5
# Geometry types a parcel file may not hold, by GEOS type id, for the refusal of the whole file.
GEOMETRY_NAMES = {1: "Point", 2: "LineString", 4: "MultiPoint", 5: "MultiLineString", 7: "GeometryCollection"}
# Column of a converted file (DXF, bornes) carrying a feature-level refusal found while converting.
PRE_REJECT_FIELD = "sifc_reject"
# What is noted on the file as a whole: their words are the msgids ``import.note.<code>`` of the catalogues.
FILE_NOTES = frozenset({
    "shx_rebuilt", "dbf_missing", "cpg_unknown", "encoding_fallback", "z_dropped", "m_dropped", "crs_overridden",
    "dxf_ignored", "dxf_texts_outside"
})


def describe(kind: Literal["reason", "warning", "note"], code: str, lang: Lang = "fr") -> str:
    """A refusal reason, a warning or a file note in words; an unknown code as itself."""
    key = f"import.{kind}.{code}"
    return translate(key, lang) if known(key) else code


@dataclass
class ParcelImportOptions:
    """Options of one parcel import (see ``sifc import parcels --help``)."""

    commune: str | None = None
    crs: str | None = None
    layer: str | None = None
    mapping: dict[str, str] | None = None
    encoding: str | None = None
    dry_run: bool = False
    on_invalid: Literal["repair", "reject"] = "repair"
    overlap_tolerance_m2: float = 1.0
    overlap_tolerance_ratio: float = 0.01
    outside_tolerance_m2: float = 1.0
    outside_tolerance_ratio: float = 0.01
    area_tolerance_ratio: float = 0.10
    author: str = field(default_factory=lambda: _default_author())
    synthetic: bool = False
    chunk_size: int = 20_000
    actor_kind: str = "cli"  # who submitted it, for the write audit: cli, user or api_key
    actor_role: str = "administrateur"
    campaign: str | None = None  # a systematic campaign's import: its presumed holders are read (ADR 0005 §5)


def _default_author() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "sifc"


@dataclass
class ParcelImportReport:
    """Everything an import found, for the analyst (JSON, CLI summary, GeoPackage of rejects)."""

    file: str
    sha256: str
    format: str = ""
    layer: str | None = None
    crs: str = ""
    crs_origin: str = ""
    encoding: str | None = None
    encoding_origin: str | None = None
    geometry_type: str = ""
    mapping: dict[str, str] = field(default_factory=dict)
    attributes: int = 0
    read: int = 0
    null_geometries: int = 0
    empty_geometries: int = 0
    invalid: int = 0
    repaired: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    warnings_by_code: dict[str, int] = field(default_factory=dict)
    file_notes: list[dict[str, object]] = field(default_factory=list)
    communes: dict[str, int] = field(default_factory=dict)
    # Communes with provisional boundaries that received parcels: said once here; their parcels
    # count under the warning provisional_commune but are not each listed among the issues for it.
    provisional_communes: list[str] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)
    matched_by: dict[str, int] = field(default_factory=dict)
    issues: list[dict[str, object]] = field(default_factory=list)
    issues_truncated: bool = False
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("read", "stage", "validate", "commit"),
                                                                            0.0))
    dry_run: bool = False
    batch_id: str | None = None
    already_imported: dict[str, str] | None = None
    options: dict[str, object] = field(default_factory=dict)
    # A table of bornes: what became of its points in the registry of bornes (sifc.bornes.service).
    bornes: dict[str, int] | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def file_sha256(path: Path) -> str:
    """sha256 of a file, or of a shapefile's parts (or a folder's files) in name order."""
    digest = hashlib.sha256()
    if path.is_dir():
        parts = sorted(p for p in path.rglob("*") if p.is_file())
    elif path.suffix.lower() == ".shp":
        parts = sorted(p for p in path.parent.iterdir() if p.stem == path.stem and p.is_file())
    else:
        parts = [path]
    for part in parts:
        digest.update(part.name.encode())
        with part.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


STAGE_DDL = """
CREATE TEMP TABLE stage_parcel (
    ord integer PRIMARY KEY,
    src geometry,
    nicad_raw text,
    nicad text,
    section text,
    local_number text,
    declared_raw text,
    land_use text,
    tenure_regime text,
    source_id text,
    declared_area double precision,
    geom geometry,
    area double precision,
    commune_code text,
    change text,
    status text NOT NULL,
    reasons text[] NOT NULL DEFAULT '{}',
    warnings text[] NOT NULL DEFAULT '{}',
    attrs jsonb,
    parcel_id uuid,
    match_id uuid,
    match_version integer,
    match_by text,
    changed_fields text[]
) ON COMMIT DROP
"""
STAGE_COPY = ("COPY stage_parcel (ord, src, nicad_raw, nicad, section, local_number, declared_raw, land_use, "
              "tenure_regime, source_id, declared_area, geom, area, commune_code, change, status, reasons, warnings, "
              "parcel_id) "
              "FROM STDIN (FORMAT BINARY)")
# PostGIS reads a geometry sent in binary as (E)WKB: the driver only has to pass the bytes.
STAGE_TYPES = ["int4", "bytea", "text", "text", "text", "text", "text", "text", "text", "text", "float8", "bytea",
               "float8", "text", "text", "text", "bytea", "bytea", "bytea"]
TEXT_OID = 25


@functools.lru_cache(maxsize=4096)
def _text_array(values: tuple[str, ...]) -> bytes:
    """A text[] in PostgreSQL's binary format (the few distinct code lists are encoded once)."""
    if not values:
        return struct.pack("!iii", 0, 0, TEXT_OID)
    items = [value.encode() for value in values]
    return struct.pack("!iiiii", 1, 0, TEXT_OID, len(items), 1) + b"".join(
        struct.pack("!i", len(item)) + item for item in items)


FIDS_PER_READ = 4000
# Warnings that only make sense on a parcel that is imported.
ACCEPTED_ONLY_WARNINGS = ("sliver", "declared_area_missing", "declared_area_out_of_bounds", "area_mismatch")


def _text_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:
            return None
        if value.is_integer():
            return str(int(value))
    result = str(value).strip()
    return result or None


def _json_default(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


@dataclass
class _Features:
    """A file's features as read, batch by batch, in compact Arrow arrays (not Python objects)."""

    batches: list[Any]
    wkb: list[Any]
    mapped: dict[str, list[Any]]
    nicads: list[Any]
    declared: list[np.ndarray]
    pre_reject: list[Any] | None
    fields: list[str]
    offsets: list[int] = field(default_factory=list)
    fids: list[Any] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many features were read."""
        return sum(batch.num_rows for batch in self.batches)

    def source_wkb(self, info: SourceInfo, ords: list[int]) -> np.ndarray:
        """The geometries of the features ``ords`` as read (WKB), read again from the file by feature id.

        Only refused features need them, so the file's geometries are not kept in memory.
        """
        fids = []
        for ord_ in ords:
            index = int(np.searchsorted(self.offsets, ord_, side="right")) - 1
            fids.append(self.fids[index][ord_ - self.offsets[index]].as_py())
        encoding = info.encoding if info.fmt == "ESRI Shapefile" else None
        by_fid: dict[int, bytes | None] = {}
        for start in range(0, len(fids), FIDS_PER_READ):  # GDAL's SQL takes a few thousand ids at a time
            meta, table = read_arrow(info.path, layer=info.layer, encoding=encoding,
                                     fids=fids[start:start + FIDS_PER_READ], columns=[], return_fids=True)
            by_fid.update(zip(table.column(0).to_pylist(),
                              table.column(meta.get("geometry_name") or "wkb_geometry").to_pylist(), strict=True))
        out = np.empty(len(ords), dtype=object)
        out[:] = [by_fid.get(fid) for fid in fids]
        return out

    def attributes(self, ords: list[int]) -> list[str]:
        """The source attributes of the features ``ords``, as JSON texts."""
        wanted = sorted(ords)
        out: dict[int, str] = {}
        start, position = 0, 0
        for batch in self.batches:
            stop = start + batch.num_rows
            while position < len(wanted) and wanted[position] < stop:
                row = {f: batch.column(f)[wanted[position] - start].as_py() for f in self.fields
                       if f in batch.schema.names}
                out[wanted[position]] = orjson.dumps(row, default=_json_default,
                                                     option=orjson.OPT_NON_STR_KEYS).decode()
                position += 1
            start = stop
        return [out[o] for o in ords]


def _normalized(values: Any) -> Any:
    """A column's values as trimmed texts, None for empty ones (whole numbers without ".0"), vectorised."""
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        trimmed = pc.utf8_trim_whitespace(values)
        return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, trimmed.type), trimmed).cast(pa.string())
    if pa.types.is_integer(kind):
        return pc.cast(values, pa.string())
    if pa.types.is_floating(kind):
        whole = pc.and_(pc.and_(pc.is_finite(values), pc.less(pc.abs(values), 2.0**53)),
                        pc.equal(pc.floor(values), values))
        as_integer = pc.cast(pc.cast(pc.if_else(whole, values, 0.0), pa.int64()), pa.string())
        text = pc.if_else(whole, as_integer, pc.cast(values, pa.string()))
        return pc.if_else(pc.is_nan(values), pa.scalar(None, pa.string()), text)
    return pa.array([_text_value(v) for v in values.to_pylist()], type=pa.string())


def _clean_nicads(values: Any) -> Any:
    """NICADs of normalised texts: placeholders ("N/A", "0"…) are none, inner spaces removed."""
    placeholder = pc.is_in(pc.utf8_upper(values), value_set=pa.array(sorted(nicad_rules.PLACEHOLDERS)))
    return pc.if_else(placeholder, pa.scalar(None, pa.string()), pc.replace_substring_regex(values, r"\s+", ""))


def _declared(raw: Any, texts: Any) -> np.ndarray:
    """Declared areas: numbers as they are, texts as surveyors write them ("1 234,5")."""
    if pa.types.is_integer(raw.type) or pa.types.is_floating(raw.type):
        return np.asarray(pc.cast(raw, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    return np.array([_area(v) for v in texts.to_pylist()], dtype=float)


def _read(info: SourceInfo, columns: dict[str, str], options: ParcelImportOptions,
          notify: Progress) -> _Features:
    """Read every feature of the file; attribute values are normalised as they come (Arrow arrays)."""
    encoding = info.encoding if info.fmt == "ESRI Shapefile" else None
    features = _Features(batches=[], wkb=[], mapped={target: [] for target in columns}, nicads=[], declared=[],
                         pre_reject=None, fields=[])
    read = 0
    try:
        with open_arrow(info.path, layer=info.layer, encoding=encoding, use_pyarrow=True, return_fids=True,
                        batch_size=options.chunk_size) as (meta, reader):
            geometry_column = meta.get("geometry_name") or "wkb_geometry"
            fid_column = meta.get("fid_column") or "OGC_FID"
            all_fields = [str(f) for f in meta.get("fields", [])]
            features.fields = [f for f in all_fields if f != PRE_REJECT_FIELD]
            if PRE_REJECT_FIELD in all_fields:
                features.pre_reject = []
            for batch in reader:
                names = batch.schema.names
                features.offsets.append(read)
                features.fids.append(batch.column(fid_column))
                features.wkb.append(batch.column(geometry_column) if geometry_column in names
                                    else pa.nulls(batch.num_rows, pa.binary()))
                for target, column in columns.items():
                    features.mapped[target].append(_normalized(batch.column(column)))
                features.nicads.append(_clean_nicads(features.mapped["nicad"][-1]) if "nicad" in columns
                                       else pa.nulls(batch.num_rows, pa.string()))
                features.declared.append(_declared(batch.column(columns["declared_area"]),
                                                   features.mapped["declared_area"][-1])
                                         if "declared_area" in columns else np.full(batch.num_rows, np.nan))
                if features.pre_reject is not None:
                    features.pre_reject.append(batch.column(PRE_REJECT_FIELD))
                features.batches.append(batch.drop_columns(
                    [c for c in (geometry_column, PRE_REJECT_FIELD, fid_column) if c in names]))
                read += batch.num_rows
                notify("reading", read, info.features)
    except ImportRejected:
        raise
    except Exception as error:  # GDAL and Arrow raise several types for broken files
        raise ImportRejected("import.unreadable", path=info.path.name,
                             reason=str(error).splitlines()[0][:200]) from error
    return features


def _territory(session: Session, geoms: np.ndarray) -> Territory:
    """The territorial pieces under the file's extent, and the communes' status and national code."""
    present = geoms[np.array([g is not None for g in geoms])]
    xmin, ymin, xmax, ymax = shapely.total_bounds(present) if len(present) else (0.0, 0.0, 0.0, 0.0)
    rows = _sql(session, f"""
        SELECT level, code, ST_AsBinary(geom) FROM territory_piece
        WHERE geom && ST_MakeEnvelope(:xmin, :ymin, :xmax, :ymax, {STORAGE_SRID})
    """, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax).all()
    communes = _sql(session, "SELECT code, boundary_status, national_code FROM commune").all()
    pieces = np.empty(len(rows), dtype=object)
    pieces[:] = shapely.from_wkb([bytes(r[2]) for r in rows]) if rows else []
    return Territory(pieces=pieces, level=np.array([r[0] for r in rows], dtype=object),
                     code=np.array([r[1] for r in rows], dtype=object),
                     commune_status={c[0]: c[1] for c in communes}, national_code={c[0]: c[2] for c in communes})


def _validate(session: Session, info: SourceInfo, features: _Features, options: ParcelImportOptions,
              commune: str | None, report: ParcelImportReport,
              pool: ThreadPoolExecutor) -> tuple[Verdicts, dict[str, Any], Future[np.ndarray]]:
    """Every check that needs no registry, on the whole file; returns the verdicts.

    The file's overlapping pairs are searched in a thread (GEOS releases the GIL) while the
    features are copied; pairs with a feature refused later are dropped when used.
    """
    n = features.count
    verdicts = Verdicts(n)
    if features.pre_reject is not None:
        codes_read = pa.chunked_array(features.pre_reject, type=pa.string()).to_pylist() \
            if features.pre_reject else []
        for code in set(codes_read) - {None}:
            if code in REASONS and code not in WARNINGS:
                verdicts.reject(np.array([c == code for c in codes_read]), code)
    chunks = []
    kinds: set[int] = set()
    for index, offset in enumerate(features.offsets):
        wkb = features.wkb[index].to_numpy(zero_copy_only=False)
        checked = check_geometries(wkb, info.srid, on_invalid=options.on_invalid,
                                   verdicts=verdicts.window(offset, len(wkb)))
        features.wkb[index] = None  # read again, for the refused ones only, when the rejects are written
        del wkb
        chunks.append(checked["geoms"])
        kinds |= checked["non_polygon_types"]
        report.null_geometries += checked["null"]
        report.empty_geometries += checked["empty"]
        report.invalid += checked["invalid"]
    pa.default_memory_pool().release_unused()  # the geometries as read are gone: give their memory back
    if kinds:
        raise ImportRejected("import.not_polygons", found=", ".join(
            sorted(GEOMETRY_NAMES.get(k, str(k)).upper() for k in kinds)))
    geoms = np.concatenate(chunks) if chunks else np.empty(0, dtype=object)
    areas = np.nan_to_num(shapely.area(geoms))
    codes = locate(geoms, areas, _territory(session, geoms), verdicts, commune=commune,
                   tolerance_m2=options.outside_tolerance_m2, tolerance_ratio=options.outside_tolerance_ratio)
    territory = _territory_cache(session)
    nicads = pa.chunked_array(features.nicads, type=pa.string())
    check_nicads(nicads, geoms, codes, territory, verdicts, standard_lengths=tuple(nicad_rules.STANDARD_LENGTHS),
                 prefix_length=nicad_rules.COMMUNE_PREFIX_LENGTH)
    # Searched while the features are copied to the database (not while the checks above hold memory).
    pairs = pool.submit(overlapping_pairs, geoms, areas, verdicts.pending.copy(),
                        tolerance_m2=options.overlap_tolerance_m2, tolerance_ratio=options.overlap_tolerance_ratio)
    declared = area_warnings(geoms, areas, np.concatenate(features.declared) if features.declared else np.empty(0),
                             "declared_area" in features.mapped, verdicts, options)
    extras = {"geoms": geoms, "areas": areas, "codes": codes, "declared": declared}
    return verdicts, extras, pairs


def area_warnings(geoms: np.ndarray, areas: np.ndarray, declared: np.ndarray, has_declared: bool,
                  verdicts: Verdicts | Any, options: ParcelImportOptions) -> np.ndarray:
    """Warnings of the parcels that will be imported: slivers, declared areas; returns the declared areas kept.

    (Removed again if the registry refuses one.) A declared area beyond the country's (or infinite) is not a
    surveyor's number: stored as unknown (NULL), as a missing one is (sifc.bounds; the database refuses it).
    """
    live = verdicts.pending
    perimeters = np.nan_to_num(shapely.length(geoms))
    verdicts.warn(live & (areas * 2 < SLIVER_MEAN_WIDTH_M * perimeters), "sliver")
    if not has_declared:
        return declared
    missing = np.isnan(declared) | (np.nan_to_num(declared) <= 0)
    verdicts.warn(live & missing, "declared_area_missing")
    area = bounds.bound("parcel.declared_area_m2")
    beyond = ~np.isnan(declared) & ~missing & ~(declared <= area.high)
    verdicts.warn(live & beyond, "declared_area_out_of_bounds")
    declared = np.where(missing | beyond, np.nan, declared)
    missing |= beyond
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.abs(areas - declared) / declared > options.area_tolerance_ratio
    verdicts.warn(live & ~missing & np.nan_to_num(off, nan=0).astype(bool), "area_mismatch")
    return declared


def _territory_cache(session: Session) -> Territory:
    communes = _sql(session, "SELECT code, boundary_status, national_code FROM commune").all()
    empty = np.empty(0, dtype=object)
    return Territory(pieces=empty, level=empty, code=empty, commune_status={c[0]: c[1] for c in communes},
                     national_code={c[0]: c[2] for c in communes})


def _copy_stage(session: Session, info: SourceInfo, features: _Features, verdicts: Verdicts,
                extras: dict[str, Any], notify: Progress) -> None:
    """COPY the checked features (binary), batch by batch, into the temporary staging table."""
    create_stage(session)
    n = features.count
    geoms, areas, codes, declared = (extras[k] for k in ("geoms", "areas", "codes", "declared"))
    accepted = verdicts.status == "pending"
    status = np.where(accepted, "accepted", verdicts.status)
    prefix = os.urandom(6)
    raw = session.connection().connection.driver_connection
    assert raw is not None  # a live psycopg connection: the session holds it for the transaction
    with raw.cursor() as cursor, cursor.copy(STAGE_COPY) as copy:
        copy.set_types(STAGE_TYPES)
        for index, offset in enumerate(features.offsets):
            size = features.batches[index].num_rows
            window = slice(offset, offset + size)
            present = np.array([g is not None for g in geoms[window]], dtype=bool)
            storage = np.empty(size, dtype=object)
            storage[present] = shapely.to_wkb(shapely.set_srid(geoms[window][present], STORAGE_SRID),
                                              include_srid=True)
            column = {t: features.mapped[t][index].to_pylist() if t in features.mapped else [None] * size
                      for t in TARGETS_COPIED}
            ids = time_ordered_ids(size, prefix, offset)
            batch_declared = declared[window]
            rows = zip(range(offset, offset + size), column["nicad"], features.nicads[index].to_pylist(),
                       column["section"],
                       column["local_number"], column["declared_area"], column["land_use"],
                       column["tenure_regime"], column["source_id"],
                       [None if d != d else d for d in batch_declared.tolist()], storage.tolist(),
                       [a if p else None for a, p in zip(areas[window].tolist(), present.tolist(), strict=True)],
                       codes[window].tolist(), ["new" if a else None for a in accepted[window].tolist()],
                       status[window].tolist(),
                       [_text_array(c) for c in verdicts.codes(verdicts.reasons, offset, offset + size)],
                       [_text_array(c) for c in verdicts.codes(verdicts.warnings, offset, offset + size)], ids,
                       strict=True)
            for (i, nicad_raw, nicad, section, local_number, declared_raw, land_use, tenure, source_id, area_declared,
                 geom, area, code, change, state, reasons_bin, warnings_bin, parcel_id) in rows:
                copy.write_row((i, None, nicad_raw, nicad, section, local_number, declared_raw, land_use, tenure,
                                source_id, area_declared, geom, area, code, change, state, reasons_bin, warnings_bin,
                                parcel_id))
            notify("staging", offset + size, n)
    # Statistics for the registry joins; a small sample is enough (and the geometry's are costly).
    session.execute(text("SET LOCAL default_statistics_target = 10"))
    session.execute(text("ANALYZE stage_parcel"))
    session.execute(text("RESET default_statistics_target"))


def create_stage(session: Session) -> None:
    """The import's temporary staging table, empty (dropped at the end of the transaction)."""
    session.execute(text("DROP TABLE IF EXISTS stage_parcel"))
    session.execute(text(STAGE_DDL))


def time_ordered_ids(count: int, prefix: bytes, start: int) -> list[bytes]:
    """``count`` UUIDs (version 7 layout: milliseconds, then random) that increase with ``start + i``.

    New parcels' ids: increasing keys are appended to the id indexes instead of landing on
    random pages (which, at a million parcels, no longer fit in memory). 48-bit Unix time in
    ms, version 7, 12 random bits, variant 10, 30 random bits, then a 32-bit row number.
    """
    millis = int(time.time() * 1000)
    head = bytes([(millis >> 40) & 0xFF, (millis >> 32) & 0xFF, (millis >> 24) & 0xFF, (millis >> 16) & 0xFF,
                  (millis >> 8) & 0xFF, millis & 0xFF, 0x70 | (prefix[0] & 0x0F), prefix[1],
                  0x80 | (prefix[2] & 0x3F), prefix[3], prefix[4], prefix[5]])
    return [head + ((start + i) & 0xFFFFFFFF).to_bytes(4, "big") for i in range(count)]


TARGETS_COPIED = ("nicad", "section", "local_number", "declared_area", "land_use", "tenure_regime", "source_id")


def _sql(session: Session, statement: str, **params: Any) -> Any:
    return session.execute(text(statement), params)


def _reject_accepted(session: Session, reason: str, where: str, **params: Any) -> None:
    """Reject, in the registry checks, accepted rows matching ``where``; they lose the accepted-only warnings.

    ``where`` is SQL written by the caller, its values bound in ``params``; the reason is bound too.
    """
    _sql(session, f"""
        UPDATE stage_parcel s SET status = 'rejected', reasons = array_append(reasons, CAST(:rejected_for AS text)),
               change = NULL,
               warnings = ARRAY(SELECT w FROM unnest(s.warnings) w WHERE w <> ALL(CAST(:accepted_only AS text[])))
        WHERE s.status = 'accepted' AND ({where})""",
         rejected_for=reason, accepted_only=list(ACCEPTED_ONLY_WARNINGS), **params)


def _resolve_commune(session: Session, reference: str) -> str:
    codes = _sql(session, """
        SELECT code FROM commune WHERE code = :ref OR national_code = :ref
        UNION SELECT code FROM commune WHERE name_search = :search
    """, ref=reference, search=search_form(reference)).scalars().all()
    if len(codes) != 1:
        raise ImportRejected("import.unknown_commune" if not codes else "import.ambiguous_commune",
                             commune=reference, codes=", ".join(sorted(codes)))
    return str(codes[0])


def _area(raw: str | None) -> float | None:
    """A declared area as surveyors write it ("1 234,5"); None when unreadable."""
    if raw is None:
        return None
    try:
        return float(raw.replace(" ", "").replace("\u202f", "").replace(",", "."))
    except ValueError:
        return None


def _check_registry(session: Session, options: ParcelImportOptions, overlapping: Future[np.ndarray],
                    extent: tuple[float, float, float, float] | None) -> None:
    """What needs the registry: matching (re-imports), NICAD taken, overlaps with current parcels.

    Then the file's own overlapping pairs are refused, among the parcels still accepted.
    """
    near = extent is not None and bool(_sql(session, f"""
        SELECT EXISTS (SELECT 1 FROM parcel WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID}))
    """, x0=extent[0], y0=extent[1], x1=extent[2], y1=extent[3]).scalar())
    _match(session, near=near)
    # A litige freezes the parcel: a new state of it waits for the litige to be lifted.
    _reject_accepted(session, "under_litige", """
        s.change = 'changed' AND EXISTS (
            SELECT 1 FROM rrr_version r WHERE r.parcel_id = s.match_id AND r.valid_to IS NULL AND r.type = 'litige'
              AND r.start_date <= current_date AND (r.end_date IS NULL OR r.end_date > current_date))""")
    tolerance = {"m2": options.overlap_tolerance_m2, "ratio": options.overlap_tolerance_ratio}
    # Current parcels the file gives a new state of are checked as part of the file, not against it.
    if near:
        _reject_accepted(session, "overlap_existing", """
            s.ord IN (SELECT s2.ord FROM stage_parcel s2 JOIN parcel p ON p.geom && s2.geom
                      WHERE s2.status = 'accepted'
                        AND NOT EXISTS (SELECT 1 FROM stage_parcel m WHERE m.match_id = p.parcel_id
                                        AND m.status = 'accepted')
                        AND overlap_area(p.geom, s2.geom) > greatest(:m2, :ratio * least(p.area_m2, s2.area)))
        """, **tolerance)
    pairs = overlapping.result()
    if len(pairs):
        alive = set(_sql(session, "SELECT ord FROM stage_parcel WHERE status = 'accepted' AND ord = ANY(:ords)",
                         ords=sorted({int(o) for o in pairs.ravel()})).scalars().all())
        hit = sorted({int(o) for a, b in pairs if a in alive and b in alive for o in (a, b)})
        _reject_accepted(session, "overlap_in_file", "s.ord = ANY(:ords)", ords=hit)


def _match(session: Session, *, near: bool) -> None:
    """Match the file's parcels with current ones: by NICAD, else source identifier, else geometry.

    A matched parcel gets a new version only if something changed; a NICAD found on a
    parcel elsewhere (the shapes do not even touch) is refused as taken.
    """
    _sql(session, """
        UPDATE stage_parcel s SET match_id = p.parcel_id, match_version = p.version, match_by = 'nicad'
        FROM parcel p
        WHERE s.status = 'accepted' AND s.nicad IS NOT NULL AND p.nicad = s.nicad AND ST_Intersects(p.geom, s.geom)
    """)
    _sql(session, "CREATE INDEX ON stage_parcel (match_id) WHERE match_id IS NOT NULL")
    _reject_accepted(session, "nicad_taken", """
        s.match_id IS NULL AND s.nicad IS NOT NULL AND EXISTS (SELECT 1 FROM parcel p WHERE p.nicad = s.nicad)
    """)
    # A source identifier is only an identifier within its commune, and only when unique on both sides.
    _sql(session, """
        WITH staged AS (
            SELECT source_id, commune_code FROM stage_parcel
            WHERE status = 'accepted' AND source_id IS NOT NULL
            GROUP BY source_id, commune_code HAVING count(*) = 1
        ), current AS (
            SELECT p.source_id, p.commune_code, min(p.parcel_id::text)::uuid AS parcel_id, min(p.version) AS version
            FROM parcel p JOIN staged USING (source_id, commune_code)
            GROUP BY p.source_id, p.commune_code HAVING count(*) = 1
        )
        UPDATE stage_parcel s SET match_id = c.parcel_id, match_version = c.version, match_by = 'source_id'
        FROM current c
        WHERE s.status = 'accepted' AND s.match_id IS NULL AND s.source_id = c.source_id
          AND s.commune_code = c.commune_code AND ST_Intersects((SELECT geom FROM parcel WHERE parcel_id = c.parcel_id),
                                                                s.geom)
          AND NOT EXISTS (SELECT 1 FROM stage_parcel o WHERE o.match_id = c.parcel_id)
    """)
    # The same land: each covers at least 90 % of the other, and nothing else does.
    if near:
        _sql(session, """
        WITH pairs AS (
            SELECT s.ord, p.parcel_id, p.version
            FROM stage_parcel s JOIN parcel p ON p.geom && s.geom
            WHERE s.status = 'accepted' AND s.match_id IS NULL
              AND NOT EXISTS (SELECT 1 FROM stage_parcel o WHERE o.match_id = p.parcel_id)
              AND overlap_area(p.geom, s.geom) >= 0.9 * greatest(p.area_m2, s.area)
        ), unique_pairs AS (
            SELECT ord, min(parcel_id::text)::uuid AS parcel_id, min(version) AS version
            FROM pairs GROUP BY ord HAVING count(*) = 1
        ), claimed AS (
            SELECT parcel_id FROM unique_pairs GROUP BY parcel_id HAVING count(*) = 1
        )
        UPDATE stage_parcel s SET match_id = u.parcel_id, match_version = u.version, match_by = 'geometry'
        FROM unique_pairs u JOIN claimed USING (parcel_id)
        WHERE s.ord = u.ord
    """)
    # What changed. Geometry: more than 1 cm anywhere (reprojection noise is far below).
    _sql(session, """
        UPDATE stage_parcel s SET
            changed_fields = array_remove(ARRAY[
                CASE WHEN ST_HausdorffDistance(p.geom, s.geom) > 0.01 THEN 'geometry' END,
                CASE WHEN s.nicad IS NOT NULL AND s.nicad IS DISTINCT FROM p.nicad THEN 'nicad' END,
                CASE WHEN s.commune_code IS DISTINCT FROM p.commune_code THEN 'commune_code' END,
                CASE WHEN s.section IS DISTINCT FROM p.section THEN 'section' END,
                CASE WHEN s.local_number IS DISTINCT FROM p.local_number THEN 'local_number' END,
                CASE WHEN s.source_id IS DISTINCT FROM p.source_id THEN 'source_id' END,
                CASE WHEN s.declared_area IS DISTINCT FROM p.declared_area_m2 THEN 'declared_area' END,
                CASE WHEN s.land_use IS DISTINCT FROM p.land_use THEN 'land_use' END,
                CASE WHEN s.tenure_regime IS DISTINCT FROM p.tenure_regime THEN 'tenure_regime' END
            ], NULL)
        FROM parcel p
        WHERE s.match_id = p.parcel_id AND s.status = 'accepted'
    """)
    _sql(session, """
        UPDATE stage_parcel SET change = CASE WHEN cardinality(changed_fields) = 0 THEN 'unchanged' ELSE 'changed' END
        WHERE status = 'accepted' AND match_id IS NOT NULL
    """)


ISSUES_QUERY = """
    SELECT ord, status, reasons, warnings, nicad, source_id, change, match_id, match_by, changed_fields
    FROM stage_parcel
    WHERE (status <> 'accepted' OR change = 'changed'
           OR (cardinality(warnings) > 0 AND warnings <> ARRAY['provisional_commune'])) AND ord > :after
    ORDER BY ord LIMIT :n
"""


def _issue(row: Any) -> dict[str, object]:
    issue: dict[str, object] = {"feature": row["ord"], "status": row["status"], "reasons": list(row["reasons"]),
                                "warnings": list(row["warnings"]), "nicad": row["nicad"],
                                "source_id": row["source_id"]}
    if row["change"] == "changed":
        issue.update(change="changed", parcel_id=str(row["match_id"]), matched_by=row["match_by"],
                     changed_fields=list(row["changed_fields"]))
    return issue


def _summarize(session: Session, report: ParcelImportReport) -> None:
    # One pass for the counts (a few groups), one per code list.
    groups = _sql(session, """
        SELECT status, change, match_by, commune_code, 'provisional_commune' = ANY(warnings) AS provisional,
               'invalid_repaired' = ANY(warnings) AS repaired, count(*) AS n
        FROM stage_parcel GROUP BY 1, 2, 3, 4, 5, 6""").mappings().all()
    total: Counter[str] = Counter()
    changes: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    communes: Counter[str] = Counter()
    provisional: set[str] = set()
    for g in groups:
        total[g["status"]] += g["n"]
        total["repaired"] += g["n"] if g["repaired"] else 0
        if g["status"] != "accepted":
            continue
        changes[g["change"]] += g["n"]
        if g["match_by"]:
            matched[g["match_by"]] += g["n"]
        if g["change"] != "unchanged":
            communes[g["commune_code"]] += g["n"]
        if g["provisional"]:
            provisional.add(g["commune_code"])
    report.accepted, report.rejected = total["accepted"], total["rejected"]
    report.duplicates, report.repaired = total["duplicate"], total["repaired"]
    report.changes, report.matched_by = dict(sorted(changes.items())), dict(sorted(matched.items()))
    report.communes, report.provisional_communes = dict(sorted(communes.items())), sorted(provisional)
    report.rejected_by_reason = dict(_sql(session, """
        SELECT r, count(*) FROM stage_parcel, unnest(reasons) r WHERE status IN ('rejected', 'duplicate')
        GROUP BY r ORDER BY r""").all())
    report.warnings_by_code = dict(_sql(session, """
        SELECT w, count(*) FROM stage_parcel, unnest(warnings) w WHERE status = 'accepted' AND warnings <> '{}'
        GROUP BY w ORDER BY w""").all())
    rows = _sql(session, ISSUES_QUERY, after=-1, n=MAX_LISTED_ISSUES + 1).mappings().all()
    report.issues_truncated = len(rows) > MAX_LISTED_ISSUES
    report.issues = [_issue(r) for r in rows[:MAX_LISTED_ISSUES]]


def _batch_commune(session: Session, commune: str | None) -> str:
    """The commune a batch belongs to in a federation: the first, by code, of the file's kept features.

    A pole's import is confined to its own communes (the registry's owner guard refuses the others), so
    any of them names the pole. Else the commune the import was confined to, else the first of the
    file's features located in a commune; a file with none writes nothing and is refused.
    """
    found = _sql(session, """
        SELECT coalesce((SELECT min(commune_code) FROM stage_parcel WHERE status = 'accepted'),
                        CAST(:commune AS text),
                        (SELECT min(commune_code) FROM stage_parcel))""", commune=commune).scalar()
    if found is None:
        raise ImportRejected("import.no_commune")
    return str(found)


def _insert(session: Session, report: ParcelImportReport, options: ParcelImportOptions,
            commune: str | None) -> None:
    batch_id = uuid.uuid4()
    report.batch_id = str(batch_id)
    batch_commune = _batch_commune(session, commune)
    counts = {"read": report.read, "accepted": report.accepted, "rejected": report.rejected,
              "duplicates": report.duplicates, "warnings": report.warnings_by_code, "changes": report.changes}
    if report.bornes is not None:
        counts["bornes"] = report.bornes
    _sql(session, """
        INSERT INTO import_batch (id, kind, file_name, sha256, options, counts, report, created_by, synthetic,
                                  commune_code)
        VALUES (:id, 'parcels', :file, :sha, CAST(:options AS jsonb), CAST(:counts AS jsonb),
                CAST(:report AS jsonb), :author, :synthetic, :commune)
    """, id=batch_id, file=report.file, sha=report.sha256, options=orjson.dumps(report.options).decode(),
         counts=orjson.dumps(counts).decode(), report=orjson.dumps(report.as_dict()).decode(),
         author=options.author, synthetic=options.synthetic, commune=batch_commune)
    # One write-audit row per batch: its parcel versions name the batch, and the batch its report.
    actor = Principal(kind=options.actor_kind, role=options.actor_role, name=options.author)  # type: ignore[arg-type]
    journal.record(session, actor, operation="import.batch", object_kind="import_batch", object_id=batch_id,
                   after={"file": report.file, "sha256": report.sha256, "counts": counts,
                          "communes": report.communes})
    try:
        with session.begin_nested():
            _write_versions(session, report, options, batch_id)
    except IntegrityError as error:
        # Validity was judged by shapely's GEOS; should PostGIS's GEOS see one of them otherwise,
        # its own repair applies (and is reported) rather than the whole import failing.
        if "ck_parcel_version_geom_valid" not in str(error.orig):
            raise
        _sql(session, """
            UPDATE stage_parcel SET geom = ST_CollectionExtract(ST_MakeValid(geom), 3),
                   warnings = CASE WHEN 'invalid_repaired' = ANY(warnings) THEN warnings
                                   ELSE array_append(warnings, 'invalid_repaired') END
            WHERE status = 'accepted' AND NOT ST_IsValid(geom)""")
        with session.begin_nested():
            _write_versions(session, report, options, batch_id)


def _write_versions(session: Session, report: ParcelImportReport, options: ParcelImportOptions,
                    batch_id: uuid.UUID) -> None:
    reason = f"import {report.file}"
    if report.changes.get("changed"):
        # Close the versions the file replaces (locking them: a concurrent change waits or fails).
        closed = _sql(session, """
            UPDATE parcel_version v SET valid_to = now(), closed_by = :author, close_reason = :why
            FROM stage_parcel s
            WHERE s.status = 'accepted' AND s.change = 'changed'
              AND v.parcel_id = s.match_id AND v.version = s.match_version AND v.valid_to IS NULL
        """, author=options.author, why=f"remplacée par l'import {report.file} (lot {batch_id})").rowcount
        if closed != report.changes["changed"]:
            raise ImportRejected("import.concurrent_change")
        _sql(session, """
            INSERT INTO parcel_version (parcel_id, version, nicad, nicad_status, commune_code, section, local_number,
                                        source_id, geom, declared_area_m2, land_use, tenure_regime, batch_id,
                                        action, author, reason)
            SELECT s.match_id, s.match_version + 1,
                   CASE WHEN 'nicad' = ANY(s.changed_fields) THEN s.nicad
                        WHEN 'geometry' = ANY(s.changed_fields) THEN NULL ELSE p.nicad END,
                   CASE WHEN 'nicad' = ANY(s.changed_fields) THEN 'attribue'
                        WHEN 'geometry' = ANY(s.changed_fields)
                             THEN CASE WHEN p.nicad_status = 'absent' THEN 'absent' ELSE 'a_reattribuer' END
                        ELSE p.nicad_status END,
                   s.commune_code, s.section, s.local_number, s.source_id, ST_Multi(s.geom), s.declared_area,
                   s.land_use, s.tenure_regime, :batch, 'import', :author, :reason
            FROM stage_parcel s JOIN parcel_version p ON p.parcel_id = s.match_id AND p.version = s.match_version
            WHERE s.status = 'accepted' AND s.change = 'changed' ORDER BY s.ord
        """, batch=batch_id, author=options.author, reason=reason)
    _sql(session, """
        INSERT INTO parcel_version (parcel_id, version, nicad, nicad_status, commune_code, section, local_number,
                                    source_id, geom, declared_area_m2, land_use, tenure_regime, batch_id,
                                    action, author, reason)
        SELECT parcel_id, 1, nicad, CASE WHEN nicad IS NULL THEN 'absent' ELSE 'attribue' END,
               commune_code, section, local_number, source_id, ST_Multi(geom), declared_area, land_use, tenure_regime,
               :batch, 'import', :author, :reason
        FROM stage_parcel WHERE status = 'accepted' AND change = 'new' ORDER BY ord
    """, batch=batch_id, author=options.author, reason=reason)


def import_parcels(session: Session, path: Path, options: ParcelImportOptions, *,
                   progress: Progress | None = None) -> ParcelImportReport:
    """Import the parcels of ``path`` in the caller's transaction; return the report.

    ``progress(stage, done, total)`` hears of the stages ``reading`` (hash, format, CRS),
    ``staging`` (features copied), ``validating`` and ``inserting``. With
    ``options.dry_run`` every check runs and nothing is written (the staging tables are
    temporary and dropped at the end of the transaction).
    """
    clock = time.perf_counter
    started = clock()
    notify = progress or (lambda stage, done, total: None)
    if not path.exists():
        raise ImportRejected("import.file_missing", path=str(path))
    # An import writes in its author's name: the job's submitter (which the service's role cannot
    # rewrite) or the command's operator. The versions it replaces are closed in that name only.
    act_as(session, options.author)
    notify("reading", 0, 0)
    report = ParcelImportReport(file=path.name, sha256=file_sha256(path), dry_run=options.dry_run)
    report.options = {k: v for k, v in asdict(options).items()
                      if k not in ("author", "chunk_size", "actor_kind", "actor_role")}
    previous = session.execute(text("""
        SELECT id, file_name, created_at FROM import_batch WHERE kind = 'parcels' AND sha256 = :sha
        ORDER BY created_at LIMIT 1"""), {"sha": report.sha256}).mappings().first()
    if previous is not None:
        # The very same content was imported before: nothing to do, and nothing is done.
        report.already_imported = {"batch_id": str(previous["id"]), "file": previous["file_name"],
                                   "date": previous["created_at"].isoformat()}
        return report
    commune = _resolve_commune(session, options.commune) if options.commune else None
    if options.campaign:  # refused before reading the file: no such campaign, out of scope, no longer open
        from sifc.commission import campaigns

        campaigns.check_importable(session, campaign_id=options.campaign, by=_campaign_actor(options))
    session.execute(text("SET LOCAL jit = off"))  # JIT compiles longer than these queries run
    timings = report.timings
    with open_source(path, layer=options.layer, crs=options.crs, encoding=options.encoding) as info:
        columns = field_mapping.resolve(info.fields, options.mapping, holders=bool(options.campaign))
        report.format, report.layer, report.geometry_type = info.fmt, info.layer, info.geometry_type
        report.crs, report.crs_origin = f"EPSG:{info.srid}", info.crs_origin
        report.encoding, report.encoding_origin = info.encoding, info.encoding_origin
        report.mapping, report.attributes, report.file_notes = columns, len(info.fields), list(info.notes)
        from sifc.imports import stream  # it builds on this module's pieces

        box = stream.extent(info)
        if box is not None and stream.eligible(session, info, options, box):
            # A first load: streamed straight into the registry (ADR 0006).
            before = copy.deepcopy(report)
            try:
                with session.begin_nested():
                    stream.load(session, info, columns, options, commune, report, box, notify, timings, clock)
                    stream.keep_rejected_sources(session, info)
                notify("checked", report.read, report.read)
                return report
            except Exception as error:  # SQLAlchemy's, or the driver's own from a copy
                # Should PostGIS's GEOS judge a shape invalid that shapely's did not, the staged path
                # applies PostGIS's own repair (and reports it) rather than the whole import failing.
                if not stream.violated(error, "ck_parcel_version_geom_valid"):
                    raise
                report = before
                timings = report.timings
        features = _read(info, columns, options, notify)
        points, points_srid = list(info.points), info.srid
        report.read = features.count
        timings["read"] += clock() - started
        mark = clock()
        notify("validating", 0, report.read)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sifc-overlaps") as pool:
            verdicts, extras, pairs = _validate(session, info, features, options, commune, report, pool)
            timings["validate"] += clock() - mark
            mark = clock()
            notify("staging", 0, report.read)
            extent = _extent(extras["geoms"][verdicts.pending])
            _copy_stage(session, info, features, verdicts, extras, notify)
            del verdicts, extras  # the database has them now: memory back before the registry checks
            timings["stage"] += clock() - mark
            mark = clock()
            _check_registry(session, options, pairs, extent)
            _keep_rejected_sources(session, features, info)
            _summarize(session, report)
        timings["validate"] += clock() - mark
    if points:  # what the table's points would do in the registry of bornes, in the report before it is kept
        report.bornes = bornes.store_imported(session, points, srid=points_srid, batch_id=None, author=options.author,
                                              file_name=report.file, commune=commune)
    if not options.dry_run:
        mark = clock()
        notify("inserting", 0, report.accepted)
        _insert(session, report, options, commune)
        if options.campaign and report.batch_id:
            _campaign_holders(session, features, options, report.batch_id)
        if points and report.batch_id:
            bornes.store_imported(session, points, srid=points_srid, batch_id=uuid.UUID(report.batch_id),
                                  author=options.author, file_name=report.file, commune=commune)
        timings["commit"] += clock() - mark
    notify("checked", report.read, report.read)
    return report


def _campaign_actor(options: ParcelImportOptions) -> Principal:
    """Who imports for a campaign: the console's operator (the option is the command line's only)."""
    return Principal(kind=options.actor_kind, role=options.actor_role, name=options.author,  # type: ignore[arg-type]
                     everywhere=True)


def _campaign_holders(session: Session, features: _Features, options: ParcelImportOptions, batch_id: str) -> None:
    """A campaign's import: every accepted feature's parcel joins the campaign with the holder its line names."""
    from sifc.commission import campaigns

    values = {target.removeprefix("holder_"): pa.chunked_array(features.mapped[target], type=pa.string()).to_pylist()
              for target in field_mapping.HOLDER_TARGETS if target in features.mapped}
    rows = _sql(session, """SELECT ord, CASE WHEN change = 'new' THEN parcel_id ELSE match_id END FROM stage_parcel
                            WHERE status = 'accepted' ORDER BY ord""").all()
    actor = _campaign_actor(options)
    campaigns.add_imported(session, campaign_id=str(options.campaign), batch_id=batch_id,
                           holders={str(parcel): {k: v[ord_] for k, v in values.items()} for ord_, parcel in rows},
                           by=actor, author=options.author)


def _extent(geoms: np.ndarray) -> tuple[float, float, float, float] | None:
    bounds = shapely.total_bounds(geoms) if len(geoms) else np.full(4, np.nan)
    return None if np.isnan(bounds).any() else (float(bounds[0]), float(bounds[1]), float(bounds[2]), float(bounds[3]))


def _keep_rejected_sources(session: Session, features: _Features, info: SourceInfo) -> None:
    """The refused features' source attributes and geometry as read (2D), for the rejects file."""
    ords = list(_sql(session, "SELECT ord FROM stage_parcel WHERE status <> 'accepted' ORDER BY ord").scalars())
    if not ords:
        return
    read = shapely.force_2d(shapely.from_wkb(features.source_wkb(info, ords), on_invalid="ignore"))
    sources = [None if g is None else shapely.to_wkb(g, hex=True) for g in read]
    _sql(session, """
        UPDATE stage_parcel s SET attrs = CAST(v.attrs AS jsonb),
               src = ST_SetSRID(ST_GeomFromWKB(decode(v.src, 'hex')), CAST(:srid AS integer))
        FROM unnest(CAST(:ords AS integer[]), CAST(:attrs AS text[]), CAST(:sources AS text[])) v(ord, attrs, src)
        WHERE s.ord = v.ord
    """, ords=ords, attrs=features.attributes(ords), sources=sources, srid=info.srid)


def spool_issues(session: Session, target: Path, *, chunk: int = 20_000) -> None:
    """Write every issue of the import (not only the first ones) to ``target``, one JSON object per line.

    Must run in the import's transaction, before it ends (the staging table is temporary).
    """
    with target.open("wb") as out:
        after = -1
        while True:
            rows = _sql(session, ISSUES_QUERY, after=after, n=chunk).mappings().all()
            if not rows:
                return
            out.write(b"".join(orjson.dumps(_issue(row)) + b"\n" for row in rows))
            after = rows[-1]["ord"]


def write_report(report: ParcelImportReport, path: Path, issues: Path | None = None) -> None:
    """Write the JSON report to ``path``, with every issue from the ``issues`` spool when given."""
    head = report.as_dict()
    if issues is None:
        path.write_bytes(orjson.dumps(head, option=orjson.OPT_INDENT_2))
        return
    head.pop("issues")
    head["issues_truncated"] = False
    with path.open("wb") as out, issues.open("rb") as spooled:
        out.write(orjson.dumps(head, option=orjson.OPT_INDENT_2)[:-2])
        out.write(b',\n  "issues": [')
        for number, line in enumerate(spooled):
            out.write((b"\n    " if number == 0 else b",\n    ") + line.rstrip(b"\n"))
        out.write(b"\n  ]\n}\n")


def write_rejects(session: Session, path: Path, lang: Literal["fr", "en"] = "fr", *, chunk: int = 5000) -> int:
    """Write the rejected and duplicate features (with their reasons) to a GeoPackage, in chunks.

    Geometries are written as read, in the file's CRS, so the analyst can fix them in QGIS and
    load the file again. Must run in the import's transaction (the staging table is temporary).
    """
    import geopandas as gpd
    import shapely

    written, last = 0, -1
    srid = _sql(session, "SELECT max(ST_SRID(src)) FROM stage_parcel").scalar()
    path.unlink(missing_ok=True)
    while True:
        rows = _sql(session, """
            SELECT ord, status, reasons, attrs, ST_AsBinary(src) AS wkb FROM stage_parcel
            WHERE status <> 'accepted' AND ord > :last ORDER BY ord LIMIT :chunk
        """, last=last, chunk=chunk).mappings().all()
        if not rows:
            return written
        records = []
        for row in rows:
            record = {f"src_{k}"[:60]: (v if isinstance(v, (int, float, str)) or v is None else str(v))
                      for k, v in (row["attrs"] or {}).items()}
            record["sifc_feature"] = row["ord"]
            record["sifc_status"] = row["status"]
            record["sifc_reasons"] = ",".join(row["reasons"])
            record["sifc_message"] = "; ".join(describe("reason", r, lang) if r in REASONS else r
                                               for r in row["reasons"])
            record["geometry"] = shapely.from_wkb(bytes(row["wkb"])) if row["wkb"] else None
            records.append(record)
        frame = gpd.GeoDataFrame(records, geometry="geometry", crs=f"EPSG:{srid}" if srid else None)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_file(path, layer="rejets", driver="GPKG", mode="a" if written else "w")
        written += len(records)
        last = rows[-1]["ord"]
