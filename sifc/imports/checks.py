"""Checks of a parcel file computed on all its geometries at once (shapely 2 / GEOS, vectorised).

The pipeline reads the whole file into arrays, decides here what needs no database —
geometry, reprojection, location in the territorial pieces, NICADs within the file,
overlaps within the file — and leaves to SQL only what compares with the registry.
Each function records its outcomes in :class:`Verdicts` under the pipeline's reason and
warning codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import Transformer
from shapely.errors import GEOSException

from sifc.crs import STORAGE_SRID

POLYGON, MULTIPOLYGON = 3, 6


@dataclass
class Verdicts:
    """Per-feature status, and one mask per reason or warning code (compact at a million features)."""

    n: int
    status: np.ndarray = field(init=False)
    reasons: dict[str, np.ndarray] = field(init=False)
    warnings: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        self.status = np.full(self.n, "pending", dtype="<U9")
        self.reasons = {}  # code → mask, in the order codes were first given
        self.warnings = {}

    @property
    def pending(self) -> np.ndarray:
        """Mask of the features no check has refused yet."""
        mask: np.ndarray = self.status == "pending"
        return mask

    def _mask(self, table: dict[str, np.ndarray], code: str) -> np.ndarray:
        if code not in table:
            table[code] = np.zeros(self.n, dtype=bool)
        return table[code]

    def reject(self, mask: np.ndarray, reason: str, status: str = "rejected") -> None:
        """Refuse the pending features of ``mask`` (a boolean mask or indices) for ``reason``."""
        indices = self._pending_indices(mask)
        self.status[indices] = status
        self._mask(self.reasons, reason)[indices] = True

    def warn(self, mask: np.ndarray, code: str) -> None:
        """Warn the pending features of ``mask``."""
        self._mask(self.warnings, code)[self._pending_indices(mask)] = True

    def warn_any(self, indices: np.ndarray, code: str) -> None:
        """Warn the features ``indices`` whatever their status (once: a code is a flag)."""
        self._mask(self.warnings, code)[indices] = True

    def codes(self, table: dict[str, np.ndarray], start: int, stop: int) -> list[tuple[str, ...]]:
        """Each feature's codes from ``start`` to ``stop``, in the order the codes were first given."""
        names = list(table)
        if not names:
            return [()] * (stop - start)
        signature = np.zeros(stop - start, dtype=np.uint64)
        for bit, name in enumerate(names):
            signature |= table[name][start:stop].astype(np.uint64) << np.uint64(bit)
        decoded = {int(sig): tuple(n for b, n in enumerate(names) if int(sig) >> b & 1)
                   for sig in np.unique(signature)}
        return [decoded[int(sig)] for sig in signature]

    def window(self, offset: int, length: int) -> VerdictsWindow:
        """The verdicts of features ``offset`` to ``offset + length``, indexed from 0."""
        return VerdictsWindow(self, offset, length)

    def _pending_indices(self, mask: np.ndarray) -> np.ndarray:
        indices = np.flatnonzero(mask) if mask.dtype == bool else np.asarray(mask, dtype=np.int64)
        pending: np.ndarray = indices[self.status[indices] == "pending"]
        return pending


class VerdictsWindow:
    """A batch's view of the file's verdicts (local indices)."""

    def __init__(self, verdicts: Verdicts, offset: int, length: int) -> None:
        self.verdicts, self.offset, self.length = verdicts, offset, length

    @property
    def pending(self) -> np.ndarray:
        """Mask of the batch's features no check has refused yet."""
        mask: np.ndarray = self.verdicts.status[self.offset:self.offset + self.length] == "pending"
        return mask

    def _global(self, mask: np.ndarray) -> np.ndarray:
        indices = np.flatnonzero(mask) if mask.dtype == bool else np.asarray(mask, dtype=np.int64)
        return indices + self.offset

    def reject(self, mask: np.ndarray, reason: str) -> None:
        """Reject the batch's pending features of ``mask``."""
        self.verdicts.reject(self._global(mask), reason)

    def warn(self, mask: np.ndarray, code: str) -> None:
        """Warn the batch's pending features of ``mask``."""
        self.verdicts.warn(self._global(mask), code)

    def warn_any(self, mask: np.ndarray, code: str) -> None:
        """Warn the batch's features of ``mask`` whatever their status."""
        self.verdicts.warn_any(self._global(mask), code)


