"""Tenure over real HTTP: concurrent edits, as-of reads, and what the database itself refuses.

Two real clients edit one record; the server holds both right after their ``If-Match`` check
(``SIFC_TEST_PRECONDITION_BARRIER=2``, a seam of :mod:`sifc.hooks` inert outside tests), so
both pass it with the same version: exactly one write may win, the other gets 412.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from shapely.geometry import mapping
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.pool import NullPool

from sifc.settings import Settings
from tests.e2e.helpers import create_key, serving
from tests.integration.fixtures import square

BARGNY = "SN0104-bargny"
ROUNDS = 50


def _serve(settings: Settings, tmp: Path, name: str, extra: dict[str, str] | None = None) -> Iterator[str]:
    with serving(settings, tmp / f"{name}.log", extra) as base:
        yield base


@pytest.fixture(scope="module")
def admin(fresh_db: Settings) -> dict[str, str]:
    return create_key(fresh_db)


@pytest.fixture(scope="module")
def held(fresh_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose versioned writes wait for one another after the If-Match check."""
    yield from _serve(fresh_db, tmp_path_factory.mktemp("held"), "held", {"SIFC_TEST_PRECONDITION_BARRIER": "2"})


@pytest.fixture(scope="module")
def plain(fresh_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(fresh_db, tmp_path_factory.mktemp("plain"), "plain")


def _origin(settings: Settings, dx: float) -> tuple[float, float]:
    engine = create_engine(settings.admin_url, poolclass=NullPool)
    with engine.connect() as conn:
        x, y = conn.execute(text("""
            SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(-17.2283, 14.6933), 4326), 32628) p) t
        """)).one()
    engine.dispose()
    return x + dx, y + 700


def _parcel(base: str, headers: dict[str, str], settings: Settings, dx: float) -> str:
    x, y = _origin(settings, dx)
    created = httpx.post(f"{base}/parcels", params={"crs": "EPSG:32628"}, headers=headers, timeout=30, json={
        "type": "Feature", "geometry": mapping(square(x, y, 25)), "properties": {"land_use": "habitation",
                                                                              "reason": "levé"}})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def test_two_clients_editing_one_parcel_exactly_one_wins(held: str, admin: dict[str, str], fresh_db: Settings):
    parcel = _parcel(held, admin, fresh_db, 0)
    outcomes = []
    with httpx.Client(base_url=held, headers=admin, timeout=30) as first, \
            httpx.Client(base_url=held, headers=admin, timeout=30) as second, ThreadPoolExecutor(2) as pool:
        for round_ in range(ROUNDS):
            read = first.get(f"/parcels/{parcel}")
            tag, version = read.headers["ETag"], read.json()["properties"]["version"]

            def edit(client: httpx.Client, who: str, tag: str = tag, round_: int = round_) -> httpx.Response:
                return client.patch(f"/parcels/{parcel}", headers={"If-Match": tag}, json={
                    "type": "Feature", "geometry": None,
                    "properties": {"land_use": f"usage {round_} {who}", "reason": f"édition {who}"}})

            answers = list(pool.map(lambda pair: edit(*pair), [(first, "a"), (second, "b")]))
            statuses = sorted(a.status_code for a in answers)
            outcomes.append(statuses)
            assert statuses == [200, 412], [a.text for a in answers]
            loser = next(a for a in answers if a.status_code == 412)
            assert loser.headers["content-type"] == "application/problem+json"
            winner = next(a for a in answers if a.status_code == 200)
            assert winner.json()["properties"]["version"] == version + 1
    assert outcomes == [[200, 412]] * ROUNDS
    versions = httpx.get(f"{held}/parcels/{parcel}/versions", headers=admin, timeout=30).json()["features"]
    assert len(versions) == ROUNDS + 1
    assert sum(1 for v in versions if v["properties"]["valid_to"] is None) == 1


def test_two_clients_recording_one_procedure_step_exactly_one_wins(held: str, admin: dict[str, str],
                                                                   fresh_db: Settings):
    parcel = _parcel(held, admin, fresh_db, 60)
    party = httpx.post(f"{held}/parties", headers=admin, timeout=30, json={
        "kind": "natural_person", "name": "Synthétique", "commune_code": BARGNY}).json()["id"]
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    procedure = httpx.post(f"{held}/procedures", headers=admin, timeout=30, json={
        "parcel_id": parcel, "applicants": [{"party_id": party}], "registered_on": yesterday})
    assert procedure.status_code == 201, procedure.text
    pv = httpx.post(f"{held}/sources", headers=admin, timeout=30, json={
        "kind": "proces_verbal", "document_date": yesterday, "commune_code": BARGNY}).json()["id"]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda reason: httpx.post(
            f"{held}/procedures/{procedure.json()['id']}/steps", timeout=30,
            headers={**admin, "If-Match": procedure.headers["ETag"]},
            json={"step": "surveyed", "occurred_on": yesterday, "source_ids": [pv],
                  "details": {"neighbours_consulted": True, "note": reason}}), ["a", "b"]))
    assert sorted(a.status_code for a in answers) == [200, 412], [a.text for a in answers]


