"""The parcel import pipeline on small synthetic files inside Bargny: one reason code per case."""

import zipfile

import geopandas as gpd
import pytest
import yaml
from shapely.geometry import box, shape
from sqlalchemy import text

from sifc.errors import ImportRejected
from sifc.imports.parcels import ParcelImportOptions, import_parcels, write_rejects
from tests.conftest import TABLES, table_fingerprint
from tests.integration.fixtures import bargny_origin, bowtie, square, write

STATE = (*TABLES, "parcel_version", "import_batch")


def _state(db):
    return {t: table_fingerprint(db, t) for t in STATE}


def _statuses(db):
    return {r.nicad_raw or f"#{r.ord}": (r.status, sorted(r.reasons), sorted(r.warnings)) for r in db.execute(text(
        "SELECT ord, nicad_raw, status, reasons, warnings FROM stage_parcel ORDER BY ord")).all()}


@pytest.fixture
def cases(db, tmp_path):
    x, y = bargny_origin(db)
    rows = [
        {"NICAD": "0104040100001", "SUPERFICIE": 400, "geometry": square(x, y)},                  # fine
        {"NICAD": "0104040100002", "SUPERFICIE": 400, "geometry": bowtie(x + 30, y)},             # invalid
        {"NICAD": "0104040100003", "SUPERFICIE": 400, "geometry": None},                          # null
        {"NICAD": "0104040100004", "SUPERFICIE": 400, "geometry": square(x + 60, y)},             # overlap A
        {"NICAD": "0104040100005", "SUPERFICIE": 400, "geometry": square(x + 70, y)},             # overlap B
        {"NICAD": "0104040100006", "SUPERFICIE": 400, "geometry": square(x + 100, y)},            # duplicate 1
        {"NICAD": "0104040100006", "SUPERFICIE": 400, "geometry": square(x + 100, y)},            # duplicate 2
        {"NICAD": "0104040100007", "SUPERFICIE": 400, "geometry": square(x + 130, y)},            # conflict 1
        {"NICAD": "0104040100007", "SUPERFICIE": 400, "geometry": square(x + 160, y)},            # conflict 2
        {"NICAD": "N/A", "SUPERFICIE": 400, "geometry": square(x + 190, y)},                      # placeholder
        {"NICAD": "0", "SUPERFICIE": 400, "geometry": square(x + 220, y)},                        # placeholder
        {"NICAD": "-", "SUPERFICIE": None, "geometry": square(x + 250, y)},                       # no declared area
        {"NICAD": "12345", "SUPERFICIE": 600, "geometry": square(x, y + 30)},                     # nonstandard, area
        {"NICAD": "0104040100008", "SUPERFICIE": 400, "geometry": box(x + 19.99, y + 30, x + 40, y + 50)},  # sliver touch
        {"NICAD": "0104040100009", "SUPERFICIE": 400, "geometry": box(x + 39.995, y + 30, x + 60, y + 50)},  # tiny overlap
    ]
    return write(tmp_path, rows)


def test_every_case_gets_its_reason_code(db, cases):
    report = import_parcels(db, cases, ParcelImportOptions(author="test"))
    status = _statuses(db)
    assert status["0104040100001"][0] == "accepted"
    # The bowtie is repaired into two triangles of 100 m² each: half the declared area.
    assert status["0104040100002"] == ("accepted", [], ["area_mismatch", "invalid_repaired", "provisional_commune"])
    assert status["0104040100003"] == ("rejected", ["null_geometry"], [])
    assert status["0104040100004"][:2] == ("rejected", ["overlap_in_file"])
    assert status["0104040100005"][:2] == ("rejected", ["overlap_in_file"])
    duplicates = [r for r in db.execute(text(
        "SELECT status, reasons FROM stage_parcel WHERE nicad = '0104040100006' ORDER BY ord")).all()]
    assert [(r.status, list(r.reasons)) for r in duplicates] == [("accepted", []), ("duplicate", ["duplicate"])]
    conflicts = db.execute(text("SELECT status, reasons FROM stage_parcel WHERE nicad = '0104040100007'")).all()
    assert [(r.status, list(r.reasons)) for r in conflicts] == [("rejected", ["nicad_conflict"])] * 2
    assert status["N/A"][0] == "accepted" and status["0"][0] == "accepted" and status["-"][0] == "accepted"
    assert "declared_area_missing" in status["-"][2]
    assert {"nicad_nonstandard", "area_mismatch"} <= set(status["12345"][2])
    assert status["0104040100008"][0] == "accepted"  # touching along an edge is no overlap
    assert status["0104040100009"][0] == "accepted"  # 0.1 m² of overlap: survey noise, tolerated
    assert report.read == 15
    assert report.null_geometries == 1 and report.invalid == 1 and report.repaired == 1
    assert report.duplicates == 1
    assert report.accepted == 9
    assert report.rejected_by_reason == {"duplicate": 1, "nicad_conflict": 2, "null_geometry": 1, "overlap_in_file": 2}
    stored = db.execute(text(
        "SELECT count(*), count(nicad), count(*) FILTER (WHERE nicad_status = 'absent'), min(version), "
        "bool_and(batch_id = CAST(:b AS uuid)), bool_and(commune_code = 'SN0104-bargny') FROM parcel"),
        {"b": report.batch_id}).one()
    assert tuple(stored) == (9, 6, 3, 1, True, True)


