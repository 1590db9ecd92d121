"""The parcel registry: API, versions, NICAD rules, and immutability enforced by the database."""

import json
import uuid

import pytest
import shapely
from shapely.geometry import mapping
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from api.preconditions import etag
from sifc.db import act_as
from sifc.errors import InvalidInput
from sifc.parcels import service as parcel_service
from tests.conftest import table_fingerprint
from tests.integration.fixtures import bargny_origin, bowtie, square


def _to_wgs84(db, geom):
    wkb = db.execute(text("SELECT ST_AsBinary(ST_Transform(ST_GeomFromWKB(:g, 32628), 4326))"),
                     {"g": shapely.to_wkb(geom)}).scalar()
    return shapely.from_wkb(bytes(wkb))


def _feature(geom, **properties):
    return {"type": "Feature", "geometry": mapping(geom), "properties": properties}


def _if_match(client, parcel_id: str) -> dict[str, str]:
    """The ``If-Match`` of a write: the ETag of the parcel's current version, read first."""
    response = client.get(f"/parcels/{parcel_id}")
    assert response.status_code == 200, response.text
    return {"If-Match": response.headers["ETag"]}


@pytest.fixture
def client(client, admin_headers):
    """Writes need credentials: a national administrator's key; permissions: test_parcel_permissions."""
    client.headers.update(admin_headers)
    return client


@pytest.fixture
def origin(db):
    return bargny_origin(db)


@pytest.fixture
def created(client, db, origin):
    x, y = origin
    response = client.post("/parcels", params={"crs": "EPSG:32628"},
                           json=_feature(square(x, y), nicad="0104040100001", section="S01", local_number="1",
                                         declared_area_m2=400, land_use="habitation",
                                         tenure_regime="domaine national", reason="levé"))
    assert response.status_code == 201, response.text
    return response.json()


def test_create_and_read_in_both_crs(client, created, origin):
    properties = created["properties"]
    assert properties["version"] == 1
    assert properties["nicad"] == "0104040100001" and properties["nicad_status"] == "attribue"
    assert properties["commune_code"] == "SN0104-bargny"
    assert properties["area_m2"] == pytest.approx(400)
    assert properties["provenance"] == {"action": "api:create", "batch_id": None, "synthetic": False}
    assert "author" not in properties  # personal data stays out of public responses
    # Created in UTM 28N, answered in the CRS asked for.
    corners = created["geometry"]["coordinates"][0][0]
    assert min(c[0] for c in corners) == pytest.approx(origin[0], abs=0.01)
    assert min(c[1] for c in corners) == pytest.approx(origin[1], abs=0.01)
    wgs84 = client.get(f"/parcels/{created['id']}").json()
    lon, lat = wgs84["geometry"]["coordinates"][0][0][0]
    assert -17.3 < lon < -17.1 and 14.6 < lat < 14.8


def test_create_in_wgs84(client, db, origin):
    x, y = origin
    geom = _to_wgs84(db, square(x + 100, y))
    response = client.post("/parcels", json=_feature(geom))
    assert response.status_code == 201
    body = response.json()["properties"]
    assert body["area_m2"] == pytest.approx(400, rel=1e-4)
    assert body["nicad"] is None and body["nicad_status"] == "absent"


def test_update_attributes_keeps_the_nicad(client, created):
    response = client.patch(f"/parcels/{created['id']}", headers=_if_match(client, created["id"]), json={
        "type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": "changement d'usage"}})
    assert response.status_code == 200, response.text
    body = response.json()["properties"]
    assert body["version"] == 2 and body["land_use"] == "commerce" and body["nicad"] == "0104040100001"


def test_shape_change_marks_the_nicad_for_reassignment(client, created, origin):
    x, y = origin
    response = client.patch(f"/parcels/{created['id']}", params={"crs": "EPSG:32628"},
                            headers=_if_match(client, created["id"]),
                            json=_feature(square(x, y, 22), reason="correction de limite"))
    assert response.status_code == 200, response.text
    body = response.json()["properties"]
    assert body["version"] == 2 and body["nicad"] is None and body["nicad_status"] == "a_reattribuer"
    versions = client.get(f"/parcels/{created['id']}/versions").json()["features"]
    assert [v["properties"]["version"] for v in versions] == [1, 2]
    assert versions[0]["properties"]["nicad"] == "0104040100001"  # the old NICAD stays on the old version
    assert versions[0]["properties"]["valid_to"] is not None
    assert versions[0]["properties"]["close_reason"] == "remplacée par la version 2"
    assert versions[1]["properties"]["valid_to"] is None
    # The NICAD is free again: the cadastre's new number can be given later.
    response = client.patch(f"/parcels/{created['id']}", headers={"If-Match": response.headers["ETag"]}, json={
        "type": "Feature", "geometry": None, "properties": {"nicad": "0104040100099", "reason": "NICAD attribué"}})
    assert response.json()["properties"]["nicad_status"] == "attribue"


