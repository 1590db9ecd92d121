"""``sifc field`` end to end: a package checked out at the console, listed, declared lost; errors in one line."""

from __future__ import annotations

import re
import zipfile

import pyogrio
import pytest

from sifc.settings import Settings
from tests.e2e.helpers import assert_one_clean_line, run_cli


@pytest.fixture(scope="module")
def demo(fresh_db: Settings) -> Settings:
    done = run_cli(fresh_db, "demo", "load")
    assert done.returncode == 0, done.stderr
    return fresh_db


def test_package_list_and_lost(demo: Settings, tmp_path) -> None:
    target = tmp_path / "bargny.zip"
    done = run_cli(demo, "field", "package", "--commune", "Bargny", "--out", str(target), "--expires", "2099-01-01")
    assert done.returncode == 2, done.stdout
    assert_one_clean_line(done)

    done = run_cli(demo, "field", "package", "--commune", "Bargny", "--out", str(target))
    assert done.returncode == 0, done.stderr
    package_id = re.search(r"[0-9a-f]{8}-[0-9a-f-]{27}", done.stdout).group(0)
    assert "480" in done.stdout
    with zipfile.ZipFile(target) as bundle:
        bundle.extract("data.gpkg", tmp_path)
    assert len(pyogrio.read_dataframe(tmp_path / "data.gpkg", layer="parcels")) == 480

    listed = run_cli(demo, "field", "list", "--status", "open")
    assert listed.returncode == 0 and package_id[:8] in listed.stdout, listed.stderr

    lost = run_cli(demo, "field", "lost", package_id, "--reason", "clé USB égarée")
    assert lost.returncode == 0 and package_id in lost.stdout, lost.stderr
    again = run_cli(demo, "field", "lost", package_id, "--reason", "encore")
    assert again.returncode == 2
    assert_one_clean_line(again)
