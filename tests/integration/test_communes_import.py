"""Official commune boundaries replacing provisional ones (``import-communes``), on synthetic files; the
real Boundou communes of ``../shared/data`` are in tests/integration/shared_data/test_communes_boundou.py."""

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import Point
from sqlalchemy import text

from sifc.errors import ImportRejected
from sifc.territories.communes_import import ImportOptions, import_communes, read_alias_file
from tests.conftest import TABLES, table_fingerprint


def _bargny(db, buffer_m: float) -> shapely.Geometry:
    wkb = db.execute(text("SELECT ST_AsBinary(geom) FROM commune WHERE code = 'SN0104-bargny'")).scalar()
    return shapely.from_wkb(bytes(wkb)).buffer(buffer_m)


def _write(tmp_path: Path, rows: list[dict], crs: str | None, name: str = "communes.gpkg") -> Path:
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    path = tmp_path / name
    frame.to_file(path)
    return path


def test_a_larger_official_polygon_clips_provisional_neighbours(db, client, tmp_path):
    path = _write(tmp_path, [{"NOM": "BARGNY", "DEPT": "RUFISQUE", "COD_ENTITE": "01040101",
                              "geometry": _bargny(db, 300)}], "EPSG:32628")
    report = import_communes(db, path, ImportOptions())
    assert [m["commune"] for m in report.matched] == ["SN0104-bargny"]
    assert report.clipped and all(c["clipped_km2"] > 0 for c in report.clipped)
    overlaps = db.execute(text("""
        SELECT count(*) FROM commune a JOIN commune b ON a.code = 'SN0104-bargny'
          AND b.code <> a.code AND ST_Relate(a.geom, b.geom, '2********')
          AND ST_Area(ST_Intersection(a.geom, b.geom)) > 0.01""")).scalar()
    assert overlaps == 0
    body = client.get("/locate?lon=-17.2283&lat=14.6933").json()
    assert body["commune"]["boundary_status"] == "official"
    assert body["provisional"] is False
    assert db.execute(text("SELECT national_code FROM commune WHERE code = 'SN0104-bargny'")).scalar() == "01040101"


def test_a_smaller_official_polygon_leaves_land_without_commune(db, tmp_path):
    path = _write(tmp_path, [{"name": "Bargny", "geometry": _bargny(db, -200)}], "EPSG:32628",
                  name="bargny.geojson")
    report = import_communes(db, path, ImportOptions())
    assert report.clipped == []
    assert [o["commune"] for o in report.orphaned] == ["SN0104-bargny"]
    assert report.orphaned[0]["area_km2"] > 0.5


def test_homonyms_are_told_apart_by_geometry_without_a_department_field(db, tmp_path):
    wkb = db.execute(text("SELECT ST_AsBinary(ST_Buffer(geom, -50)) FROM commune "
                          "WHERE code = 'SN1204-missirah'")).scalar()
    path = _write(tmp_path, [{"name": "MISSIRAH", "geometry": shapely.from_wkb(bytes(wkb))}],
                  "EPSG:32628")
    report = import_communes(db, path, ImportOptions())
    assert report.matched[0]["commune"] == "SN1204-missirah"
    assert report.matched[0]["matched_by"] == "name+department(geometry)"


def test_two_features_for_one_commune_are_both_left_out(db, tmp_path):
    geom = _bargny(db, -10)
    path = _write(tmp_path, [{"name": "Bargny", "geometry": geom},
                             {"name": "BARGNY", "geometry": geom}], "EPSG:32628")
    report = import_communes(db, path, ImportOptions())
    assert report.matched == []
    assert [u["reason"] for u in report.unmatched] == ["several_features_for_one_commune"] * 2


def test_a_file_without_crs_is_refused_and_changes_nothing(db, tmp_path):
    path = _write(tmp_path, [{"name": "Bargny", "geometry": _bargny(db, 0)}], "EPSG:32628",
                  name="nocrs.shp")
    path.with_suffix(".prj").unlink()
    before = {t: table_fingerprint(db, t) for t in TABLES}
    with pytest.raises(ImportRejected) as refused:
        import_communes(db, path, ImportOptions())
    assert refused.value.key == "import.no_crs"
    assert "--crs" in refused.value.message("fr")
    assert {t: table_fingerprint(db, t) for t in TABLES} == before
    # Given the CRS, the same file goes through.
    assert import_communes(db, path, ImportOptions(crs="EPSG:32628")).matched


def test_non_polygon_geometries_are_refused(db, tmp_path):
    path = _write(tmp_path, [{"name": "Bargny", "geometry": Point(-17.2283, 14.6933)}], "EPSG:4326",
                  name="points.geojson")
    with pytest.raises(ImportRejected) as refused:
        import_communes(db, path, ImportOptions())
    assert refused.value.key == "import.not_polygons"
    assert "Point" in refused.value.message("en")


@pytest.mark.parametrize(("content", "reason"), [
    ("only-one-column\n", "deux colonnes"),
])
def test_bad_alias_file_is_refused(tmp_path, content, reason):
    path = tmp_path / "a.csv"
    path.write_text(content)
    with pytest.raises(ImportRejected) as refused:
        read_alias_file(path)
    assert reason in refused.value.message("fr")


def test_alias_to_an_unknown_commune_is_refused(db, tmp_path):
    path = _write(tmp_path, [{"name": "X", "geometry": _bargny(db, -10)}], "EPSG:32628")
    with pytest.raises(ImportRejected) as refused:
        import_communes(db, path, ImportOptions(aliases=[("X", "Atlantis")]))
    assert refused.value.key == "aliases.unknown_commune"


def test_parcels_left_outside_their_commune_are_reported(db, tmp_path):
    from sifc.imports.parcels import ParcelImportOptions, import_parcels
    from tests.integration.fixtures import bargny_origin, square

    x, y = bargny_origin(db)
    parcels = _write(tmp_path, [{"NICAD": "0104040100001", "geometry": square(x, y)}], "EPSG:32628",
                     name="parcels.gpkg")
    import_parcels(db, parcels, ParcelImportOptions())
    # An official Bargny that no longer holds the parcel.
    hole = _bargny(db, 0).difference(square(x - 100, y - 100, 300))
    path = _write(tmp_path, [{"name": "Bargny", "geometry": hole}], "EPSG:32628", name="bargny.gpkg")
    report = import_communes(db, path, ImportOptions())
    assert report.parcels_outside == [{"commune": "SN0104-bargny", "parcels": 1}]
    assert db.execute(text("SELECT commune_code FROM parcel")).scalar() == "SN0104-bargny"
