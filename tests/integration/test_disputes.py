"""The disputes register over HTTP (ADR 0005 §6): opening freezes the parcels, closing lifts the litige.

Each test runs in one rolled-back transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from shapely.geometry import box, mapping
from sqlalchemy import text

from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin, day, square

BARGNY = "SN0104-bargny"
SANDIARA = "SN1301-sandiara"
CRS = {"crs": "EPSG:32628"}


@pytest.fixture
def officer(db) -> dict[str, str]:
    return {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="agent bargny")}


def _ok(response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _parcel(client, headers, geometry) -> dict[str, Any]:
    created = client.post("/parcels", params=CRS, headers=headers, json={
        "type": "Feature", "geometry": mapping(geometry), "properties": {"reason": "levé", "land_use": "habitation"}})
    return {**_ok(created), "etag": created.headers["ETag"]}


def _party(client, headers, name: str) -> str:
    return _ok(client.post("/parties", headers=headers, json={
        "kind": "natural_person", "name": name, "given_names": "Awa", "commune_code": BARGNY}))["id"]


def _source(client, headers, kind: str = "proces_verbal", commune: str = BARGNY) -> str:
    return _ok(client.post("/sources", headers=headers, json={
        "kind": kind, "document_date": day(10), "commune_code": commune, "reference": "PV-LIT-1"}))["id"]


@pytest.fixture
def world(client, db, officer, admin_headers) -> dict[str, Any]:
    x, y = bargny_origin(db)
    first = _parcel(client, officer, square(x + 600, y - 600, 30))
    second = _parcel(client, officer, square(x + 640, y - 600, 30))
    return {"parcels": [first, second], "source": _source(client, officer),
            "parties": [_party(client, officer, "Ndiaye"), _party(client, officer, "Faye")], "origin": (x, y)}


def _open(client, headers, world, **extra) -> Any:
    body = {"commune_code": BARGNY, "kind": "limites", "parcel_ids": [p["id"] for p in world["parcels"]],
            "parties": [{"party_id": world["parties"][0], "role": "demandeur"},
                        {"party_id": world["parties"][1], "role": "defendeur"}],
            "opened_on": day(5), "source_ids": [world["source"]], "description": "limite contestée par Ndiaye",
            **extra}
    return client.post("/disputes", headers=headers, json=body)


def _edit(client, headers, parcel: dict[str, Any]):
    etag = client.get(f"/parcels/{parcel['id']}").headers["ETag"]
    return client.patch(f"/parcels/{parcel['id']}", headers={**headers, "If-Match": etag}, json={
        "type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": "changement"}})


def test_open_freezes_then_mediation_resolution_and_close_lift_the_litige(client, db, officer, world):
    opened = _open(client, officer, world)
    dispute = _ok(opened)
    assert dispute["state"] == "declared" and dispute["version"] == 1 and len(dispute["parcels"]) == 2
    assert {p["role"] for p in dispute["parties"]} == {"demandeur", "defendeur"}
    # Each parcel carries a litige restriction and is frozen: an edit, a request are refused (409).
    for parcel in world["parcels"]:
        rights = client.get(f"/parcels/{parcel['id']}/rights").json()["rights"]
        assert [r["type"] for r in rights if r["status"] == "in_force"] == ["litige"]
        refused = _edit(client, officer, parcel)
        assert refused.status_code == 409 and refused.json()["type"] == "urn:sifc:problem:tenure.under_litige"
    request = client.post("/procedures", headers=officer, json={
        "parcel_id": world["parcels"][0]["id"], "registered_on": day(1),
        "applicants": [{"party_id": world["parties"][0]}]})
    assert request.status_code == 409, request.text
    # A parcel in an open dispute is not opened again.
    again = _open(client, officer, {**world, "parcels": world["parcels"][:1]})
    assert again.status_code == 409 and again.json()["type"] == "urn:sifc:problem:dispute.parcel_in_dispute"

    url = f"/disputes/{dispute['id']}"
    tag = opened.headers["ETag"]
    assert client.post(f"{url}/steps", headers=officer, json={"step": "mediation", "occurred_on": day(4)}
                       ).status_code == 428
    closing_too_early = client.post(f"{url}/close", headers={**officer, "If-Match": tag}, json={
        "closed_on": day(3), "outcome": "accord"})
    assert closing_too_early.status_code == 409, closing_too_early.text
    mediation = client.post(f"{url}/steps", headers={**officer, "If-Match": tag}, json={
        "step": "mediation", "occurred_on": day(4), "note": "médiation chez le chef de village"})
    assert _ok(mediation, 200)["state"] == "mediation"
    stale = client.post(f"{url}/steps", headers={**officer, "If-Match": tag}, json={
        "step": "resolved", "occurred_on": day(3)})
    assert stale.status_code == 412
    backwards = client.post(f"{url}/steps", headers={**officer, "If-Match": mediation.headers["ETag"]}, json={
        "step": "resolved", "occurred_on": day(9)})
    assert backwards.status_code == 422 and "précède" in backwards.json()["detail"]
    resolved = client.post(f"{url}/steps", headers={**officer, "If-Match": mediation.headers["ETag"]}, json={
        "step": "resolved", "occurred_on": day(3), "source_ids": [world["source"]]})
    assert _ok(resolved, 200)["state"] == "resolved"
    assert _edit(client, officer, world["parcels"][0]).status_code == 409  # frozen until closed
    agreement = _source(client, officer)
    closed = client.post(f"{url}/close", headers={**officer, "If-Match": resolved.headers["ETag"]}, json={
        "closed_on": day(0), "outcome": "limite fixée à la borne B12", "source_ids": [agreement]})
    found = _ok(closed, 200)
    assert found["state"] == "closed" and found["steps"][-1]["outcome"] == "limite fixée à la borne B12"
    assert all(p["lifted_on"] == day(0) for p in found["parcels"])
    for parcel in world["parcels"]:
        ended = [r for r in client.get(f"/parcels/{parcel['id']}/rights").json()["rights"] if r["type"] == "litige"]
        assert ended[0]["end_cause"] == "mainlevee"
        assert _edit(client, officer, parcel).status_code == 200
    assert client.post(f"{url}/steps", headers={**officer, "If-Match": closed.headers["ETag"]}, json={
        "step": "mediation", "occurred_on": day(0)}).status_code == 409
    # Journaled: the opening, each step and the closing.
    operations = db.execute(text("SELECT operation FROM write_audit WHERE object_kind = 'dispute' "
                                 "AND object_id = :id ORDER BY occurred_at"), {"id": dispute["id"]}).scalars().all()
    assert operations == ["dispute.open", "dispute.mediation", "dispute.resolved", "dispute.close"]


def test_sent_to_court_then_closed_on_the_judgement(client, officer, world):
    opened = _open(client, officer, world, kind="succession")
    url = f"/disputes/{opened.json()['id']}"
    court = client.post(f"{url}/steps", headers={**officer, "If-Match": opened.headers["ETag"]}, json={
        "step": "sent_to_court", "occurred_on": day(2), "court_reference": "TGI Rufisque 2026/88"})
    assert _ok(court, 200)["steps"][-1]["court_reference"] == "TGI Rufisque 2026/88"
    judgement = _source(client, officer, "decision_justice")
    closed = client.post(f"{url}/close", headers={**officer, "If-Match": court.headers["ETag"]}, json={
        "closed_on": day(0), "outcome": "jugement : parcelle aux héritiers", "source_ids": [judgement]})
    assert _ok(closed, 200)["state"] == "closed"
    assert _edit(client, officer, world["parcels"][0]).status_code == 200


def test_a_dispute_across_communes_is_refused_and_changes_nothing(client, db, officer, admin_headers, world):
    x, y = db.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM commune
                              WHERE code = :c) t"""), {"c": SANDIARA}).one()
    other = _parcel(client, admin_headers, box(x, y, x + 20, y + 20))
    before = db.execute(text("SELECT count(*) FROM rrr_version")).scalar()
    refused = _open(client, admin_headers, {**world, "parcels": [world["parcels"][0], other]})
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"] == "urn:sifc:problem:dispute.other_commune"
    assert "une seule commune" in refused.json()["detail"]
    assert db.execute(text("SELECT count(*) FROM rrr_version")).scalar() == before
    assert db.execute(text("SELECT count(*) FROM dispute")).scalar() == 0
    # An officer of Bargny may not open one in Sandiara either.
    assert _open(client, officer, {**world, "parcels": [other]}, commune_code=SANDIARA).status_code == 403


