"""Bounds on every number and date a client sends (sifc/bounds.py), and stored history read defensively.

A value accepted once is stored for ever: ``"declared_area_m2": 1e308`` made the write journal
answer 500 on every later read, and a servitude from year 1 was recorded. The API's schemas, the
services (CLI, imports) and the database's CHECK constraints (migration 0010) refuse the same
values, and whatever history already holds is served, never a 500.
"""

from __future__ import annotations

import importlib.util
from datetime import date, timedelta

import orjson
import pytest
from shapely.geometry import mapping
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from sifc import bounds
from sifc.errors import InvalidInput
from sifc.imports.parcels import ParcelImportOptions, import_parcels
from sifc.parcels import service as parcels
from sifc.tenure import rights, sources
from tests.conftest import REPO
from tests.integration.fixtures import bargny_origin, day, square, write

BARGNY = "SN0104-bargny"
TODAY = date.today()
HUGE = "1" + "0" * 308  # what PostgreSQL's jsonb gives back for 1e308


@pytest.fixture
def parcel(client, db, officer) -> dict:
    x, y = bargny_origin(db)
    response = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=officer, json={
        "type": "Feature", "geometry": mapping(square(x + 900, y + 900, 30)),
        "properties": {"nicad": "0104040177901", "declared_area_m2": 900, "reason": "levé"}})
    assert response.status_code == 201, response.text
    return {"id": response.json()["id"], "etag": response.headers["ETag"]}


def _source(client, headers, **extra) -> str:
    response = client.post("/sources", headers=headers, json={
        "kind": "acte", "document_date": day(20), "commune_code": BARGNY, **extra})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _patch(client, headers, parcel: dict, **properties):
    return client.patch(f"/parcels/{parcel['id']}", headers={**headers, "If-Match": parcel["etag"]}, json={
        "type": "Feature", "geometry": None, "properties": {**properties, "reason": "superficie"}})


# --- the API refuses what is out of bounds ------------------------------------------------------

@pytest.mark.parametrize("area", [1e308, "Infinity", "NaN", 0, -5, 197_000_000_001])
def test_an_impossible_declared_area_is_refused(client, db, officer, parcel, area):
    before = db.execute(text("SELECT count(*) FROM write_audit")).scalar()
    response = _patch(client, officer, parcel, declared_area_m2=area)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["properties.declared_area_m2"]
    assert db.execute(text("SELECT count(*) FROM write_audit")).scalar() == before
    x, y = bargny_origin(db)
    created = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=officer, json={
        "type": "Feature", "geometry": mapping(square(x + 1000, y + 1000, 30)),
        "properties": {"declared_area_m2": area}})
    assert created.status_code == 422, created.text


def test_the_largest_plausible_area_is_accepted_and_read_back(client, officer, parcel):
    response = _patch(client, officer, parcel, declared_area_m2=197_000_000_000)
    assert response.status_code == 200, response.text
    assert response.json()["properties"]["declared_area_m2"] == 197_000_000_000
    audit = client.get(f"/parcels/{parcel['id']}/audit", headers=officer)
    assert audit.status_code == 200 and audit.json()["entries"][0]["after"]["properties"]["declared_area_m2"] == 197e9


def test_the_api_says_which_bound_in_french_and_english(client, officer, parcel):
    source = _source(client, officer)
    body = {"type": "servitude", "start_date": "0001-01-01", "source_ids": [source]}
    french = client.post(f"/parcels/{parcel['id']}/rights", headers=officer, json=body)
    assert french.status_code == 422
    assert french.json()["errors"][0]["field"] == "start_date"
    assert "hors des bornes admises [1850-01-01, demain (UTC)]" in french.json()["detail"]
    english = client.post(f"/parcels/{parcel['id']}/rights", headers={**officer, "Accept-Language": "en"}, json=body)
    assert "must lie within [1850-01-01, tomorrow (UTC)]" in english.json()["detail"]


