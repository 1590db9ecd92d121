"""Exports: every format read back by the project's own importer gives the same parcels.

Parcels are imported in a savepoint, exported in each format, and the savepoint is rolled back;
each file is then imported into the emptied registry and compared with the originals: same
count, geometry within 1 cm (Hausdorff distance in EPSG:32628), attributes equal.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pyogrio
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import text

from sifc import exports
from sifc.errors import InvalidInput, NotFound
from sifc.imports.parcels import ParcelImportOptions, import_parcels
from tests.integration.fixtures import bargny_origin, square, write

ATTRIBUTES = ("nicad", "nicad_status", "commune_code", "section", "local_number", "source_id",
              "declared_area_m2", "land_use", "tenure_regime")
LAND_USES = ("habitation", "équipement", "espace vert", None)


def _rows(x0: float, y0: float) -> list[dict]:
    """Demo-like parcels with the awkward cases: no NICAD, no declared area, accents, a hole, two parts,
    a curved outline with many vertices, coordinates that are not round."""
    rows = []
    for i in range(24):
        x, y = x0 + (i % 6) * 21.37, y0 + (i // 6) * 26.11
        shape: Polygon | MultiPolygon = square(x, y, 20.0)
        if i == 3:
            shape = Polygon(square(x, y, 20.0).exterior.coords, [square(x + 5, y + 5, 4.0).exterior.coords])
        elif i == 7:
            shape = MultiPolygon([square(x, y, 9.0), square(x + 11, y + 11, 8.5)])
        elif i == 11:
            shape = shapely.Point(x + 10, y + 10).buffer(9.73, quad_segs=32)
        rows.append({
            "NICAD": None if i % 5 == 0 else f"0141000010{i:06d}",
            "SECTION": f"S{i // 6 + 1:02d}", "NUMERO": str(i + 1), "source_id": f"levé-{i}",
            "SUPERFICIE": None if i % 7 == 0 else round(shape.area * 1.01, 1),
            "USAGE": LAND_USES[i % 4], "REGIME": "domaine national" if i % 3 else "titre foncier",
            "geometry": shape})
    return rows


def _current(db) -> dict[str, dict]:
    columns = ", ".join(ATTRIBUTES)
    rows = db.execute(text(f"SELECT {columns}, area_m2, ST_AsBinary(geom) AS wkb FROM parcel ORDER BY source_id"))
    return {r.source_id: dict(r._mapping) for r in rows}


@pytest.fixture
def exported(db, tmp_path: Path) -> tuple[dict[str, dict], dict[str, Path]]:
    """The originals, and one file per format and CRS, the registry left empty afterwards."""
    x0, y0 = bargny_origin(db)
    source = write(tmp_path, _rows(x0 + 0.123, y0 + 0.456))
    nested = db.begin_nested()
    report = import_parcels(db, source, ParcelImportOptions(commune="Bargny", author="test"))
    assert report.accepted == 24 and report.rejected == 0, report.as_dict()
    originals = _current(db)
    selection = exports.select(db, commune="SN0104-bargny")
    files = {}
    for name, crs in (("geojson", None), ("geojson", "EPSG:32628"), ("gpkg", None), ("gpkg", "EPSG:4326"),
                      ("shp", None), ("csv", None), ("csv", "EPSG:4326"), ("fgb", None)):
        fmt = exports.FORMATS[name]
        target = tmp_path / "out" / f"{name}-{crs or 'default'}{fmt.suffix}"
        stats = exports.export(db, selection, fmt, target, srid=exports.output_srid(fmt, crs), batch_size=7)
        assert stats.features == 24
        files[f"{name}-{crs or 'default'}"] = target
    nested.rollback()
    assert db.execute(text("SELECT count(*) FROM parcel")).scalar() == 0
    return originals, files


CASES = ["geojson-default", "geojson-EPSG:32628", "gpkg-default", "gpkg-EPSG:4326", "shp-default", "csv-default",
         "csv-EPSG:4326", "fgb-default"]


@pytest.mark.parametrize("case", CASES)
def test_round_trip(db, exported, case: str) -> None:
    originals, files = exported
    crs = None
    if case.startswith("csv"):
        crs = "EPSG:4326" if case.endswith("4326") else "EPSG:32628"
    report = import_parcels(db, files[case], ParcelImportOptions(commune="SN0104-bargny", crs=crs, author="test"))
    assert (report.accepted, report.rejected, report.duplicates) == (24, 0, 0), report.as_dict()
    back = _current(db)
    assert set(back) == set(originals)
    for key, original in originals.items():
        copy = back[key]
        assert {a: copy[a] for a in ATTRIBUTES} == {a: original[a] for a in ATTRIBUTES}, key
        distance = shapely.hausdorff_distance(shapely.from_wkb(bytes(original["wkb"])),
                                              shapely.from_wkb(bytes(copy["wkb"])))
        assert distance <= 0.01, (key, distance)
        assert copy["area_m2"] == pytest.approx(original["area_m2"], abs=0.05)


def test_geojson_is_rfc7946_in_wgs84_by_default(db, exported) -> None:
    _, files = exported
    document = json.loads(files["geojson-default"].read_text(encoding="utf-8"))
    assert document["type"] == "FeatureCollection" and "crs" not in document
    feature = document["features"][0]
    assert set(feature["properties"]) == {c.name for c in exports.COLUMNS}
    lon, lat = feature["geometry"]["coordinates"][0][0][0]
    assert -18 < lon < -11 and 12 < lat < 17
    utm = json.loads(files["geojson-EPSG:32628"].read_text(encoding="utf-8"))
    assert utm["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32628"


def test_shapefile_zip_has_its_sidecars_and_the_field_mapping(exported, tmp_path: Path) -> None:
    _, files = exported
    with zipfile.ZipFile(files["shp-default"]) as bundle:
        bundle.extractall(tmp_path / "shp")
        names = set(bundle.namelist())
        assert names == {f"parcelles{s}" for s in (".shp", ".shx", ".dbf", ".prj", ".cpg")} | {"LISEZMOI.txt"}
        assert bundle.read("parcelles.cpg").decode().strip() == "UTF-8"
        assert "UTM" in bundle.read("parcelles.prj").decode() and "28N" in bundle.read("parcelles.prj").decode()
        readme = bundle.read("LISEZMOI.txt").decode("utf-8")
    for column in exports.COLUMNS:
        assert f"{column.short}" in readme and column.name in readme
    info = pyogrio.read_info(tmp_path / "shp" / "parcelles.shp")
    assert list(info["fields"]) == [c.short for c in exports.COLUMNS]
    assert all(len(name) <= 10 for name in info["fields"])


def test_file_formats_declare_their_crs(exported) -> None:
    _, files = exported
    assert pyogrio.read_info(files["gpkg-default"])["crs"] == "EPSG:32628"
    assert pyogrio.read_info(files["gpkg-EPSG:4326"])["crs"] == "EPSG:4326"
    assert pyogrio.read_info(files["fgb-default"])["crs"] == "EPSG:32628"
    header = files["csv-default"].read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == [c.name for c in exports.COLUMNS] + ["wkt"]


def test_selection_by_bbox_and_cql2_filter(db, tmp_path: Path) -> None:
    x0, y0 = bargny_origin(db)
    import_parcels(db, write(tmp_path, _rows(x0, y0)), ParcelImportOptions(commune="SN0104-bargny", author="t"))
    by_filter = exports.select(db, cql="land_use = 'équipement' AND declared_area_m2 > 100")
    expected = db.execute(text("SELECT count(*) FROM parcel WHERE land_use = 'équipement' "
                               "AND declared_area_m2 > 100")).scalar()
    assert expected > 0
    body = b"".join(exports.iter_geojson(db, by_filter))
    assert len(json.loads(body)["features"]) == expected
    box = exports.select(db, bbox=f"{x0 - 1},{y0 - 1},{x0 + 30},{y0 + 20}", bbox_crs="EPSG:32628")
    rows = list(io.StringIO(b"".join(exports.iter_csv(db, box)).decode()))
    assert len(rows) - 1 == 2  # the first two parcels of the first row


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"commune": "Nulle-Part"}, NotFound),
    ({"cql": "owner_name = 'x'"}, InvalidInput),
    ({"cql": "land_use = "}, InvalidInput),
    ({"bbox": "1,2,3"}, InvalidInput),
    ({"bbox": "0,0,1,1", "bbox_crs": "EPSG:2154"}, InvalidInput),
])
def test_bad_selections_are_refused(db, kwargs, error) -> None:
    with pytest.raises(error):
        exports.select(db, **kwargs)


def test_bad_format_and_crs_are_refused() -> None:
    with pytest.raises(InvalidInput):
        exports.get_format("kml")
    with pytest.raises(InvalidInput):
        exports.output_srid(exports.FORMATS["gpkg"], "EPSG:3857")
    with pytest.raises(InvalidInput):
        exports.format_for_path(Path("parcelles.kml"))
