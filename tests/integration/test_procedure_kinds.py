"""Procedure kinds and deferral (ADR 0005 §2): a council may defer a request and deliberate it later;
a commune opens the kinds it uses (``procedure_kinds``); a désaffectation ends the right it names.

Each test runs in one rolled-back transaction, through the HTTP API, on the real database.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from sifc.rules import service as rules
from tests.integration import test_tenure
from tests.integration.fixtures import day
from tests.integration.test_tenure import BARGNY, _complete, _party, _register, _source, _step

parcel = test_tenure.parcel  # its fixture, found by pytest under this name

SYNTHETIC = "Démo SIFC — valeur fictive, à remplacer par la délibération de la commune"


def _enable(db, *kinds: str) -> None:
    rules.set(db, commune_code=BARGNY, key="procedure_kinds", value=list(kinds), valid_from=date(2000, 1, 1),
              source=SYNTHETIC, by=None, author="test")


def _surveyed(client, officer, parcel) -> dict:
    awa = _party(client, officer, "Ndiaye")
    procedure = _register(client, officer, parcel["id"], [{"party_id": awa, "share": "1"}])
    pv = _source(client, officer, "proces_verbal", reference="PV-77")
    assert _step(client, officer, procedure, "surveyed", on=day(25), source_ids=[pv],
                 details={"neighbours_consulted": True}).status_code == 200
    return procedure


def test_a_deferred_request_is_deliberated_at_a_later_session_and_granted(client, db, officer, parcel):
    procedure = _surveyed(client, officer, parcel)
    no_reason = _step(client, officer, procedure, "deferred", on=day(20))
    assert no_reason.status_code == 422 and "ajournement" in no_reason.json()["detail"].lower()
    deferred = _step(client, officer, procedure, "deferred", on=day(20), reason="pièces d'état civil à compléter")
    assert deferred.status_code == 200, deferred.text
    assert procedure["state"] == "deferred" and procedure["version"] == 3
    # Deferred again at the next session, then deliberated at the one after.
    assert _step(client, officer, procedure, "deferred", on=day(18), reason="quorum de la commission").status_code == 200
    deliberation = _source(client, officer, "deliberation")
    assert _step(client, officer, procedure, "deliberated", on=day(15), source_ids=[deliberation]).status_code == 200
    approval = _source(client, officer, "approbation", authority="sous_prefet", reference="ARR-12")
    assert _step(client, officer, procedure, "approved", on=day(10), source_ids=[approval]).status_code == 200
    done = _step(client, officer, procedure, "notified", on=day(5))
    assert done.status_code == 200, done.text
    assert [s["step"] for s in procedure["steps"]] == [
        "registered", "surveyed", "deferred", "deferred", "deliberated", "approved", "notified"]
    rights = client.get(f"/parcels/{parcel['id']}/rights", headers=officer).json()["rights"]
    assert [(r["type"], r["start_date"]) for r in rights] == [("affectation", day(10))]
    assert set(rights[0]["source_ids"]) == {deliberation, approval}
    reasons = db.execute(text("SELECT reason FROM procedure_step WHERE procedure_id = :p AND step = 'deferred' "
                              "ORDER BY seq"), {"p": procedure["id"]}).scalars().all()
    assert reasons == ["pièces d'état civil à compléter", "quorum de la commission"]
    operations = db.execute(text("SELECT operation FROM write_audit WHERE object_id = :p ORDER BY id"),
                            {"p": procedure["id"]}).scalars().all()
    assert operations.count("procedure.deferred") == 2


def test_a_request_is_deliberated_once_and_deferred_only_at_the_deliberation(client, db, officer, parcel):
    awa = _party(client, officer, "Ndiaye")
    procedure = _register(client, officer, parcel["id"], [{"party_id": awa, "share": "1"}])
    early = _step(client, officer, procedure, "deferred", on=day(25), reason="trop tôt")
    assert early.status_code == 409 and "délibération" in early.json()["detail"]
    pv = _source(client, officer, "proces_verbal", reference="PV-77")
    assert _step(client, officer, procedure, "surveyed", on=day(25), source_ids=[pv],
                 details={"neighbours_consulted": True}).status_code == 200
    deliberation = _source(client, officer, "deliberation")
    assert _step(client, officer, procedure, "deliberated", on=day(15), source_ids=[deliberation]).status_code == 200
    again = _step(client, officer, procedure, "deliberated", on=day(14), source_ids=[deliberation])
    assert again.status_code == 409 and again.json()["type"] == "urn:sifc:problem:procedure.out_of_order"
    late = _step(client, officer, procedure, "deferred", on=day(14), reason="après coup")
    assert late.status_code == 409
    assert procedure["version"] == 3
    # The database keeps each step but a deferral once per procedure, whatever the writer.
    with pytest.raises(IntegrityError, match="uq_procedure_step_once"), db.begin_nested():
        db.execute(text("""INSERT INTO procedure_step (procedure_id, seq, step, occurred_on, author, commune_code)
                           VALUES (:p, 4, 'deliberated', current_date, 'x', :c)"""),
                   {"p": procedure["id"], "c": BARGNY})


def test_a_kind_the_commune_does_not_open_is_refused(client, db, officer, parcel):
    awa = _party(client, officer, "Ndiaye")
    body = {"parcel_id": parcel["id"], "applicants": [{"party_id": awa}], "registered_on": day(3),
            "kind": "regularisation"}
    refused = client.post("/procedures", headers=officer, json=body)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "urn:sifc:problem:procedure.kind_not_enabled"
    assert "n'ouvre pas" in refused.json()["detail"] and "regularisation" in refused.json()["detail"]
    unknown = client.post("/procedures", headers=officer, json={**body, "kind": "vente"})
    assert unknown.status_code == 422
    assert db.execute(text("SELECT count(*) FROM tenure_procedure WHERE parcel_id = :p"),
                      {"p": parcel["id"]}).scalar() == 0
    _enable(db, "affectation", "regularisation")
    opened = client.post("/procedures", headers=officer, json=body)
    assert opened.status_code == 201, opened.text
    assert opened.json()["kind"] == "regularisation"
    # A régularisation follows the campaign's survey and display: it goes to the council directly.
    procedure = {**opened.json(), "etag": opened.headers["ETag"]}
    surveyed = _step(client, officer, procedure, "surveyed", on=day(2), details={"neighbours_consulted": True})
    assert surveyed.status_code == 422
    deliberation = _source(client, officer, "deliberation")
    assert _step(client, officer, procedure, "deliberated", on=day(2), source_ids=[deliberation]).status_code == 200


def test_a_reaffectation_to_the_heirs_names_the_ended_right(client, db, officer, parcel):
    _enable(db, "affectation", "reaffectation_heritiers")
    awa = _party(client, officer, "Ndiaye")
    refused = client.post("/procedures", headers=officer, json={
        "parcel_id": parcel["id"], "applicants": [{"party_id": awa}], "registered_on": day(3),
        "kind": "reaffectation_heritiers"})
    assert refused.status_code == 422 and "follows_rrr_id" in refused.json()["detail"]


def test_a_desaffectation_notified_ends_the_right_after_the_notice(client, db, officer, parcel, settings):
    holder = _party(client, officer, "Cisse")
    _complete(client, officer, parcel, [{"party_id": holder}])
    right = client.get(f"/parcels/{parcel['id']}/rights").json()["rights"][0]
    commune = _party(client, officer, "Commune de Bargny", kind="legal_entity", given_names=None)
    body = {"parcel_id": parcel["id"], "applicants": [{"party_id": commune}], "registered_on": day(4),
            "kind": "desaffectation", "reference": "DES-001"}
    assert client.post("/procedures", headers=officer, json=body).status_code == 409  # not opened yet
    _enable(db, "affectation", "desaffectation")
    response = client.post("/procedures", headers=officer, json=body)
    assert response.status_code == 201, response.text
    procedure = {**response.json(), "etag": response.headers["ETag"]}
    deliberation = _source(client, officer, "deliberation")
    assert _step(client, officer, procedure, "deliberated", on=day(3), source_ids=[deliberation]).status_code == 200
    approval = _source(client, officer, "approbation", authority="sous_prefet", reference="ARR-13")
    assert _step(client, officer, procedure, "approved", on=day(2), source_ids=[approval]).status_code == 200
    done = _step(client, officer, procedure, "notified", on=day(1))
    assert done.status_code == 200, done.text
    ended = client.get(f"/rights/{right['id']}", headers=officer).json()
    notified = date.fromisoformat(day(1))
    assert ended["end_cause"] == "desaffectation"
    assert ended["notice_date"] == notified.isoformat()
    assert ended["end_date"] == (notified + timedelta(days=settings.desaffectation_notice_days)).isoformat()
    assert {deliberation, approval} <= set(ended["source_ids"])
    # Nothing left to end: a second désaffectation is refused.
    again = client.post("/procedures", headers=officer, json={**body, "reference": "DES-002"})
    assert again.status_code == 409
