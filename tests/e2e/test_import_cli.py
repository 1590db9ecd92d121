"""``sifc import parcels`` and ``sifc demo load``, end to end, on a database of their own."""

import json

import geopandas as gpd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.conftest import TABLES
from tests.e2e.helpers import fingerprints, run_cli
from tests.integration.fixtures import bowtie, square

STATE = (*TABLES, "parcel_version", "import_batch")
CORPUS = "tests/data/shp_corpus"


def _state(settings):
    return fingerprints(settings, STATE)


def _scalar(settings, sql):
    engine = create_engine(settings.admin_url, poolclass=NullPool)
    with engine.connect() as conn:
        value = conn.execute(text(sql)).scalar()
    engine.dispose()
    return value


@pytest.mark.parametrize(("folder", "message"), [
    ("mbostock_empty", "aucune entité"),
    ("shapelib_multipatch", "MultiPatch"),
    ("pyshp_latin1", "--crs"),
    ("mbostock_null", "Point"),
])
def test_refused_files_answer_one_line_and_change_nothing(fresh_db, folder, message):
    before = _state(fresh_db)
    done = run_cli(fresh_db, "import", "parcels", f"{CORPUS}/{folder}")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert _state(fresh_db) == before


def test_import_writes_the_batch_the_report_and_the_rejects(fresh_db, tmp_path):
    x, y = _scalar(fresh_db, "SELECT ST_X(p) || ',' || ST_Y(p) FROM (SELECT ST_Transform(ST_SetSRID("
                             "ST_MakePoint(-16.78, 14.43), 4326), 32628) p) t").split(",")
    x, y = float(x), float(y)
    rows = [{"NICAD": f"13010100{i:05d}", "USAGE": "habitation", "geometry": square(x + 30 * i, y)} for i in range(5)]
    rows.append({"NICAD": "1301010099999", "USAGE": "habitation", "geometry": bowtie(x, y + 40)})
    rows.append({"NICAD": "1301010088888", "USAGE": "habitation", "geometry": square(x + 5, y + 5)})  # overlaps #0
    path = tmp_path / "sandiara.gpkg"
    gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:32628").to_file(path)
    report = tmp_path / "rapport.json"
    rejects = tmp_path / "rejets.gpkg"
    done = run_cli(fresh_db, "import", "parcels", str(path), "--commune", "SN1301-sandiara",
                   "--on-invalid", "reject", "--report", str(report), "--rejects", str(rejects), "--user", "analyste")
    assert done.returncode == 0, done.stderr
    assert "parcelles acceptées" in done.stdout and "overlap_in_file" in done.stdout, done.stdout
    data = json.loads(report.read_text())
    assert data["accepted"] == 4 and data["rejected_by_reason"] == {"invalid_geometry": 1, "overlap_in_file": 2}
    assert sorted(gpd.read_file(rejects).sifc_reasons) == ["invalid_geometry", "overlap_in_file", "overlap_in_file"]
    assert _scalar(fresh_db, "SELECT count(*) FROM parcel WHERE commune_code = 'SN1301-sandiara'") == 4
    assert _scalar(fresh_db, "SELECT created_by FROM import_batch") == "analyste"
    # The same file again is recognised and changes nothing (English on request).
    before = _state(fresh_db)
    again = run_cli(fresh_db, "--lang", "en", "import", "parcels", str(path))
    assert again.returncode == 0 and "File already imported" in again.stdout and "nothing changed" in again.stdout
    assert _state(fresh_db) == before
    # A dry run of another file leaves the database as it is.
    other = tmp_path / "autre.gpkg"
    gpd.GeoDataFrame(rows[:1], geometry="geometry", crs="EPSG:32628").to_file(other)
    dry = run_cli(fresh_db, "--lang", "en", "import", "parcels", str(other), "--dry-run", "--rejects",
                  str(tmp_path / "r2.gpkg"))
    assert dry.returncode == 0 and "Dry run: nothing was saved." in dry.stdout, dry.stdout
    assert _state(fresh_db) == before


def test_demo_loads_once(fresh_db):
    first = run_cli(fresh_db, "demo", "load")
    assert first.returncode == 0, first.stderr
    assert "parcelles synthétiques" in first.stdout
    demo = "FROM parcel p JOIN import_batch b ON b.id = p.batch_id WHERE b.synthetic"
    count = _scalar(fresh_db, "SELECT count(*) FROM parcel")
    assert _scalar(fresh_db, f"SELECT count(*) {demo}") > 1000
    assert _scalar(fresh_db, f"SELECT count(DISTINCT p.commune_code) {demo}") == 3
    assert _scalar(fresh_db, f"SELECT count(*) FILTER (WHERE p.nicad IS NULL) > 0 {demo}")
    assert _scalar(fresh_db, f"SELECT count(DISTINCT p.land_use) > 1 AND count(DISTINCT p.tenure_regime) > 1 {demo}")
    second = run_cli(fresh_db, "demo", "load")
    assert "déjà chargée" in second.stdout
    assert _scalar(fresh_db, "SELECT count(*) FROM parcel") == count
