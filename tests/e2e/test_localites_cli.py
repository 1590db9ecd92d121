"""``sifc localites`` and ``sifc indicators`` end to end: the demo's OSM localités, an officer's corrections at the
console, a reload that leaves them alone, the indicators refreshed; errors in one line."""

from __future__ import annotations

import json
import re

import pytest

from sifc.settings import Settings
from tests.conftest import REPO
from tests.e2e.helpers import assert_one_clean_line, run_cli

MONT_ROLLAND = "SN1303-mont-rolland"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def demo(fresh_db: Settings) -> Settings:
    done = run_cli(fresh_db, "demo", "load")
    assert done.returncode == 0, done.stderr
    return fresh_db


def _listed(settings: Settings, commune: str) -> list[dict]:
    done = run_cli(settings, "localites", "list", "--commune", commune, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["features"]


def test_the_demo_loads_the_pilots_localites_and_officers_correct_them(demo: Settings) -> None:
    features = _listed(demo, MONT_ROLLAND)
    assert len(features) == 10 and {f["properties"]["origin"] for f in features} == {"osm"}
    plain = run_cli(demo, "localites", "list", "--commune", MONT_ROLLAND)
    assert "OpenStreetMap" in plain.stdout and "Ndiaye Bop" in plain.stdout

    added = run_cli(demo, "localites", "add", "--name", "Keur Mbaye", "--kind", "hameau", "--x", "-16.955",
                    "--y", "14.925", "--commune", MONT_ROLLAND, "--reason", "relevé de l'agent")
    assert added.returncode == 0, added.stderr
    new_id = re.search(UUID, added.stdout).group(0)
    bop = next(f["id"] for f in features if f["properties"]["name"] == "Ndiaye Bop")
    renamed = run_cli(demo, "localites", "rename", bop, "--name", "Ndiaye Bopp", "--reason", "orthographe locale")
    assert renamed.returncode == 0 and "version 2" in renamed.stdout, renamed.stderr
    moved = run_cli(demo, "localites", "move", new_id, "--x", "-16.956", "--y", "14.925", "--reason", "GPS")
    assert moved.returncode == 0, moved.stderr
    retired = run_cli(demo, "localites", "retire", new_id, "--reason", "doublon")
    assert retired.returncode == 0, retired.stderr

    # The reload knows every node: the officer's correction stays.
    again = run_cli(demo, "localites", "load", str(REPO / "data" / "senegal" / "localites_pilotes.gpkg"))
    assert again.returncode == 0, again.stderr
    assert "0 nouvelles" in again.stdout
    names = {f["properties"]["name"] for f in _listed(demo, MONT_ROLLAND)}
    assert "Ndiaye Bopp" in names and "Ndiaye Bop" not in names and "Keur Mbaye" not in names


def test_refusals_are_one_line(demo: Settings) -> None:
    outside = run_cli(demo, "localites", "add", "--name", "Loin", "--kind", "village", "--x", "-17.2283",
                      "--y", "14.6933", "--commune", MONT_ROLLAND)
    assert_one_clean_line(outside)
    assert "hors de la limite" in outside.stderr
    assert_one_clean_line(run_cli(demo, "localites", "retire", "nope", "--reason", "x"))
    assert_one_clean_line(run_cli(demo, "localites", "load", "/nonexistent.gpkg"))


def test_indicators_say_why_nothing_is_published(demo: Settings) -> None:
    done = run_cli(demo, "indicators", "refresh", "--commune", "SN0104-bargny")
    assert done.returncode == 0, done.stderr
    assert "gender_min_count" in done.stdout
