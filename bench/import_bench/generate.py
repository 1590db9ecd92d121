"""Synthetic cadastre for the import benchmark, with known injected defects.

Parcels of about 20 × 25 m are laid out in blocks of 10 × 4 along 8 m streets. The corner
points of a block are built once, as one grid, and every parcel of the block takes its four
corners from that grid: neighbours share exact coordinates, so the set is a clean polygon
coverage (no overlap, no gap inside a block). Corners get a small jitter (rounded to the
millimetre, as surveyed coordinates are), which keeps them shared.

Blocks are kept only when they lie entirely inside the commune polygon (with a margin), and
the ones closest to the commune's largest inscribed circle centre are used, so every parcel
lies inside the commune and the layout is a compact disc.

Defects are injected at a stated rate, split evenly among four kinds, each in a block of its
own so that no two defects touch the same parcel or neighbouring parcels (their expected
outcomes cannot interact). The ground truth (kind, features involved, expected outcome of each)
is written beside the shapefile.

Beyond what one commune holds (Dialacoto takes about two million parcels), ``per_commune``
fills communes one after the other, ``per_commune`` parcels each: Dialacoto first, then the
other communes of its region, of its pole, then of the country, each group by area descending
(communes too small for their share are skipped). Each commune is laid out as above, with its
own random stream, its own defects and its own NICAD prefix, and written as soon as it is made,
so the generator's memory is bounded by one commune's share, not by the file: ten million
parcels go into a GeoPackage (a shapefile stops at 2 GB) through one Arrow stream.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely

# Layout (metres).
PARCEL_WIDTH = 20.0
PARCEL_DEPTH = 25.0
BLOCK_COLUMNS = 10
BLOCK_ROWS = 4
STREET = 8.0
BLOCK_WIDTH = PARCEL_WIDTH * BLOCK_COLUMNS
BLOCK_HEIGHT = PARCEL_DEPTH * BLOCK_ROWS
PARCELS_PER_BLOCK = BLOCK_COLUMNS * BLOCK_ROWS
BOUNDARY_MARGIN = 50.0  # blocks keep this distance from the commune boundary

# The commune every parcel must fall in (provisional boundary, large enough for 1,000,000 parcels).
COMMUNE_CODE = "SN1204-dialacoto"
# Fallback when the database is not reachable: a circle inscribed in Dialacoto (EPSG:32628).
FALLBACK_CENTRE = (676730.0, 1460802.0)
FALLBACK_RADIUS = 24_000.0

LAND_USES = ("habitation", "commerce", "agricole", "équipement", "mixte")
LAND_USE_WEIGHTS = (0.70, 0.10, 0.08, 0.05, 0.07)

KINDS = ("overlap_copy", "sliver", "bowtie", "nicad_duplicate")
IGNORED_WARNINGS = ("provisional_commune",)  # every parcel of Dialacoto carries it

CRS_WKT_EPSG = "EPSG:32628"

# Output formats: GDAL driver and suffix. The shapefile stays the default of the sizes measured so far.
FORMATS = {"shp": ("ESRI Shapefile", ".shp"), "gpkg": ("GPKG", ".gpkg")}
STREAM_BATCH = 50_000  # features per Arrow batch handed to GDAL


@dataclass
class Expected:
    """The outcome the importer must report for one feature."""

    feature: int
    role: str
    status: str
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Defect:
    """One injected defect and the features it involves."""

    id: int
    kind: str
    features: list[Expected]


def dataset_name(parcels: int, defect_rate: float, seed: int, commune: str = COMMUNE_CODE,
                 per_commune: int | None = None, fmt: str = "shp") -> str:
    """File stem of a dataset: its parameters, so a cached file is reused only when they match."""
    return (f"parcelles_{parcels}_r{defect_rate:g}_s{seed}" + ("" if commune == COMMUNE_CODE else f"_{commune}")
            + ("" if per_commune is None else f"_k{per_commune}") + ("" if fmt == "shp" else f"_{fmt}"))


def nicad_prefix(commune: str) -> str:
    """The first five digits of the generated NICADs: the commune code's digits (SN1204-… → 12040)."""
    return "".join(ch for ch in commune.split("-")[0] if ch.isdigit())[:4].ljust(4, "0") + "0"