@pytest.mark.parametrize("start", ["0001-01-01", "1849-12-31", day(-2), "9999-12-31"])
def test_a_servitude_from_year_one_or_the_future_is_refused(client, db, officer, parcel, start):
    source = _source(client, officer)
    response = client.post(f"/parcels/{parcel['id']}/rights", headers=officer, json={
        "type": "servitude", "start_date": start, "source_ids": [source]})
    assert response.status_code == 422, response.text
    assert db.execute(text("SELECT count(*) FROM rrr_version WHERE parcel_id = :p"), {"p": parcel["id"]}).scalar() == 0


def test_dates_of_record_have_bounds(client, officer, parcel):
    refused = client.post("/sources", headers=officer, json={
        "kind": "acte", "document_date": "0001-01-01", "commune_code": BARGNY})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "document_date"
    assert client.post("/sources", headers=officer, json={
        "kind": "acte", "document_date": day(-3), "commune_code": BARGNY}).status_code == 422
    source = _source(client, officer, document_date="1850-01-01")
    # A titre foncier from 1850 is history; the same from 1849 is not plausible.
    assert client.post(f"/parcels/{parcel['id']}/rights", headers=officer, json={
        "type": "servitude", "start_date": "1850-01-01", "source_ids": [source]}).status_code == 201
    party = client.post("/parties", headers=officer, json={
        "kind": "natural_person", "name": "Sarr", "commune_code": BARGNY}).json()["id"]
    # An affectation procedure before décret 72-1288 (27 October 1972) cannot exist.
    early = client.post("/procedures", headers=officer, json={
        "parcel_id": parcel["id"], "applicants": [{"party_id": party}], "registered_on": "1972-10-26"})
    assert early.status_code == 422 and early.json()["errors"][0]["field"] == "registered_on"
    procedure = client.post("/procedures", headers=officer, json={
        "parcel_id": parcel["id"], "applicants": [{"party_id": party}], "registered_on": day(30)})
    assert procedure.status_code == 201, procedure.text
    step = client.post(f"/procedures/{procedure.json()['id']}/steps",
                       headers={**officer, "If-Match": procedure.headers["ETag"]},
                       json={"step": "surveyed", "occurred_on": day(20), "source_ids": [],
                             "details": {"neighbours_consulted": True, "distance": 1e308}})
    assert step.status_code == 422 and step.json()["errors"][0]["field"] == "details"


def test_the_end_of_a_right_has_bounds(client, officer, parcel):
    source = _source(client, officer)
    created = client.post(f"/parcels/{parcel['id']}/rights", headers=officer, json={
        "type": "servitude", "start_date": day(10), "source_ids": [source]})
    assert created.status_code == 201, created.text
    tag = {"If-Match": created.headers["ETag"]}
    for end in ("9999-12-31", (TODAY + timedelta(days=36600)).isoformat()):
        response = client.post(f"/rights/{created.json()['id']}/end", headers={**officer, **tag}, json={
            "end_date": end, "cause": "mainlevee", "reason": "fin"})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "end_date", response.text


