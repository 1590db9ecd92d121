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
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

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


def dataset_name(parcels: int, defect_rate: float, seed: int, commune: str = COMMUNE_CODE) -> str:
    """File stem of a dataset: its parameters, so a cached file is reused only when they match."""
    return f"parcelles_{parcels}_r{defect_rate:g}_s{seed}" + ("" if commune == COMMUNE_CODE else f"_{commune}")


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


def _block_origins(needed: int, polygon) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """South-west corners of ``needed`` blocks inside ``polygon``, in grid (row, column) order."""
    if polygon is None:
        centre = FALLBACK_CENTRE
        polygon = shapely.Point(centre).buffer(FALLBACK_RADIUS, quad_segs=64)
    else:
        circle = shapely.maximum_inscribed_circle(polygon, tolerance=10.0)
        centre = tuple(shapely.get_coordinates(circle)[0])
    shapely.prepare(polygon)
    pitch_x, pitch_y = BLOCK_WIDTH + STREET, BLOCK_HEIGHT + STREET
    half = math.ceil(math.sqrt(needed * 1.5 * pitch_x * pitch_y / math.pi) / min(pitch_x, pitch_y)) + 2
    while True:
        cols, rows = np.meshgrid(np.arange(-half, half + 1), np.arange(-half, half + 1))
        ox = centre[0] + cols.ravel() * pitch_x - BLOCK_WIDTH / 2
        oy = centre[1] + rows.ravel() * pitch_y - BLOCK_HEIGHT / 2
        boxes = shapely.box(ox - BOUNDARY_MARGIN, oy - BOUNDARY_MARGIN,
                            ox + BLOCK_WIDTH + BOUNDARY_MARGIN, oy + BLOCK_HEIGHT + BOUNDARY_MARGIN)
        inside = shapely.contains(polygon, boxes)
        if inside.sum() >= needed or half > 2000:
            break
        half *= 2
    if inside.sum() < needed:
        raise SystemExit(f"the commune has room for {inside.sum()} blocks only, {needed} needed")
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


def _nicads(count: int, seed: int, prefix: str = "12040") -> np.ndarray:
    """``count`` distinct 16-digit NICADs that look scattered: an affine map modulo 10^11."""
    modulus = 10**11
    step = 7_919_000_003  # odd and not a multiple of 5: coprime with 10^11, so the map is a bijection
    offset = (seed * 2_654_435_761) % modulus
    numbers = (np.arange(count, dtype=np.int64) * step + offset) % modulus
    return np.array([f"{prefix}{n:011d}" for n in numbers.tolist()], dtype=object)


def _defect_counts(total: int) -> dict[str, int]:
    base, extra = divmod(total, len(KINDS))
    return {kind: base + (1 if i < extra else 0) for i, kind in enumerate(KINDS)}


@dataclass
class Dataset:
    """Paths and parameters of a generated dataset."""

    shapefile: Path
    truth_json: Path
    truth_csv: Path
    parcels: int
    features: int
    defects: dict[str, int]
    seconds: float = 0.0


def generate(out_dir: Path, *, parcels: int, defect_rate: float = 0.005, seed: int = 42, jitter: float = 0.4,
             admin_url: str | None = None, force: bool = False, log=print, commune: str = COMMUNE_CODE) -> Dataset:
    """Write the shapefile and its ground truth into ``out_dir`` (reused when already there).

    ``commune``: the commune every parcel lies in (default Dialacoto); another one must be readable
    from ``admin_url`` (no fallback circle), and its NICADs start with its own digits.
    """
    stem = dataset_name(parcels, defect_rate, seed, commune)
    shp, truth_json, truth_csv = out_dir / f"{stem}.shp", out_dir / f"{stem}.truth.json", out_dir / f"{stem}.truth.csv"
    if truth_json.exists() and shp.exists() and not force:
        meta = json.loads(truth_json.read_text())
        return Dataset(shp, truth_json, truth_csv, parcels, meta["features"], meta["defect_counts"])
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    counts = _defect_counts(round(defect_rate * parcels))
    blocks_needed = math.ceil(parcels / PARCELS_PER_BLOCK)
    defect_blocks = counts["overlap_copy"] + counts["sliver"] + counts["bowtie"] + 2 * counts["nicad_duplicate"]
    full_blocks = parcels // PARCELS_PER_BLOCK
    if defect_blocks > full_blocks:
        raise SystemExit(f"defect rate {defect_rate} needs {defect_blocks} blocks (one per defect, two per "
                         f"duplicated NICAD); {parcels} parcels have {full_blocks} (rate ≤ 0.02)")

    found = commune_polygon(admin_url, commune)
    polygon, status = found if found else (None, None)
    if polygon is None and commune != COMMUNE_CODE:
        raise SystemExit(f"commune {commune} not readable from the database")
    if polygon is None:
        log(f"commune {COMMUNE_CODE} not readable from the database: a circle of {FALLBACK_RADIUS:.0f} m "
            f"around {FALLBACK_CENTRE} is used")
    ox, oy, centre = _block_origins(blocks_needed, polygon)
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
    nicad = _nicads(total, seed, nicad_prefix(commune))
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
    for number_, defect in enumerate(defects):
        defect.id = number_

    out_dir.mkdir(parents=True, exist_ok=True)
    _write_shapefile(shp, all_geoms, fields)
    meta = {
        "file": shp.name, "crs": CRS_WKT_EPSG, "seed": seed, "parcels": parcels, "extra_features": extras,
        "features": total, "defect_rate": defect_rate, "defect_counts": counts, "jitter_m": jitter,
        "commune": commune, "commune_boundary_status": status,
        "placement": "database commune polygon" if polygon is not None else "fallback circle",
        "layout_centre": [round(centre[0], 3), round(centre[1], 3)],
        "ignored_warnings": list(IGNORED_WARNINGS),
        "expectation_default": "accepted, no reason, no warning other than the ignored ones",
        "defects": [asdict(d) for d in defects],
    }
    truth_json.write_text(json.dumps(meta, ensure_ascii=False, indent=1))
    with truth_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["defect", "kind", "feature", "role", "status", "reasons", "warnings"])
        for defect in defects:
            for f in defect.features:
                writer.writerow([defect.id, defect.kind, f.feature, f.role, f.status, ";".join(f.reasons),
                                 ";".join(f.warnings)])
    seconds = time.perf_counter() - started
    log(f"generated {shp} ({total} features, defects {counts}) in {seconds:.1f} s")
    return Dataset(shp, truth_json, truth_csv, parcels, total, counts, seconds)


def _write_shapefile(path: Path, geometries: np.ndarray, fields: dict[str, np.ndarray]) -> None:
    """Write with pyogrio's numpy path: WKB geometries, typed columns, a .prj and a UTF-8 .cpg."""
    from pyogrio.raw import write

    for part in path.parent.glob(f"{path.stem}.*"):
        if part.suffix.lower() in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            part.unlink()
    write(path, shapely.to_wkb(geometries), list(fields.values()), list(fields.keys()),
          driver="ESRI Shapefile", geometry_type="Polygon", crs=CRS_WKT_EPSG, encoding="UTF-8",
          layer_options={"RESIZE": "YES"})  # narrow text fields, as GIS tools write them
