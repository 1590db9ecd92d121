"""Parcel writes are authorised in the writing transaction; personal fields only in scope, audited."""

import pytest
from shapely.geometry import mapping
from sqlalchemy import text

from tests.conftest import api_key, table_fingerprint
from tests.integration.fixtures import bargny_origin, square

BARGNY, SANDIARA = "SN0104-bargny", "SN1301-sandiara"
TABLES = ("parcel_version", "access_audit")


def _feature(geom, **properties):
    return {"type": "Feature", "geometry": mapping(geom), "properties": properties}


def _with_etag(client, parcel_id: str, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` and the ``If-Match`` a write needs: the ETag of the parcel's current version."""
    response = client.get(f"/parcels/{parcel_id}")
    assert response.status_code == 200, response.text
    return {**headers, "If-Match": response.headers["ETag"]}


def _inside(db, commune: str) -> tuple[float, float]:
    """The centre of the commune's largest inscribed circle (UTM 28N), far from its boundary."""
    row = db.execute(text("SELECT ST_X(c.center), ST_Y(c.center) FROM commune, ST_MaximumInscribedCircle(geom) c "
                          "WHERE code = :c"), {"c": commune}).one()
    return float(row[0]), float(row[1])


@pytest.fixture
def keys(db):
    return {
        "admin": {"X-API-Key": api_key(db)},
        "agent_bargny": {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="agent")},
        "lecteur_bargny": {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",), name="lecteur")},
        "lecteur_sandiara": {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{SANDIARA}",), name="l2")},
        "analyste_bargny": {"X-API-Key": api_key(db, role="analyste_sig", scope=(f"commune:{BARGNY}",), name="sig")},
    }


@pytest.fixture
def parcels(client, db, keys):
    """One parcel in Bargny (written by the Bargny agent) and one in Sandiara (by the administrator)."""
    x, y = bargny_origin(db)
    bargny = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=keys["agent_bargny"],
                         json=_feature(square(x, y), reason="levé"))
    assert bargny.status_code == 201, bargny.text
    sx, sy = _inside(db, SANDIARA)
    sandiara = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=keys["admin"],
                           json=_feature(square(sx, sy), reason="levé"))
    assert sandiara.status_code == 201, sandiara.text
    assert sandiara.json()["properties"]["commune_code"] == SANDIARA
    return {"bargny": bargny.json()["id"], "sandiara": sandiara.json()["id"], "sandiara_xy": (sx, sy),
            "bargny_xy": (x, y)}


def _unchanged(db):
    return {t: table_fingerprint(db, t) for t in TABLES}


def test_the_author_is_the_authenticated_caller(db, parcels):
    author = db.execute(text("SELECT author FROM parcel_version WHERE parcel_id = CAST(:id AS uuid)"),
                        {"id": parcels["bargny"]}).scalar()
    assert author.startswith("key:") and author.endswith(" agent")


@pytest.mark.parametrize("who, status", [(None, 401), ("lecteur_bargny", 403), ("analyste_bargny", 403)])
def test_writes_need_a_land_officer(client, db, parcels, keys, who, status):
    headers = keys[who] if who else {}
    x, y = parcels["bargny_xy"]
    with_etag = _with_etag(client, parcels["bargny"], headers)
    before = _unchanged(db)
    answers = [
        client.post("/parcels", params={"crs": "EPSG:32628"}, headers=headers, json=_feature(square(x + 50, y))),
        client.patch(f"/parcels/{parcels['bargny']}", headers=with_etag, json={
            "type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": "x"}}),
        client.post(f"/parcels/{parcels['bargny']}/retire", headers=with_etag, json={"reason": "x"}),
    ]
    assert [a.status_code for a in answers] == [status] * 3
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
    assert _unchanged(db) == before


def test_an_agent_of_bargny_cannot_change_a_sandiara_parcel(client, db, parcels, keys):
    agent = keys["agent_bargny"]
    with_etag = _with_etag(client, parcels["sandiara"], agent)
    before = _unchanged(db)
    sx, sy = parcels["sandiara_xy"]
    answers = [
        client.patch(f"/parcels/{parcels['sandiara']}", headers=with_etag, json={
            "type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": "x"}}),
        client.patch(f"/parcels/{parcels['sandiara']}", headers=with_etag, params={"crs": "EPSG:32628"},
                     json=_feature(square(sx, sy, 25), reason="x")),
        client.post(f"/parcels/{parcels['sandiara']}/retire", headers=with_etag, json={"reason": "x"}),
        client.post("/parcels", headers=agent, params={"crs": "EPSG:32628"},
                    json=_feature(square(sx + 100, sy), reason="x")),
    ]
    for answer in answers:
        assert answer.status_code == 403, answer.text
        assert answer.json()["type"] == "urn:sifc:problem:auth.out_of_scope"
    assert _unchanged(db) == before


def test_an_agent_cannot_move_a_parcel_out_of_scope(client, db, parcels, keys):
    with_etag = _with_etag(client, parcels["bargny"], keys["agent_bargny"])
    before = _unchanged(db)
    sx, sy = parcels["sandiara_xy"]
    moved = client.patch(f"/parcels/{parcels['bargny']}", headers=with_etag, params={"crs": "EPSG:32628"},
                         json=_feature(square(sx + 200, sy), reason="déplacée"))
    assert moved.status_code == 403 and SANDIARA in moved.json()["detail"]
    renamed = client.patch(f"/parcels/{parcels['bargny']}", headers=with_etag, json={
        "type": "Feature", "geometry": None, "properties": {"commune_code": SANDIARA, "reason": "x"}})
    assert renamed.status_code == 403
    assert _unchanged(db) == before


def test_an_agent_writes_in_scope(client, parcels, keys):
    agent = keys["agent_bargny"]
    changed = client.patch(f"/parcels/{parcels['bargny']}", headers=_with_etag(client, parcels["bargny"], agent), json={
        "type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": "usage"}})
    assert changed.status_code == 200, changed.text
    retired = client.post(f"/parcels/{parcels['bargny']}/retire", json={"reason": "x"},
                          headers={**agent, "If-Match": changed.headers["ETag"]})
    assert retired.status_code == 204, retired.text


def _audits(db, actor_suffix: str) -> int:
    return db.execute(text("SELECT count(*) FROM access_audit WHERE actor LIKE :a"),
                      {"a": f"% {actor_suffix}"}).scalar()


def test_personal_fields_only_in_scope_and_audited(client, db, parcels, keys):
    pid = parcels["bargny"]
    changed = client.patch(f"/parcels/{pid}", headers=_with_etag(client, pid, keys["agent_bargny"]), json={
        "type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": "usage"}})
    assert changed.status_code == 200, changed.text
    urls = [f"/parcels/{pid}", f"/parcels/{pid}/versions", f"/communes/{BARGNY}/parcels"]
    for who in (None, "lecteur_sandiara"):
        for url in urls:
            body = client.get(url, headers=keys[who] if who else {}).text
            assert "author" not in body and "closed_by" not in body and "imported_by" not in body and "key:" not in body
    assert _audits(db, "l2") == 0
    versions = client.get(f"/parcels/{pid}/versions", headers=keys["lecteur_bargny"]).json()["features"]
    assert versions[0]["properties"]["author"].endswith(" agent")
    assert versions[0]["properties"]["closed_by"].endswith(" agent")
    assert "imported_by" in versions[0]["properties"]["provenance"]
    assert client.get(f"/parcels/{pid}", headers=keys["lecteur_bargny"]).json()["properties"]["author"]
    listed = client.get(f"/communes/{BARGNY}/parcels", headers=keys["lecteur_bargny"]).json()
    rows = db.execute(text("SELECT endpoint, subject_kind, subject_id, commune_code, method FROM access_audit "
                           "WHERE actor LIKE '% lecteur' ORDER BY id")).all()
    assert [r.endpoint for r in rows[:2]] == ["/parcels/{parcel_id}/versions", "/parcels/{parcel_id}"]
    assert len(rows) == 2 + listed["numberReturned"]
    assert {(r.subject_kind, r.commune_code, r.method) for r in rows} == {("parcel", BARGNY, "GET")}
    assert pid in {r.subject_id for r in rows[2:]}


PROBES = [
    ("/ogc/collections/parcels/items", {"filter": "author = 'key:x agent'"}),
    ("/ogc/collections/parcels/items", {"filter": "owner LIKE 'A%'"}),
    ("/ogc/collections/parcels/items", {"filter": '{"op": "=", "args": [{"property": "created_by"}, "x"]}',
                                        "filter-lang": "cql2-json"}),
    ("/ogc/collections/parcels/items", {"sortby": "-author"}),
    ("/ogc/collections/parcels/items", {"properties": "nicad,proprietaire"}),
    ("/ogc/collections/parcels/items", {"cni": "1234"}),
    ("/exports/parcels", {"format": "csv", "filter": "nin = '1'"}),
    ("/communes/SN0104-bargny/parcels/export", {"filter": "S_INTERSECTS(holder, POINT(0 0))"}),
    ("/tiles/parcels/16/30396/30081.mvt", {"properties": "nicad,nom"}),
]


def _answers(client):
    return [(r.status_code, r.json()["type"], r.json()["detail"])
            for r in (client.get(url, params=params) for url, params in PROBES)]


def test_an_anonymous_filter_sortby_or_attribute_on_a_personal_field_reveals_nothing(client, db, keys):
    before = _answers(client)  # no parcel yet in this transaction
    assert {status for status, _, _ in before} == {400}
    assert {kind for _, kind, _ in before} == {"urn:sifc:problem:personal.refused"}
    x, y = bargny_origin(db)
    created = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=keys["agent_bargny"],
                          json=_feature(square(x, y), reason="levé"))
    assert created.status_code == 201
    assert _answers(client) == before
