"""Bornes served like the other layers: their exports (every format, public columns only) and their history.

The demo's bornes of a commune are exported in each format and read back with pyogrio (count, CRS,
no personal column); a borne written with an author, a reason and a source shows none of them in
any file. ``GET /bornes/{id}/versions`` gives the personal fields to a reader in scope only, and
writes that read to the access log.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from pathlib import Path

import pyogrio
import pytest
from sqlalchemy import text

from sifc import exports
from sifc.bornes import service
from sifc.bornes.service import BorneInput
from sifc.db import act_as
from sifc.errors import InvalidInput
from sifc.personal import FREE_TEXT_FIELDS, PERSONAL_FIELDS
from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin, day

BARGNY = "SN0104-bargny"
SANDIARA = "SN1301-sandiara"
PUBLIC = ["borne_id", "version", "code", "commune_code", "label", "source_id", "precision_m", "survey_method",
          "surveyed_on", "valid_from"]
HIDDEN = PERSONAL_FIELDS["bornes"] | FREE_TEXT_FIELDS["bornes"] | {"closed_by", "close_reason"}
SECRET = "Zqxdiop"  # in the author, reason and source of a borne: never in an export


def _borne(db, dx: float = 0.0, dy: float = 0.0) -> str:
    x, y = bargny_origin(db)
    act_as(db, f"agent {SECRET}")
    return service.create(db, data=BorneInput(
        geometry={"type": "Point", "coordinates": [x + dx, y + dy]}, input_crs=32628,
        values={"label": "B12", "precision_m": 0.02, "survey_method": "gnss_rtk", "surveyed_on": day(3),
                "source": f"plan de M. {SECRET}"}, reason=f"levé demandé par {SECRET}"), author=f"agent {SECRET}")


@pytest.fixture
def demo_bornes(db) -> tuple[str, int]:
    """The demo loaded, and one borne of Bargny with personal fields: (its commune, its current bornes)."""
    from sifc.demo import load_demo

    assert load_demo(db) is not None
    _borne(db, dx=-150, dy=-150)
    count = db.execute(text("SELECT count(*) FROM borne WHERE commune_code = :c"), {"c": BARGNY}).scalar()
    assert count > 1
    return BARGNY, count


def _read(target: Path, tmp_path: Path) -> tuple[dict, list[str]]:
    """pyogrio's description of an exported file (a zipped shapefile unpacked) and its field names."""
    if target.suffix == ".zip":
        with zipfile.ZipFile(target) as bundle:
            assert set(bundle.namelist()) == {f"bornes{s}" for s in (".shp", ".shx", ".dbf", ".prj", ".cpg")} | {
                "LISEZMOI.txt"}
            readme = bundle.read("LISEZMOI.txt").decode("utf-8")
            assert all(c.short in readme and c.name in readme for c in exports.BORNE_COLUMNS)
            bundle.extractall(tmp_path / "shp")
        target = tmp_path / "shp" / "bornes.shp"
    info = pyogrio.read_info(target)
    return info, list(info["fields"])


@pytest.mark.parametrize(("name", "crs", "srid"), [
    ("geojson", None, 4326), ("geojson", "EPSG:32628", 32628), ("gpkg", None, 32628), ("gpkg", "EPSG:4326", 4326),
    ("shp", None, 32628), ("csv", None, 32628), ("fgb", None, 32628),
])
def test_every_format_holds_the_communes_bornes_and_no_personal_column(db, demo_bornes, tmp_path, name, crs, srid):
    commune, count = demo_bornes
    fmt = exports.FORMATS[name]
    selection = exports.select(db, commune=commune, layer=exports.BORNES)
    target = tmp_path / exports.filename(fmt, selection, layer=exports.BORNES)
    assert target.name.startswith(f"bornes_{commune}_")
    stats = exports.export(db, selection, fmt, target, srid=exports.output_srid(fmt, crs), batch_size=7,
                           layer=exports.BORNES)
    assert stats.features == count and stats.srid == srid
    assert SECRET not in target.read_bytes().decode("utf-8", "replace")
    if name == "csv":
        rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
        assert len(rows) == count and list(rows[0]) == [*PUBLIC, "wkt"]
        assert all(r["wkt"].startswith("POINT") and r["commune_code"] == commune for r in rows)
        return
    info, fields = _read(target, tmp_path)
    assert info["features"] == count and info["geometry_type"] == "Point"
    assert info["crs"] == f"EPSG:{srid}"
    expected = {"shp": [c.short for c in exports.BORNE_COLUMNS], "geojson": ["id", *PUBLIC]}.get(name, PUBLIC)
    assert fields == expected and not HIDDEN & set(fields)
    if name == "gpkg":
        frame = pyogrio.read_dataframe(target)
        assert set(frame["commune_code"]) == {commune} and frame["precision_m"].notna().all()
        assert list(frame["borne_id"]) == sorted(frame["borne_id"])  # the stable order: by id


