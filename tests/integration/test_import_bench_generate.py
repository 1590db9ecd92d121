"""The import benchmark's generator beyond one commune: the layout per commune, and that it is deterministic.

``make bench-10m`` and the registries of the scale benchmark fill one commune after another; their
ground truth is only as good as this layout: every parcel inside the commune it was made for, each
commune's own NICAD prefix, no NICAD twice but the injected duplicates, and the same file every time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyogrio import read_arrow

from bench.import_bench import generate as g
from sifc.settings import Settings


@pytest.fixture(scope="module")
def admin_url(settings: Settings, engine) -> str:  # noqa: ANN001 - the session's engine: the reference is loaded
    return settings.admin_url.set(drivername="postgresql").render_as_string(hide_password=False)


def _features(path: Path):
    _, table = read_arrow(path)
    return table


def test_communes_are_filled_in_order_each_with_its_share(tmp_path: Path, admin_url: str) -> None:
    dataset = g.generate(tmp_path, parcels=3000, per_commune=1200, defect_rate=0.01, seed=3, admin_url=admin_url,
                         fmt="gpkg", log=lambda _: None)
    truth = json.loads(dataset.truth_json.read_text())
    order = [code for code, _, _ in g.commune_order(admin_url)]
    assert order[0] == g.COMMUNE_CODE
    assert dataset.communes == order[:3]
    assert [c["parcels"] for c in truth["communes"]] == [1200, 1200, 600]

    table = _features(dataset.file)
    assert table.num_rows == truth["features"] == sum(c["features"] for c in truth["communes"])
    geoms = shapely.from_wkb(np.asarray(table.column(table.schema.names[-1]).to_pylist(), dtype=object))
    nicads = np.asarray(table.column("NICAD").to_pylist(), dtype=object)
    for commune in truth["communes"]:
        polygon, _ = g.commune_polygon(admin_url, commune["code"])
        part = slice(commune["first_feature"], commune["first_feature"] + commune["features"])
        assert shapely.contains(polygon, geoms[part]).all(), commune["code"]
        assert {n[:5] for n in nicads[part]} == {g.nicad_prefix(commune["code"])}
    assert len(set(nicads)) == len(nicads) - truth["defect_counts"]["nicad_duplicate"]
    for defect in truth["defects"]:
        commune = next(c for c in truth["communes"] if c["code"] == defect["commune"])
        assert all(commune["first_feature"] <= f["feature"] < commune["first_feature"] + commune["features"]
                   for f in defect["features"])


def test_the_same_parameters_give_the_same_file(tmp_path: Path, admin_url: str) -> None:
    made = [g.generate(tmp_path / name, parcels=1000, per_commune=600, seed=5, admin_url=admin_url, fmt="gpkg",
                       log=lambda _: None) for name in ("a", "b")]
    assert made[0].truth_json.read_bytes() == made[1].truth_json.read_bytes()
    assert _features(made[0].file).equals(_features(made[1].file))
    digest = hashlib.sha256(made[0].truth_json.read_bytes()).hexdigest()
    again = g.generate(tmp_path / "a", parcels=1000, per_commune=600, seed=5, admin_url=admin_url, fmt="gpkg",
                       log=lambda _: None)  # reused, not written again
    assert hashlib.sha256(again.truth_json.read_bytes()).hexdigest() == digest and again.communes == made[0].communes


def test_a_commune_too_small_for_its_share_has_no_room() -> None:
    assert g._commune_blocks(10, shapely.box(0, 0, 500, 500)) is None
    placed = g._commune_blocks(4, shapely.box(0, 0, 2000, 2000))
    assert placed is not None and len(placed[0]) == 4
