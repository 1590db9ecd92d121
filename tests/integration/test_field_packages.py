"""Field packages, the check-out side (sifc.field.packages): the zip and its GeoPackage against the registry,
the record and its items, the access log with holders, the refusals, list/lost/reassign, bounded memory."""

from __future__ import annotations

import logging
import sqlite3
import tracemalloc
import uuid
import zipfile
from datetime import UTC, datetime, timedelta

import pyogrio
import pytest
import shapely
from sqlalchemy import text

from sifc import keyring
from sifc.auth import users
from sifc.auth.principal import ROLE_ACTIONS, Action, Principal
from sifc.auth.scopes import parse as parse_scope
from sifc.demo import load_demo
from sifc.errors import Conflict, Forbidden, InvalidInput
from sifc.field import fingerprint, mac, packages
from sifc.field.layers import EDITABLE_PARCEL_ATTRIBUTES, GPKG_NAME, PROJECT_NAME, README_NAME, layers
from tests.integration.fixtures import bargny_origin

BARGNY = "SN0104-bargny"
SANDIARA = "SN1301-sandiara"


def officer(role: str = "agent_foncier", commune: str = BARGNY, name: str = "agent.bargny") -> Principal:
    return Principal(kind="user", role=role, name=name, communes=frozenset({commune}))


NATIONAL_ADMIN = Principal(kind="user", role="administrateur", name="admin.national", everywhere=True)


@pytest.fixture
def demo(db):
    assert load_demo(db) is not None


@pytest.fixture
def build(db, settings, tmp_path):
    keys = keyring.for_settings(settings)

    def _build(by: Principal | None = None, **kwargs):
        by = by or officer()
        kwargs.setdefault("commune", BARGNY)
        return packages.build(db, by=by, keys=keys, upload_dir=tmp_path, service_url="http://testserver", **kwargs)

    return _build


def _unzip(tmp_path, record) -> tuple[zipfile.ZipFile, str]:
    path = packages.zip_file(tmp_path, record["id"])
    bundle = zipfile.ZipFile(path)
    target = tmp_path / f"x-{record['id']}"
    bundle.extractall(target)
    return bundle, str(target / GPKG_NAME)


def _items(db, package_id) -> list:
    return db.execute(text("SELECT fid, parcel_id::text, issued_version, base_version, fingerprint "
                           "FROM field_package_item WHERE package_id = :id ORDER BY fid"), {"id": package_id}).all()


def test_a_bargny_package_holds_every_layer_and_the_parcels_of_its_area(db, demo, build, tmp_path, settings):
    record = build()
    bundle, data = _unzip(tmp_path, record)
    assert sorted(bundle.namelist()) == sorted([GPKG_NAME, PROJECT_NAME, "DCIM/", README_NAME])
    assert "QField" in bundle.read(README_NAME).decode("utf-8")
    assert sqlite3.connect(data).execute("PRAGMA user_version").fetchone()[0] == 10200  # GeoPackage 1.2
    assert [name for name, _ in pyogrio.list_layers(data)] == [layer.name for layer in (
        packages.PARCELS, packages.NEIGHBOURS, packages.COMMUNE, packages.UNITS, packages.BORNES,
        packages.NEW_PARCELS, packages.NEW_BORNES, packages.PACKAGE)]
    assert {name for name, _ in pyogrio.list_layers(data)} == {layer.name for layer in layers(holders=False)}
    assert pyogrio.read_info(data, layer="parcels")["crs"] == "EPSG:32628"

    expected = db.execute(text("SELECT parcel_id::text, version, land_use, tenure_regime, declared_area_m2, "
                               "ST_AsBinary(geom) FROM parcel WHERE commune_code = :c ORDER BY parcel_id"),
                          {"c": BARGNY}).all()
    assert len(expected) == 480 and record["item_count"] == 480 and record["status"] == "open"
    frame = pyogrio.read_dataframe(data, layer="parcels", fid_as_index=True)
    items = _items(db, record["id"])
    assert list(frame.index) == [i.fid for i in items] == list(range(1, 481))
    assert list(frame["parcel_id"]) == [i.parcel_id for i in items] == [e[0] for e in expected]
    assert all(i.issued_version == i.base_version == e[1] for i, e in zip(items, expected, strict=True))
    for item, row, (_, feature) in zip(items, expected, frame.iterrows(), strict=True):
        assert item.fingerprint == fingerprint.of(bytes(row[5]), dict(zip(EDITABLE_PARCEL_ATTRIBUTES, row[2:5],
                                                                          strict=True)))
        assert item.fingerprint == fingerprint.of(feature.geometry, feature.to_dict())
    assert frame["remark"].isna().all() and frame["photo"].isna().all()

    assert len(pyogrio.read_dataframe(data, layer="commune")) == 1
    assert len(pyogrio.read_dataframe(data, layer="units")) >= 1
    assert len(pyogrio.read_dataframe(data, layer="bornes")) > 480
    assert len(pyogrio.read_dataframe(data, layer="new_parcels")) == 0
    assert len(pyogrio.read_dataframe(data, layer="neighbours")) == 0  # the demo's blocks lie inside the commune
    values = dict(pyogrio.read_dataframe(data, layer="sifc_package")[["key", "value"]].values)
    assert values["id"] == record["id"] and values["commune"] == BARGNY and values["issued_to"] == "agent.bargny"
    claims = mac.claims(package_id=values["id"], commune_code=values["commune"], issued_to=values["issued_to"],
                        issued_at=datetime.fromisoformat(values["issued_at"]),
                        expires_at=datetime.fromisoformat(values["expires_at"]), package_format=int(values["format"]))
    assert mac.verify(keyring.for_settings(settings), claims, kid=values["kid"], mac=values["mac"])
    row = db.execute(text("SELECT mac, hmac_kid, issued_at, expires_at FROM field_package WHERE id = :id"),
                     {"id": record["id"]}).one()
    assert (row.mac, row.hmac_kid) == (values["mac"], values["kid"])
    assert row.expires_at - row.issued_at == timedelta(days=30)


