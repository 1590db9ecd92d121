"""Fees and receipts over HTTP (ADR 0005 §7): schedules, the amount at registration, payments, receipts,
cancellations, the step unpaid fees block, the paper quittance mode, the bordereau, and who reads what.

Every amount is synthetic (a commune's délibération sets the real ones); the receipt mode and the step that
waits for payment are the commune's settings, written here as the tests' rows.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from shapely.geometry import box, mapping
from sqlalchemy import text

from tests.conftest import api_key
from tests.helpers_rules import TENURE_RULES, set_rules
from tests.integration.fixtures import bargny_origin, day

BARGNY = "SN0104-bargny"
TODAY = date.today()


def _ok(response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def desk(client, db, admin_headers) -> dict[str, Any]:
    """A régisseur, a lecteur and an agent of Bargny, an agent of Sandiara, a délibération, a party, an origin."""
    heads = {role: {"X-API-Key": api_key(db, role=role, scope=(f"commune:{BARGNY}",), name=f"fees-{role}")}
             for role in ("regisseur", "lecteur", "agent_foncier")}
    heads["outsider"] = {"X-API-Key": api_key(db, role="regisseur", scope=("commune:SN1301-sandiara",),
                                              name="fees-outsider")}
    deliberation = _ok(client.post("/sources", headers=admin_headers, json={
        "kind": "deliberation", "document_date": day(400), "commune_code": BARGNY, "reference": "DEL-2025-007",
        "council_session": "séance budgétaire"}))["id"]
    party = _ok(client.post("/parties", headers=admin_headers, json={
        "kind": "natural_person", "name": "Diouf", "given_names": "Fatou", "commune_code": BARGNY}))["id"]
    set_rules(db, BARGNY, **TENURE_RULES)
    return {"heads": heads, "admin": admin_headers, "deliberation": deliberation, "party": party,
            "origin": bargny_origin(db)}


def _schedule(client, desk, rule: dict[str, Any], *, valid_from: str = "2000-01-01", kind: str = "affectation"):
    return client.post("/fee-schedules", headers=desk["heads"]["agent_foncier"], json={
        "commune_code": BARGNY, "procedure_kind": kind, "valid_from": valid_from, "rule": rule,
        "deliberation_source_id": desk["deliberation"]})


def _file(client, desk, dx: float, width: float, height: float, *, registered_on: str, reference: str) -> dict:
    x, y = desk["origin"]
    parcel = _ok(client.post("/parcels", params={"crs": "EPSG:32628"}, headers=desk["admin"], json={
        "type": "Feature", "geometry": mapping(box(x + dx, y - 250, x + dx + width, y - 250 + height)),
        "properties": {"reason": "levé"}}))["id"]
    response = client.post("/procedures", headers=desk["heads"]["agent_foncier"], json={
        "parcel_id": parcel, "applicants": [{"party_id": desk["party"], "share": "1"}],
        "registered_on": registered_on, "reference": reference})
    return {**_ok(response), "etag": response.headers["ETag"]}


def _fees(client, desk, procedure_id: str, who: str = "regisseur") -> dict:
    return _ok(client.get(f"/procedures/{procedure_id}/fees", headers=desk["heads"][who]), 200)


def _pay(client, desk, procedure_id: str, amount: int, **extra):
    return client.post("/payments", headers=desk["heads"]["regisseur"], json={
        "procedure_id": procedure_id, "amount": amount, "method": "cash", "paid_on": TODAY.isoformat(), **extra})


def test_the_schedule_in_force_on_the_registration_date_gives_the_fee(client, desk):
    per_m2 = _ok(_schedule(client, desk, {"kind": "per_m2", "rate": 100, "minimum": 5000}))
    assert per_m2["deliberation_reference"] == "DEL-2025-007" and "recorded_by" in per_m2
    bands = {"kind": "per_ha_bands", "bands": [{"up_to_ha": 1, "amount": 50000},
                                               {"up_to_ha": None, "per_ha": 40000}]}
    _ok(_schedule(client, desk, bands, valid_from=day(10)))
    public = _ok(client.get("/fee-schedules", params={"commune_code": BARGNY}), 200)
    assert [s["rule"]["kind"] for s in public] == ["per_m2", "per_ha_bands"]
    assert all("recorded_by" not in s for s in public), "who recorded a schedule is not public"
    in_force = _ok(client.get("/fee-schedules", params={"commune_code": BARGNY, "on": day(20)}), 200)
    assert [s["id"] for s in in_force] == [per_m2["id"]]

    old = _file(client, desk, 0, 30, 30, registered_on=day(30), reference="RED-1")  # 900 m² under per_m2
    small = _file(client, desk, 60, 30, 30, registered_on=day(5), reference="RED-2")  # 0.09 ha: first band
    large = _file(client, desk, 120, 150, 100, registered_on=day(5), reference="RED-3")  # 1.5 ha: 40 000 / ha
    assert _fees(client, desk, old["id"])["fee"]["amount"] == 90000
    assert _fees(client, desk, small["id"])["fee"]["amount"] == 50000
    fees = _fees(client, desk, large["id"])
    assert fees["fee"]["amount"] == 60000 and fees["balance"] == 60000 and fees["payments"] == []
    assert fees["fee"]["deliberation_reference"] == "DEL-2025-007" and fees["procedure"]["reference"] == "RED-3"


def test_a_schedule_is_refused_without_a_deliberation_or_with_a_bad_rule(client, desk, admin_headers):
    pv = _ok(client.post("/sources", headers=admin_headers, json={
        "kind": "proces_verbal", "document_date": day(3), "commune_code": BARGNY, "reference": "PV-1"}))["id"]
    refused = client.post("/fee-schedules", headers=desk["heads"]["agent_foncier"], json={
        "commune_code": BARGNY, "procedure_kind": "affectation", "valid_from": "2020-01-01",
        "rule": {"kind": "fixed", "amount": 1000}, "deliberation_source_id": pv})
    assert refused.status_code == 422 and "délibération" in refused.json()["detail"]
    for rule in ({"kind": "fixed", "amount": 10.5}, {"kind": "per_m2", "rate": 0}, {"kind": "forfait"},
                 {"kind": "per_ha_bands", "bands": [{"up_to_ha": 1, "amount": 1}]},
                 {"kind": "per_ha_bands", "bands": [{"up_to_ha": 2, "amount": 1}, {"up_to_ha": 1, "amount": 2},
                                                    {"up_to_ha": None, "amount": 3}]}):
        response = _schedule(client, desk, rule)
        assert response.status_code == 422, (rule, response.text)
    assert _schedule(client, desk, {"kind": "fixed", "amount": 1}).status_code == 201
    refused = client.post("/fee-schedules", headers=desk["heads"]["regisseur"], json={
        "commune_code": BARGNY, "procedure_kind": "affectation", "valid_from": "2020-01-01",
        "rule": {"kind": "fixed", "amount": 1000}, "deliberation_source_id": desk["deliberation"]})
    assert refused.status_code == 403, "a régisseur collects fees; the council's schedule is a land officer's entry"


def test_a_payment_gets_a_numbered_receipt_that_verifies_and_a_cancellation_is_a_new_row(client, db, desk):
    set_rules(db, BARGNY, receipt_mode="recu_pdf")
    _ok(_schedule(client, desk, {"kind": "fixed", "amount": 25000}))
    procedure = _file(client, desk, 0, 20, 20, registered_on=day(3), reference="RED-10")
    first = _ok(_pay(client, desk, procedure["id"], 10000))
    second = _ok(_pay(client, desk, procedure["id"], 5000, method="mobile_money", mobile_reference="OM260412.1534.C1"))
    assert (first["receipt_year"], first["receipt_number"]) == (TODAY.year, 1)
    assert second["receipt"] == f"{TODAY.year}-000002" and second["receipt_url"].endswith("/receipt.pdf")
    assert _fees(client, desk, procedure["id"])["balance"] == 10000

    pdf = client.get(second["receipt_url"], headers=desk["heads"]["regisseur"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    verified = _ok(client.post("/documents/verify", files={"file": ("recu.pdf", pdf.content, "application/pdf")}), 200)
    assert verified["authentic"] and verified["kind"] == "recu"
    facts = verified["certifies"]
    assert facts["receipt"]["number"] == 2 and facts["payment"]["amount"] == 5000
    assert facts["procedure"]["file_number"] == "RED-10" and not facts["receipt"]["duplicate"]
    assert "Diouf" not in str(facts) and "Fatou" not in str(facts), "a receipt names no person"
    again = client.get(second["receipt_url"], headers=desk["heads"]["regisseur"])
    assert _ok(client.post("/documents/verify", files={"file": ("r.pdf", again.content, "application/pdf")}),
               200)["certifies"]["receipt"]["duplicate"]

    cancelled = _ok(client.post(f"/payments/{first['id']}/cancel", headers=desk["heads"]["regisseur"],
                                json={"reason": "erreur de dossier"}))
    assert cancelled["amount"] == -10000 and cancelled["cancels_payment_id"] == first["id"]
    assert cancelled["receipt_number"] is None
    fees = _fees(client, desk, procedure["id"])
    assert fees["paid"] == 5000 and fees["balance"] == 20000
    assert next(p for p in fees["payments"] if p["id"] == first["id"])["cancelled_by"] == cancelled["id"]
    twice = client.post(f"/payments/{first['id']}/cancel", headers=desk["heads"]["regisseur"], json={"reason": "x"})
    assert twice.status_code == 409 and "déjà annulé" in twice.json()["detail"]
    back = client.post(f"/payments/{cancelled['id']}/cancel", headers=desk["heads"]["regisseur"], json={"reason": "x"})
    assert back.status_code == 409
    third = _ok(_pay(client, desk, procedure["id"], 20000))
    assert third["receipt_number"] == 3, "a cancelled receipt keeps its number: the next one follows"
    assert db.execute(text("SELECT count(*) FROM payment WHERE procedure_id = :id"),
                      {"id": procedure["id"]}).scalar() == 4


def test_refused_payments_change_nothing(client, db, desk):
    set_rules(db, BARGNY, receipt_mode="recu_pdf")
    free = _file(client, desk, 200, 20, 20, registered_on=day(3), reference="RED-20")  # no schedule yet: no fee
    none = _pay(client, desk, free["id"], 1000)
    assert none.status_code == 409 and "pas de redevance" in none.json()["detail"]
    _ok(_schedule(client, desk, {"kind": "fixed", "amount": 3000}))
    procedure = _file(client, desk, 0, 20, 20, registered_on=day(3), reference="RED-21")
    over = _pay(client, desk, procedure["id"], 3001)
    assert over.status_code == 409 and "dépasse" in over.json()["detail"]
    assert _pay(client, desk, procedure["id"], 100, method="mobile_money").status_code == 422
    assert _pay(client, desk, procedure["id"], 100, mobile_reference="ABC12345").status_code == 422
    assert _pay(client, desk, procedure["id"], 100, quittance_number="Q-1").status_code == 422
    agent = client.post("/payments", headers=desk["heads"]["agent_foncier"], json={
        "procedure_id": procedure["id"], "amount": 100, "method": "cash", "paid_on": TODAY.isoformat()})
    assert agent.status_code == 403
    outsider = client.post("/payments", headers=desk["heads"]["outsider"], json={
        "procedure_id": procedure["id"], "amount": 100, "method": "cash", "paid_on": TODAY.isoformat()})
    assert outsider.status_code == 403
    assert db.execute(text("SELECT count(*) FROM payment")).scalar() == 0
    assert db.execute(text("SELECT count(*) FROM receipt_counter WHERE commune_code = :c"),
                      {"c": BARGNY}).scalar() == 0


def test_unpaid_fees_block_the_step_the_commune_names(client, db, desk, admin_headers):
    set_rules(db, BARGNY, receipt_mode="recu_pdf", fees_required_before={"affectation": "surveyed"})
    _ok(_schedule(client, desk, {"kind": "fixed", "amount": 15000}))
    procedure = _file(client, desk, 0, 20, 20, registered_on=day(20), reference="RED-30")
    pv = _ok(client.post("/sources", headers=admin_headers, json={
        "kind": "proces_verbal", "document_date": day(10), "commune_code": BARGNY, "reference": "PV-30"}))["id"]
    step = {"step": "surveyed", "occurred_on": day(5), "source_ids": [pv], "details": {"neighbours_consulted": True}}
    headers = {**desk["heads"]["agent_foncier"], "If-Match": procedure["etag"]}
    blocked = client.post(f"/procedures/{procedure['id']}/steps", headers=headers, json=step)
    assert blocked.status_code == 409, blocked.text
    assert "15000 FCFA" in blocked.json()["detail"] and "surveyed" in blocked.json()["detail"]
    assert _fees(client, desk, procedure["id"])["required_before"] == "surveyed"
    _ok(_pay(client, desk, procedure["id"], 10000))
    assert client.post(f"/procedures/{procedure['id']}/steps", headers=headers, json=step).status_code == 409
    _ok(_pay(client, desk, procedure["id"], 5000))
    passed = client.post(f"/procedures/{procedure['id']}/steps", headers=headers, json=step)
    assert passed.status_code == 200, passed.text


def test_paper_quittance_mode(client, db, desk):
    set_rules(db, BARGNY, receipt_mode="quittance_papier")
    _ok(_schedule(client, desk, {"kind": "fixed", "amount": 8000}))
    procedure = _file(client, desk, 0, 20, 20, registered_on=day(3), reference="RED-40")
    missing = _pay(client, desk, procedure["id"], 4000)
    assert missing.status_code == 422 and "quittance" in missing.json()["detail"]
    paid = _ok(_pay(client, desk, procedure["id"], 4000, quittance_number="T-0045871"))
    assert paid["quittance_number"] == "T-0045871" and paid["receipt_number"] is None and "receipt_url" not in paid
    reused = _pay(client, desk, procedure["id"], 1000, quittance_number="T-0045871")
    assert reused.status_code == 409
    no_pdf = client.get(f"/payments/{paid['id']}/receipt.pdf", headers=desk["heads"]["regisseur"])
    assert no_pdf.status_code == 409 and "quittance papier" in no_pdf.json()["detail"]
    assert db.execute(text("SELECT count(*) FROM receipt_counter")).scalar() == 0


def test_without_a_receipt_mode_the_commune_must_choose(client, db, desk):
    _ok(_schedule(client, desk, {"kind": "fixed", "amount": 8000}))
    procedure = _file(client, desk, 0, 20, 20, registered_on=day(3), reference="RED-50")
    refused = _pay(client, desk, procedure["id"], 1000)
    assert refused.status_code == 409 and "receipt_mode" in refused.json()["detail"]


def test_who_reads_a_files_fees(client, db, desk):
    set_rules(db, BARGNY, receipt_mode="recu_pdf")
    _ok(_schedule(client, desk, {"kind": "fixed", "amount": 8000}))
    procedure = _file(client, desk, 0, 20, 20, registered_on=day(3), reference="RED-60")
    payment = _ok(_pay(client, desk, procedure["id"], 8000))
    _ok(client.post(f"/payments/{payment['id']}/cancel", headers=desk["heads"]["regisseur"],
                    json={"reason": "le payeur Awa Zqxdiop s'est trompé de dossier"}))
    url = f"/procedures/{procedure['id']}/fees"
    before = db.execute(text("SELECT count(*) FROM access_audit")).scalar()
    seen = _fees(client, desk, procedure["id"])
    assert "Zqxdiop" not in str(seen) and all("recorded_by" not in p for p in seen["payments"])
    assert db.execute(text("SELECT count(*) FROM access_audit")).scalar() == before, "no personal read"
    read = _fees(client, desk, procedure["id"], "lecteur")
    assert "Zqxdiop" in str(read) and read["payments"][0]["recorded_by"].endswith("fees-regisseur")
    assert db.execute(text("SELECT count(*) FROM access_audit WHERE endpoint = '/procedures/{procedure_id}/fees'"
                           )).scalar() == 1
    assert client.get(url).status_code == 401
    assert client.get(url, headers=desk["heads"]["outsider"]).status_code == 403
    assert client.get(f"/procedures/{procedure['id']}", headers=desk["heads"]["regisseur"]).status_code == 403
    found = _ok(client.get(f"/communes/{BARGNY}/fees", headers=desk["heads"]["regisseur"],
                           params={"number": "RED-6"}), 200)
    assert [f["reference"] for f in found] == ["RED-60"] and found[0]["balance"] == 8000
    assert _ok(client.get(f"/communes/{BARGNY}/fees", headers=desk["heads"]["regisseur"],
                          params={"number": "RED-6", "unpaid": "true"}), 200)[0]["balance"] == 8000


def test_the_bordereau_of_a_period(client, db, desk):
    set_rules(db, BARGNY, receipt_mode="recu_pdf")
    _ok(_schedule(client, desk, {"kind": "fixed", "amount": 50000}))
    procedure = _file(client, desk, 0, 20, 20, registered_on=day(3), reference="RED-70")
    cash = _ok(_pay(client, desk, procedure["id"], 10000))
    _ok(_pay(client, desk, procedure["id"], 7000, method="mobile_money", mobile_reference="WAVE-778899"))
    _ok(client.post(f"/payments/{cash['id']}/cancel", headers=desk["heads"]["regisseur"], json={"reason": "erreur"}))
    _ok(_pay(client, desk, procedure["id"], 3000))
    period = {"from": day(1), "to": TODAY.isoformat()}
    found = _ok(client.get(f"/communes/{BARGNY}/bordereau", headers=desk["heads"]["regisseur"], params=period), 200)
    assert found["totals"] == {"cash": 3000, "mobile_money": 7000} and found["total"] == 10000
    assert (found["count"], found["cancellations"]) == (3, 1)
    assert [line["voucher"] for line in found["lines"] if line["cancellation"]] == [f"{TODAY.year}-000001"]
    pdf = client.get(f"/communes/{BARGNY}/bordereau", headers=desk["heads"]["regisseur"],
                     params={**period, "format": "pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    verified = _ok(client.post("/documents/verify", files={"file": ("b.pdf", pdf.content, "application/pdf")}), 200)
    assert verified["authentic"] and verified["kind"] == "bordereau_versement"
    assert client.get(f"/communes/{BARGNY}/bordereau", headers=desk["heads"]["lecteur"], params=period
                      ).status_code == 403
    bad = client.get(f"/communes/{BARGNY}/bordereau", headers=desk["heads"]["regisseur"],
                     params={"from": TODAY.isoformat(), "to": day(3)})
    assert bad.status_code == 422