def intersection_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Area shared by each pair's interiors; a pair GEOS cannot overlay exactly is snapped to 1 mm."""
    if len(a) == 0:
        return np.zeros(0)
    try:
        areas: np.ndarray = shapely.area(shapely.intersection(a, b))
        return areas
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
            verdicts.warn_any(broken, "invalid_repaired")
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
        self.is_region = self.level == "region"
        # Commune codes as sorted integer ids (the id order is the code order).
        self.codes, self.code_id = np.unique(np.where(self.is_region, "", self.code).astype(str), return_inverse=True)
        self.official = np.array([self.commune_status.get(c) == "official" for c in self.codes], dtype=bool)
        self.provisional = np.array([self.commune_status.get(c) == "provisional" for c in self.codes], dtype=bool)


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
    n = len(geoms)
    limit = np.maximum(tolerance_m2, tolerance_ratio * areas)
    is_region = territory.is_region[piece_idx]
    region_shared = np.bincount(parcel[is_region], weights=shared[is_region], minlength=n)
    outside_senegal = areas - region_shared > limit

    # Share of each (parcel, commune): integer keys, summed without building Python objects.
    ncodes = len(territory.codes)
    key = parcel[~is_region] * ncodes + territory.code_id[piece_idx[~is_region]]
    keys, inverse = np.unique(key, return_inverse=True)
    sums = np.bincount(inverse, weights=shared[~is_region], minlength=len(keys))
    c_parcel, c_code = keys // ncodes, keys % ncodes
    beyond = sums > limit[c_parcel]
    reached = np.bincount(c_parcel[beyond], minlength=n)
    first = territory.official[c_code] & beyond
    candidates = np.ones(len(keys), dtype=bool)
    if commune:
        given = np.flatnonzero(territory.codes == commune)
        candidates = c_code == (given[0] if len(given) else -1)
    # Best commune per parcel: official and beyond the tolerance first, then the largest share, then the code.
    order = np.flatnonzero(candidates)[np.lexsort((c_code[candidates], -sums[candidates], ~first[candidates],
                                                   c_parcel[candidates]))]
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = c_parcel[order][1:] != c_parcel[order][:-1]
    best = order[keep]
    best_code = np.full(n, None, dtype=object)
    best_code[c_parcel[best]] = territory.codes[c_code[best]]
    best_shared = np.zeros(n)
    best_shared[c_parcel[best]] = sums[best]
    outside_best = areas - best_shared > limit
    no_code = np.ones(n, dtype=bool)
    no_code[c_parcel[best]] = False

    mask = np.zeros(len(geoms), dtype=bool)
    mask[live] = True
    verdicts.reject(mask & outside_senegal, "outside_senegal")
    if commune:
        verdicts.reject(mask & (no_code | outside_best), "outside_commune")
    else:
        verdicts.reject(mask & no_code, "no_commune")
        verdicts.warn(mask & ((reached > 1) | outside_best), "straddles_communes")
    provisional = np.zeros(n, dtype=bool)
    provisional[c_parcel[best]] = territory.provisional[c_code[best]]
    verdicts.warn(mask & provisional, "provisional_commune")
    still = verdicts.pending
    codes[still] = commune if commune else best_code[still]
    return codes


def check_nicads(nicads: pa.ChunkedArray, geoms: np.ndarray, codes: np.ndarray, territory: Territory,
                 verdicts: Verdicts, *, standard_lengths: tuple[int, ...], prefix_length: int) -> None:
    """Within the file: exact duplicates (imported once), one NICAD on different geometries; NICAD form.

    ``nicads`` stays an Arrow array: a million NICADs as Python strings would weigh ~100 MB.
    """
    present = ~np.asarray(pc.is_null(nicads).to_numpy(zero_copy_only=False), dtype=bool)
    present &= np.array([g is not None for g in geoms], dtype=bool)
    counts = pc.value_counts(pc.filter(nicads, pa.array(present)))
    repeated_values = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    repeated = present & np.asarray(pc.is_in(nicads, value_set=repeated_values).to_numpy(zero_copy_only=False),
                                    dtype=bool)
    groups: dict[str, list[int]] = {}
    for o in np.flatnonzero(repeated).tolist():
        groups.setdefault(nicads[o].as_py(), []).append(o)
    resolve_repeated(groups, geoms, verdicts)
    nicad_form_warnings(nicads, codes, territory, verdicts, standard_lengths=standard_lengths,
                        prefix_length=prefix_length)