def test_the_mac_of_the_record_verifies_from_the_database(db, demo, build, settings):
    record = build(section=None)
    row = db.execute(text("SELECT id, commune_code, issued_to, issued_at, expires_at, format, hmac_kid, mac "
                          "FROM field_package WHERE id = :id"), {"id": record["id"]}).one()
    claims = mac.claims(package_id=row.id, commune_code=row.commune_code, issued_to=row.issued_to,
                        issued_at=row.issued_at.astimezone(UTC), expires_at=row.expires_at.astimezone(UTC),
                        package_format=row.format)
    assert mac.verify(keyring.for_settings(settings), claims, kid=row.hmac_kid, mac=row.mac)


def test_a_box_package_has_the_parcels_meeting_the_box_and_their_neighbours(db, demo, build, tmp_path):
    some = db.execute(text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform(ST_Centroid(geom), 4326) c "
                           "FROM parcel WHERE commune_code = :c ORDER BY parcel_id LIMIT 1) t"), {"c": BARGNY}).one()
    box = (some[0] - 0.0003, some[1] - 0.0003, some[0] + 0.0003, some[1] + 0.0003)
    record = build(commune=None, bbox=box)
    assert record["commune_code"] == BARGNY and record["selection"]["bbox"] == list(box)
    _, data = _unzip(tmp_path, record)
    expected = db.execute(text("""
        SELECT parcel_id::text FROM parcel WHERE commune_code = :c AND ST_Intersects(geom,
            ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326), 32628)) ORDER BY parcel_id"""),
        {"c": BARGNY, "x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3]}).scalars().all()
    parcels = pyogrio.read_dataframe(data, layer="parcels")
    assert 0 < len(expected) < 480 and list(parcels["parcel_id"]) == expected == [i.parcel_id for i in
                                                                                  _items(db, record["id"])]
    neighbours = pyogrio.read_dataframe(data, layer="neighbours")
    assert not set(neighbours["parcel_id"]) & set(expected)
    inside = shapely.union_all(parcels.geometry.values)
    assert all(g.distance(inside) <= packages.NEIGHBOUR_GAP_M for g in neighbours.geometry)


def test_a_section_package(db, demo, build):
    section = db.execute(text("SELECT section FROM parcel WHERE commune_code = :c AND section IS NOT NULL "
                              "GROUP BY section ORDER BY count(*) LIMIT 1"), {"c": BARGNY}).scalar_one()
    record = build(section=section)
    in_section = db.execute(text("SELECT count(*) FROM parcel WHERE commune_code = :c AND section = :s"),
                            {"c": BARGNY, "s": section}).scalar_one()
    assert record["item_count"] >= in_section > 0


def test_holders_are_absent_by_default_and_logged_per_parcel_with_their_purpose(db, demo, build, tmp_path):
    before = db.execute(text("SELECT count(*) FROM access_audit")).scalar_one()
    plain = build()
    assert db.execute(text("SELECT count(*) FROM access_audit")).scalar_one() == before
    _, data = _unzip(tmp_path, plain)
    assert "holders" not in {name for name, _ in pyogrio.list_layers(data)}

    record = build(include_holders=True, purpose="Enquête contradictoire quartier Nord")
    assert record["includes_holders"] and record["purpose"] == "Enquête contradictoire quartier Nord"
    _, data = _unzip(tmp_path, record)
    holders = pyogrio.read_dataframe(data, layer="holders")
    assert len(holders) > 0 and holders["holder"].notna().all()
    logged = db.execute(text("SELECT subject_id, purpose, endpoint, commune_code FROM access_audit "
                             "WHERE endpoint = :service ORDER BY subject_id"),
                        {"service": packages.ISSUE_SERVICE}).all()
    assert sorted(r.subject_id for r in logged) == sorted(i.parcel_id for i in _items(db, record["id"]))
    assert {(r.purpose, r.commune_code) for r in logged} == {("Enquête contradictoire quartier Nord", BARGNY)}


def test_holders_need_a_purpose_and_the_right_to_read_personal_data(db, demo, build, monkeypatch):
    with pytest.raises(InvalidInput) as refused:
        build(include_holders=True, purpose="  ")
    assert refused.value.key == "field.purpose_required"
    monkeypatch.setitem(ROLE_ACTIONS, "agent_foncier", ROLE_ACTIONS["agent_foncier"] - {Action.READ_PERSONAL})
    with pytest.raises(Forbidden) as forbidden:
        build(include_holders=True, purpose="enquête")
    assert forbidden.value.key == "field.holders_forbidden"
    assert db.execute(text("SELECT count(*) FROM field_package")).scalar_one() == 0


@pytest.mark.parametrize("role", ["agent_foncier", "analyste_sig", "administrateur"])
def test_field_roles_build_in_their_scope_only(db, demo, build, role):
    assert build(by=officer(role))["item_count"] == 480
    with pytest.raises(Forbidden) as refused:
        build(by=officer(role), commune=SANDIARA)
    assert refused.value.key == "auth.out_of_scope"


def test_a_lecteur_builds_nothing(db, demo, build):
    with pytest.raises(Forbidden) as refused:
        build(by=officer("lecteur"))
    assert refused.value.key == "auth.forbidden"


def test_an_area_over_two_communes_is_refused(db, demo, build):
    neighbour, point = db.execute(text("""
        SELECT n.code, ST_AsText(ST_Transform(ST_ClosestPoint(ST_Boundary(b.geom), ST_Centroid(n.geom)), 4326))
        FROM commune b JOIN commune n ON n.code <> b.code AND ST_Touches(n.geom, b.geom)
        WHERE b.code = :c ORDER BY n.code LIMIT 1"""), {"c": BARGNY}).one()
    x, y = shapely.from_wkt(point).coords[0]
    square = shapely.geometry.mapping(shapely.box(x - 0.005, y - 0.005, x + 0.005, y + 0.005))
    with pytest.raises(InvalidInput) as refused:
        build(commune=None, polygon=square)
    assert refused.value.key == "field.area_several_communes" and neighbour in refused.value.params["communes"]
    clipped = build(commune=BARGNY, polygon=square)  # named commune: clipped to it
    assert clipped["commune_code"] == BARGNY
    far = shapely.geometry.mapping(shapely.box(-18.6, 14.5, -18.59, 14.51))  # the Atlantic
    with pytest.raises(InvalidInput):
        build(commune=None, polygon=far)


def test_expiry_defaults_and_bounds(db, demo, build):
    with pytest.raises(InvalidInput) as too_far:
        build(expires_at=datetime.now(UTC) + timedelta(days=91))
    assert too_far.value.key == "field.expiry_too_far"
    with pytest.raises(InvalidInput) as past:
        build(expires_at=datetime.now(UTC) - timedelta(days=1))
    assert past.value.key == "field.expiry_past"
    chosen = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    assert build(expires_at=chosen)["expires_at"] == chosen.isoformat()


def test_list_get_expire_lost_and_reassign(db, demo, build, caplog, settings):
    mine = build()
    other = build(by=officer(name="agent.deux"))
    sandiara = build(by=officer(commune=SANDIARA, name="agent.sandiara"), commune=SANDIARA)
    me = officer()
    assert {p["id"] for p in packages.list_packages(db, by=me)} == {mine["id"], other["id"]}
    assert {p["id"] for p in packages.list_packages(db, by=NATIONAL_ADMIN)} >= {mine["id"], sandiara["id"]}
    with pytest.raises(Forbidden):
        packages.get(db, sandiara["id"], by=me)
    with pytest.raises(Forbidden):
        packages.list_packages(db, by=officer("lecteur"))

    db.execute(text("RESET ROLE"))  # the service may not move dates: as the owner, make the package old
    db.execute(text("UPDATE field_package SET issued_at = now() - interval '2 days', "
                    "expires_at = now() - interval '1 day' WHERE id = :id"), {"id": other["id"]})
    db.execute(text(f'SET LOCAL ROLE "{settings.db_url.username}"'))
    assert packages.get(db, other["id"], by=me)["status"] == "expired"
    assert [p["id"] for p in packages.list_packages(db, by=me, status="open")] == [mine["id"]]

    with pytest.raises(Forbidden):
        packages.declare_lost(db, mine["id"], by=me, reason="tablette volée")
    admin = officer("administrateur", name="admin.bargny")
    with caplog.at_level(logging.WARNING, logger="sifc.field.packages"):
        lost = packages.declare_lost(db, mine["id"], by=admin, reason="tablette volée")
    assert lost["status"] == "lost" and lost["closed_by"] == "admin.bargny" and lost["close_reason"] == "tablette volée"
    assert any("lost" in r.getMessage() and "volée" not in r.getMessage() and "agent.bargny" not in r.getMessage()
               for r in caplog.records)
    journaled = db.execute(text("SELECT operation, object_kind, commune_code FROM write_audit "
                                "WHERE object_id = :id"), {"id": mine["id"]}).all()
    assert [tuple(r) for r in journaled] == [("field_package.lost", "field_package", BARGNY)]
    with pytest.raises(Conflict):
        packages.declare_lost(db, mine["id"], by=admin, reason="encore")

    third = build()
    users.create(db, username="agent.trois", password="x" * 16, role="agent_foncier",
                 scope=parse_scope([f"commune:{BARGNY}"]), created_by="tests")
    users.create(db, username="agent.loin", password="x" * 16, role="agent_foncier",
                 scope=parse_scope([f"commune:{SANDIARA}"]), created_by="tests")
    with pytest.raises(InvalidInput) as cannot:
        packages.reassign(db, third["id"], by=admin, to_user="agent.loin", reason="mutation")
    assert cannot.value.key == "field.holder_cannot"
    moved = packages.reassign(db, third["id"], by=admin, to_user="agent.trois", reason="congé")
    assert moved["issued_to"] == "agent.trois"
    assert packages.get(db, third["id"], by=officer(name="agent.trois"))["id"] == third["id"]


def test_write_base_gives_the_package_parcels_back(db, demo, build, tmp_path):
    record = build()
    _, data = _unzip(tmp_path, record)
    base = tmp_path / "base.gpkg"
    packages.write_base(db, record["id"], base)
    assert [name for name, _ in pyogrio.list_layers(base)] == ["parcels", "new_parcels", "new_bornes"]
    left = pyogrio.read_dataframe(data, layer="parcels", fid_as_index=True)
    right = pyogrio.read_dataframe(base, layer="parcels", fid_as_index=True)
    assert left.equals(right)
    assert uuid.UUID(record["id"])


def test_memory_is_bounded_whatever_the_number_of_parcels(db, settings, tmp_path):
    """Peak Python allocations while building packages of 500 and 3000 parcels stay under one fixed bound."""
    x, y = bargny_origin(db)
    x0, y0 = x - 210, y - 175
    db.execute(text("""
        INSERT INTO parcel_version (parcel_id, version, nicad_status, commune_code, section, local_number, geom,
                                    land_use, tenure_regime, action, author)
        SELECT gen_random_uuid(), 1, 'absent', :c, 'M', i::text,
               ST_Multi(ST_MakeEnvelope(:x + (i % 60) * 7, :y + (i / 60) * 7,
                                        :x + (i % 60) * 7 + 6, :y + (i / 60) * 7 + 6, 32628)),
               'habitation', 'domaine national', 'create', 'tests'
        FROM generate_series(0, 2999) i"""), {"c": BARGNY, "x": x0, "y": y0})
    keys = keyring.for_settings(settings)

    def peak(columns: int, rows: int) -> tuple[int, int]:
        box = (x0 - 0.5, y0 - 0.5, x0 + columns * 7 - 1.5, y0 + rows * 7 - 1.5)
        tracemalloc.start()
        try:
            record = packages.build(db, by=officer(), keys=keys, upload_dir=tmp_path, commune=BARGNY, bbox=box,
                                    bbox_crs=32628)
            return record["item_count"], tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, small_peak = peak(10, 50)
    large, large_peak = peak(60, 50)
    assert (small, large) == (500, 3000)
    assert large_peak < 16 * 1024**2, (small_peak, large_peak)
    assert large_peak < small_peak * 1.5 + 2 * 1024**2, (small_peak, large_peak)
