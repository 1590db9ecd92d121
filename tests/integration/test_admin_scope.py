"""The national administration routes and an administrator scoped to one commune.

The subject access request gathers a person's whole record across the country: only a national
scope may ask for it (403, with its own message, otherwise). The write journal (whose ``before`` and
``after`` are whole records, names included) and the access log are filtered to the administrator's
communes. A national administrator still sees everything.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import api_key, table_fingerprint

BARGNY = "SN0104-bargny"
SANDIARA = "SN1301-sandiara"
NAME = "Sandiaramarker"  # the Sandiara party's name, which no answer to Bargny's administrator may carry
OURS = "Bargnymarker"


def _party(client, headers, name: str, commune: str) -> str:
    response = client.post("/parties", headers=headers, json={
        "kind": "natural_person", "name": name, "given_names": "Awa", "commune_code": commune})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def world(client, db, admin_headers) -> dict[str, Any]:
    """A party in Sandiara and one in Bargny, each written and read by a national administrator."""
    ids = {"sandiara": _party(client, admin_headers, NAME, SANDIARA), "bargny": _party(client, admin_headers, OURS, BARGNY)}
    for party in ids.values():
        assert client.get(f"/parties/{party}", headers=admin_headers).status_code == 200
    return ids


@pytest.fixture
def bargny_admin(db) -> dict[str, str]:
    return {"X-API-Key": api_key(db, role="administrateur", scope=(f"commune:{BARGNY}",), name="admin-bargny")}


def test_a_commune_administrator_may_not_ask_for_a_persons_whole_record(client, db, world, bargny_admin):
    before = table_fingerprint(db, "access_audit")
    for language, words in (("fr", "périmètre national"), ("en", "national scope")):
        response = client.get(f"/admin/subjects/{NAME}", headers={**bargny_admin, "Accept-Language": language})
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert words in response.json()["detail"]
        assert "sources" not in response.json() and "Awa" not in response.text
    assert table_fingerprint(db, "access_audit") == before


def test_a_national_administrator_still_gets_the_whole_record(client, world, admin_headers):
    response = client.get(f"/admin/subjects/{NAME}", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert NAME in response.text


def test_the_write_journal_shows_a_commune_administrator_only_its_communes(client, world, bargny_admin,
                                                                            admin_headers):
    entries = client.get("/admin/writes", params={"limit": 500}, headers=bargny_admin).json()["entries"]
    assert entries and {entry["commune_code"] for entry in entries} == {BARGNY}
    assert world["bargny"] in {entry["object_id"] for entry in entries}
    shown = client.get("/admin/writes", params={"object_id": world["sandiara"]}, headers=bargny_admin)
    assert shown.status_code == 200 and shown.json()["entries"] == [] and NAME not in shown.text
    everything = client.get("/admin/writes", params={"limit": 500}, headers=admin_headers).text
    assert NAME in everything and OURS in everything


def test_the_access_log_shows_a_commune_administrator_only_its_communes(client, world, bargny_admin,
                                                                         admin_headers):
    rows = client.get("/admin/audit", params={"limit": 1000}, headers=bargny_admin).json()["rows"]
    assert rows and {row["commune_code"] for row in rows} == {BARGNY}
    assert world["bargny"] in {row["subject_id"] for row in rows}
    assert client.get("/admin/audit", params={"subject": world["sandiara"]}, headers=bargny_admin).json()["count"] == 0
    national = client.get("/admin/audit", params={"limit": 1000}, headers=admin_headers).json()["rows"]
    assert {world["sandiara"], world["bargny"]} <= {row["subject_id"] for row in national}