def commune_polygon(admin_url: str | None, code: str = COMMUNE_CODE):
    """The commune's polygon (EPSG:32628) and its boundary status, or None without a database."""
    if not admin_url:
        return None
    import psycopg

    try:
        with psycopg.connect(admin_url, connect_timeout=5) as conn:
            row = conn.execute("SELECT ST_AsBinary(geom), boundary_status FROM commune WHERE code = %s",
                               (code,)).fetchone()
    except psycopg.Error:
        return None
    if row is None or row[0] is None:
        return None
    return shapely.from_wkb(bytes(row[0])), row[1]


def commune_order(admin_url: str, first: str = COMMUNE_CODE) -> list[tuple[str, str, float]]:
    """Communes with a boundary, as ``per_commune`` fills them: (code, boundary status, area in m²).

    ``first``, then the other communes of its region, then of its pole, then the rest of the
    country; each group by area descending, then by code (so the order never depends on the
    database's own).
    """
    import psycopg

    with psycopg.connect(admin_url, connect_timeout=5) as conn:
        return [(code, status, float(area)) for code, status, area in conn.execute("""
            WITH home AS (SELECT c.region_code, r.pole_code FROM commune c JOIN region r ON r.code = c.region_code
                          WHERE c.code = %(first)s)
            SELECT c.code, c.boundary_status, ST_Area(c.geom)
            FROM commune c JOIN region r ON r.code = c.region_code CROSS JOIN home
            WHERE c.geom IS NOT NULL
            ORDER BY c.code = %(first)s DESC, c.region_code = home.region_code DESC,
                     r.pole_code = home.pole_code DESC, ST_Area(c.geom) DESC, c.code""", {"first": first})]


def _grid_inside(polygon, centre: tuple[float, float], half: int):
    """Block origins of a (2 half + 1)² grid around ``centre``, and which lie inside ``polygon`` with the margin."""
    pitch_x, pitch_y = BLOCK_WIDTH + STREET, BLOCK_HEIGHT + STREET
    cols, rows = np.meshgrid(np.arange(-half, half + 1), np.arange(-half, half + 1))
    ox = centre[0] + cols.ravel() * pitch_x - BLOCK_WIDTH / 2
    oy = centre[1] + rows.ravel() * pitch_y - BLOCK_HEIGHT / 2
    boxes = shapely.box(ox - BOUNDARY_MARGIN, oy - BOUNDARY_MARGIN,
                        ox + BLOCK_WIDTH + BOUNDARY_MARGIN, oy + BLOCK_HEIGHT + BOUNDARY_MARGIN)
    return cols, rows, ox, oy, shapely.contains(polygon, boxes)


def _first_half(needed: int) -> int:
    """Half-width (in blocks) of a grid whose inscribed disc holds ``needed`` blocks with room to spare."""
    pitch_x, pitch_y = BLOCK_WIDTH + STREET, BLOCK_HEIGHT + STREET
    return math.ceil(math.sqrt(needed * 1.5 * pitch_x * pitch_y / math.pi) / min(pitch_x, pitch_y)) + 2


def _inscribed_centre(polygon) -> tuple[float, float]:
    circle = shapely.maximum_inscribed_circle(polygon, tolerance=10.0)
    return tuple(shapely.get_coordinates(circle)[0])


