"""Checks of a parcel file computed on all its geometries at once (shapely 2 / GEOS, vectorised).

The pipeline reads the whole file into arrays, decides here what needs no database —
geometry, reprojection, location in the territorial pieces, NICADs within the file,
overlaps within the file — and leaves to SQL only what compares with the registry.
Each function records its outcomes in :class:`Verdicts` under the pipeline's reason and
warning codes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from shapely.errors import GEOSException

STORAGE_SRID = 32628
POLYGON, MULTIPOLYGON = 3, 6


@dataclass
class Verdicts:
    """Per-feature status, reasons and warnings, in file order."""

    n: int
    status: np.ndarray = field(init=False)
    reasons: defaultdict[int, list[str]] = field(init=False)
    warnings: defaultdict[int, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.status = np.full(self.n, "pending", dtype="<U9")
        # Sparse: most features have no reason and few warnings.
        self.reasons = defaultdict(list)
        self.warnings = defaultdict(list)

    @property
    def pending(self) -> np.ndarray:
        """Mask of the features no check has refused yet."""
        return self.status == "pending"

    def reject(self, mask: np.ndarray, reason: str) -> None:
        """Reject the pending features of ``mask`` (a boolean mask or indices) for ``reason``."""
        for i in self._pending_indices(mask):
            self.status[i] = "rejected"
            self.reasons[i].append(reason)

    def warn(self, mask: np.ndarray, code: str) -> None:
        """Warn the pending features of ``mask``."""
        for i in self._pending_indices(mask):
            self.warnings[i].append(code)

    def window(self, offset: int, length: int) -> VerdictsWindow:
        """The verdicts of features ``offset`` to ``offset + length``, indexed from 0."""
        return VerdictsWindow(self, offset, length)

    def _pending_indices(self, mask: np.ndarray) -> np.ndarray:
        indices = np.flatnonzero(mask) if mask.dtype == bool else np.asarray(mask, dtype=np.int64)
        return indices[self.status[indices] == "pending"]



class VerdictsWindow:
    """A batch's view of the file's verdicts (local indices)."""

    def __init__(self, verdicts: Verdicts, offset: int, length: int) -> None:
        self.verdicts, self.offset, self.length = verdicts, offset, length

    @property
    def pending(self) -> np.ndarray:
        """Mask of the batch's features no check has refused yet."""
        return self.verdicts.status[self.offset:self.offset + self.length] == "pending"

    def _global(self, mask: np.ndarray) -> np.ndarray:
        indices = np.flatnonzero(mask) if mask.dtype == bool else np.asarray(mask, dtype=np.int64)
        return indices + self.offset

    def reject(self, mask: np.ndarray, reason: str) -> None:
        """Reject the batch's pending features of ``mask``."""
        self.verdicts.reject(self._global(mask), reason)

    def warn(self, mask: np.ndarray, code: str) -> None:
        """Warn the batch's pending features of ``mask``."""
        self.verdicts.warn(self._global(mask), code)

    def warn_once(self, mask: np.ndarray, code: str) -> None:
        """Warn the features of ``mask`` that do not have ``code`` yet."""
        for i in self._global(mask):
            if code not in self.verdicts.warnings[i]:
                self.verdicts.warnings[i].append(code)