def test_geojson_is_named_bornes_with_point_features(db, demo_bornes):
    commune, count = demo_bornes
    body = b"".join(exports.iter_geojson(db, exports.select(db, commune=commune, layer=exports.BORNES),
                                         layer=exports.BORNES))
    document = json.loads(body)
    assert document["name"] == "bornes" and len(document["features"]) == count
    feature = document["features"][0]
    assert feature["geometry"]["type"] == "Point" and feature["id"] == feature["properties"]["borne_id"]
    assert list(feature["properties"]) == PUBLIC


def test_bornes_are_selected_by_bbox_and_filter_and_personal_names_are_refused(db):
    x, y = bargny_origin(db)
    near, far = _borne(db), _borne(db, dx=100)
    box = exports.select(db, bbox=f"{x - 1},{y - 1},{x + 1},{y + 1}", bbox_crs="EPSG:32628", layer=exports.BORNES)
    rows = list(csv.DictReader(io.StringIO(b"".join(exports.iter_csv(db, box, layer=exports.BORNES)).decode())))
    assert [r["borne_id"] for r in rows] == [near]
    precise = exports.select(db, cql="precision_m < 0.05 AND survey_method = 'gnss_rtk'", commune=BARGNY,
                             layer=exports.BORNES)
    rows = list(csv.DictReader(io.StringIO(b"".join(exports.iter_csv(db, precise, layer=exports.BORNES)).decode())))
    assert {r["borne_id"] for r in rows} == {near, far}
    for personal in ("author = 'x'", "reason = 'x'", "source = 'x'", "nicad = 'x'"):  # nicad: a parcel's
        with pytest.raises(InvalidInput):
            exports.select(db, cql=personal, layer=exports.BORNES)


def test_the_parcels_export_is_unchanged_by_the_layers():
    assert exports.LAYERS["parcelles"] is exports.PARCELS and exports.PARCELS.columns is exports.COLUMNS
    assert exports.shapefile_readme(32628).startswith("SIFC — export de parcelles en vigueur")
    assert "« sifc import parcels »" in exports.shapefile_readme(32628)


# --- HTTP -------------------------------------------------------------------------------------------

