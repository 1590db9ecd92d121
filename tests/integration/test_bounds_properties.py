"""Property: whatever a write schema accepts can be read back by every route that shows it.

Hypothesis draws numbers and dates inside, at and far beyond the bounds of sifc/bounds.py (and
values that are not numbers at all) for each write that takes one. A write answers 2xx or a 4xx,
never a 500; after a 2xx, the parcel, its versions, history, rights and write journal, the OGC item,
the export and the administrators' journal all answer 200. Each example runs in a savepoint rolled
back after it, so examples never see each other's writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box, mapping

from tests.integration.fixtures import bargny_origin, square

BARGNY = "SN0104-bargny"
TODAY = date.today()
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Numbers a client may send: ordinary, at the bounds, huge, tiny, negative, non-finite, not numbers.
NUMBERS = st.one_of(
    st.floats(min_value=1e-3, max_value=197e9),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([0, 0.0, -0.0, 1e-300, 197e9, 197e9 + 1, 1e308, "Infinity", "NaN", "-1e999", "12", True]),
)
# Dates: the whole calendar pydantic reads, with the bounds and their neighbours more often.
DATES = st.one_of(
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    st.dates(min_value=date(1849, 12, 1), max_value=TODAY + timedelta(days=5)),
    st.sampled_from([date(1850, 1, 1), date(1849, 12, 31), date(1972, 10, 26), date(1972, 10, 27),
                     TODAY + timedelta(days=1), TODAY + timedelta(days=2)]),
)


@contextmanager
def rolled_back(db) -> Iterator[None]:
    savepoint = db.begin_nested()
    try:
        yield
    finally:
        if savepoint.is_active:
            savepoint.rollback()


@pytest.fixture
def parcel(client, db, officer) -> dict:
    x, y = bargny_origin(db)
    response = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=officer, json={
        "type": "Feature", "geometry": mapping(square(x + 1500, y + 1500, 30)),
        "properties": {"nicad": "0104040177931", "reason": "levé"}})
    assert response.status_code == 201, response.text
    return {"id": response.json()["id"], "etag": response.headers["ETag"],
            "bbox": f"{x + 1490},{y + 1490},{x + 1540},{y + 1540}"}


@pytest.fixture
def source(client, officer) -> str:
    response = client.post("/sources", headers=officer, json={
        "kind": "acte", "document_date": (TODAY - timedelta(days=30)).isoformat(), "commune_code": BARGNY})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _answered(response, *accepted: int) -> bool:
    """2xx (accepted), or a 4xx problem; never a server error."""
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 300:
        assert response.status_code in (409, 422), response.text[:500]
        assert response.headers["content-type"] == "application/problem+json"
        return False
    assert response.status_code in accepted, response.text[:500]
    return True


def _every_reader_answers(client, headers: dict[str, str], admin: dict[str, str], parcel: dict, *extra: str) -> None:
    pid = parcel["id"]
    paths = [f"/parcels/{pid}", f"/parcels/{pid}/versions", f"/parcels/{pid}/history", f"/parcels/{pid}/rights",
             f"/parcels/{pid}/audit", f"/ogc/collections/parcels/items/{pid}", *extra]
    for path in paths:
        for who in (headers, {}):  # in scope (personal fields), and the public
            response = client.get(path, headers=who)
            # The public reads all of it but a parcel's access journal and a procedure, which ask to sign in.
            signed_in_only = path.endswith("/audit") or path.startswith("/procedures/")
            expected = 401 if who == {} and signed_in_only else 200
            assert response.status_code == expected, (path, response.status_code, response.text[:300])
            if expected == 401:
                assert response.json()["type"] == "urn:sifc:problem:auth.required"
    exported = client.get("/exports/parcels", params={"bbox": parcel["bbox"], "bbox-crs": "EPSG:32628"})
    assert exported.status_code == 200 and pid in exported.text, exported.text[:300]
    assert client.get("/admin/writes", params={"object_id": pid}, headers=admin).status_code == 200
    assert client.get("/admin/writes", headers=admin).status_code == 200


@PROPERTY
@given(area=NUMBERS)
def test_a_declared_area_accepted_is_read_back_everywhere(client, db, officer, admin_headers, parcel, area):
    with rolled_back(db):
        response = client.patch(f"/parcels/{parcel['id']}", headers={**officer, "If-Match": parcel["etag"]}, json={
            "type": "Feature", "geometry": None, "properties": {"declared_area_m2": area, "reason": "superficie"}})
        if _answered(response, 200):
            shown = response.json()["properties"]["declared_area_m2"]
            assert 0 < shown <= 197e9
            _every_reader_answers(client, officer, admin_headers, parcel)
            entries = client.get(f"/parcels/{parcel['id']}/audit", headers=officer).json()["entries"]
            assert entries[0]["after"]["properties"]["declared_area_m2"] == shown


@PROPERTY
@given(start=DATES, kind=st.sampled_from(["servitude", "litige", "zone_reservee"]))
def test_a_right_accepted_is_read_back_everywhere(client, db, officer, admin_headers, parcel, source, start, kind):
    with rolled_back(db):
        response = client.post(f"/parcels/{parcel['id']}/rights", headers=officer, json={
            "type": kind, "start_date": start.isoformat(), "source_ids": [source]})
        if _answered(response, 201):
            assert date(1850, 1, 1) <= start <= TODAY + timedelta(days=1)
            rid = response.json()["id"]
            _every_reader_answers(client, officer, admin_headers, parcel, f"/rights/{rid}", f"/rights/{rid}/versions")


@PROPERTY
@given(start=DATES, end=DATES)
def test_the_end_of_a_right_accepted_is_read_back_everywhere(client, db, officer, admin_headers, parcel, source, start, end):
    with rolled_back(db):
        created = client.post(f"/parcels/{parcel['id']}/rights", headers=officer, json={
            "type": "servitude", "start_date": start.isoformat(), "source_ids": [source]})
        if not _answered(created, 201):
            return
        response = client.post(f"/rights/{created.json()['id']}/end",
                               headers={**officer, "If-Match": created.headers["ETag"]},
                               json={"end_date": end.isoformat(), "cause": "autre", "reason": "fin"})
        if _answered(response, 200):
            assert start <= end <= TODAY + timedelta(days=36526)
            _every_reader_answers(client, officer, admin_headers, parcel, f"/rights/{created.json()['id']}/versions")


@PROPERTY
@given(day=DATES)
def test_a_source_accepted_is_read_back(client, db, officer, admin_headers, day):
    with rolled_back(db):
        response = client.post("/sources", headers=officer, json={
            "kind": "plan", "document_date": day.isoformat(), "commune_code": BARGNY})
        if _answered(response, 201):
            assert date(1850, 1, 1) <= day <= TODAY + timedelta(days=1)
            assert client.get(f"/sources/{response.json()['id']}", headers=officer).status_code == 200


@PROPERTY
@given(registered=DATES, surveyed=DATES, details=st.dictionaries(
    st.text(max_size=5), st.one_of(st.integers(), st.floats(), st.text(max_size=5), st.booleans()), max_size=3))
def test_a_procedure_accepted_is_read_back_everywhere(client, db, officer, admin_headers, parcel, source, registered, surveyed,
                                                     details):
    with rolled_back(db):
        party = client.post("/parties", headers=officer, json={
            "kind": "natural_person", "name": "Diouf", "commune_code": BARGNY})
        assert party.status_code == 201, party.text
        response = client.post("/procedures", headers=officer, json={
            "parcel_id": parcel["id"], "applicants": [{"party_id": party.json()["id"]}],
            "registered_on": registered.isoformat()})
        if not _answered(response, 201):
            return
        assert date(1972, 10, 27) <= registered <= TODAY + timedelta(days=1)
        pid = response.json()["id"]
        pv = client.post("/sources", headers=officer, json={
            "kind": "proces_verbal", "document_date": registered.isoformat(), "commune_code": BARGNY})
        step = client.post(f"/procedures/{pid}/steps", headers={**officer, "If-Match": response.headers["ETag"]},
                           json={"step": "surveyed", "occurred_on": surveyed.isoformat(),
                                 "source_ids": [pv.json()["id"]] if pv.status_code == 201 else [],
                                 "details": {**details, "neighbours_consulted": True}})
        _answered(step, 200)
        _every_reader_answers(client, officer, admin_headers, parcel, f"/procedures/{pid}")


@PROPERTY
@given(day=DATES, area=NUMBERS)
def test_a_split_accepted_is_read_back_everywhere(client, db, officer, admin_headers, parcel, source, day, area):
    x, y = bargny_origin(db)
    halves = [box(x + 1500 + dx, y + 1500, x + 1515 + dx, y + 1530) for dx in (0, 15)]
    with rolled_back(db):
        response = client.post(f"/parcels/{parcel['id']}/split", params={"crs": "EPSG:32628"},
                               headers={**officer, "If-Match": parcel["etag"]}, json={
            "occurred_on": day.isoformat(), "source_ids": [source], "reason": "morcellement",
            "children": [{"type": "Feature", "geometry": mapping(half),
                          "properties": {"declared_area_m2": area if index == 0 else 450}}
                         for index, half in enumerate(halves)]})
        if _answered(response, 201):
            assert date(1850, 1, 1) <= day <= TODAY + timedelta(days=1)
            child = response.json()["children"][0]
            _every_reader_answers(client, officer, admin_headers, {**parcel, "id": child},
                                  f"/parcels/{parcel['id']}/versions", f"/parcels/{parcel['id']}/lineage")