def intersection_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Area shared by each pair's interiors; a pair GEOS cannot overlay exactly is snapped to 1 mm."""
    if len(a) == 0:
        return np.zeros(0)
    try:
        return shapely.area(shapely.intersection(a, b))
    except GEOSException:
        result = np.empty(len(a))
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            try:
                result[i] = shapely.area(shapely.intersection(x, y))
            except GEOSException:
                result[i] = shapely.area(shapely.intersection(x, y, grid_size=0.001))
        return result


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep the polygons of repaired geometries (ST_CollectionExtract(…, 3)), None when none is left."""
    out = np.empty(len(geoms), dtype=object)
    for i, geom in enumerate(geoms):
        if geom is None:
            out[i] = None
            continue
        kind = shapely.get_type_id(geom)
        if kind in (POLYGON, MULTIPOLYGON):
            out[i] = geom
            continue
        parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (POLYGON, MULTIPOLYGON)]
        polygons = [q for p in parts for q in shapely.get_parts(p)]
        out[i] = shapely.multipolygons(polygons) if polygons else None
    return out


def check_geometries(wkb: np.ndarray, srid: int, *, on_invalid: str, verdicts: VerdictsWindow) -> dict[str, Any]:
    """Null, empty, invalid (judged on the file's own coordinates), reprojection to EPSG:32628.

    Works on one batch. Returns the storage geometries (None where rejected) and counts for
    the report.
    """
    source = shapely.from_wkb(wkb, on_invalid="ignore")
    if shapely.has_z(source).any() or shapely.has_m(source).any():
        source = shapely.force_2d(source)
    kinds = shapely.get_type_id(source)
    present = kinds >= 0
    found = set(np.unique(kinds[present & ~np.isin(kinds, (POLYGON, MULTIPOLYGON))]).tolist())
    verdicts.reject(~present, "null_geometry")
    empty = present & shapely.is_empty(source)
    verdicts.reject(empty, "empty_geometry")
    counts = {"null": int((~present).sum()), "empty": int(empty.sum()), "non_polygon_types": found}
    live = verdicts.pending
    invalid = np.zeros(len(source), dtype=bool)
    invalid[live] = ~shapely.is_valid(source[live])
    counts["invalid"] = int(invalid.sum())
    geoms = source.copy()
    if on_invalid == "reject":
        verdicts.reject(invalid, "invalid_geometry")
    else:
        verdicts.warn(invalid, "invalid_repaired")
        geoms[invalid] = _polygonal(shapely.make_valid(source[invalid]))
    live = verdicts.pending
    if srid != STORAGE_SRID:
        transformer = Transformer.from_crs(srid, STORAGE_SRID, always_xy=True)
        moved = shapely.transform(geoms[live], lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
        bounds = shapely.bounds(moved)
        failed = ~np.isfinite(bounds).all(axis=1)
        moved[failed] = None
        geoms[live] = moved
        verdicts.reject(np.flatnonzero(live)[failed], "reprojection_failed")
        live = verdicts.pending
        # Reprojection can make a valid ring invalid (rarely): repair in the storage CRS too.
        broken = np.zeros(len(geoms), dtype=bool)
        broken[live] = ~shapely.is_valid(geoms[live])
        if broken.any():
            verdicts.warn_once(broken, "invalid_repaired")
            geoms[broken] = _polygonal(shapely.make_valid(geoms[broken]))
    unusable = verdicts.pending & (shapely.is_empty(geoms) | (shapely.get_type_id(geoms) < 0))
    verdicts.reject(unusable, "unrepairable_geometry")
    geoms[~verdicts.pending] = None
    return {"geoms": geoms, **counts}


@dataclass
class Territory:
    """The territorial pieces (ST_Subdivide of regions and communes) around a file."""

    pieces: np.ndarray
    level: np.ndarray
    code: np.ndarray
    commune_status: dict[str, str]
    national_code: dict[str, str | None]

    def __post_init__(self) -> None:
        shapely.prepare(self.pieces)
        self.tree = shapely.STRtree(self.pieces)


def locate(geoms: np.ndarray, areas: np.ndarray, territory: Territory, verdicts: Verdicts, *,
           commune: str | None, tolerance_m2: float, tolerance_ratio: float) -> np.ndarray:
    """Outside Senegal, commune derived (or checked), straddling, provisional; return commune codes.

    A parcel's share of a commune is the area it has inside the commune's pieces. An official
    commune reached beyond the tolerance wins over provisional ones (official boundaries take
    precedence; provisional ones are placeholders), then the largest share.
    """
    codes = np.full(len(geoms), None, dtype=object)
    live = np.flatnonzero(verdicts.pending)
    if len(live) == 0:
        return codes
    source_idx, piece_idx = territory.tree.query(geoms[live], predicate="intersects")
    parcel = live[source_idx]
    covered = shapely.covers(territory.pieces[piece_idx], geoms[parcel])
    shared = np.where(covered, areas[parcel], 0.0)
    partial = np.flatnonzero(~covered)
    shared[partial] = intersection_areas(territory.pieces[piece_idx[partial]], geoms[parcel[partial]])
    shares = pd.DataFrame({"parcel": parcel, "level": territory.level[piece_idx],
                           "code": territory.code[piece_idx], "shared": shared})
    shares = shares.groupby(["parcel", "level", "code"], as_index=False, sort=False)["shared"].sum()
    limit = np.maximum(tolerance_m2, tolerance_ratio * areas)

    regions = shares[shares.level == "region"].groupby("parcel")["shared"].sum()
    region_shared = np.zeros(len(geoms))
    region_shared[regions.index.to_numpy()] = regions.to_numpy()
    outside_senegal = areas - region_shared > limit

    communes = shares[shares.level == "commune"].copy()
    communes["beyond"] = communes.shared.to_numpy() > limit[communes.parcel.to_numpy()]
    communes["official"] = communes.code.map(territory.commune_status).eq("official")
    reached = np.zeros(len(geoms), dtype=np.int64)
    counted = communes[communes.beyond].groupby("parcel").size()
    reached[counted.index.to_numpy()] = counted.to_numpy()
    candidates = communes[communes.code == commune] if commune else communes
    candidates = candidates.assign(first=candidates.official & candidates.beyond)
    best = (candidates.sort_values(["parcel", "first", "shared", "code"], ascending=[True, False, False, True])
            .drop_duplicates("parcel"))
    best_code = np.full(len(geoms), None, dtype=object)
    best_code[best.parcel.to_numpy()] = best.code.to_numpy()
    best_shared = np.zeros(len(geoms))
    best_shared[best.parcel.to_numpy()] = best.shared.to_numpy()
    outside_best = areas - best_shared > limit
    no_code = np.array([c is None for c in best_code])

    mask = np.zeros(len(geoms), dtype=bool)
    mask[live] = True
    verdicts.reject(mask & outside_senegal, "outside_senegal")
    if commune:
        verdicts.reject(mask & (no_code | outside_best), "outside_commune")
    else:
        verdicts.reject(mask & no_code, "no_commune")
        verdicts.warn(mask & ((reached > 1) | outside_best), "straddles_communes")
    provisional = np.array([territory.commune_status.get(c) == "provisional" if c else False for c in best_code])
    verdicts.warn(mask & provisional, "provisional_commune")
    still = verdicts.pending
    codes[still] = commune if commune else best_code[still]
    return codes


def check_nicads(nicads: np.ndarray, geoms: np.ndarray, codes: np.ndarray, territory: Territory,
                 verdicts: Verdicts, *, standard_lengths: tuple[int, ...], prefix_length: int) -> None:
    """Within the file: exact duplicates (imported once), one NICAD on different geometries; NICAD form."""
    has = np.array([n is not None for n in nicads]) & np.array([g is not None for g in geoms])
    frame = pd.DataFrame({"nicad": nicads[has], "ord": np.flatnonzero(has)})
    repeated = frame[frame.nicad.duplicated(keep=False)]
    conflicts: list[int] = []
    for _, group in repeated.groupby("nicad", sort=False):
        ords = sorted(group.ord.tolist())
        pending = {o for o in ords if verdicts.status[o] == "pending"}
        duplicates = {o for o in ords if o in pending and any(
            f < o and f in pending and shapely.equals(geoms[f], geoms[o]) for f in ords)}
        for o in duplicates:
            verdicts.status[o] = "duplicate"
            verdicts.reasons[o].append("duplicate")
        for o in ords:
            if verdicts.status[o] == "pending" and any(
                    p != o and verdicts.status[p] in ("pending", "rejected") and geoms[p] is not None
                    and not shapely.equals(geoms[p], geoms[o]) for p in ords):
                conflicts.append(o)
    verdicts.reject(np.asarray(conflicts, dtype=np.int64), "nicad_conflict")
    live = verdicts.pending & np.array([n is not None for n in nicads])
    lengths = np.array([len(n) if n is not None else 0 for n in nicads])
    verdicts.warn(live & ~np.isin(lengths, standard_lengths), "nicad_nonstandard")
    prefix_mismatch = np.array([
        n is not None and c is not None and territory.national_code.get(c) is not None
        and n[:prefix_length] != territory.national_code[c] for n, c in zip(nicads, codes, strict=True)])
    verdicts.warn(live & prefix_mismatch, "nicad_prefix")


def overlapping_pairs(geoms: np.ndarray, areas: np.ndarray, alive: np.ndarray, *, tolerance_m2: float,
                      tolerance_ratio: float) -> np.ndarray:
    """Pairs of features of the file whose interiors share more than the tolerance, as (i, j), i < j.

    The set is first validated as a polygon coverage (GEOS): only features with an edge that
    does not match its neighbours' can overlap anything, and only those are compared pairwise.
    """
    ids = np.flatnonzero(alive)
    if len(ids) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    live = geoms[ids]
    try:
        flagged = ids[~shapely.is_empty(shapely.coverage_invalid_edges(live))]
    except GEOSException:
        flagged = ids
    if len(flagged) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    tree = shapely.STRtree(live)
    source_idx, tree_idx = tree.query(geoms[flagged], predicate="intersects")
    a, b = flagged[source_idx], ids[tree_idx]
    keep = a != b
    pairs = np.unique(np.sort(np.column_stack([a[keep], b[keep]]), axis=1), axis=0)
    if len(pairs) == 0:
        return pairs
    shared = intersection_areas(geoms[pairs[:, 0]], geoms[pairs[:, 1]])
    limit = np.maximum(tolerance_m2, tolerance_ratio * np.minimum(areas[pairs[:, 0]], areas[pairs[:, 1]]))
    return pairs[shared > limit]