def test_mutation_dates_and_areas_have_bounds(client, officer, parcel):
    source = _source(client, officer)
    response = client.post(f"/parcels/{parcel['id']}/boundary-correction", headers={**officer, "If-Match": parcel["etag"]},
                           json={"occurred_on": "1700-01-01", "source_ids": [source], "reason": "r",
                                 "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["occurred_on"]


# --- the services refuse the same values (CLI, imports, demo) ---------------------------------

def test_the_services_refuse_what_the_api_refuses(db, parcel):
    with pytest.raises(InvalidInput) as raised:
        parcels.update(db, parcel_id=parcel["id"], data=parcels.ParcelInput(
            values={"declared_area_m2": 1e308}, reason="r"), author="cli")
    assert raised.value.key == "bounds.out_of_range" and raised.value.params["field"] == "declared_area_m2"
    with pytest.raises(InvalidInput, match="start_date"):
        rights.create(db, parcel_id=parcel["id"], by=None, author="cli", data=rights.RightInput(
            type="servitude", start_date=date(1, 1, 1), source_ids=["x"]))
    with pytest.raises(InvalidInput, match="document_date"):
        sources.create(db, by=None, author="cli", data=sources.SourceInput(
            kind="acte", document_date=date(1, 1, 1), commune_code=BARGNY))


def test_an_import_ignores_an_impossible_declared_area_and_says_so(db, tmp_path):
    x, y = bargny_origin(db)
    path = write(tmp_path, [
        {"nicad": "0104040177911", "superficie": 1e308, "geometry": square(x + 1200, y + 1200, 20)},
        {"nicad": "0104040177912", "superficie": float("inf"), "geometry": square(x + 1250, y + 1200, 20)},
        {"nicad": "0104040177913", "superficie": 400.0, "geometry": square(x + 1300, y + 1200, 20)}])
    report = import_parcels(db, path, ParcelImportOptions(author="test", commune=BARGNY))
    assert report.accepted == 3
    stored = dict(db.execute(text("SELECT nicad, declared_area_m2 FROM parcel WHERE nicad LIKE '01040401779%'")).all())
    assert stored == {"0104040177911": None, "0104040177912": None, "0104040177913": 400.0}
    assert report.warnings_by_code.get("declared_area_out_of_bounds") == 2


# --- the database refuses them too (migration 0010) ----------------------------------------------

@pytest.mark.parametrize(("constraint", "statement"), [
    ("ck_parcel_version_declared_area_bounds", """
        INSERT INTO parcel_version (parcel_id, version, nicad, nicad_status, commune_code, geom, declared_area_m2,
                                    action, author)
        SELECT parcel_id, version + 100, NULL, nicad_status, commune_code, geom, 1e308, 'sql', 'sql'
        FROM parcel_version WHERE parcel_id = :parcel"""),
    ("ck_parcel_version_declared_area_bounds", """
        INSERT INTO parcel_version (parcel_id, version, nicad, nicad_status, commune_code, geom, declared_area_m2,
                                    action, author)
        SELECT parcel_id, version + 100, NULL, nicad_status, commune_code, geom, 'Infinity', 'sql', 'sql'
        FROM parcel_version WHERE parcel_id = :parcel"""),
    ("ck_source_document_date_bounds", """
        INSERT INTO source_document (id, kind, document_date, commune_code, created_by)
        VALUES (gen_random_uuid(), 'acte', DATE '0001-01-01', 'SN0104-bargny', 'sql')"""),
    ("ck_source_document_date_bounds", """
        INSERT INTO source_document (id, kind, document_date, commune_code, created_by)
        VALUES (gen_random_uuid(), 'acte', current_date + 30, 'SN0104-bargny', 'sql')"""),
    ("ck_rrr_version_start_date_bounds", """
        INSERT INTO rrr_version (rrr_id, version, parcel_id, commune_code, class, type, start_date, source_ids,
                                 action, author)
        VALUES (gen_random_uuid(), 1, :parcel, 'SN0104-bargny', 'restriction', 'servitude', DATE '0001-01-01',
                ARRAY[gen_random_uuid()], 'sql', 'sql')"""),
    ("ck_rrr_version_end_date_bounds", """
        INSERT INTO rrr_version (rrr_id, version, parcel_id, commune_code, class, type, start_date, end_date,
                                 end_cause, source_ids, action, author)
        VALUES (gen_random_uuid(), 1, :parcel, 'SN0104-bargny', 'restriction', 'servitude', current_date,
                DATE '9999-12-31', 'mainlevee', ARRAY[gen_random_uuid()], 'sql', 'sql')"""),
    ("ck_parcel_mutation_occurred_on_bounds", """
        INSERT INTO parcel_mutation (id, operation, occurred_on, commune_code, source_ids, reason, author)
        VALUES (gen_random_uuid(), 'split', DATE '1700-01-01', 'SN0104-bargny', ARRAY[gen_random_uuid()], 'r', 'sql')
    """),
])
def test_the_database_refuses_an_out_of_range_insert(db, parcel, constraint, statement):
    nested = db.begin_nested()
    with pytest.raises(IntegrityError, match=constraint):
        db.execute(text(statement), {"parcel": parcel["id"]})
    nested.rollback()


def test_the_database_and_the_service_agree_on_the_bounds():
    spec = importlib.util.spec_from_file_location("m0010", REPO / "migrations" / "versions" / "0010_value_bounds.py")
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.EARLIEST == f"DATE '{bounds.ENVELOPE['earliest_document']}'"
    assert migration.EARLIEST_AFFECTATION == f"DATE '{bounds.ENVELOPE['earliest_affectation']}'"
    assert float(migration.MAX_AREA_M2) == bounds.ENVELOPE["max_declared_area_km2"] * 1e6
    assert f"+ {int(bounds.ENVELOPE['max_future_years'] * 365.25)})" in migration.AHEAD
    # The shipped configuration is the database's envelope (it may only narrow it).
    assert bounds._configured(bounds.BOUNDS_FILE) == bounds.ENVELOPE


def test_a_configuration_may_narrow_the_bounds_never_widen_them(tmp_path):
    narrower = tmp_path / "bounds.yaml"
    narrower.write_text("earliest_document: 1900-01-01\nmax_declared_area_km2: 500\n")
    assert bounds._configured(narrower)["earliest_document"] == date(1900, 1, 1)
    wider = tmp_path / "wider.yaml"
    wider.write_text("earliest_document: 1800-01-01\n")
    with pytest.raises(ValueError, match="migration 0010"):
        bounds._configured(wider)


def test_every_bound_is_documented():
    page = (REPO / "docs" / "bounds.md").read_text(encoding="utf-8")
    for bound in bounds.table().values():
        assert f"`{bound.name}`" in page, bound.name
        if bound.column:
            assert f"`{bound.column}`" in page, bound.column


# --- stored history is read defensively --------------------------------------------------------

POISON = ('{"type": "Feature", "properties": {"declared_area_m2": ' + HUGE + ', "tiny": -' + HUGE
          + ', "ratio": 1e400, "when": "0001-01-01"}, "holders": [{"party_id": ":party", "share": 1e999}]}')


def test_a_poisoned_write_journal_is_still_served(client, db, parcel, admin_headers, officer):
    party = client.post("/parties", headers=officer, json={
        "kind": "natural_person", "name": "Fall", "commune_code": BARGNY}).json()["id"]
    # The journal is append-only; the service's role may insert (as the version before the bounds did).
    db.execute(text("""
        INSERT INTO write_audit (actor_kind, actor, role, operation, object_kind, object_id, parcel_id, commune_code,
                                 before, after)
        VALUES ('cli', 'poison', 'administrateur', 'parcel.update', 'parcel', CAST(:p AS text), CAST(:p AS uuid),
                'SN0104-bargny',
                CAST(:doc AS jsonb), CAST(:doc AS jsonb))"""), {"p": parcel["id"], "doc": POISON.replace(
        ":party", party)})
    db.execute(text("""
        INSERT INTO write_audit (actor_kind, actor, role, operation, object_kind, object_id, commune_code, after)
        VALUES ('cli', 'poison', 'administrateur', 'party.update', 'party', :party, 'SN0104-bargny',
                CAST(:doc AS jsonb))"""), {"party": party, "doc": POISON.replace(":party", party)})
    assert len(db.execute(text("SELECT after::text FROM write_audit WHERE actor = 'poison' LIMIT 1")).scalar()) > 600
    for path, params in [("/admin/writes", {}), ("/admin/writes", {"actor": "poison"}),
                         ("/admin/writes", {"object_id": parcel["id"]}), (f"/parcels/{parcel['id']}/audit", {}),
                         (f"/parcels/{parcel['id']}/history", {}), (f"/parcels/{parcel['id']}/versions", {}),
                         ("/admin/subjects/Fall", {}), ("/admin/audit", {})]:
        response = client.get(path, params=params, headers=admin_headers)
        assert response.status_code == 200, (path, response.text[:300])
    entry = client.get("/admin/writes", params={"actor": "poison", "object_kind": "parcel"},
                       headers=admin_headers).json()["entries"][0]
    shown = entry["after"]["properties"]
    assert shown["declared_area_m2"] == HUGE and shown["tiny"] == "-" + HUGE  # exactly as stored, as text
    assert shown["when"] == "0001-01-01"
    assert orjson.loads(orjson.dumps(entry))  # every number an ordinary JSON client reads
    report = client.get("/admin/subjects/Fall", headers=admin_headers).text
    assert f'"declared_area_m2":"{HUGE}"' in report  # the subject access request shows the write, as stored


def test_the_stored_json_reader_keeps_ordinary_values():
    from sifc import stored_json

    assert stored_json.loads('{"a": 1, "b": 2.5, "c": [9007199254740991, true, null, "x"]}') == {
        "a": 1, "b": 2.5, "c": [9007199254740991, True, None, "x"]}
    assert stored_json.loads("[9007199254740992, 1e400, NaN, -Infinity]") == [
        "9007199254740992", "1e400", "NaN", "-Infinity"]
    assert stored_json.coerce({"a": [2**70, float("nan")]}) == {"a": [str(2**70), "nan"]}


def test_every_reader_of_the_engine_parses_stored_json_defensively(db):
    """The engine's deserializer: every reader of stored JSON, whatever its SQL."""
    found = db.execute(text("SELECT CAST(:doc AS jsonb)"), {"doc": '{"x": ' + HUGE + "}"}).scalar()
    assert found == {"x": HUGE}


def test_a_value_out_of_bounds_is_never_a_server_error(client, officer, parcel):
    for body in ({"declared_area_m2": 10**400}, {"declared_area_m2": -10**400}, {"declared_area_m2": "1e999"}):
        response = _patch(client, officer, parcel, **body)
        assert response.status_code == 422, response.text


# --- migration 0010: current versions out of bounds get a corrective version --------------------

@pytest.fixture
def at_0009(settings):
    """A database of its own, migrated to 0009 (before the bounds), with the territorial reference."""
    from sifc import provision
    from sifc.db import make_engine, transaction
    from sifc.territories.loader import load_reference

    name = f"{settings.db_url.database}_m0010"
    provision.drop_database(settings.admin_url, name)
    target = settings.model_copy(update={
        "database_url": settings.db_url.set(database=name).render_as_string(hide_password=False),
        "admin_database_url": settings.admin_url.set(database=name).render_as_string(hide_password=False)})
    provision.create_database(settings.admin_url, name)
    provision.ensure_postgis(target.admin_url)
    provision.migrate(target, "0009")
    service = make_engine(target.db_url)
    with transaction(service) as session:
        load_reference(session, target.data_dir)
    service.dispose()
    admin = make_engine(target.admin_url)
    yield target, admin
    admin.dispose()
    provision.drop_database(settings.admin_url, name)


def test_the_migration_corrects_current_versions_out_of_bounds(at_0009):
    from sifc import provision

    target, admin = at_0009
    with admin.begin() as conn:  # what the service accepted before the bounds, written as it was
        conn.execute(text("""
            INSERT INTO parcel_version (parcel_id, version, nicad, nicad_status, commune_code, geom, declared_area_m2,
                                        action, author)
            SELECT id, 1, nicad, 'attribue', 'SN0104-bargny',
                   ST_Multi(ST_Buffer(ST_Transform(ST_SetSRID(ST_MakePoint(-17.2283 + dx, 14.6933), 4326), 32628), 10)),
                   area, 'api:create', 'agent'
            FROM (VALUES ('00000000-0000-4000-8000-000000000001'::uuid, '0104040100001', 1e308::float8, 0),
                         ('00000000-0000-4000-8000-000000000002'::uuid, '0104040100002', 400::float8, 0.001))
                 AS t(id, nicad, area, dx)"""))
        conn.execute(text("""
            INSERT INTO party_version (party_id, version, kind, name, commune_code, action, author)
            VALUES ('00000000-0000-4000-8000-0000000000a1', 1, 'natural_person', 'Sarr', 'SN0104-bargny', 'api', 'a')"""))
        conn.execute(text("""
            INSERT INTO rrr_version (rrr_id, version, parcel_id, commune_code, class, type, start_date, notice_date,
                                     source_ids, action, author)
            VALUES ('00000000-0000-4000-8000-0000000000b1', 1, '00000000-0000-4000-8000-000000000001',
                    'SN0104-bargny', 'restriction', 'servitude', DATE '0001-01-01', DATE '0002-02-02',
                    ARRAY['00000000-0000-4000-8000-0000000000c1'::uuid], 'api:create', 'agent'),
                   ('00000000-0000-4000-8000-0000000000b2', 1, '00000000-0000-4000-8000-000000000001',
                    'SN0104-bargny', 'right', 'bail', DATE '1700-06-01', NULL,
                    ARRAY['00000000-0000-4000-8000-0000000000c1'::uuid], 'api:create', 'agent')"""))
        conn.execute(text("""
            INSERT INTO rrr_holder (rrr_id, version, party_id, share_numerator, share_denominator)
            VALUES ('00000000-0000-4000-8000-0000000000b2', 1, '00000000-0000-4000-8000-0000000000a1', 1, 1)"""))
        conn.execute(text("""
            INSERT INTO write_audit (actor_kind, actor, role, operation, object_kind, object_id, parcel_id, after)
            VALUES ('cli', 'agent', 'agent_foncier', 'parcel.update', 'parcel', '00000000-0000-4000-8000-000000000001',
                    '00000000-0000-4000-8000-000000000001', CAST(:doc AS jsonb))"""), {"doc": '{"a": ' + HUGE + "}"})

    provision.migrate(target, "0010")

    with admin.connect() as conn:
        versions = conn.execute(text("""
            SELECT version, declared_area_m2, valid_to IS NULL, author, close_reason FROM parcel_version
            WHERE parcel_id = '00000000-0000-4000-8000-000000000001' ORDER BY version""")).all()
        assert versions == [(1, 1e308, False, "agent", "correction automatique : valeur hors bornes (migration 0010)"),
                            (2, None, True, "sifc (migration 0010)", None)]
        untouched = conn.execute(text("SELECT count(*) FROM parcel_version "
                                      "WHERE parcel_id = '00000000-0000-4000-8000-000000000002'")).scalar()
        assert untouched == 1
        rights = conn.execute(text("""
            SELECT rrr_id::text, version, start_date, notice_date, valid_to IS NULL FROM rrr_version
            ORDER BY rrr_id, version""")).all()
        assert [r[1:] for r in rights] == [(1, date(1, 1, 1), date(2, 2, 2), False),
                                          (2, date(1850, 1, 1), None, True),
                                          (1, date(1700, 6, 1), None, False), (2, date(1850, 1, 1), None, True)]
        holders = conn.execute(text("SELECT version, share_numerator, share_denominator FROM rrr_holder "
                                    "ORDER BY version")).all()
        assert holders == [(1, 1, 1), (2, 1, 1)]
        journal = conn.execute(text("""
            SELECT operation, object_id, actor, before->>'declared_area_m2', before->>'start_date' FROM write_audit
            WHERE actor = 'sifc (migration 0010)' ORDER BY operation, object_id""")).all()
        assert [j[0] for j in journal] == ["parcel.correct_bounds", "rrr.correct_bounds", "rrr.correct_bounds"]
        assert journal[0][3] == "1e+308" and journal[1][4] == "0001-01-01"
        # NOT VALID: history is not checked; every new row is.
        constraints = dict(conn.execute(text("""
            SELECT conname, convalidated FROM pg_constraint WHERE conname LIKE 'ck_%_bounds'""")).all())
        assert len(constraints) == 7 and not any(constraints.values())
    # The later migrations run over the corrected versions.
    provision.migrate(target, "head")