def test_the_batch_records_file_hash_counts_who_and_options(db, cases):
    import hashlib

    report = import_parcels(db, cases, ParcelImportOptions(author="analyste-test", on_invalid="reject"))
    batch = db.execute(text("SELECT * FROM import_batch WHERE id = CAST(:b AS uuid)"), {"b": report.batch_id}).mappings().one()
    assert batch["sha256"] == hashlib.sha256(cases.name.encode() + cases.read_bytes()).hexdigest()
    assert batch["file_name"] == "parcelles.gpkg"
    assert batch["created_by"] == "analyste-test"
    assert batch["counts"]["accepted"] == report.accepted == 8
    assert batch["options"]["on_invalid"] == "reject"
    assert batch["report"]["rejected_by_reason"]["invalid_geometry"] == 1


def test_dry_run_writes_nothing(db, cases):
    before = _state(db)
    report = import_parcels(db, cases, ParcelImportOptions(dry_run=True))
    assert report.accepted == 9 and report.batch_id is None
    assert _state(db) == before


def test_overlap_with_a_current_parcel_is_rejected(db, cases, tmp_path):
    import_parcels(db, cases, ParcelImportOptions())
    x, y = bargny_origin(db)
    again = write(tmp_path, [{"NICAD": None, "geometry": square(x + 5, y + 5)},
                             {"NICAD": "0104040100001", "geometry": square(x + 400, y)}], name="again.gpkg")
    import_parcels(db, again, ParcelImportOptions())
    status = _statuses(db)
    assert status["#0"][:2] == ("rejected", ["overlap_existing"])
    assert status["0104040100001"][:2] == ("rejected", ["nicad_taken"])


def test_location_checks(db, tmp_path):
    x, y = bargny_origin(db)
    rows = [
        {"NICAD": "in", "geometry": square(x, y)},
        {"NICAD": "sea", "geometry": square(200_000, 1_600_000)},  # Atlantic, west of Dakar
    ]
    path = write(tmp_path, rows)
    import_parcels(db, path, ParcelImportOptions(dry_run=True))
    status = _statuses(db)
    assert status["in"][0] == "accepted"
    assert status["sea"][:2] == ("rejected", ["outside_senegal"])
    # With --commune, a parcel of another commune is outside it.
    import_parcels(db, path, ParcelImportOptions(commune="SN1301-sandiara", dry_run=True))
    assert _statuses(db)["in"][:2] == ("rejected", ["outside_commune"])


def test_unknown_commune_is_refused(db, cases):
    with pytest.raises(ImportRejected) as refused:
        import_parcels(db, cases, ParcelImportOptions(commune="Atlantis"))
    assert refused.value.key == "import.unknown_commune"