def test_reads_are_for_readers_in_scope_and_audited(client, db, officer, world):
    dispute = _ok(_open(client, officer, world))
    url = f"/disputes/{dispute['id']}"
    assert client.get(url).status_code == 401
    assert client.get("/disputes", params={"commune_code": BARGNY}).status_code == 401
    elsewhere = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{SANDIARA}",), name="lecteur sandiara")}
    assert client.get(url, headers=elsewhere).status_code == 403
    reader = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",), name="lecteur bargny")}
    found = _ok(client.get(url, headers=reader), 200)
    assert found["description"] == "limite contestée par Ndiaye" and found["parties"][0]["name"]
    listed = _ok(client.get("/disputes", headers=reader, params={"commune_code": BARGNY}), 200)["disputes"]
    assert [d["id"] for d in listed] == [dispute["id"]] and listed[0]["state"] == "declared"
    assert "description" not in listed[0]
    audited = db.execute(text("SELECT count(*) FROM access_audit WHERE subject_kind = 'dispute' AND subject_id = :id"),
                         {"id": dispute["id"]}).scalar()
    assert audited == 2
    assert client.get(f"/disputes/{uuid.uuid4()}", headers=reader).status_code == 404


def test_an_overlap_of_the_registry_becomes_a_dispute_in_one_step(client, officer, world):
    x, y = world["origin"]
    # Two parcels sharing a sliver under the creation's tolerance: the registry lists them as overlapping.
    left = _parcel(client, officer, box(x + 700, y - 700, x + 720, y - 680))
    right = _parcel(client, officer, box(x + 719.98, y - 700, x + 740, y - 680))
    alone = world["parcels"][0]
    lonely = client.post("/disputes/from-overlap", headers=officer, json={
        "parcel_ids": [left["id"], alone["id"]], "opened_on": day(1), "source_ids": [world["source"]]})
    assert lonely.status_code == 422, lonely.text
    made = client.post("/disputes/from-overlap", headers=officer, json={
        "parcel_ids": [left["id"], right["id"]], "opened_on": day(1), "source_ids": [world["source"]],
        "parties": [{"party_id": world["parties"][0], "role": "demandeur"}]})
    found = _ok(made)
    assert found["kind"] == "limites" and found["origin"]["overlap"]["parcel_ids"] == [left["id"], right["id"]]
    assert _edit(client, officer, left).status_code == 409