def test_the_export_route_serves_bornes_in_every_format(client, db, demo_bornes, tmp_path):
    commune, count = demo_bornes
    response = client.get("/exports/bornes", params={"commune": "Bargny"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    assert 'filename="bornes_SN0104-bargny_' in response.headers["content-disposition"]
    assert len(response.json()["features"]) == count and SECRET not in response.text
    for fmt, suffix in (("gpkg", ".gpkg"), ("fgb", ".fgb"), ("shp", ".shp.zip")):
        got = client.get("/exports/bornes", params={"commune": commune, "format": fmt})
        assert got.status_code == 200, got.text
        target = tmp_path / f"export{suffix}"
        target.write_bytes(got.content)
        info, fields = _read(target if fmt != "shp" else target.rename(tmp_path / "export.zip"), tmp_path)
        assert info["features"] == count and info["crs"] == "EPSG:32628" and not HIDDEN & set(fields)
    csv_body = client.get("/exports/bornes", params={"commune": commune, "format": "csv", "filter": "label = 'B12'"})
    assert csv_body.status_code == 200 and csv_body.text.splitlines()[0].split(",") == [*PUBLIC, "wkt"]
    assert len(csv_body.text.strip().splitlines()) == 2
    refused = client.get("/exports/bornes", params={"filter": "author = 'x'"}, headers={"Accept-Language": "en"})
    assert refused.status_code in (400, 422) and refused.headers["content-type"] == "application/problem+json"
    # The parcels' route still exports parcels.
    parcels = client.get("/exports/parcels", params={"commune": commune, "format": "csv"})
    assert parcels.status_code == 200 and parcels.text.startswith("parcel_id,")


def test_the_cli_exports_bornes(settings, tmp_path):
    from typer.testing import CliRunner

    from cli import app

    target = tmp_path / "bornes.gpkg"
    done = CliRunner().invoke(app, ["--lang", "en", "export", "bornes", str(target), "--commune", SANDIARA])
    assert done.exit_code == 0, done.output
    assert "boundary marker(s) exported as GeoPackage (EPSG:32628)" in done.output
    info = pyogrio.read_info(target)
    assert info["geometry_type"] == "Point" and list(info["fields"]) == PUBLIC


# --- a borne's history ------------------------------------------------------------------------------

def _history(db) -> str:
    bid = _borne(db)
    service.update(db, borne_id=bid, data=BorneInput(values={"precision_m": 0.5}, reason=f"recalcul {SECRET}"),
                   author=f"agent {SECRET}", expected_version=1)
    return bid


def _audited(db, bid: str) -> list[tuple]:
    return [tuple(r) for r in db.execute(text("""
        SELECT subject_kind, commune_code, method, endpoint FROM access_audit WHERE subject_id = :id ORDER BY id"""),
        {"id": bid}).all()]


def test_versions_are_public_without_their_authors(client, db):
    bid = _history(db)
    response = client.get(f"/bornes/{bid}/versions")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    features = response.json()["features"]
    assert [f["properties"]["version"] for f in features] == [1, 2]  # newest last
    assert features[0]["properties"]["valid_to"] and features[1]["properties"]["valid_to"] is None
    assert not HIDDEN & {k for f in features for k in f["properties"]} and SECRET not in response.text
    assert _audited(db, bid) == []


def test_a_reader_in_scope_sees_the_authors_and_the_read_is_logged(client, db):
    bid = _history(db)
    reader = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",), name="lecteur bargny")}
    response = client.get(f"/bornes/{bid}/versions", headers=reader, params={"crs": "EPSG:32628"})
    assert response.status_code == 200, response.text
    first, second = (f["properties"] for f in response.json()["features"])
    assert first["author"] == f"agent {SECRET}" and first["reason"] == f"levé demandé par {SECRET}"
    assert first["source"] == f"plan de M. {SECRET}" and first["closed_by"] == f"agent {SECRET}"
    assert first["close_reason"] == "remplacée par la version 2" and second["reason"] == f"recalcul {SECRET}"
    assert response.json()["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32628"
    assert _audited(db, bid) == [("borne", BARGNY, "GET", "/bornes/{borne_id}/versions")]


def test_a_reader_out_of_scope_sees_no_personal_field_and_nothing_is_logged(client, db):
    bid = _history(db)
    reader = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{SANDIARA}",), name="lecteur sandiara")}
    response = client.get(f"/bornes/{bid}/versions", headers=reader)
    assert response.status_code == 200, response.text
    assert not HIDDEN & {k for f in response.json()["features"] for k in f["properties"]}
    assert SECRET not in response.text and _audited(db, bid) == []


def test_the_service_logs_an_in_process_read_and_refuses_an_unknown_borne(client, db):
    from sifc.auth.principal import Principal, ScopeEntry
    from sifc.errors import NotFound

    bid = _history(db)
    service.retire(db, borne_id=bid, author=f"agent {SECRET}", reason="détruite")
    reader = Principal(kind="user", role="lecteur", name="lecteur", scope=(ScopeEntry("commune", BARGNY),),
                       communes=frozenset({BARGNY}))
    body = json.loads(service.versions(db, borne_id=bid, reader=reader))
    assert [f["properties"]["author"] for f in body["features"]] == [f"agent {SECRET}"] * 2  # retired: still read
    assert _audited(db, bid) == [("borne", BARGNY, "CALL", "sifc.bornes.service.versions")]
    with pytest.raises(NotFound):
        service.versions(db, borne_id=str(uuid.uuid4()), reader=reader)
    assert client.get("/bornes/not-a-uuid/versions").status_code == 404