def test_as_of_reads_answer_the_state_at_a_past_instant(plain: str, admin: dict[str, str], fresh_db: Settings):
    parcel = _parcel(plain, admin, fresh_db, 120)
    time.sleep(0.05)
    t1 = datetime.now(UTC)
    time.sleep(0.05)
    read = httpx.get(f"{plain}/parcels/{parcel}", timeout=30)
    changed = httpx.patch(f"{plain}/parcels/{parcel}", headers={**admin, "If-Match": read.headers["ETag"]},
                          timeout=30, json={"type": "Feature", "geometry": None,
                                            "properties": {"land_use": "commerce", "reason": "changement d'usage"}})
    assert changed.status_code == 200, changed.text
    party = httpx.post(f"{plain}/parties", headers=admin, timeout=30, json={
        "kind": "natural_person", "name": "Synthétique", "contact": "ancien", "commune_code": BARGNY})
    act = httpx.post(f"{plain}/sources", headers=admin, timeout=30, json={
        "kind": "acte", "document_date": date.today().isoformat(), "commune_code": BARGNY}).json()["id"]
    lease = httpx.post(f"{plain}/parcels/{parcel}/rights", headers=admin, timeout=30, json={
        "type": "bail", "start_date": date.today().isoformat(), "source_ids": [act],
        "holders": [{"party_id": party.json()["id"]}]})
    assert lease.status_code == 201, lease.text
    time.sleep(0.05)
    t2 = datetime.now(UTC)
    time.sleep(0.05)
    moved = httpx.patch(f"{plain}/parties/{party.json()['id']}", timeout=30,
                        headers={**admin, "If-Match": party.headers["ETag"]},
                        json={"contact": "nouveau", "reason": "déménagement"})
    assert moved.status_code == 200, moved.text

    def at(path: str, instant: datetime) -> httpx.Response:
        return httpx.get(f"{plain}{path}", params={"at": instant.isoformat()}, headers=admin, timeout=30)

    assert at(f"/parcels/{parcel}", t1).json()["properties"]["land_use"] == "habitation"
    assert at(f"/parcels/{parcel}", t2).json()["properties"]["land_use"] == "commerce"
    assert at(f"/parcels/{parcel}/rights", t1).json()["rights"] == []
    assert [r["type"] for r in at(f"/parcels/{parcel}/rights", t2).json()["rights"]] == ["bail"]
    assert at(f"/parties/{party.json()['id']}", t2).json()["contact"] == "ancien"
    assert httpx.get(f"{plain}/parties/{party.json()['id']}", headers=admin, timeout=30).json()["contact"] == "nouveau"
    before = at(f"/parcels/{parcel}", datetime(2000, 1, 1, tzinfo=UTC))
    assert before.status_code == 404 and before.headers["content-type"] == "application/problem+json"
    # A date alone stands for the end of that day.
    today = httpx.get(f"{plain}/parcels/{parcel}", params={"at": date.today().isoformat()}, timeout=30)
    assert today.json()["properties"]["land_use"] == "commerce"


def test_the_database_refuses_what_the_service_must_never_do(fresh_db: Settings):
    """As the service's own role, over a committed transaction: audit rows never change, shares sum to 1."""
    engine = create_engine(fresh_db.db_url, poolclass=NullPool)
    try:
        for table, statement in (("write_audit", "UPDATE write_audit SET actor = 'x'"),
                                 ("write_audit", "DELETE FROM write_audit"), ("write_audit", "TRUNCATE write_audit"),
                                 ("access_audit", "UPDATE access_audit SET actor = 'x'"),
                                 ("access_audit", "DELETE FROM access_audit")):
            with pytest.raises(ProgrammingError) as refused, engine.begin() as conn:
                conn.execute(text(statement))
            # The role's privileges refuse it (insufficient_privilege), before any append-only trigger.
            assert refused.value.orig.sqlstate == "42501"
            assert f"permission denied for table {table}" in str(refused.value)
        with pytest.raises(DBAPIError) as refused, engine.begin() as conn:
            parcel = conn.execute(text("SELECT parcel_id, commune_code FROM parcel LIMIT 1")).one()
            party = conn.execute(text("SELECT party_id FROM party_version LIMIT 1")).scalar()
            source = conn.execute(text("SELECT id FROM source_document LIMIT 1")).scalar()
            conn.execute(text("""
                INSERT INTO rrr_version (rrr_id, version, parcel_id, commune_code, class, type, start_date, source_ids,
                                         action, author)
                VALUES ('00000000-0000-4000-8000-000000000001', 1, :p, :c, 'right', 'bail', current_date,
                        ARRAY[CAST(:s AS uuid)], 'sql', 'test')"""), {"p": parcel[0], "c": parcel[1], "s": source})
            conn.execute(text("""
                INSERT INTO rrr_holder VALUES ('00000000-0000-4000-8000-000000000001', 1, :party, 1, 2)"""),
                {"party": party})
        assert "sum to" in str(refused.value)
    finally:
        engine.dispose()
