"""Council sessions (ADR 0005 §4): an agenda deliberated in one transaction under one délibération.

Through the HTTP API on the real database, each test in one rolled-back transaction: a session of four
requests (two granted, one refused, one deferred); a litige put on a parcel after the agenda closed
refuses the whole deliberation, listing the blocking procedure, unless the same request defers it; the
quorum; the session's personal data read in scope only, and audited.
"""

from __future__ import annotations

from typing import Any

from shapely.geometry import mapping
from sqlalchemy import text

from tests.helpers_rules import set_rules
from tests.integration.fixtures import bargny_origin, day, square
from tests.integration.test_tenure import BARGNY, _party, _register, _source, _step

QUORUM = {"commission_domaniale": {"kind": "count", "value": 2}, "conseil_municipal": {"kind": "fraction",
                                                                                        "value": 0.5}}


def _parcels(client, db, headers, count: int) -> list[str]:
    x, y = bargny_origin(db)
    made = []
    for i in range(count):
        response = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=headers, json={
            "type": "Feature", "geometry": mapping(square(x + 700 + 40 * i, y + 700, 30)),
            "properties": {"land_use": "habitation", "reason": "levé"}})
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
    return made


def _ready(client, officer, parcel_id: str, n: int) -> dict:
    """A request surveyed on ``parcel_id``: waiting for the council."""
    party = _party(client, officer, f"Demandeur{n}")
    procedure = _register(client, officer, parcel_id, [{"party_id": party, "share": "1"}], reference=f"DEM-S{n}")
    pv = _source(client, officer, "proces_verbal", reference=f"PV-S{n}")
    assert _step(client, officer, procedure, "surveyed", on=day(25), source_ids=[pv],
                 details={"neighbours_consulted": True}).status_code == 200
    return procedure


class Session:
    """A session through the API, keeping its ETag."""

    def __init__(self, client, headers, body: dict[str, Any]):
        self.client, self.headers = client, headers
        response = client.post("/sessions", headers=headers, json=body)
        assert response.status_code == 201, response.text
        self.id, self.etag, self.body = response.json()["id"], response.headers["ETag"], response.json()

    def call(self, method: str, path: str, json: Any = None, status: int = 200):
        response = self.client.request(method, f"/sessions/{self.id}{path}", json=json,
                                       headers={**self.headers, "If-Match": self.etag})
        assert response.status_code == status, response.text
        if status == 200:
            self.etag, self.body = response.headers["ETag"], response.json()
        return response


def _closed_session(client, db, officer, procedures: list[dict], *, members: int = 2) -> Session:
    set_rules(db, BARGNY, session_quorum=QUORUM)
    session = Session(client, officer, {"commune_code": BARGNY, "kind": "commission_domaniale", "held_on": day(12),
                                        "reference": "session ordinaire du 4e trimestre"})
    session.call("PUT", "/agenda", {"procedure_ids": [p["id"] for p in procedures]})
    session.call("POST", "/attendees", {"capacity": "president", "name": "Maire Zqxpresident"})
    for n in range(members - 1):
        session.call("POST", "/attendees", {"capacity": "membre", "name": f"Conseiller {n}"})
    session.call("POST", "/close-agenda")
    assert session.body["state"] == "agenda_closed"
    return session


def test_a_session_deliberates_its_agenda_under_one_deliberation(client, db, officer):
    parcels = _parcels(client, db, officer, 4)
    procedures = [_ready(client, officer, parcel, n) for n, parcel in enumerate(parcels)]
    set_rules(db, BARGNY, session_quorum=QUORUM)
    session = Session(client, officer, {"commune_code": BARGNY, "kind": "commission_domaniale", "held_on": day(12)})
    assert session.body["state"] == "planned" and session.body["version"] == 1
    session.call("PUT", "/agenda", {"procedure_ids": [p["id"] for p in procedures[:3]]})
    session.call("POST", "/agenda", {"procedure_id": procedures[3]["id"]})
    assert [i["procedure_id"] for i in session.body["items"]] == [p["id"] for p in procedures]
    session.call("POST", "/attendees", {"capacity": "president", "name": "Maire Zqxpresident"})
    session.call("POST", "/attendees", {"capacity": "membre", "name": "Conseiller absent", "present": False})
    deliberation = _source(client, officer, "deliberation", reference="DEL-2026-031")
    decisions = [{"procedure_id": procedures[0]["id"], "decision": "granted", "votes_for": 2},
                 {"procedure_id": procedures[1]["id"], "decision": "granted"},
                 {"procedure_id": procedures[2]["id"], "decision": "refused", "reason": "zone non lotie"},
                 {"procedure_id": procedures[3]["id"], "decision": "deferred", "reason": "pièces manquantes"}]
    body = {"number": "DEL-2026-031", "deliberated_on": day(12), "source_id": deliberation, "decisions": decisions}
    not_closed = session.call("POST", "/deliberate", body, status=409)
    assert "ordre du jour" in not_closed.json()["detail"]
    session.call("POST", "/close-agenda")
    # A procedure on a closed agenda: the list no longer changes.
    session.call("DELETE", f"/agenda/{procedures[0]['id']}", status=409)
    # One member present out of the two the commune's quorum requires: nothing is recorded.
    refused = session.call("POST", "/deliberate", body, status=409)
    assert refused.json()["type"] == "urn:sifc:problem:session.no_quorum"
    assert "Quorum non atteint" in refused.json()["detail"]
    session.call("POST", "/attendees", {"capacity": "membre", "name": "Conseiller présent"})
    missing = session.call("POST", "/deliberate", {**body, "decisions": decisions[:3]}, status=422)
    assert procedures[3]["id"] in missing.json()["detail"]
    stale = client.post(f"/sessions/{session.id}/deliberate", json=body,
                        headers={**officer, "If-Match": procedures[0]["etag"]})
    assert stale.status_code == 412

    done = session.call("POST", "/deliberate", body)
    assert done.json()["state"] == "deliberated" and done.json()["deliberation_number"] == "DEL-2026-031"
    assert done.json()["members_present"] == 2 and done.json()["quorum_met"] is True
    assert [i["decision"] for i in done.json()["items"]] == ["granted", "granted", "refused", "deferred"]
    states = [client.get(f"/procedures/{p['id']}", headers=officer).json()["state"] for p in procedures]
    assert states == ["deliberated", "deliberated", "refused", "deferred"]
    steps = db.execute(text("""
        SELECT procedure_id::text, step, source_ids::text[], details ->> 'session_id', reason FROM procedure_step
        WHERE procedure_id = ANY(CAST(:ids AS uuid[])) AND seq = 3 ORDER BY procedure_id"""),
        {"ids": [p["id"] for p in procedures]}).all()
    assert len(steps) == 4 and all(row[2] == [deliberation] and row[3] == session.id for row in steps)
    assert db.execute(text("SELECT count(*) FROM write_audit WHERE operation = 'session.deliberate' "
                           "AND object_id = :s"), {"s": session.id}).scalar() == 1
    operations = db.execute(text("""SELECT operation FROM write_audit WHERE object_kind = 'procedure'
        AND object_id = ANY(:ids) AND operation IN ('procedure.deliberated', 'procedure.refused', 'procedure.deferred')
        ORDER BY operation"""), {"ids": [p["id"] for p in procedures]}).scalars().all()
    assert operations == ["procedure.deferred", "procedure.deliberated", "procedure.deliberated", "procedure.refused"]
    # Approval stays per procedure: the granted ones go on, one at a time.
    approval = _source(client, officer, "approbation", authority="sous_prefet", reference="ARR-S1")
    procedures[0].update(etag=client.get(f"/procedures/{procedures[0]['id']}", headers=officer).headers["ETag"])
    assert _step(client, officer, procedures[0], "approved", on=day(8), source_ids=[approval]).status_code == 200
    # Deliberated: the session no longer changes.
    session.call("POST", "/attendees", {"capacity": "membre", "name": "Retardataire"}, status=409)