def test_shape_change_with_a_new_nicad(client, created, origin):
    x, y = origin
    response = client.patch(f"/parcels/{created['id']}", params={"crs": "EPSG:32628"},
                            headers=_if_match(client, created["id"]),
                            json=_feature(square(x, y, 21), nicad="0104040100050", reason="morcellement corrigé"))
    assert response.json()["properties"]["nicad"] == "0104040100050"


def test_retire_closes_and_keeps_history(client, created):
    response = client.post(f"/parcels/{created['id']}/retire", headers=_if_match(client, created["id"]),
                           json={"reason": "erreur de levé"})
    assert response.status_code == 204
    gone = client.get(f"/parcels/{created['id']}")
    assert gone.status_code == 410 and gone.headers["content-type"] == "application/problem+json"
    versions = client.get(f"/parcels/{created['id']}/versions").json()["features"]
    assert versions[0]["properties"]["close_reason"] == "retirée : erreur de levé"
    assert client.get("/parcels/by-nicad/0104040100001").status_code == 404


def test_by_nicad_and_commune_listing(client, created, origin):
    assert client.get("/parcels/by-nicad/0104040100001").json()["id"] == created["id"]
    x, y = origin
    for i in range(1, 4):
        client.post("/parcels", params={"crs": "EPSG:32628"}, json=_feature(square(x + 30 * i, y)))
    page = client.get("/communes/SN0104-bargny/parcels", params={"limit": 2}).json()
    assert page["numberMatched"] == 4 and page["numberReturned"] == 2
    rest = client.get("/communes/SN0104-bargny/parcels", params={"limit": 2, "offset": 2}).json()
    ids = {f["id"] for f in page["features"]} | {f["id"] for f in rest["features"]}
    assert len(ids) == 4
    assert client.get("/communes/SN0104-nowhere/parcels").status_code == 404


@pytest.mark.parametrize(("case", "status", "key"), [
    ("overlap", 409, "parcel.overlap"),
    ("nicad_taken", 409, "parcel.nicad_taken"),
    ("invalid", 422, "parcel.invalid_geometry"),
    ("outside", 422, "parcel.outside_senegal"),
    ("wrong_commune", 422, "parcel.outside_commune"),
])
def test_refused_creations(client, created, origin, case, status, key):
    x, y = origin
    bodies = {
        "overlap": _feature(square(x + 5, y + 5)),
        "nicad_taken": _feature(square(x + 200, y), nicad="0104040100001"),
        "invalid": _feature(bowtie(x + 300, y)),
        "outside": _feature(square(200_000, 1_600_000)),
        "wrong_commune": _feature(square(x + 400, y), commune_code="SN1301-sandiara"),
    }
    response = client.post("/parcels", params={"crs": "EPSG:32628"}, json=bodies[case])
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:sifc:problem:{key}"


def test_bad_requests_are_problems(client, created):
    assert client.get(f"/parcels/{uuid.uuid4()}").status_code == 404
    assert client.get("/parcels/not-a-uuid").status_code == 404
    no_reason = client.patch(f"/parcels/{created['id']}", headers=_if_match(client, created["id"]), json={
        "type": "Feature", "geometry": None, "properties": {"land_use": "x"}})
    assert no_reason.status_code == 422 and "motif" in no_reason.json()["detail"]
    point = client.post("/parcels", json={"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]},
                                          "properties": {}})
    assert point.status_code == 422 and point.headers["content-type"] == "application/problem+json"


def _written(db) -> dict[str, tuple[int, str]]:
    return {t: table_fingerprint(db, t) for t in ("parcel_version", "write_audit")}


