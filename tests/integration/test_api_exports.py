"""HTTP exports: formats, headers, selections and problem+json refusals."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date
from pathlib import Path

import pyogrio
import pytest
from sqlalchemy import text

from sifc.imports.parcels import ParcelImportOptions, import_parcels
from tests.integration.fixtures import bargny_origin, square, write


@pytest.fixture
def parcels(db, tmp_path: Path) -> int:
    x0, y0 = bargny_origin(db)
    rows = [{"NICAD": f"014100001000{i:04d}", "NUMERO": str(i), "USAGE": "habitation" if i % 2 else "commerce",
             "SUPERFICIE": 400.0, "geometry": square(x0 + i * 21, y0, 20)} for i in range(12)]
    report = import_parcels(db, write(tmp_path, rows), ParcelImportOptions(commune="SN0104-bargny", author="t"))
    assert report.accepted == 12
    return 12


def test_geojson_streamed_with_headers(client, parcels) -> None:
    response = client.get("/exports/parcels", params={"commune": "Bargny"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    today = date.today().isoformat()
    assert response.headers["content-disposition"] == \
        f'attachment; filename="parcelles_SN0104-bargny_{today}.geojson"'
    assert response.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4326>"
    document = response.json()
    assert len(document["features"]) == parcels
    assert "owner" not in json.dumps(document) and "author" not in document["features"][0]["properties"]


@pytest.mark.parametrize(("fmt", "media_type", "suffix"), [
    ("gpkg", "application/geopackage+sqlite3", ".gpkg"),
    ("fgb", "application/flatgeobuf", ".fgb"),
    ("shp", "application/zip", ".shp.zip"),
])
def test_file_formats(client, parcels, tmp_path: Path, fmt: str, media_type: str, suffix: str) -> None:
    response = client.get("/communes/SN0104-bargny/parcels/export", params={"format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"].endswith(f'{suffix}"')
    target = tmp_path / f"export{suffix}"
    target.write_bytes(response.content)
    if fmt == "shp":
        with zipfile.ZipFile(target) as bundle:
            bundle.extractall(tmp_path / "shp")
        target = tmp_path / "shp" / "parcelles.shp"
    info = pyogrio.read_info(target)
    assert info["features"] == parcels and info["crs"] == "EPSG:32628"


def test_csv_with_filter_and_bbox(client, db, parcels) -> None:
    x0, y0 = bargny_origin(db)
    response = client.get("/exports/parcels", params={
        "format": "csv", "filter": "land_use = 'habitation'",
        "bbox": f"{x0 - 1},{y0 - 1},{x0 + 21 * 6 - 2},{y0 + 10}", "bbox-crs": "EPSG:32628"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "parcelles_selection_" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 3 and {r["land_use"] for r in rows} == {"habitation"}  # parcels 1, 3, 5
    assert all(r["wkt"].startswith("MULTIPOLYGON") for r in rows)


def test_exports_in_a_chosen_crs(client, parcels) -> None:
    response = client.get("/exports/parcels", params={"commune": "SN0104-bargny", "crs": "EPSG:32628"})
    assert response.json()["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32628"


def test_empty_selection_is_an_empty_collection(client, parcels) -> None:
    response = client.get("/exports/parcels", params={"filter": "land_use = 'nulle part'"})
    assert response.status_code == 200 and response.json()["features"] == []


@pytest.mark.parametrize(("params", "status", "problem"), [
    ({"format": "kml"}, 422, "http.validation"),
    ({"commune": "Atlantide"}, 404, "territory.not_found"),
    ({"filter": "holder_name = 'Diop'"}, 422, "ogc.bad_filter"),
    ({"filter": "land_use = "}, 422, "ogc.bad_filter"),
    ({"filter": "area_m2 > 'grand'"}, 400, "http.bad_value"),
    ({"bbox": "1,2,3"}, 422, "spatial.bad_bbox"),
    ({"crs": "EPSG:3857"}, 422, "http.validation"),
])
def test_refusals_are_problems(client, params, status, problem) -> None:
    response = client.get("/exports/parcels", params=params, headers={"Accept-Language": "en"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:sifc:problem:{problem}"


def test_unknown_commune_path(client) -> None:
    response = client.get("/communes/nulle-part/parcels/export")
    assert response.status_code == 404 and response.json()["type"] == "urn:sifc:problem:territory.not_found"


def test_no_user_text_reaches_sql(client, db, parcels) -> None:
    hostile = "x'; DROP VIEW parcel; --"
    response = client.get("/exports/parcels", params={"commune": hostile})
    assert response.status_code == 404
    response = client.get("/exports/parcels", params={"filter": "land_use = 'x; DROP VIEW parcel; --'"})
    assert response.status_code == 200 and response.json()["features"] == []
    assert db.execute(text("SELECT count(*) FROM parcel")).scalar() == parcels