def test_a_field_return_overlap_becomes_a_dispute(client, db, officer, world):
    first, second = world["parcels"]
    job = uuid.uuid4()
    report = {"package_id": str(uuid.uuid4()), "features": [
        {"layer": "parcels", "fid": 7, "status": "refused", "parcel_id": first["id"], "reason": "parcel.overlap",
         "params": {"ids": second["id"]}}]}
    db.execute(text("""
        INSERT INTO import_job (id, kind, status, file_name, upload_path, size_bytes, options, created_by, report,
                                finished_at)
        VALUES (:id, 'field_return', 'done', 'r.gpkg', '/tmp/r.gpkg', 1, '{}', 'tests', CAST(:r AS jsonb), now())"""),
        {"id": job, "r": orjson.dumps(report).decode()})
    missing = client.post("/disputes/from-overlap", headers=officer, json={
        "job_id": str(job), "feature": 8, "opened_on": day(1), "source_ids": [world["source"]]})
    assert missing.status_code == 404, missing.text
    made = _ok(client.post("/disputes/from-overlap", headers=officer, json={
        "job_id": str(job), "feature": 7, "opened_on": day(1), "source_ids": [world["source"]]}))
    assert sorted(p["parcel_id"] for p in made["parcels"]) == sorted([first["id"], second["id"]])
    assert made["origin"]["overlap"]["job_id"] == str(job)


def test_tables_are_append_only(client, db, officer, world):
    dispute = _ok(_open(client, officer, world))
    for table in ("dispute", "dispute_step"):
        with pytest.raises(Exception, match="append-only|permission denied"), db.begin_nested():
            key = "id" if table == "dispute" else "dispute_id"
            db.execute(text(f"UPDATE {table} SET commune_code = commune_code WHERE {key} = :id"),
                       {"id": dispute["id"]})


def test_the_command_line_refuses_in_one_line(settings):
    from typer.testing import CliRunner

    from cli import app

    unknown = str(uuid.uuid4())
    for args, words in ((["dispute", "show", unknown], unknown), (["dispute", "list", "--commune", "nulle-part"],
                                                                   "nulle-part")):
        done = CliRunner().invoke(app, ["--lang", "fr", *args])
        assert done.exit_code != 0
        assert isinstance(done.exception, Exception) and words in str(done.exception.message("fr"))


def test_the_list_says_which_disputes_are_overdue(client, db, officer, world):
    from tests.helpers_rules import set_rules

    dispute = _ok(_open(client, officer, world))  # declared five days ago
    reader = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",), name="lecteur bargny")}
    set_rules(db, BARGNY, on=__import__("datetime").date(2000, 1, 2), target_days={"dispute": {"declared": 3}})
    listed = _ok(client.get("/disputes", headers=reader, params={"commune_code": BARGNY}), 200)["disputes"]
    assert [(d["id"], d["overdue"]) for d in listed] == [(dispute["id"], True)]