def test_writes_need_the_etag_of_the_current_version(client, db, created):
    """If-Match (RFC 9110 §13.1.1): missing or ``*`` is a 428, a stale or foreign tag a 412; nothing is written."""
    pid = created["id"]
    read = client.get(f"/parcels/{pid}")
    assert read.headers["ETag"] == etag("parcel", pid, 1)
    change = {"type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": "usage"}}
    before = _written(db)
    refused = {
        "missing": (428, client.patch(f"/parcels/{pid}", json=change)),
        "star": (428, client.patch(f"/parcels/{pid}", headers={"If-Match": "*"}, json=change)),
        "stale": (412, client.patch(f"/parcels/{pid}", headers={"If-Match": etag("parcel", pid, 7)}, json=change)),
        "other parcel": (412, client.patch(f"/parcels/{pid}", headers={"If-Match": etag("parcel", uuid.uuid4(), 1)}, json=change)),
        "weak": (412, client.patch(f"/parcels/{pid}", headers={"If-Match": "W/" + etag("parcel", pid, 1)}, json=change)),
        "retire missing": (428, client.post(f"/parcels/{pid}/retire", json={"reason": "x"})),
        "retire stale": (412, client.post(f"/parcels/{pid}/retire", headers={"If-Match": etag("parcel", pid, 2)},
                                          json={"reason": "x"})),
    }
    for case, (status, response) in refused.items():
        assert response.status_code == status, (case, response.text)
        assert response.headers["content-type"] == "application/problem+json", case
    assert _written(db) == before
    # The tag read is good once: the write answers the new one, and the old one is then stale.
    changed = client.patch(f"/parcels/{pid}", headers={"If-Match": read.headers["ETag"]}, json=change)
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == etag("parcel", pid, 2)
    again = client.patch(f"/parcels/{pid}", headers={"If-Match": read.headers["ETag"]}, json={
        "type": "Feature", "geometry": None, "properties": {"land_use": "bureau", "reason": "usage"}})
    assert again.status_code == 412
    assert client.get(f"/parcels/{pid}").json()["properties"]["land_use"] == "commerce"


# --- the database enforces immutability ---------------------------------------------------

def test_service_role_cannot_update_a_geometry(db, created):
    with pytest.raises(ProgrammingError, match="permission denied"), db.begin_nested():
        db.execute(text("UPDATE parcel_version SET geom = ST_Buffer(geom, 1) WHERE parcel_id = CAST(:id AS uuid)"),
                   {"id": created["id"]})


def test_service_role_cannot_delete_a_version(db, created):
    # The role may delete only what an uncommitted import withdraws of its own batch (migration 0027).
    with pytest.raises(ProgrammingError, match="history is never deleted"), db.begin_nested():
        db.execute(text("DELETE FROM parcel_version WHERE parcel_id = CAST(:id AS uuid)"), {"id": created["id"]})


def test_closing_is_allowed_once(db, created):
    act_as(db, "x")  # a version is closed in the name of the transaction's actor only (test_least_privilege)
    db.execute(text("UPDATE parcel_version SET valid_to = now(), closed_by = 'x', close_reason = 'y' "
                    "WHERE parcel_id = CAST(:id AS uuid)"), {"id": created["id"]})
    with pytest.raises(ProgrammingError, match="already closed"), db.begin_nested():
        db.execute(text("UPDATE parcel_version SET close_reason = 'z' WHERE parcel_id = CAST(:id AS uuid)"),
                   {"id": created["id"]})


def test_even_the_owner_cannot_rewrite_a_version(admin_engine, settings):
    with admin_engine.connect() as conn, conn.begin() as outer:
        conn.execute(text("""
            INSERT INTO parcel_version (parcel_id, version, nicad_status, commune_code, geom, action, author)
            VALUES (gen_random_uuid(), 1, 'absent', 'SN0104-bargny',
                    ST_Multi(ST_MakeEnvelope(270000, 1625000, 270020, 1625020, 32628)), 'test', 'test')"""))
        with pytest.raises(ProgrammingError, match="immutable"):
            conn.execute(text("UPDATE parcel_version SET land_use = 'x'"))
        outer.rollback()


