"""The field benchmark's pure helpers: the anchor's command lines and the checks of a run's output."""

from __future__ import annotations

from pathlib import Path

from bench.field_bench import anchor, check


def test_the_anchor_writes_every_layer_of_the_package_into_one_file() -> None:
    commands = anchor.commands("ogr2ogr", "PG:dbname=x", Path("out.gpkg"), "POLYGON((0 0,1 0,1 1,0 0))")
    names = [name for name, _ in commands]
    assert names == ["parcels", "neighbours", "commune", "units", "bornes", "new_parcels", "new_bornes"]
    first, *others = [command for _, command in commands]
    assert first[first.index("-dsco") + 1] == "VERSION=1.2" and "-update" not in first
    assert all("-update" in command and "-dsco" not in command for command in others)
    assert all("POLYGON((0 0,1 0,1 1,0 0))" in command[command.index("-sql") + 1]
               for name, command in commands if name in ("parcels", "neighbours", "bornes"))


def test_the_checks_find_a_missing_layer_a_wrong_count_and_other_parcels() -> None:
    expected = {"counts": {"parcels": 2, "bornes": 3}, "parcels_digest": check.digest(["a", "b"])}
    assert check.compare_layers({"counts": {"parcels": 2, "bornes": 3, "sifc_package": 10},
                                 "parcels_digest": check.digest(["b", "a"])}, expected, extra=("sifc_package",)) == []
    problems = check.compare_layers({"counts": {"parcels": 2, "extra": 1},
                                     "parcels_digest": check.digest(["a", "c"])}, expected)
    assert problems == ["layer bornes: None rows, 3 expected", "unexpected layers ['extra']",
                        "parcels: not the expected parcel ids"]