def _block_origins(needed: int, polygon) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """South-west corners of ``needed`` blocks inside ``polygon``, in grid (row, column) order."""
    if polygon is None:
        centre = FALLBACK_CENTRE
        polygon = shapely.Point(centre).buffer(FALLBACK_RADIUS, quad_segs=64)
    else:
        centre = _inscribed_centre(polygon)
    shapely.prepare(polygon)
    half = _first_half(needed)
    while True:
        cols, rows, ox, oy, inside = _grid_inside(polygon, centre, half)
        if inside.sum() >= needed or half > 2000:
            break
        half *= 2
    if inside.sum() < needed:
        raise SystemExit(f"the commune has room for {inside.sum()} blocks only, {needed} needed")
    return _nearest(needed, centre, cols, rows, ox, oy, inside)


def _commune_blocks(needed: int, polygon) -> tuple[np.ndarray, np.ndarray, tuple[float, float]] | None:
    """As ``_block_origins``, the grid never growing beyond the commune's extent; None when it has no room."""
    centre = _inscribed_centre(polygon)
    shapely.prepare(polygon)
    min_x, min_y, max_x, max_y = polygon.bounds
    reach = math.ceil(max(abs(min_x - centre[0]), abs(max_x - centre[0]), abs(min_y - centre[1]),
                          abs(max_y - centre[1])) / min(BLOCK_WIDTH + STREET, BLOCK_HEIGHT + STREET)) + 1
    half = min(_first_half(needed), reach)
    while True:
        cols, rows, ox, oy, inside = _grid_inside(polygon, centre, half)
        if inside.sum() >= needed:
            return _nearest(needed, centre, cols, rows, ox, oy, inside)
        if half >= reach:
            return None
        half = min(half * 2, reach)


