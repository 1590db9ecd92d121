"""Localités (ADR 0005 §3): versioned points inside their commune, public without authors, the OSM load."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from sifc.errors import InvalidInput
from sifc.localites import service
from tests.conftest import REPO, api_key
from tests.integration.fixtures import bargny_origin

BARGNY = "SN0104-bargny"
SENDOU = "SN0104-sendou"
PILOTS = REPO / "data" / "senegal" / "localites_pilotes.gpkg"
MARK = "Zqxloc"


def _feature(x: float, y: float, **properties) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]}, "properties": properties}


@pytest.fixture
def bargny_officer(db) -> dict[str, str]:
    return {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",))}


def test_an_officer_places_moves_renames_and_retires_a_localite(client, db, bargny_officer):
    x, y = bargny_origin(db)
    created = client.post("/localites", params={"crs": "EPSG:32628"}, headers=bargny_officer,
                          json=_feature(x, y, name="Ndiaye  Bop", kind="quartier", reason=f"note {MARK}"))
    assert created.status_code == 201, created.text
    body = created.json()
    lid = body["id"]
    assert body["properties"]["name"] == "Ndiaye Bop"
    assert body["properties"]["commune_code"] == BARGNY and body["properties"]["origin"] == "agent"
    assert "author" not in body["properties"] and MARK not in created.text

    listed = client.get(f"/communes/{BARGNY}/localites")
    assert listed.status_code == 200
    assert [f["id"] for f in listed.json()["features"]] == [lid]
    assert "OpenStreetMap" in listed.json()["attribution"]

    # A move without If-Match: 428; with it: a new version, the old one closed.
    stale = created.headers["ETag"]
    moved = client.patch(f"/localites/{lid}", params={"crs": "EPSG:32628"}, headers=bargny_officer,
                         json=_feature(x + 50, y, reason="mieux placé"))
    assert moved.status_code == 428
    moved = client.patch(f"/localites/{lid}", params={"crs": "EPSG:32628"},
                         headers={**bargny_officer, "If-Match": stale},
                         json=_feature(x + 50, y, reason="mieux placé"))
    assert moved.status_code == 200, moved.text
    assert moved.json()["properties"]["version"] == 2
    renamed = client.patch(f"/localites/{lid}", headers={**bargny_officer, "If-Match": stale},
                           json={"type": "Feature", "geometry": None, "properties": {"name": "X", "reason": "r"}})
    assert renamed.status_code == 412
    renamed = client.patch(f"/localites/{lid}", headers={**bargny_officer, "If-Match": moved.headers["ETag"]},
                           json={"type": "Feature", "geometry": None,
                                 "properties": {"name": "Ndiaye Bop Extension", "kind": "village", "reason": "r"}})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["properties"]["kind"] == "village"

    # History: public without authors; an officer of Bargny reads them, logged.
    public = client.get(f"/localites/{lid}/history")
    assert [f["properties"]["version"] for f in public.json()["features"]] == [1, 2, 3]
    assert MARK not in public.text and "author" not in public.json()["features"][0]["properties"]
    audited = db.execute(text("SELECT count(*) FROM access_audit WHERE subject_kind = 'localite'")).scalar()
    inside = client.get(f"/localites/{lid}/history", headers=bargny_officer)
    assert MARK in inside.text
    assert db.execute(text("SELECT count(*) FROM access_audit WHERE subject_kind = 'localite'")).scalar() == audited + 1

    retired = client.request("DELETE", f"/localites/{lid}", headers={**bargny_officer, "If-Match": renamed.headers["ETag"]},
                             json={"reason": "doublon"})
    assert retired.status_code == 204, retired.text
    assert client.get(f"/localites/{lid}").status_code == 410
    assert client.get(f"/communes/{BARGNY}/localites").json()["features"] == []
    journal = db.execute(text("SELECT operation FROM write_audit WHERE object_kind = 'localite' AND object_id = :id "
                              "ORDER BY occurred_at"), {"id": lid}).scalars().all()
    assert journal == ["localite.create", "localite.update", "localite.update", "localite.retire"]


def test_a_point_outside_the_commune_is_a_clear_422_and_writes_nothing(client, db, bargny_officer):
    count = db.execute(text("SELECT count(*) FROM localite_version")).scalar()
    sandiara = _feature(-16.78, 14.43, name="Ailleurs", kind="village", commune_code=BARGNY)
    refused = client.post("/localites", headers=bargny_officer, json=sandiara)
    assert refused.status_code == 422
    assert "hors de la limite en vigueur de la commune" in refused.json()["detail"]
    # Without a commune: the one containing the point, here Sandiara, out of the officer's scope.
    del sandiara["properties"]["commune_code"]
    assert client.post("/localites", headers=bargny_officer, json=sandiara).status_code == 403
    for properties in ({"kind": "village"}, {"name": "  ", "kind": "village"}, {"name": "A", "kind": "ville-x"}):
        x, y = bargny_origin(db)
        answer = client.post("/localites", params={"crs": "EPSG:32628"}, headers=bargny_officer,
                             json=_feature(x, y, **properties))
        assert answer.status_code == 422, answer.text
    assert db.execute(text("SELECT count(*) FROM localite_version")).scalar() == count


def test_public_roles_cannot_write_and_versions_are_immutable(client, db):
    x, y = bargny_origin(db)
    assert client.post("/localites", params={"crs": "EPSG:32628"},
                       json=_feature(x, y, name="A", kind="village")).status_code == 401
    lid = service.create(db, data=service.LocaliteInput(geometry={"type": "Point", "coordinates": [x, y]},
                                                        input_crs=32628, values={"name": "A", "kind": "village"}),
                         by=None, author="tests")
    with pytest.raises(DBAPIError):
        with db.begin_nested():
            db.execute(text("UPDATE localite_version SET name = 'B' WHERE localite_id = :id"), {"id": lid})
    with pytest.raises(DBAPIError):
        with db.begin_nested():
            db.execute(text("DELETE FROM localite_version WHERE localite_id = :id"), {"id": lid})


def test_the_pilot_extract_loads_once_with_its_named_points(db):
    first = service.load_osm(db, path=PILOTS, communes=None, by=None, author="tests")
    assert first["created"] == 14  # the named points of the 24 (Bargny 1, Sandiara 3, Mont-Rolland 10)
    assert first["communes"] == {BARGNY: 1, "SN1301-sandiara": 3, "SN1303-mont-rolland": 10}
    assert first["disagreements"] == [] and first["outside"] == []
    again = service.load_osm(db, path=PILOTS, communes=[BARGNY], by=None, author="tests")
    assert again["created"] == 0 and again["known"] == 1
    row = db.execute(text("SELECT name, kind, origin FROM localite WHERE commune_code = :c"), {"c": BARGNY}).one()
    assert tuple(row) == ("Bargny", "ville", "osm")


def test_a_disagreement_with_the_file_commune_is_reported_not_followed(db, tmp_path: Path):
    import geopandas as gpd

    frame = gpd.read_file(PILOTS, layer="localites")
    frame = frame[frame["name"] == "Bargny"].copy()
    frame["commune_code"] = SENDOU  # as a point near an edge of the provisional communes would say
    path = tmp_path / "edge.gpkg"
    frame.to_file(path, layer="localites", driver="GPKG")
    report = service.load_osm(db, path=path, communes=[BARGNY], by=None, author="tests")
    assert report["created"] == 1
    assert report["disagreements"] == [{"osm_node_id": 1250211868, "name": "Bargny", "file_commune": SENDOU,
                                        "registry_commune": BARGNY}]


def test_an_unreadable_file_is_one_clear_error(db, tmp_path: Path):
    bad = tmp_path / "x.gpkg"
    bad.write_bytes(b"not a geopackage")
    with pytest.raises(InvalidInput) as refused:
        service.load_osm(db, path=bad, by=None, author="tests")
    assert refused.value.key == "localite.osm_file_unreadable"
    with pytest.raises(InvalidInput):
        service.load_osm(db, path=tmp_path / "absent.gpkg", by=None, author="tests")



def test_the_ogc_collection_serves_the_public_fields_and_filters_on_them(client, db):
    service.load_osm(db, path=PILOTS, communes=["SN1303-mont-rolland"], by=None, author="tests")
    items = client.get("/ogc/collections/localites/items", params={"commune_code": "SN1303-mont-rolland",
                                                                     "limit": 100})
    assert items.status_code == 200, items.text
    features = items.json()["features"]
    assert len(features) == 10 and all("author" not in f["properties"] for f in features)
    filtered = client.get("/ogc/collections/localites/items", params={"filter": "name = 'Ndiaye Bop'"})
    assert [f["properties"]["kind"] for f in filtered.json()["features"]] == ["village"]
    assert "OpenStreetMap" in client.get("/ogc/collections/localites").json()["description"]
    assert client.get("/ogc/collections/localites/items", params={"author": "x"}).status_code == 400