def test_a_litige_after_the_agenda_closed_refuses_the_whole_deliberation_unless_deferred(client, db, officer):
    parcels = _parcels(client, db, officer, 2)
    procedures = [_ready(client, officer, parcel, n) for n, parcel in enumerate(parcels)]
    session = _closed_session(client, db, officer, procedures)
    decision = _source(client, officer, "decision_justice", reference="TGI Rufisque 2026/91")
    litige = client.post(f"/parcels/{parcels[1]}/rights", headers=officer, json={
        "type": "litige", "start_date": day(3), "source_ids": [decision], "description": "contestation"})
    assert litige.status_code == 201, litige.text
    deliberation = _source(client, officer, "deliberation", reference="DEL-2026-032")
    body = {"number": "DEL-2026-032", "deliberated_on": day(2), "source_id": deliberation, "decisions": [
        {"procedure_id": p["id"], "decision": "granted"} for p in procedures]}
    steps_before = db.execute(text("SELECT count(*) FROM procedure_step")).scalar()
    audit_before = db.execute(text("SELECT count(*) FROM write_audit")).scalar()
    refused = session.call("POST", "/deliberate", body, status=409)
    problem = refused.json()
    assert problem["type"] == "urn:sifc:problem:session.frozen"
    assert "DEM-S1" in problem["detail"] and "DEM-S0" not in problem["detail"]
    assert problem["blocking_procedures"] == [procedures[1]["id"]]
    assert db.execute(text("SELECT count(*) FROM procedure_step")).scalar() == steps_before
    assert db.execute(text("SELECT count(*) FROM write_audit")).scalar() == audit_before
    assert client.get(f"/sessions/{session.id}", headers=officer).json()["state"] == "agenda_closed"

    body["decisions"][1] = {"procedure_id": procedures[1]["id"], "decision": "deferred",
                            "reason": "litige en cours"}
    done = session.call("POST", "/deliberate", body)
    assert [i["decision"] for i in done.json()["items"]] == ["granted", "deferred"]
    assert [client.get(f"/procedures/{p['id']}", headers=officer).json()["state"] for p in procedures] == [
        "deliberated", "deferred"]


def test_a_session_is_read_in_scope_and_its_reads_audited(client, db, officer, admin_headers):
    parcels = _parcels(client, db, officer, 1)
    procedures = [_ready(client, officer, parcels[0], 0)]
    session = _closed_session(client, db, officer, procedures)
    assert client.get(f"/sessions/{session.id}").status_code == 401
    listed = client.get("/sessions", params={"commune_code": BARGNY}, headers=officer)
    assert listed.status_code == 200 and [s["id"] for s in listed.json()] == [session.id]
    assert "Zqxpresident" not in listed.text and "created_by" not in listed.text
    before = db.execute(text("SELECT count(*) FROM access_audit WHERE subject_id = :s"), {"s": session.id}).scalar()
    read = client.get(f"/sessions/{session.id}", headers=officer)
    assert read.status_code == 200 and read.json()["attendees"][0]["name"] == "Maire Zqxpresident"
    assert db.execute(text("SELECT count(*) FROM access_audit WHERE subject_id = :s"),
                      {"s": session.id}).scalar() == before + 1
    # A procedure already on an open agenda goes on no other.
    other = Session(client, officer, {"commune_code": BARGNY, "kind": "conseil_municipal", "held_on": day(1),
                                      "members_in_office": 10})
    taken = other.call("POST", "/agenda", {"procedure_id": procedures[0]["id"]}, status=409)
    assert session.id in taken.json()["detail"]
