"""Where a test lives says what it is: its tier markers come from its directory, never from its module.

A marker set by hand is forgotten by the next test added beside it (a module that reads ``../shared/data``
without ``shared_data`` runs in a stage that has no such data; an end-to-end module without ``e2e`` is
selected by ``-m "not e2e"``), so tests/conftest.py gives them by path and these tests hold that rule.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import tests.conftest as conftest

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
MODULES = sorted(p for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts)
# Written in pieces so that this file does not match itself.
BY_HAND = re.compile(r"pytest" + r"\.mark\.(" + "|".join(conftest.DIRECTORY_MARKERS) + r")\b")
READS_SHARED = re.compile(r"\b(shared_path|SHARED" + r"_DATA)\b")


class _Item:
    """What the collection hook reads and writes of a collected test."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.markers: set[str] = set()

    def add_marker(self, marker: str) -> None:
        self.markers.add(marker)


def _marked(path: Path) -> set[str]:
    item = _Item(path)
    conftest.pytest_collection_modifyitems([item])  # type: ignore[list-item]
    return item.markers


def _expected(path: Path) -> set[str]:
    relative = path.relative_to(TESTS).as_posix()
    expected = set()
    if relative.startswith("e2e/"):
        expected.add("e2e")
    if "/shared_data/" in f"/{relative}":
        expected.add("shared_data")
    if relative.startswith("e2e/slow_clients/"):
        expected.add("slow_clients")
    if relative.startswith("federation/"):
        expected.add("federation")
    return expected


def test_no_module_sets_a_directory_marker_by_hand():
    by_hand = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in TESTS.rglob("*.py")
               for m in BY_HAND.finditer(p.read_text(encoding="utf-8"))]
    assert by_hand == []


@pytest.mark.parametrize("path", MODULES, ids=[p.relative_to(TESTS).as_posix() for p in MODULES])
def test_every_module_takes_the_markers_of_its_directories(path):
    assert _marked(path) == _expected(path)


def test_each_marked_directory_holds_tests_and_the_markers_are_declared():
    declared = {line.split(":")[0] for line in
                tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]}
    assert set(conftest.DIRECTORY_MARKERS) <= declared
    for marker in conftest.DIRECTORY_MARKERS:
        assert [p for p in MODULES if marker in _marked(p)], f"no test module is marked {marker}"


def test_every_slow_client_module_runs_in_a_stage_of_ci():
    """CI's first stage leaves the slow clients out; the later ones name their files, so each must be named."""
    stages = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    slow = [p.relative_to(REPO).as_posix() for p in MODULES if "slow_clients" in _marked(p)]
    assert slow and [m for m in slow if m not in stages] == []


def test_a_module_reads_shared_data_only_from_a_shared_data_directory():
    reading = {p.relative_to(TESTS).as_posix() for p in MODULES
               if p != Path(__file__).resolve() and READS_SHARED.search(p.read_text(encoding="utf-8"))}
    marked = {p.relative_to(TESTS).as_posix() for p in MODULES if "shared_data" in _marked(p)}
    assert reading == marked


def test_a_path_outside_tests_takes_no_marker(tmp_path):
    assert _marked(tmp_path / "e2e" / "shared_data" / "test_x.py") == set()


def test_missing_shared_data_skips_outside_ci_and_fails_in_ci(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path / "absent")
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="real-data test not run"):
        conftest.shared_path("cadastre", "x.gpkg")
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="in CI this is a failure"):
        conftest.shared_path("cadastre", "x.gpkg")
    (tmp_path / "absent" / "cadastre").mkdir(parents=True)
    (tmp_path / "absent" / "cadastre" / "x.gpkg").touch()
    assert conftest.shared_path("cadastre", "x.gpkg") == tmp_path / "absent" / "cadastre" / "x.gpkg"
