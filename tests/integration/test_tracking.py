"""Tracking codes, the récépissé, deadlines and overdue files, over HTTP (ADR 0005 §8).

A code is shown once at registration and printed on each récépissé (a print revokes the code before);
anyone holding the file number and its code reads the steps and dates, nothing personal; wrong codes
are limited per address; deadlines come from the commune's ``target_days`` in force.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import date, timedelta

import pytest
from shapely.geometry import mapping
from sqlalchemy import text

from sifc.models import DISPUTE_KINDS
from sifc.tracking import codes
from tests.conftest import api_key
from tests.helpers_rules import TENURE_RULES, set_rules
from tests.integration.fixtures import bargny_origin, day, square

BARGNY = "SN0104-bargny"
NAME = "Tracksecretname"
PURPOSE = "usage-confidentiel-du-demandeur"
OBSERVATION = "observation-privee-du-constat"
CODE = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}\b")


@pytest.fixture
def officer(db) -> dict[str, str]:
    set_rules(db, BARGNY, **TENURE_RULES)
    return {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="agent.suivi")}


def _register(client, db, headers, *, reference: str | None = "DEM-SUIVI-1", dx: float = 0, registered_on=None
              ) -> dict:
    x, y = bargny_origin(db)
    parcel = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=headers, json={
        "type": "Feature", "geometry": mapping(square(x + 900 + dx, y + 900, 25)), "properties": {"reason": "levé"}})
    assert parcel.status_code == 201, parcel.text
    party = client.post("/parties", headers=headers, json={
        "kind": "natural_person", "name": NAME, "given_names": "Awa", "commune_code": BARGNY})
    assert party.status_code == 201, party.text
    body = {"parcel_id": parcel.json()["id"], "applicants": [{"party_id": party.json()["id"], "share": "1"}],
            "registered_on": registered_on or day(30), "purpose": PURPOSE}
    if reference:
        body["reference"] = reference
    response = client.post("/procedures", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return {**response.json(), "etag": response.headers["ETag"]}


def test_the_code_is_shown_once_and_tracks_the_steps_and_dates_only(client, db, officer):
    procedure = _register(client, db, officer)
    code = procedure["tracking_code"]
    assert CODE.fullmatch(code), code
    assert codes.normalise(code) and len(codes.normalise(code) or "") == 16  # 80 bits
    # Only the hash is kept; the journal holds neither the code nor its hash.
    stored = db.execute(text("SELECT code_sha256 FROM tracking_code WHERE procedure_id = :id AND revoked_at IS NULL"),
                        {"id": procedure["id"]}).scalar_one()
    assert stored == hashlib.sha256(code.replace("-", "").encode()).hexdigest()
    journal = db.execute(text("SELECT string_agg(coalesce(after::text, ''), ' ') FROM write_audit "
                              "WHERE object_id = :id OR after ->> 'procedure_id' = :id"),
                         {"id": procedure["id"]}).scalar()
    assert "tracking_code" in db.execute(text("SELECT string_agg(object_kind, ' ') FROM write_audit "
                                              "WHERE after ->> 'procedure_id' = :id"), {"id": procedure["id"]}).scalar()
    assert code.replace("-", "") not in journal.replace("-", "") and stored not in journal
    again = client.get(f"/procedures/{procedure['id']}", headers=officer).json()
    assert again.get("tracking_code") is None  # shown once
    pv = client.post("/sources", headers=officer, json={"kind": "proces_verbal", "document_date": day(20),
                                                         "commune_code": BARGNY, "reference": "PV-S"}).json()["id"]
    step = client.post(f"/procedures/{procedure['id']}/steps", headers={**officer, "If-Match": procedure["etag"]},
                       json={"step": "surveyed", "occurred_on": day(20), "source_ids": [pv],
                             "details": {"neighbours_consulted": True, "observations": OBSERVATION}})
    assert step.status_code == 200, step.text

    for number, typed in (("DEM-SUIVI-1", code), (procedure["id"], code.lower().replace("-", " "))):
        tracked = client.get(f"/suivi/{number}/{typed}")  # anonymous
        assert tracked.status_code == 200, tracked.text
        body = tracked.json()
        assert [(s["step"], s["occurred_on"]) for s in body["steps"]] == [("registered", day(30)),
                                                                          ("surveyed", day(20))]
        assert body["state"] == "surveyed" and body["commune"]["code"] == BARGNY
        for secret in (NAME, "Awa", PURPOSE, OBSERVATION, "agent.suivi", procedure["parcel_id"], "PV-S"):
            assert secret not in tracked.text, secret
        assert set(body) == {"file_number", "kind", "commune", "state", "registered_on", "steps", "deadline",
                             "next_step", "due_on", "overdue"}


def test_a_wrong_code_and_an_unknown_file_get_the_same_404(client, db, officer):
    procedure = _register(client, db, officer)
    wrong = codes.grouped(codes.encode(b"\x00" * 10))
    answers = [client.get(f"/suivi/DEM-SUIVI-1/{wrong}"), client.get(f"/suivi/DEM-INCONNU/{procedure['tracking_code']}"),
               client.get("/suivi/DEM-SUIVI-1/pas-un-code")]
    assert {a.status_code for a in answers} == {404}
    assert len({(a.json()["type"], a.json()["detail"]) for a in answers}) == 1
    assert "récépissé" in answers[0].json()["detail"]


def test_the_eleventh_wrong_code_in_a_minute_is_refused_with_429(client, db, officer):
    procedure = _register(client, db, officer)
    wrong = codes.grouped(codes.encode(b"\x01" * 10))
    for _ in range(10):
        assert client.get(f"/suivi/DEM-SUIVI-1/{wrong}").status_code == 404
    refused = client.get(f"/suivi/DEM-SUIVI-1/{wrong}")
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    # Even the right code waits: the address is refused, not the code.
    assert client.get(f"/suivi/DEM-SUIVI-1/{procedure['tracking_code']}").status_code == 429


def _printed_code(pdf: bytes) -> str:
    from pypdf import PdfReader

    found = CODE.findall(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))
    assert len(set(found)) == 1, found
    return str(found[0])


def test_a_printed_recepisse_verifies_and_its_new_code_revokes_the_old(client, db, officer):
    procedure = _register(client, db, officer, reference=None)
    first = procedure["tracking_code"]
    printed = client.post(f"/procedures/{procedure['id']}/recepisse.pdf", headers=officer)
    assert printed.status_code == 200, printed.text
    assert printed.headers["content-type"] == "application/pdf"
    code = _printed_code(printed.content)
    assert code != first
    assert client.get(f"/suivi/{procedure['id']}/{first}").status_code == 404  # revoked
    assert client.get(f"/suivi/{procedure['id']}/{code}").status_code == 200
    verified = client.post("/documents/verify", files={"file": ("r.pdf", io.BytesIO(printed.content),
                                                                 "application/pdf")})
    assert verified.status_code == 200, verified.text
    answer = verified.json()
    assert answer["authentic"] is True and answer["kind"] == "recepisse"
    assert answer["certifies"]["procedure"]["file_number"] == procedure["id"]  # no reference: the id
    assert code.replace("-", "") not in verified.text.replace("-", "") and NAME not in verified.text
    # A second print: one live code per procedure, the printed one revoked.
    reprinted = client.post(f"/procedures/{procedure['id']}/recepisse.pdf", headers=officer)
    assert client.get(f"/suivi/{procedure['id']}/{code}").status_code == 404
    assert client.get(f"/suivi/{procedure['id']}/{_printed_code(reprinted.content)}").status_code == 200
    assert db.execute(text("SELECT count(*) FILTER (WHERE revoked_at IS NULL), count(*) FROM tracking_code "
                           "WHERE procedure_id = :id"), {"id": procedure["id"]}).one() == (1, 3)
    # Out of scope or not a land officer: refused, nothing issued.
    reader = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",))}
    other = {"X-API-Key": api_key(db, role="agent_foncier", scope=("commune:SN1301-sandiara",))}
    assert client.post(f"/procedures/{procedure['id']}/recepisse.pdf", headers=reader).status_code == 403
    assert client.post(f"/procedures/{procedure['id']}/recepisse.pdf", headers=other).status_code == 403
    assert client.post(f"/procedures/{procedure['id']}/recepisse.pdf").status_code == 401
    assert db.execute(text("SELECT count(*) FROM tracking_code WHERE procedure_id = :id"),
                      {"id": procedure["id"]}).scalar() == 3


def test_overdue_comes_from_target_days_in_force_and_is_listed(client, db, officer):
    late = _register(client, db, officer, reference="DEM-RETARD")
    # Without a target for the awaited step: no deadline, never overdue.
    set_rules(db, BARGNY, target_days={"affectation": {"deliberated": 5}})
    answer = client.get(f"/procedures/{late['id']}", headers=officer).json()
    assert (answer["deadline"], answer["due_on"], answer["overdue"]) == ("none", None, False)
    set_rules(db, BARGNY, target_days={"affectation": {"surveyed": 10}})
    answer = client.get(f"/procedures/{late['id']}", headers=officer).json()
    due = date.fromisoformat(day(30)) + timedelta(days=10)
    assert (answer["deadline"], answer["next_step"], answer["due_on"]) == ("set", "surveyed", due.isoformat())
    assert answer["overdue"] is True and answer["days_late"] == (date.today() - due).days
    on_time = _register(client, db, officer, reference="DEM-A-TEMPS", dx=60, registered_on=day(2))
    assert client.get(f"/procedures/{on_time['id']}", headers=officer).json()["overdue"] is False
    listed = client.get(f"/communes/{BARGNY}/overdue", headers=officer)
    assert listed.status_code == 200, listed.text
    files = {f["id"]: f for f in listed.json()["files"]}
    assert late["id"] in files and on_time["id"] not in files
    assert files[late["id"]]["step"] == "registered" and files[late["id"]]["due_on"] == due.isoformat()
    assert NAME not in listed.text and PURPOSE not in listed.text
    tracked = client.get(f"/suivi/DEM-RETARD/{late['tracking_code']}").json()
    assert tracked["overdue"] is True and tracked["due_on"] == due.isoformat()
    reader = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",))}
    assert client.get(f"/communes/{BARGNY}/overdue", headers=reader).status_code == 403
    other = {"X-API-Key": api_key(db, role="agent_foncier", scope=("commune:SN1301-sandiara",))}
    assert client.get(f"/communes/{BARGNY}/overdue", headers=other).status_code == 403
    assert client.get("/communes/SN9999-nowhere/overdue", headers=officer).status_code in (403, 404)

    dashboard = client.get(f"/dashboards/commune/{BARGNY}")
    assert dashboard.status_code == 200, dashboard.text
    figures = dashboard.json()["procedures"]
    assert figures["overdue"] >= 1
    assert NAME not in dashboard.text


def test_the_dashboard_shows_the_median_days_per_step(client, db, officer):
    procedure = _register(client, db, officer, reference="DEM-MEDIANE")
    pv = client.post("/sources", headers=officer, json={"kind": "proces_verbal", "document_date": day(20),
                                                         "commune_code": BARGNY}).json()["id"]
    assert client.post(f"/procedures/{procedure['id']}/steps", headers={**officer, "If-Match": procedure["etag"]},
                       json={"step": "surveyed", "occurred_on": day(18), "source_ids": [pv],
                             "details": {"neighbours_consulted": True}}).status_code == 200
    figures = client.get(f"/dashboards/commune/{BARGNY}").json()["procedures"]
    surveyed = next(m for m in figures["median_days"] if m["step"] == "surveyed")
    assert surveyed["transitions"] >= 1 and surveyed["median_days"] > 0
    pole = db.execute(text("SELECT r.pole_code FROM commune c JOIN region r ON r.code = c.region_code "
                           "WHERE c.code = :c"), {"c": BARGNY}).scalar()
    by_pole = client.get(f"/dashboards/pole/{pole}").json()
    assert any(m["step"] == "surveyed" for m in by_pole["procedures"]["median_days"])
    assert "overdue" in by_pole["procedures"]


def test_codes_are_crockford_base32_of_80_random_bits():
    assert codes.encode(b"\xff" * 10) == "Z" * 16
    assert codes.encode(b"\x00" * 9 + b"\x01") == "0" * 15 + "1"
    assert codes.normalise("abcd-efgh-jkmn-pqrs") == "ABCDEFGHJKMNPQRS"
    assert codes.normalise("oooo iiii llll 0000") == "0000111111110000"
    assert codes.normalise("ABCD") is None and codes.normalise("U" * 16) is None
    assert codes.grouped("ABCDEFGHJKMNPQRS") == "ABCD-EFGH-JKMN-PQRS"


def test_claims_and_disputes_are_overdue_from_claim_days_and_target_days(client, db, officer):
    from sifc.commission import claims, disputes

    x, y = bargny_origin(db)
    parcels = []
    for dx in (0, 60):
        made = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=officer, json={
            "type": "Feature", "geometry": mapping(square(x + 1200 + dx, y + 900, 25)), "properties": {"reason": "l"}})
        assert made.status_code == 201, made.text
        parcels.append(made.json()["id"])
    claim_id = claims.record(db, data=claims.ClaimInput(parcel_id=parcels[0], grounds=PURPOSE,
                                                        received_on=date.fromisoformat(day(40)), claimant_name=NAME),
                             by=None, author="tests")
    source = client.post("/sources", headers=officer, json={"kind": "proces_verbal", "document_date": day(50),
                                                             "commune_code": BARGNY}).json()["id"]
    dispute_id = disputes.open(db, data=disputes.DisputeInput(
        commune_code=BARGNY, kind=DISPUTE_KINDS[0],
        parcel_ids=[parcels[1]], opened_on=date.fromisoformat(day(50)), source_ids=[source], description=OBSERVATION),
        by=None, author="tests")
    set_rules(db, BARGNY, target_days={"dispute": {"mediation": 5}})  # no target for a declared dispute
    listed = client.get(f"/communes/{BARGNY}/overdue", headers=officer).json()["files"]
    assert dispute_id not in {f["id"] for f in listed}
    set_rules(db, BARGNY, claim_days=15, target_days={"dispute": {"declared": 20}})
    answer = client.get(f"/communes/{BARGNY}/overdue", headers=officer)
    files = {f["id"]: f for f in answer.json()["files"]}
    assert files[claim_id]["file"] == "claim" and files[claim_id]["days_late"] == 25
    assert files[dispute_id]["file"] == "dispute" and files[dispute_id]["step"] == "declared"
    assert files[dispute_id]["days_late"] == 30
    for secret in (NAME, PURPOSE, OBSERVATION):
        assert secret not in answer.text