def test_reprojection_from_wgs84_and_adindan(db, tmp_path):
    x, y = bargny_origin(db)
    parcels = gpd.GeoDataFrame({"NICAD": ["a", "b"]}, geometry=[square(x, y), square(x + 40, y)], crs="EPSG:32628")
    for crs in ("EPSG:4326", "EPSG:20138", "EPSG:32629"):
        path = tmp_path / f"p{crs[5:]}.gpkg"
        parcels.to_crs(crs).to_file(path)
        report = import_parcels(db, path, ParcelImportOptions(dry_run=True))
        assert report.crs == crs and report.accepted == 2
        areas = db.execute(text("SELECT ST_Area(geom) FROM stage_parcel ORDER BY ord")).scalars().all()
        assert areas == pytest.approx([400, 400], rel=1e-3)  # shapes kept, whatever the datum or zone


def test_shapefile_folder_zip_and_encoding(db, tmp_path):
    x, y = bargny_origin(db)
    frame = gpd.GeoDataFrame({"NICAD": ["0104040100001"], "USAGE": ["équipement"]},
                             geometry=[square(x, y)], crs="EPSG:32628")
    folder = tmp_path / "shp"
    folder.mkdir()
    frame.to_file(folder / "parcelles.shp", encoding="ISO-8859-1")
    (folder / "parcelles.cpg").unlink(missing_ok=True)
    # No .cpg, and GDAL writes no language driver byte in the DBF: the Latin-1 fallback decodes the accents.
    report = import_parcels(db, folder, ParcelImportOptions(dry_run=True))
    assert report.accepted == 1 and report.encoding_origin == "fallback"
    assert db.execute(text("SELECT land_use FROM stage_parcel")).scalar() == "équipement"
    report = import_parcels(db, folder, ParcelImportOptions(dry_run=True, encoding="latin-1"))
    assert report.encoding == "ISO-8859-1" and report.encoding_origin == "option"
    assert db.execute(text("SELECT land_use FROM stage_parcel")).scalar() == "équipement"
    archive = tmp_path / "parcelles.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for part in folder.iterdir():
            bundle.write(part, f"livraison/{part.name}")
    report = import_parcels(db, archive, ParcelImportOptions(dry_run=True, encoding="latin-1"))
    assert report.accepted == 1 and report.format == "ESRI Shapefile"