def resolve_repeated(groups: dict[str, list[int]], geoms: np.ndarray, verdicts: Verdicts) -> None:
    """Features sharing a NICAD (``groups``: NICAD → features, in file order, each with a shape).

    An exact copy of an earlier pending feature is imported once (``duplicate``); a pending feature
    whose NICAD another feature (pending or refused for another reason) carries on another shape is
    refused with it (``nicad_conflict``).
    """
    conflicts: list[int] = []
    for ords in groups.values():
        pending = {o for o in ords if verdicts.status[o] == "pending"}
        duplicates = {o for o in ords if o in pending and any(
            f < o and f in pending and shapely.equals(geoms[f], geoms[o]) for f in ords)}
        verdicts.reject(np.asarray(sorted(duplicates), dtype=np.int64), "duplicate", status="duplicate")
        for o in ords:
            if verdicts.status[o] == "pending" and any(
                    p != o and verdicts.status[p] in ("pending", "rejected") and geoms[p] is not None
                    and not shapely.equals(geoms[p], geoms[o]) for p in ords):
                conflicts.append(o)
    verdicts.reject(np.asarray(conflicts, dtype=np.int64), "nicad_conflict")


def nicad_form_warnings(nicads: Any, codes: np.ndarray, territory: Territory, verdicts: Verdicts, *,
                        standard_lengths: tuple[int, ...], prefix_length: int) -> None:
    """Warnings on the form of the pending features' NICADs: length, prefix other than the commune's code."""
    has_nicad = ~np.asarray(pc.is_null(nicads).to_numpy(zero_copy_only=False), dtype=bool)
    live = verdicts.pending & has_nicad
    lengths = np.asarray(pc.fill_null(pc.utf8_length(nicads), 0).to_numpy(zero_copy_only=False))
    verdicts.warn(live & ~np.isin(lengths, standard_lengths), "nicad_nonstandard")
    # Each feature's commune's national code, through integer ids of the (few) communes.
    known = np.array([c is not None for c in codes], dtype=bool)
    names, ids = np.unique(np.where(known, codes, "").astype(str), return_inverse=True)
    national = np.array([territory.national_code.get(c) if c else None for c in names], dtype=object)[ids]
    expected = pa.array(national, type=pa.string())
    mismatch = pc.fill_null(pc.not_equal(pc.utf8_slice_codeunits(nicads, 0, prefix_length), expected), False)
    verdicts.warn(live & np.asarray(mismatch.to_numpy(zero_copy_only=False), dtype=bool), "nicad_prefix")


def overlapping_pairs(geoms: np.ndarray, areas: np.ndarray, alive: np.ndarray, *, tolerance_m2: float,
                      tolerance_ratio: float, block_size: int = 100_000) -> np.ndarray:
    """Pairs of features of the file whose interiors share more than the tolerance, as (i, j), i < j.

    The set is first validated as a polygon coverage (GEOS): only features with an edge that
    does not match its neighbours' can overlap anything, and only those are compared pairwise.
    To bound memory, this runs by strips of about ``block_size`` features (by centroid x); a
    strip's block holds every feature reaching within the widest feature's width of it, so each
    feature it owns is validated against all its neighbours.
    """
    ids = np.flatnonzero(alive)
    if len(ids) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    bounds = shapely.bounds(geoms[ids])
    centre_x = (bounds[:, 0] + bounds[:, 2]) / 2
    width = float(np.max(bounds[:, 2] - bounds[:, 0]))
    order = np.argsort(centre_x, kind="stable")
    found = []
    for start in range(0, len(ids), block_size):
        owned = order[start:start + block_size]
        low, high = centre_x[owned].min() - width, centre_x[owned].max() + width
        block = np.flatnonzero((bounds[:, 2] >= low) & (bounds[:, 0] <= high))
        found.append(_block_pairs(geoms, areas, ids[block], np.isin(block, owned),
                                  tolerance_m2=tolerance_m2, tolerance_ratio=tolerance_ratio))
    pairs = np.concatenate(found)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def _block_pairs(geoms: np.ndarray, areas: np.ndarray, ids: np.ndarray, owned: np.ndarray, *,
                 tolerance_m2: float, tolerance_ratio: float) -> np.ndarray:
    live = geoms[ids]
    try:
        invalid = ~shapely.is_empty(shapely.coverage_invalid_edges(live))
    except GEOSException:
        invalid = np.ones(len(ids), dtype=bool)
    flagged = ids[invalid & owned]
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
    overlapping: np.ndarray = pairs[shared > limit]
    return overlapping
