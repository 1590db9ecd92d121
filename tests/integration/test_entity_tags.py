"""Entity tags name one version of one object.

Parcel ids are time-ordered: the parcels of one import batch share their first characters. A tag
made of a prefix of the id and the version was therefore shared by neighbours of a batch: a tag read
from one parcel validated a write to the next, and a merge, which picked for each parcel the first
tag with its prefix, refused the right tags once one of two neighbours had been edited. Parties,
rights and procedures are checked the same way, their ids made to share a prefix as a batch's do.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from shapely.geometry import box
from sqlalchemy import text

from api.preconditions import etag, version_from_etag
from sifc.imports.parcels import ParcelImportOptions, import_parcels
from tests.conftest import api_key, table_fingerprint
from tests.integration.fixtures import bargny_origin, write

BARGNY = "SN0104-bargny"
WRITTEN = ("parcel_version", "party_version", "rrr_version", "rrr_holder", "tenure_procedure", "procedure_step",
           "parcel_mutation", "write_audit")


def day(offset: int) -> str:
    return (date.today() - timedelta(days=offset)).isoformat()


@pytest.fixture
def officer(db) -> dict[str, str]:
    return {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="agent bargny")}


def _written(db) -> dict[str, tuple[int, str]]:
    return {table: table_fingerprint(db, table) for table in WRITTEN}


@contextmanager
def one_batch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """New ids share their first 12 characters, as the time-ordered ids of one import batch do."""
    counter = itertools.count(1)
    with monkeypatch.context() as patch:
        patch.setattr(uuid, "uuid4", lambda: uuid.UUID(f"0190a1b2-c3d4-7000-8000-{next(counter):012x}"))
        yield


def _imported_pair(db, tmp_path) -> tuple[str, str]:
    """Two adjacent parcels of one import batch (ids sharing their first characters)."""
    x, y = bargny_origin(db)
    x, y = x - 300, y + 200
    path = write(tmp_path, [{"NICAD": "0104040100071", "USAGE": "habitation", "geometry": box(x, y, x + 20, y + 20)},
                            {"NICAD": "0104040100072", "USAGE": "habitation",
                             "geometry": box(x + 20, y, x + 40, y + 20)}], name="lot.gpkg")
    import_parcels(db, path, ParcelImportOptions(author="test"))
    ids = [str(db.execute(text("SELECT parcel_id FROM parcel WHERE nicad = :n"), {"n": n}).scalar())
           for n in ("0104040100071", "0104040100072")]
    assert ids[0][:8] == ids[1][:8], "the ids of one batch share a prefix: the case the tags must tell apart"
    return ids[0], ids[1]


def _tag(client, url: str, headers: dict[str, str] | None = None) -> str:
    read = client.get(url, headers=headers or {})
    assert read.status_code == 200, read.text
    return read.headers["ETag"]


def _plan(client, officer) -> str:
    source = client.post("/sources", headers=officer, json={
        "kind": "plan", "document_date": day(5), "commune_code": BARGNY, "reference": "plan 2026-77"})
    assert source.status_code == 201, source.text
    return source.json()["id"]


def test_a_tag_is_one_version_of_one_object():
    first, second = uuid.UUID("0190a1b2-c3d4-7000-8000-000000000001"), uuid.UUID("0190a1b2-c3d4-7000-8000-000000000002")
    tags = {etag(kind, object_id, version) for kind in ("parcel", "party", "rrr", "procedure")
            for object_id in (first, second) for version in (1, 2, 10)}
    assert len(tags) == 4 * 2 * 3
    tag = etag("parcel", first, 3)
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith('W/')
    assert version_from_etag(tag, "parcel", first) == 3
    assert version_from_etag(tag, "parcel", str(first).upper()) == 3, "one id, however it is spelt"
    assert version_from_etag(tag, "parcel", second) == -1
    assert version_from_etag(tag, "party", first) == -1
    assert version_from_etag("W/" + tag, "parcel", first) == -1
    both = f"{etag('parcel', second, 7)}, {tag}"
    assert (version_from_etag(both, "parcel", first), version_from_etag(both, "parcel", second)) == (3, 7)
    for forged in ('"3-"', '"3"', tag.replace('"3-', '"4-'), '"²-abc"', '""', '"', "3-" + tag[3:-1], tag[:-1]):
        assert version_from_etag(forged, "parcel", first) == -1, forged
    assert version_from_etag(tag, "parcel", "not an id") == -1


@pytest.mark.parametrize("edited", [0, 1], ids=["first edited", "second edited"])
@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_a_merge_of_two_parcels_of_one_batch_after_an_edit(client, db, officer, tmp_path, edited, order):
    ids = _imported_pair(db, tmp_path)
    change = {"type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": "usage"}}
    tag = _tag(client, f"/parcels/{ids[edited]}")
    assert client.patch(f"/parcels/{ids[edited]}", headers={**officer, "If-Match": tag}, json=change
                        ).status_code == 200
    tags = [_tag(client, f"/parcels/{pid}") for pid in ids]
    assert tags[0] != tags[1]
    if order == "reversed":
        tags.reverse()
    merged = client.post("/parcels/merge", headers={**officer, "If-Match": ", ".join(tags)}, json={
        "occurred_on": day(1), "source_ids": [_plan(client, officer)], "reason": "fusion demandée",
        "parcel_ids": list(ids), "properties": {"tenure_regime": "domaine national"}})
    assert merged.status_code == 201, merged.text
    assert sorted(merged.json()["parents"]) == sorted(ids)


def test_a_merge_needs_the_tag_of_each_parcel(client, db, officer, tmp_path):
    a, b = _imported_pair(db, tmp_path)
    tag_a = _tag(client, f"/parcels/{a}")
    body = {"occurred_on": day(1), "source_ids": [_plan(client, officer)], "reason": "fusion", "parcel_ids": [a, b]}
    before = _written(db)
    for tags, status, problem in (([tag_a], 428, "mutation.if_match_each"),  # b's tag missing
                                  ([tag_a, tag_a], 428, "mutation.if_match_each"),  # still none for b
                                  ([tag_a, etag("parcel", b, 2)], 412, "http.precondition_failed")):  # b's is stale
        refused = client.post("/parcels/merge", headers={**officer, "If-Match": ", ".join(tags)}, json=body)
        assert (refused.status_code, refused.json()["type"]) == (status, f"urn:sifc:problem:{problem}"), tags
    assert _written(db) == before


def test_a_tag_of_one_parcel_never_validates_a_write_to_its_neighbour(client, db, officer, tmp_path):
    a, b = _imported_pair(db, tmp_path)
    tag_a = _tag(client, f"/parcels/{a}")
    assert _tag(client, f"/parcels/{b}") != tag_a, "two parcels of a batch at the same version"
    change = {"type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": "usage"}}
    plan, shape = _plan(client, officer), client.get(f"/parcels/{b}").json()["geometry"]
    before = _written(db)
    writes = {
        "update": client.patch(f"/parcels/{b}", headers={**officer, "If-Match": tag_a}, json=change),
        "retire": client.post(f"/parcels/{b}/retire", headers={**officer, "If-Match": tag_a}, json={"reason": "x"}),
        "boundary": client.post(f"/parcels/{b}/boundary-correction", headers={**officer, "If-Match": tag_a}, json={
            "occurred_on": day(1), "source_ids": [plan], "reason": "limite", "geometry": shape}),
    }
    for name, response in writes.items():
        assert response.status_code == 412, (name, response.text)
        assert response.json()["type"] == "urn:sifc:problem:http.precondition_failed", name
    assert _written(db) == before


def _parties(client, officer) -> tuple[str, str, Callable[[str, str], object]]:
    made = [client.post("/parties", headers=officer, json={
        "kind": "natural_person", "name": name, "commune_code": BARGNY}) for name in ("Diallo", "Diouf")]
    assert all(m.status_code == 201 for m in made), [m.text for m in made]

    def write_to(party: str, tag: str):
        return client.patch(f"/parties/{party}", headers={**officer, "If-Match": tag},
                            json={"contact": "+221 00 000 00 01", "reason": "nouveau contact"})
    return made[0].json()["id"], made[1].json()["id"], write_to


def _rights(client, officer, parcel: str) -> tuple[str, str, Callable[[str, str], object]]:
    act = _plan(client, officer)
    made = [client.post(f"/parcels/{parcel}/rights", headers=officer, json={
        "type": "servitude", "start_date": day(10), "source_ids": [act], "description": d}) for d in ("puits", "passage")]
    assert all(m.status_code == 201 for m in made), [m.text for m in made]

    def write_to(right: str, tag: str):
        return client.patch(f"/rights/{right}", headers={**officer, "If-Match": tag},
                            json={"description": "passage élargi", "reason": "plan révisé"})
    return made[0].json()["id"], made[1].json()["id"], write_to


def _procedures(client, officer, parcels: tuple[str, str]) -> tuple[str, str, Callable[[str, str], object]]:
    applicant = client.post("/parties", headers=officer, json={
        "kind": "natural_person", "name": "Sall", "commune_code": BARGNY}).json()["id"]
    made = [client.post("/procedures", headers=officer, json={
        "parcel_id": parcel, "applicants": [{"party_id": applicant}], "registered_on": day(30)}) for parcel in parcels]
    assert all(m.status_code == 201 for m in made), [m.text for m in made]

    def write_to(procedure: str, tag: str):
        return client.post(f"/procedures/{procedure}/steps", headers={**officer, "If-Match": tag},
                           json={"step": "refused", "occurred_on": day(2), "reason": "hors délai"})
    return made[0].json()["id"], made[1].json()["id"], write_to


@pytest.mark.parametrize("kind", ["parties", "rights", "procedures"])
def test_a_tag_of_one_record_never_validates_a_write_to_another(client, db, officer, tmp_path, monkeypatch, kind):
    parcels = _imported_pair(db, tmp_path)
    with one_batch(monkeypatch):
        a, b, write_to = {"parties": lambda: _parties(client, officer),
                          "rights": lambda: _rights(client, officer, parcels[0]),
                          "procedures": lambda: _procedures(client, officer, parcels)}[kind]()
    assert a[:12] == b[:12]
    path = {"parties": "/parties", "rights": "/rights", "procedures": "/procedures"}[kind]
    tag_a = _tag(client, f"{path}/{a}", officer)
    assert _tag(client, f"{path}/{b}", officer) != tag_a
    before = _written(db)
    refused = write_to(b, tag_a)
    assert refused.status_code == 412, refused.text
    assert _written(db) == before
    accepted = write_to(b, _tag(client, f"{path}/{b}", officer))
    assert accepted.status_code == 200, accepted.text