def _nearest(needed: int, centre: tuple[float, float], cols: np.ndarray, rows: np.ndarray, ox: np.ndarray,
             oy: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """The ``needed`` inside blocks nearest to ``centre``, in grid (row, column) order."""
    candidates = np.flatnonzero(inside)
    distance = np.hypot(ox[candidates] + BLOCK_WIDTH / 2 - centre[0], oy[candidates] + BLOCK_HEIGHT / 2 - centre[1])
    chosen = candidates[np.argsort(distance, kind="stable")[:needed]]
    chosen = chosen[np.lexsort((cols.ravel()[chosen], rows.ravel()[chosen]))]  # grid order: rows, then columns
    return ox[chosen], oy[chosen], centre


def _corner_grids(ox: np.ndarray, oy: np.ndarray, jitter: float, rng: np.random.Generator):
    """Corner points of every block: arrays (blocks, rows + 1, columns + 1), rounded to the mm."""
    shape = (len(ox), BLOCK_ROWS + 1, BLOCK_COLUMNS + 1)
    gx = np.arange(BLOCK_COLUMNS + 1) * PARCEL_WIDTH
    gy = np.arange(BLOCK_ROWS + 1) * PARCEL_DEPTH
    x = ox[:, None, None] + gx[None, None, :] + rng.uniform(-jitter, jitter, shape)
    y = oy[:, None, None] + gy[None, :, None] + rng.uniform(-jitter, jitter, shape)
    return np.round(x, 3), np.round(y, 3)


def _parcel_rings(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Closed rings (parcels, 5, 2), counter-clockwise, parcels in block then row then column order."""
    r0, c0 = slice(0, BLOCK_ROWS), slice(0, BLOCK_COLUMNS)
    r1, c1 = slice(1, BLOCK_ROWS + 1), slice(1, BLOCK_COLUMNS + 1)
    corners_x = np.stack([x[:, r0, c0], x[:, r0, c1], x[:, r1, c1], x[:, r1, c0], x[:, r0, c0]], axis=-1)
    corners_y = np.stack([y[:, r0, c0], y[:, r0, c1], y[:, r1, c1], y[:, r1, c0], y[:, r0, c0]], axis=-1)
    return np.stack([corners_x, corners_y], axis=-1).reshape(-1, 5, 2)


def _ring_area(rings: np.ndarray) -> np.ndarray:
    """Shoelace area of closed rings (n, k, 2)."""
    x, y = rings[..., 0], rings[..., 1]
    return np.abs(np.sum(x[:, :-1] * y[:, 1:] - x[:, 1:] * y[:, :-1], axis=1)) / 2


def _nicads(count: int, seed: int, prefix: str = "12040", start: int = 0) -> np.ndarray:
    """``count`` distinct 16-digit NICADs that look scattered: an affine map modulo 10^11.

    ``start``: the index of the first one; communes sharing a prefix (those of one department) take
    successive ranges of indexes, so their NICADs stay distinct.
    """
    modulus = 10**11
    step = 7_919_000_003  # odd and not a multiple of 5: coprime with 10^11, so the map is a bijection
    offset = (seed * 2_654_435_761) % modulus
    numbers = (np.arange(start, start + count, dtype=np.int64) * step + offset) % modulus
    return np.array([f"{prefix}{n:011d}" for n in numbers.tolist()], dtype=object)


def _defect_counts(total: int) -> dict[str, int]:
    base, extra = divmod(total, len(KINDS))
    return {kind: base + (1 if i < extra else 0) for i, kind in enumerate(KINDS)}


@dataclass
class Dataset:
    """Paths and parameters of a generated dataset."""

    shapefile: Path  # the data file: a shapefile, or a GeoPackage when generated with fmt="gpkg"
    truth_json: Path
    truth_csv: Path
    parcels: int
    features: int
    defects: dict[str, int]
    seconds: float = 0.0
    communes: list[str] = field(default_factory=list)

    @property
    def file(self) -> Path:
        """The data file, whatever its format."""
        return self.shapefile


@dataclass
class _Share:
    """One commune's part of the file: its features in file order and its defects (positions within it)."""

    geoms: np.ndarray
    fields: dict[str, np.ndarray]
    defects: list[Defect]
    counts: dict[str, int]
    centre: tuple[float, float]


def _check_room(parcels: int, counts: dict[str, int], defect_rate: float) -> None:
    defect_blocks = counts["overlap_copy"] + counts["sliver"] + counts["bowtie"] + 2 * counts["nicad_duplicate"]
    full_blocks = parcels // PARCELS_PER_BLOCK
    if defect_blocks > full_blocks:
        raise SystemExit(f"defect rate {defect_rate} needs {defect_blocks} blocks (one per defect, two per "
                         f"duplicated NICAD); {parcels} parcels have {full_blocks} (rate ≤ 0.02)")


def _share(parcels: int, counts: dict[str, int], ox: np.ndarray, oy: np.ndarray, centre: tuple[float, float],
           rng: np.random.Generator, *, jitter: float, seed: int, prefix: str, nicad_start: int) -> _Share:
    """Lay out ``parcels`` parcels on the blocks ``ox``, ``oy``, inject the defects, shuffle the extras in."""
    blocks_needed = math.ceil(parcels / PARCELS_PER_BLOCK)
    defect_blocks = counts["overlap_copy"] + counts["sliver"] + counts["bowtie"] + 2 * counts["nicad_duplicate"]
    full_blocks = parcels // PARCELS_PER_BLOCK
    gx, gy = _corner_grids(ox, oy, jitter, rng)
    rings = _parcel_rings(gx, gy)[:parcels]  # the last block may be partial
    true_area = _ring_area(rings)

    land_use = rng.choice(np.array(LAND_USES, dtype=object), size=parcels, p=LAND_USE_WEIGHTS)
    block_of = np.arange(parcels) // PARCELS_PER_BLOCK
    section = np.array([f"S{b // 25 + 1:04d}" for b in range(blocks_needed)], dtype=object)[block_of]
    number = (block_of % 25) * PARCELS_PER_BLOCK + np.arange(parcels) % PARCELS_PER_BLOCK + 1

    # Defects: one block each (two for a duplicated NICAD), among the full blocks.
    blocks = rng.permutation(full_blocks)[:defect_blocks]
    cursor = 0

    def take(n: int) -> np.ndarray:
        nonlocal cursor
        picked = blocks[cursor:cursor + n]
        cursor += n
        return picked

    def parcel_in(block_ids: np.ndarray) -> np.ndarray:
        return block_ids * PARCELS_PER_BLOCK + rng.integers(0, PARCELS_PER_BLOCK, len(block_ids))

    copy_of = parcel_in(take(counts["overlap_copy"]))
    sliver_blocks = take(counts["sliver"])
    bowtie = parcel_in(take(counts["bowtie"]))
    dup_pairs = parcel_in(take(2 * counts["nicad_duplicate"])).reshape(-1, 2)

    # Bow-ties: swap the second and third vertices of the ring (A B C D A -> A C B D A).
    rings[bowtie] = rings[bowtie][:, [0, 2, 1, 3, 4]]
    geoms = shapely.polygons(rings)
    declared = np.round(true_area * rng.uniform(0.97, 1.03, parcels), 2)

    # Slivers: 0.2–0.4 m wide, 10–25 m long, in the middle of the street east of their block.
    width = rng.uniform(0.2, 0.4, len(sliver_blocks))
    length = rng.uniform(10.0, 25.0, len(sliver_blocks))
    sx = np.round(ox[sliver_blocks] + BLOCK_WIDTH + STREET / 2 - width / 2, 3)
    sy = np.round(oy[sliver_blocks] + rng.uniform(0.0, 1.0, len(sliver_blocks)) * (BLOCK_HEIGHT - length), 3)
    slivers = shapely.box(sx, sy, np.round(sx + width, 3), np.round(sy + length, 3))

    # Extra features: copies first, then slivers; interleaved among the originals at random places.
    extra_geoms = np.concatenate([geoms[copy_of], slivers])
    extra_declared = np.concatenate([declared[copy_of],
                                     np.round(shapely.area(slivers) * rng.uniform(0.97, 1.03, len(slivers)), 2)])
    extra_section = np.concatenate([section[copy_of], section[sliver_blocks * PARCELS_PER_BLOCK]])
    extra_number = np.concatenate([np.full(len(copy_of), 9000) + np.arange(len(copy_of)),
                                   np.full(len(slivers), 9500) + np.arange(len(slivers))]) % 10000
    extra_use = rng.choice(np.array(LAND_USES, dtype=object), size=len(extra_geoms), p=LAND_USE_WEIGHTS)
    extras = len(extra_geoms)
    total = parcels + extras
    nicad = _nicads(total, seed, prefix, nicad_start)
    # Duplicated NICADs: the second parcel of each pair takes the first one's NICAD.
    nicad[dup_pairs[:, 1]] = nicad[dup_pairs[:, 0]]

    is_extra = np.zeros(total, dtype=bool)
    is_extra[rng.choice(total, size=extras, replace=False)] = True
    source = np.empty(total, dtype=np.int64)  # file position -> original index, or parcels + extra index
    source[~is_extra] = np.arange(parcels)
    source[is_extra] = parcels + rng.permutation(extras)
    position = np.empty(total, dtype=np.int64)  # inverse: index -> file position
    position[source] = np.arange(total)

    all_geoms = np.concatenate([geoms, extra_geoms])[source]
    fields = {
        "NICAD": nicad[source],
        "SECTION": np.concatenate([section, extra_section])[source],
        "NUMERO": np.concatenate([number, extra_number]).astype(np.int32)[source],
        "SUPERFICIE": np.concatenate([declared, extra_declared])[source],
        "USAGE": np.concatenate([land_use, extra_use])[source],
    }

    defects: list[Defect] = []

    def add(kind: str, *features: Expected) -> None:
        defects.append(Defect(len(defects), kind, list(features)))

    for i, original in enumerate(copy_of):
        add("overlap_copy",
            Expected(int(position[original]), "original", "rejected", ["overlap_in_file"]),
            Expected(int(position[parcels + i]), "copy", "rejected", ["overlap_in_file"]))
    for i in range(len(slivers)):
        add("sliver", Expected(int(position[parcels + len(copy_of) + i]), "sliver", "accepted", [], ["sliver"]))
    for parcel in bowtie:
        add("bowtie", Expected(int(position[parcel]), "bowtie", "accepted", [], ["invalid_repaired", "area_mismatch"]))
    for first, second in dup_pairs:
        add("nicad_duplicate",
            Expected(int(position[first]), "nicad_holder", "rejected", ["nicad_conflict"]),
            Expected(int(position[second]), "nicad_copier", "rejected", ["nicad_conflict"]))
    defects.sort(key=lambda d: min(f.feature for f in d.features))
    return _Share(all_geoms, fields, defects, counts, centre)


def generate(out_dir: Path, *, parcels: int, defect_rate: float = 0.005, seed: int = 42, jitter: float = 0.4,
             admin_url: str | None = None, force: bool = False, log=print, commune: str = COMMUNE_CODE,
             per_commune: int | None = None, fmt: str = "shp") -> Dataset:
    """Write the file and its ground truth into ``out_dir`` (reused when already there).

    ``commune``: the commune every parcel lies in (default Dialacoto); another one must be readable
    from ``admin_url`` (no fallback circle), and its NICADs start with its own digits.
    ``per_commune``: at most that many parcels per commune, ``commune`` first, then the communes
    ``commune_order`` gives (read from ``admin_url``, which is then required); written commune by
    commune. ``fmt``: ``shp`` (ESRI Shapefile, the default) or ``gpkg`` (GeoPackage, for files
    beyond a shapefile's 2 GB). Without ``per_commune``, the features are the same in either format.
    """
    if fmt not in FORMATS:
        raise SystemExit(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if per_commune is not None and per_commune < PARCELS_PER_BLOCK:
        raise SystemExit(f"per_commune must be at least {PARCELS_PER_BLOCK} (one block)")
    stem = dataset_name(parcels, defect_rate, seed, commune, per_commune, fmt)
    path = out_dir / f"{stem}{FORMATS[fmt][1]}"
    truth_json, truth_csv = out_dir / f"{stem}.truth.json", out_dir / f"{stem}.truth.csv"
    if truth_json.exists() and path.exists() and not force:
        meta = json.loads(truth_json.read_text())
        return Dataset(path, truth_json, truth_csv, parcels, meta["features"], meta["defect_counts"],
                       communes=[c["code"] for c in meta.get("communes", [])] or [meta["commune"]])
    started = time.perf_counter()
    if per_commune is None:
        shares, placement = _single_commune(parcels, defect_rate, seed, jitter, admin_url, commune, log)
    else:
        shares, placement = _commune_by_commune(parcels, per_commune, defect_rate, seed, jitter, admin_url, commune,
                                                log)
    out_dir.mkdir(parents=True, exist_ok=True)
    defects: list[Defect] = []
    communes: list[dict[str, Any]] = []

    def shares_in_file_order() -> Iterator[_Share]:
        offset = 0
        for code, status, share in shares:
            for defect in share.defects:
                defect.id = len(defects)
                for f in defect.features:
                    f.feature += offset
                defects.append(defect)
            features = len(share.geoms)
            communes.append({"code": code, "boundary_status": status, "first_feature": offset, "features": features,
                             "parcels": features - share.counts["overlap_copy"] - share.counts["sliver"],
                             "defect_counts": share.counts,
                             "layout_centre": [round(share.centre[0], 3), round(share.centre[1], 3)]})
            offset += features
            yield share

    if per_commune is None and fmt == "shp":
        share = next(shares_in_file_order())
        _write_shapefile(path, share.geoms, share.fields)
    else:
        _write_stream(path, fmt, shares_in_file_order())
    counts = {kind: sum(c["defect_counts"][kind] for c in communes) for kind in KINDS}
    total = sum(c["features"] for c in communes)
    first = communes[0]
    meta: dict[str, Any] = {
        "file": path.name, "crs": CRS_WKT_EPSG, "seed": seed, "parcels": parcels, "extra_features": total - parcels,
        "features": total, "defect_rate": defect_rate, "defect_counts": counts, "jitter_m": jitter,
        "commune": commune, "commune_boundary_status": first["boundary_status"],
        "placement": placement, "layout_centre": first["layout_centre"],
        "ignored_warnings": list(IGNORED_WARNINGS),
        "expectation_default": "accepted, no reason, no warning other than the ignored ones",
    }
    if per_commune is None:
        meta["defects"] = [asdict(d) for d in defects]
    else:
        code_at = np.array([c["first_feature"] for c in communes])
        meta["per_commune"] = per_commune
        meta["communes"] = communes
        meta["defects"] = [{**asdict(d), "commune": communes[int(np.searchsorted(code_at, d.features[0].feature,
                                                                                  side="right")) - 1]["code"]}
                           for d in defects]
    if fmt != "shp":
        meta["format"] = fmt
    truth_json.write_text(json.dumps(meta, ensure_ascii=False, indent=1))
    _write_truth_csv(truth_csv, meta["defects"], with_commune=per_commune is not None)
    seconds = time.perf_counter() - started
    log(f"generated {path} ({total} features in {len(communes)} commune(s), defects {counts}) in {seconds:.1f} s")
    return Dataset(path, truth_json, truth_csv, parcels, total, counts, seconds, [c["code"] for c in communes])


Shares = Iterator[tuple[str, str | None, _Share]]


def _single_commune(parcels: int, defect_rate: float, seed: int, jitter: float, admin_url: str | None, commune: str,
                    log) -> tuple[Shares, str]:
    """Every parcel in ``commune``, one random stream: the layout of the files measured so far."""
    rng = np.random.default_rng(seed)
    counts = _defect_counts(round(defect_rate * parcels))
    _check_room(parcels, counts, defect_rate)
    found = commune_polygon(admin_url, commune)
    polygon, status = found if found else (None, None)
    if polygon is None and commune != COMMUNE_CODE:
        raise SystemExit(f"commune {commune} not readable from the database")
    if polygon is None:
        log(f"commune {COMMUNE_CODE} not readable from the database: a circle of {FALLBACK_RADIUS:.0f} m "
            f"around {FALLBACK_CENTRE} is used")
    ox, oy, centre = _block_origins(math.ceil(parcels / PARCELS_PER_BLOCK), polygon)
    share = _share(parcels, counts, ox, oy, centre, rng, jitter=jitter, seed=seed, prefix=nicad_prefix(commune),
                   nicad_start=0)
    return iter([(commune, status, share)]), "database commune polygon" if polygon is not None else "fallback circle"


def _commune_by_commune(parcels: int, per_commune: int, defect_rate: float, seed: int, jitter: float,
                        admin_url: str | None, first: str, log) -> tuple[Shares, str]:
    """``per_commune`` parcels in each commune of ``commune_order``, made one commune at a time.

    Each commune has its own random stream (``seed`` and its rank), its own defects (the rate
    applied to its share) and its own NICAD prefix; NICADs are numbered across the file, so two
    communes of one department never share one. A commune without room for its share is skipped.
    """
    if not admin_url:
        raise SystemExit("per-commune generation reads the communes from the database: none reachable")
    order = commune_order(admin_url, first)
    if not order or order[0][0] != first:
        raise SystemExit(f"commune {first} not readable from the database")
    pitch_area = (BLOCK_WIDTH + STREET) * (BLOCK_HEIGHT + STREET)

    def shares() -> Shares:
        left, features, rank = parcels, 0, 0
        for code, status, area in order:
            if left == 0:
                return
            share_parcels = min(per_commune, left)
            needed = math.ceil(share_parcels / PARCELS_PER_BLOCK)
            if area < needed * pitch_area:
                continue  # too small by its area alone
            counts = _defect_counts(round(defect_rate * share_parcels))
            _check_room(share_parcels, counts, defect_rate)
            found = commune_polygon(admin_url, code)
            placed = _commune_blocks(needed, found[0]) if found else None
            if placed is None:
                log(f"commune {code} has no room for {share_parcels} parcels: skipped")
                continue
            ox, oy, centre = placed
            rng = np.random.default_rng([seed, rank])
            share = _share(share_parcels, counts, ox, oy, centre, rng, jitter=jitter, seed=seed,
                           prefix=nicad_prefix(code), nicad_start=features)
            rank += 1
            left -= share_parcels
            features += len(share.geoms)
            log(f"  {code}: {share_parcels} parcels ({parcels - left}/{parcels})")
            yield code, status, share
        if left:
            raise SystemExit(f"the communes hold {parcels - left} parcels of {per_commune} each, {parcels} asked")

    return shares(), "database commune polygons, per commune"


def _write_truth_csv(path: Path, defects: list[dict[str, Any]], *, with_commune: bool) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["defect", "kind", "feature", "role", "status", "reasons", "warnings"]
                        + (["commune"] if with_commune else []))
        for defect in defects:
            for f in defect["features"]:
                writer.writerow([defect["id"], defect["kind"], f["feature"], f["role"], f["status"],
                                 ";".join(f["reasons"]), ";".join(f["warnings"])]
                                + ([defect["commune"]] if with_commune else []))


def _write_shapefile(path: Path, geometries: np.ndarray, fields: dict[str, np.ndarray]) -> None:
    """Write with pyogrio's numpy path: WKB geometries, typed columns, a .prj and a UTF-8 .cpg."""
    from pyogrio.raw import write

    for part in path.parent.glob(f"{path.stem}.*"):
        if part.suffix.lower() in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            part.unlink()
    write(path, shapely.to_wkb(geometries), list(fields.values()), list(fields.keys()),
          driver="ESRI Shapefile", geometry_type="Polygon", crs=CRS_WKT_EPSG, encoding="UTF-8",
          layer_options={"RESIZE": "YES"})  # narrow text fields, as GIS tools write them


def _write_stream(path: Path, fmt: str, shares: Iterator[_Share]) -> None:
    """Write the shares as they are made, through one Arrow stream (one GDAL session, bounded memory).

    Written in a scratch directory and moved into place at the end, so an interrupted run never
    leaves a file that looks complete. The GeoPackage's spatial index is built by GDAL at the end.
    """
    import pyarrow as pa
    from pyogrio.raw import write_arrow

    schema = pa.schema([("geometry", pa.binary()), ("NICAD", pa.string()), ("SECTION", pa.string()),
                        ("NUMERO", pa.int32()), ("SUPERFICIE", pa.float64()), ("USAGE", pa.string())])

    def batches() -> Iterator[pa.RecordBatch]:
        for share in shares:
            for start in range(0, len(share.geoms), STREAM_BATCH):
                part = slice(start, start + STREAM_BATCH)
                yield pa.record_batch([pa.array(shapely.to_wkb(share.geoms[part]), pa.binary()),
                                       *(pa.array(share.fields[name][part], schema.field(name).type)
                                         for name in schema.names[1:])], schema=schema)

    scratch = path.parent / f".partial-{path.stem}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    driver = FORMATS[fmt][0]
    write_arrow(pa.RecordBatchReader.from_batches(schema, batches()), scratch / path.name, layer=path.stem,
                driver=driver, geometry_name="geometry", geometry_type="Polygon", crs=CRS_WKT_EPSG,
                **({"encoding": "UTF-8", "layer_options": {"RESIZE": "YES"}} if fmt == "shp"
                   # GeoPackage 1.3, which GDAL reads without a warning from 3.3 on (the system's ogr2ogr may be old)
                   else {"dataset_options": {"VERSION": "1.3"}}))
    for part in path.parent.glob(f"{path.stem}.*"):
        if part.suffix.lower() in (".shp", ".shx", ".dbf", ".prj", ".cpg", ".gpkg", ".gpkg-wal", ".gpkg-shm"):
            part.unlink()
    for part in scratch.iterdir():
        part.rename(path.parent / part.name)
    scratch.rmdir()