def test_zip_with_path_traversal_is_refused(db, tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../../etc/evil.shp", b"x")
    with pytest.raises(ImportRejected) as refused:
        import_parcels(db, archive, ParcelImportOptions())
    assert refused.value.key == "import.zip_unsafe"


def test_mapping_file_and_guesses(db, tmp_path):
    x, y = bargny_origin(db)
    path = write(tmp_path, [{"Num_parcel": "0104040100001", "contenance": 400, "USAGE": "habitation",
                             "lot": "12", "geometry": square(x, y)}])
    report = import_parcels(db, path, ParcelImportOptions(dry_run=True))
    assert report.mapping == {"nicad": "Num_parcel", "local_number": "lot", "declared_area": "contenance",
                              "land_use": "USAGE"}
    mapping = tmp_path / "mapping.yml"
    mapping.write_text(yaml.safe_dump({"nicad": "Num_parcel", "tenure_regime": "USAGE"}))
    from sifc.imports.mapping import read_mapping_file

    report = import_parcels(db, path, ParcelImportOptions(dry_run=True, mapping=read_mapping_file(mapping)))
    assert report.mapping["tenure_regime"] == "USAGE" and "land_use" not in report.mapping
    mapping.write_text(yaml.safe_dump({"superficie": "contenance"}))
    with pytest.raises(ImportRejected) as refused:
        read_mapping_file(mapping)
    assert refused.value.key == "mapping.unknown_target"


def test_rejected_features_go_to_a_geopackage_with_reasons(db, cases, tmp_path):
    import_parcels(db, cases, ParcelImportOptions(dry_run=True))
    target = tmp_path / "rejets.gpkg"
    assert write_rejects(db, target) == 6
    rejects = gpd.read_file(target)
    assert sorted(rejects.sifc_reasons) == sorted(["null_geometry", "overlap_in_file", "overlap_in_file",
                                                   "duplicate", "nicad_conflict", "nicad_conflict"])
    assert rejects.crs.to_epsg() == 32628
    assert all(rejects.sifc_message.str.len() > 5)
    assert "src_NICAD" in rejects.columns


def test_rejects_as_geojson_are_in_wgs84_with_their_reasons(db, cases, tmp_path):
    """The web map's variant (GET /imports/{id}/rejects?format=geojson) of the same GeoPackage."""
    import orjson

    from sifc.imports.rejects import to_geojson

    import_parcels(db, cases, ParcelImportOptions(dry_run=True))
    target = tmp_path / "rejets.gpkg"
    write_rejects(db, target)
    collection = orjson.loads(to_geojson(target.read_bytes()))
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 6
    reasons = sorted(f["properties"]["sifc_reasons"] for f in collection["features"])
    assert reasons == sorted(["null_geometry", "overlap_in_file", "overlap_in_file", "duplicate", "nicad_conflict",
                              "nicad_conflict"])
    placed = [f["geometry"] for f in collection["features"] if f["geometry"]]
    assert placed
    lon, lat = shape(placed[0]).representative_point().coords[0]
    assert -17.6 < lon < -11.3 and 12.2 < lat < 16.7  # Senegal, in WGS 84 (not UTM metres)


def test_a_refused_file_leaves_the_database_exactly_as_it_was(db, cases, tmp_path):
    import_parcels(db, cases, ParcelImportOptions())
    before = _state(db)
    nocrs = tmp_path / "nocrs"
    nocrs.mkdir()
    x, y = bargny_origin(db)
    gpd.GeoDataFrame({"a": [1]}, geometry=[square(x + 500, y)], crs="EPSG:32628").to_file(nocrs / "p.shp")
    (nocrs / "p.prj").unlink()
    with pytest.raises(ImportRejected) as refused, db.begin_nested():
        import_parcels(db, nocrs, ParcelImportOptions())
    assert refused.value.key == "import.no_crs"
    assert _state(db) == before


def test_geopackage_layer_choice(db, tmp_path):
    x, y = bargny_origin(db)
    path = tmp_path / "deux.gpkg"
    gpd.GeoDataFrame({"NICAD": ["a"]}, geometry=[square(x, y)], crs="EPSG:32628").to_file(path, layer="levés")
    gpd.GeoDataFrame({"NICAD": ["b"]}, geometry=[square(x + 50, y)], crs="EPSG:32628").to_file(path, layer="brouillon")
    with pytest.raises(ImportRejected) as refused:
        import_parcels(db, path, ParcelImportOptions(dry_run=True))
    assert refused.value.key == "import.choose_layer" and "brouillon" in refused.value.message("fr")
    report = import_parcels(db, path, ParcelImportOptions(dry_run=True, layer="levés"))
    assert report.accepted == 1 and report.layer == "levés"


def test_the_same_file_twice_is_detected_and_changes_nothing(db, cases, tmp_path):
    first = import_parcels(db, cases, ParcelImportOptions())
    before = _state(db)
    copy = tmp_path / "copie.gpkg"
    copy.write_bytes(cases.read_bytes())
    again = import_parcels(db, cases, ParcelImportOptions())
    assert again.already_imported["batch_id"] == first.batch_id
    assert again.accepted == 0 and again.batch_id is None
    assert _state(db) == before


def test_unknown_encoding_is_refused(db):
    from pathlib import Path

    corpus = Path(__file__).resolve().parents[1] / "data" / "shp_corpus" / "fiona_gre"
    with pytest.raises(ImportRejected) as refused:
        import_parcels(db, corpus, ParcelImportOptions(encoding="klingon", dry_run=True))
    assert refused.value.key == "import.bad_encoding"


def test_a_geometry_postgis_finds_invalid_is_repaired_there(db, tmp_path, monkeypatch):
    # Validity is judged with shapely's GEOS; were PostGIS's GEOS to disagree, the table's CHECK
    # refuses the row and the import repairs it with ST_MakeValid instead of failing.
    import numpy as np
    import shapely

    x, y = bargny_origin(db)
    path = write(tmp_path, [{"NICAD": "0104040100071", "geometry": bowtie(x, y)}])
    monkeypatch.setattr(shapely, "is_valid", lambda geoms: np.ones(len(geoms), dtype=bool))
    report = import_parcels(db, path, ParcelImportOptions(author="test"))
    assert report.accepted == 1
    row = db.execute(text("SELECT ST_IsValid(geom), round(area_m2) FROM parcel WHERE nicad = '0104040100071'")).one()
    assert tuple(row) == (True, 200)
    assert "invalid_repaired" in _statuses(db)["0104040100071"][2]