@pytest.mark.parametrize("change", [
    "land_use = 'x'", "nicad = '0101010101010101'", "version = 2", "author = 'y'", "reason = 'z'",
    "valid_from = valid_from - interval '1 day'", "declared_area_m2 = 1", "commune_code = 'SN1301-sandiara'",
    "geom = ST_Multi(ST_MakeEnvelope(270000, 1625000, 270020, 1625020.001, 32628))",
    # the same square from another corner: geometrically equal, another shape record all the same
    "geom = ST_SetSRID(ST_Multi(ST_MakePolygon(ST_MakeLine(ARRAY[ST_MakePoint(270020, 1625000),"
    " ST_MakePoint(270000, 1625000), ST_MakePoint(270000, 1625020), ST_MakePoint(270020, 1625020),"
    " ST_MakePoint(270020, 1625000)]))), 32628)",
])
def test_every_column_of_a_version_is_immutable_even_with_its_closing(admin_engine, change):
    with admin_engine.connect() as conn, conn.begin() as outer:
        conn.execute(text("""
            INSERT INTO parcel_version (parcel_id, version, nicad_status, commune_code, geom, action, author)
            VALUES (gen_random_uuid(), 1, 'absent', 'SN0104-bargny',
                    ST_SetSRID(ST_Multi(ST_MakeEnvelope(270000, 1625000, 270020, 1625020)), 32628), 'test',
                    'test')"""))
        conn.execute(text("SELECT set_config('sifc.actor', 'x', true)"))
        with pytest.raises(ProgrammingError, match="immutable"):
            conn.execute(text(f"UPDATE parcel_version SET {change}, valid_to = now(), closed_by = 'x' "
                              "WHERE author = 'test' AND valid_to IS NULL"))
        outer.rollback()


@pytest.mark.parametrize("coordinates", [
    [[[1e300, 1e300], [1e300, -1e300], [-1e300, 1e300], [1e300, 1e300]]],
    [[[-200, 95], [-200, 96], [-201, 96], [-200, 95]]],
])
def test_impossible_coordinates_are_a_422(client, coordinates):
    response = client.post("/parcels", json={"type": "Feature", "properties": {},
                                             "geometry": {"type": "Polygon", "coordinates": coordinates}})
    assert response.status_code == 422
    assert response.json()["type"] == "urn:sifc:problem:parcel.bad_coordinates"


def test_nul_in_a_property_is_a_400(client, origin):
    x, y = origin
    response = client.post("/parcels", params={"crs": "EPSG:32628"},
                           json=_feature(square(x + 600, y), land_use="a\u0000b"))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


NON_FINITE = ("NaN", "Infinity", "-Infinity")


def _non_finite_body(feature: dict, number: str, *, geometry_only: bool = False) -> str:
    """``feature`` (or its geometry) as JSON text, one position's x being ``number`` (JSON parsers read it)."""
    geometry = feature["geometry"]
    ring = [list(position) for position in geometry["coordinates"][0]]
    ring[1][0] = 0.123456789  # a marker to replace: json.dumps refuses to write NaN itself
    changed = {**geometry, "coordinates": [ring]}
    body = json.dumps(changed if geometry_only else {**feature, "geometry": changed})
    return body.replace("0.123456789", number)


def _refused_non_finite(response) -> None:  # noqa: ANN001
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:sifc:problem:spatial.non_finite_coordinates"


@pytest.mark.parametrize("number", NON_FINITE)
def test_non_finite_coordinates_are_refused_on_every_route_taking_a_geometry(client, db, created, origin, number):
    x, y = origin
    feature = _feature(square(x + 200, y), reason="levé")
    parcels_before = table_fingerprint(db, "parcel_version")
    headers = {"Content-Type": "application/json"}
    _refused_non_finite(client.post("/parcels", params={"crs": "EPSG:32628"}, headers=headers,
                                    content=_non_finite_body(feature, number)))
    _refused_non_finite(client.patch(f"/parcels/{created['id']}", params={"crs": "EPSG:32628"},
                                     headers={**headers, **_if_match(client, created["id"])},
                                     content=_non_finite_body(feature, number)))
    _refused_non_finite(client.post("/parcels/intersecting", params={"geometry-crs": "EPSG:32628"},
                                    headers=headers, content=_non_finite_body(feature, number, geometry_only=True)))
    # Splits, lots and boundary corrections read each child's geometry through the same path.
    with pytest.raises(InvalidInput) as refused:
        parcel_service._to_storage_wkb(json.loads(_non_finite_body(feature, number))["geometry"], 32628)
    assert refused.value.key == "spatial.non_finite_coordinates"
    assert table_fingerprint(db, "parcel_version") == parcels_before
