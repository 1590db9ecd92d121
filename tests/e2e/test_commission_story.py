"""The commission domaniale's whole story, end to end over real HTTP, on the demo of a pilot commune (ADR 0005).

``sifc demo load`` fills Bargny as ``make run`` does; then, through the public API only, as the land
officer, the régisseur and the public would (docs/commission.md « Rejouer l'histoire complète » gives the
same requests with curl): the commune's settings citing a source → a fee schedule citing a délibération
uploaded over HTTP → a campaign of five demo parcels with their presumed holders → a public display →
three claims (accepted, rejected, turned into a dispute) → the close registers a régularisation per parcel
without an open claim (the disputed one waits, frozen) → an ordinary affectation registered beside them →
fees paid at the régie, receipts numbered 1..n, each verified → a council session whose deliberation is
refused while a parcel on its agenda is under litige, then passes with that request deferred, granting
some and refusing one → approvals and notifications → the session's documents as a job, every page
verified → each file followed anonymously with its code, nothing personal in the answer → the deferred
file overdue by the commune's ``target_days``, counted on the dashboard.

Dates are in the past (the services refuse legal dates to come): ``ago(n)`` is n days before today.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from pypdf import PdfReader

from sifc.settings import Settings
from tests.e2e.helpers import create_key, free_port, run_cli, start_server

BARGNY = "SN0104-bargny"
SECTION = "S24"  # a section of the demo's Bargny where no demo record lies
SOURCE = "Démo SIFC — valeur fictive, à remplacer par la délibération de la commune"
HOLDERS = ("Zqxdiop", "Zqxndiaye", "Zqxfall", "Zqxsarr", "Zqxfaye", "Zqxgueye")
REFUSAL = "Zqxmotif : emprise de la future voie communale"
DEFERRAL = "Zqxajourne : litige de limite en cours"
GROUNDS = "Zqxgrief : la limite nord empiète sur le champ familial"
CODE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b")


def ago(days: int) -> str:
    """The date ``days`` days before today, as the API takes it."""
    return (date.today() - timedelta(days=days)).isoformat()


class Api:
    """One caller of the real server: JSON in, checked status, JSON (or bytes) out."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.client = httpx.Client(base_url=base, headers={"Accept-Language": "fr", **(headers or {})}, timeout=120)

    def call(self, method: str, path: str, status: int = 200, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response

    def post(self, path: str, body: Any = None, status: int = 201, **kwargs: Any) -> Any:
        return self.call("POST", path, status, json=body, **kwargs).json()

    def get(self, path: str, status: int = 200, **kwargs: Any) -> Any:
        return self.call("GET", path, status, **kwargs).json()


@pytest.fixture(scope="module")
def world(fresh_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo loaded as ``make run`` loads it, a server with its worker, an officer's and a régisseur's keys."""
    started = time.perf_counter()
    loaded = run_cli(fresh_db, "demo", "load")
    assert loaded.returncode == 0, loaded.stderr
    print(f"\nsifc demo load: {time.perf_counter() - started:.1f} s")
    officer = create_key(fresh_db, "agent_foncier", f"commune:{BARGNY}")
    regisseur = create_key(fresh_db, "regisseur", f"commune:{BARGNY}")
    log = tmp_path_factory.mktemp("story") / "server.log"
    port = free_port()
    process = start_server(fresh_db, port, log)  # with its worker, which builds the documents jobs
    base = f"http://127.0.0.1:{port}"
    officer_api, regisseur_api, public_api = Api(base, officer), Api(base, regisseur), Api(base)
    try:
        yield {"officer": officer_api, "regisseur": regisseur_api, "public": public_api}
    finally:
        for caller in (officer_api, regisseur_api, public_api):
            caller.client.close()
        process.terminate()
        process.wait(timeout=30)
    assert "Traceback" not in log.read_text()


def _free_demo_parcels(officer: Api, section: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` demo parcels of Bargny's ``section`` under the domaine national, checked free.

    The demo is the same every time (fixed seeds): the walk-through of docs/commission.md takes these.
    """
    features = officer.get(f"/communes/{BARGNY}/parcels", params={"limit": 1000})["features"]
    found = [f for f in features if f["properties"]["section"] == section
             and f["properties"]["tenure_regime"] == "domaine national"][:count]
    assert len(found) == count
    for feature in found:  # no right, no request: the demo's own records are elsewhere
        assert officer.get(f"/parcels/{feature['id']}/rights")["rights"] == []
        assert officer.get(f"/parcels/{feature['id']}/procedures") == []
    return found


def _verify(public: Api, name: str, pdf: bytes) -> dict[str, Any]:
    """A PDF checked authentic by the verification route, as anyone holding the paper would."""
    answer = public.call("POST", "/documents/verify", files={"file": (name, io.BytesIO(pdf), "application/pdf")})
    assert answer.json()["authentic"] is True, answer.text
    return dict(answer.json())


def test_the_whole_story_over_http(world: dict[str, Any]) -> None:
    started = time.perf_counter()
    officer, regisseur, public = world["officer"], world["regisseur"], world["public"]

    # 1. The commune's settings, each citing its (here synthetic) source, from 200 days ago.
    settings = {
        "procedure_kinds": ["affectation", "regularisation"],
        "display_days": 15,
        "display_shows_names": False,
        "receipt_mode": "recu_pdf",
        "fees_required_before": {"affectation": "deliberated", "regularisation": "deliberated"},
        "session_quorum": {"commission_domaniale": {"kind": "count", "value": 3},
                           "conseil_municipal": {"kind": "fraction", "value": 0.5}},
        "target_days": {"affectation": {"surveyed": 30, "deliberated": 20, "approved": 60, "notified": 30},
                        "regularisation": {"deliberated": 90, "approved": 60, "notified": 30}},
    }
    for key, value in settings.items():
        written = officer.post(f"/communes/{BARGNY}/settings/{key}",
                               {"value": value, "valid_from": ago(200), "source": SOURCE})
        assert written["value"] == value
    in_force = public.get(f"/communes/{BARGNY}/settings")
    assert "set_by" not in str(in_force)

    # 2. The fee schedule, citing the council's délibération (its scan uploaded).
    deliberation = officer.post("/sources", {"kind": "deliberation", "document_date": ago(190),
                                             "commune_code": BARGNY, "reference": "DEL-DEMO-FEES",
                                             "council_session": "Session budgétaire de démonstration"})
    officer.call("POST", f"/sources/{deliberation['id']}/files", 201,
                 files={"file": ("deliberation.pdf", io.BytesIO(b"%PDF-1.4\n% demo\n%%EOF\n"), "application/pdf")})
    for kind, amount in (("regularisation", 15000), ("affectation", 25000)):
        officer.post("/fee-schedules", {"commune_code": BARGNY, "procedure_kind": kind, "valid_from": ago(190),
                                        "rule": {"kind": "fixed", "amount": amount},
                                        "deliberation_source_id": deliberation["id"]})
    assert len(public.get("/fee-schedules", params={"commune_code": BARGNY})) >= 2

    # 3. A campaign of five free demo parcels, each with its presumed holder; a sixth for an ordinary request.
    parcels = _free_demo_parcels(officer, SECTION, 6)
    campaign_parcels, other = parcels[:5], parcels[5]
    holders = [officer.post("/parties", {"kind": "natural_person", "name": name, "given_names": "Awa",
                                         "commune_code": BARGNY})["id"] for name in HOLDERS]
    campaign = officer.post("/campaigns", {"commune_code": BARGNY, "name": "Campagne de démonstration",
                                           "area": {"kind": "section", "section": SECTION}})
    added = officer.post(f"/campaigns/{campaign['id']}/parcels", {"source": "parcels", "parcels": [
        {"parcel_id": p["id"], "presumed_holders": [{"party_id": h, "share": "1"}]}
        for p, h in zip(campaign_parcels, holders, strict=False)]}, status=200)
    assert added["added"] == 5
    p = [f["id"] for f in campaign_parcels]

    # 4. The public display, 15 days from its first day.
    period = officer.post(f"/campaigns/{campaign['id']}/display-periods", {"starts_on": ago(120)})
    assert period["display_days"] == 15 and period["ends_on"] == ago(106)

    # 5. Three claims: one accepted, one rejected, one turned into a dispute.
    def claim(parcel: str, on: str, name: str) -> httpx.Response:
        return officer.call("POST", "/claims", 201, json={"parcel_id": parcel, "grounds": GROUNDS,
                                                            "received_on": on, "claimant_name": name})

    complaint = officer.post("/sources", {"kind": "proces_verbal", "document_date": ago(116), "commune_code": BARGNY,
                                          "reference": "PV-RECLAMATION-003"})
    claims = [claim(p[0], ago(118), "Moussa Zqxvoisin"), claim(p[1], ago(117), "Fatou Zqxvoisine"),
              claim(p[2], ago(116), "Cheikh Zqxvoisin")]

    def resolve(answer: httpx.Response, **body: Any) -> Any:
        return officer.post(f"/claims/{answer.json()['id']}/resolve", body, status=200,
                            headers={"If-Match": answer.headers["ETag"]})

    assert resolve(claims[0], decision="accepted", resolved_on=ago(110))["state"] == "accepted"
    assert resolve(claims[1], decision="rejected", resolved_on=ago(110),
                   reason="Zqxrejet : limite confirmée par le plan")["state"] == "rejected"
    turned = resolve(claims[2], decision="disputed", resolved_on=ago(110), dispute={"kind": "limites",
                                                                                       "source_ids": [complaint["id"]]})
    assert turned["state"] == "disputed" and turned["dispute_id"]

    # 6. The close: a régularisation per parcel without open claim; the disputed one waits.
    closed = officer.post(f"/campaigns/{campaign['id']}/display-periods/{period['id']}/close",
                          {"closed_on": ago(100)}, status=200)
    registered = {r["parcel_id"]: r["procedure_id"] for r in closed["registered"]}
    assert set(registered) == {p[0], p[1], p[3], p[4]}, closed
    assert {w["parcel_id"]: w["reason"] for w in closed["waiting"]} == {p[2]: "disputed"}
    frozen = officer.call("POST", "/procedures", 409, json={
        "kind": "regularisation", "parcel_id": p[2], "applicants": [{"party_id": holders[2]}],
        "registered_on": ago(99)})
    assert frozen.headers["content-type"] == "application/problem+json"

    # 7. The tracking codes: an ordinary request gives its code at registration; the régularisations'
    # are printed on their récépissés (a new code each, the previous revoked).
    affectation = officer.call("POST", "/procedures", 201, json={
        "kind": "affectation", "parcel_id": other["id"], "applicants": [{"party_id": holders[5]}],
        "registered_on": ago(100), "purpose": "habitation", "reference": "DEM-STORY-001"})
    codes = {affectation.json()["id"]: affectation.json()["tracking_code"]}
    for procedure_id in registered.values():
        receipt = officer.call("POST", f"/procedures/{procedure_id}/recepisse.pdf", 200)
        _verify(public, "recepisse.pdf", receipt.content)
        text_ = "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(receipt.content)).pages)
        found = CODE.findall(text_)
        assert found, text_
        codes[procedure_id] = found[0]
    pv = officer.post("/sources", {"kind": "proces_verbal", "document_date": ago(95), "commune_code": BARGNY,
                                   "reference": "PV-STORY-001"})
    surveyed = officer.call("POST", f"/procedures/{affectation.json()['id']}/steps", 200,
                            headers={"If-Match": affectation.headers["ETag"]},
                            json={"step": "surveyed", "occurred_on": ago(95), "source_ids": [pv["id"]],
                                  "details": {"neighbours_consulted": True}})
    assert surveyed.json()["state"] == "surveyed"

    # 8. The régie: the régisseur finds each file, is paid, prints receipts numbered without a gap.
    procedures = [*registered.values(), affectation.json()["id"]]
    numbers = []
    for procedure_id in procedures:
        due = regisseur.get(f"/procedures/{procedure_id}/fees")
        assert due["balance"] > 0, due
        paid = regisseur.post("/payments", {"procedure_id": procedure_id, "amount": due["balance"],
                                            "method": "cash", "paid_on": ago(90)})
        numbers.append(paid["receipt"])
        pdf = regisseur.call("GET", f"/payments/{paid['id']}/receipt.pdf").content
        assert _verify(public, "recu.pdf", pdf)["kind"] == "recu"
    year = date.fromisoformat(ago(90)).year
    assert numbers == [f"{year}-{n:06d}" for n in range(1, len(procedures) + 1)], numbers
    assert regisseur.call("GET", f"/procedures/{procedures[0]}", 403)

    # 9. A council session: its agenda, a litige on one parcel after the agenda is fixed, the deliberation
    # refused while that request is on it undecided, then deferred.
    session = officer.call("POST", "/sessions", 201, json={
        "commune_code": BARGNY, "kind": "commission_domaniale", "held_on": ago(60),
        "reference": "Session ordinaire de démonstration"})

    def session_call(method: str, path: str, body: Any = None, status: int = 200) -> httpx.Response:
        nonlocal session
        answer = officer.call(method, f"/sessions/{session.json()['id']}{path}", status, json=body,
                              headers={"If-Match": session.headers["ETag"]})
        if status == 200:
            session = answer
        return answer

    session_call("PUT", "/agenda", {"procedure_ids": procedures})
    for capacity, name in (("president", "Maire Zqxpresident"), ("membre", "Conseiller Zqxun"),
                           ("membre", "Conseillère Zqxdeux")):
        session_call("POST", "/attendees", {"capacity": capacity, "name": name})
    session_call("POST", "/close-agenda")
    plaint = officer.post("/sources", {"kind": "proces_verbal", "document_date": ago(65), "commune_code": BARGNY,
                                       "reference": "PV-LITIGE-STORY"})
    officer.post("/disputes", {"commune_code": BARGNY, "kind": "limites", "parcel_ids": [other["id"]],
                               "opened_on": ago(65), "source_ids": [plaint["id"]],
                               "description": "Zqxlitige : borne déplacée"})
    council = officer.post("/sources", {"kind": "deliberation", "document_date": ago(60), "commune_code": BARGNY,
                                        "reference": "DEL-STORY-001",
                                        "council_session": "Session ordinaire de démonstration"})
    granted, refused = procedures[:3], procedures[3]
    deferred = procedures[4]
    decisions = [{"procedure_id": pid, "decision": "granted"} for pid in granted]
    decisions.append({"procedure_id": refused, "decision": "refused", "reason": REFUSAL})
    body = {"number": "DEL-STORY-001", "deliberated_on": ago(60), "source_id": council["id"],
            "decisions": [*decisions, {"procedure_id": deferred, "decision": "granted"}]}
    blocked = session_call("POST", "/deliberate", body, status=409)
    assert blocked.json()["blocking_procedures"] == [deferred], blocked.text
    body["decisions"] = [*decisions, {"procedure_id": deferred, "decision": "deferred", "reason": DEFERRAL}]
    done = session_call("POST", "/deliberate", body)
    assert done.json()["state"] == "deliberated"

    # 10. Approvals and notifications of the granted requests.
    approval = officer.post("/sources", {"kind": "approbation", "document_date": ago(40), "commune_code": BARGNY,
                                         "reference": "ARR-STORY-001", "authority": "sous_prefet"})
    notification = officer.post("/sources", {"kind": "notification", "document_date": ago(30),
                                             "commune_code": BARGNY, "reference": "NOT-STORY-001"})
    for pid in granted:
        read = officer.call("GET", f"/procedures/{pid}")
        assert read.json()["state"] == "deliberated"
        approved = officer.call("POST", f"/procedures/{pid}/steps", 200, headers={"If-Match": read.headers["ETag"]},
                                json={"step": "approved", "occurred_on": ago(40), "source_ids": [approval["id"]]})
        officer.call("POST", f"/procedures/{pid}/steps", 200, headers={"If-Match": approved.headers["ETag"]},
                     json={"step": "notified", "occurred_on": ago(30), "source_ids": [notification["id"]]})

    # 11. The session's documents by a job; the combined PDF and each document verify, page by page.
    queued = officer.call("POST", f"/sessions/{session.json()['id']}/documents", 202).json()
    deadline = time.monotonic() + 120
    job = queued
    while job["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
        job = officer.get(f"/document-jobs/{queued['id']}")
    assert job["status"] == "done", job
    combined = PdfReader(io.BytesIO(officer.call("GET", f"/document-jobs/{queued['id']}/pdf").content))
    assert len(combined.pages) == 2 * len(granted) + 1
    archive = zipfile.ZipFile(io.BytesIO(officer.call("GET", f"/document-jobs/{queued['id']}/zip").content))
    page = 0
    for name in archive.namelist():
        pdf = archive.read(name)
        _verify(public, name, pdf)
        code = str(PdfReader(io.BytesIO(pdf)).metadata["/SIFCCode"])
        assert public.get(f"/documents/verify/{code}")["authentic"] is True
        for _ in PdfReader(io.BytesIO(pdf)).pages:
            printed = (combined.pages[page].extract_text() or "").replace(" ", "").replace("\n", "")
            assert code[:32] in printed, (name, page)
            page += 1
    assert page == len(combined.pages)

    # 12. Each file followed anonymously with its number and code: steps and dates, nothing personal.
    expected = {**{pid: "notified" for pid in granted}, refused: "refused", deferred: "deferred"}
    for pid, last in expected.items():
        number = "DEM-STORY-001" if pid == deferred else pid
        tracked = public.call("GET", f"/suivi/{number}/{codes[pid]}")
        steps = [s["step"] for s in tracked.json()["steps"]]
        assert steps[-1] == last, tracked.text
        for secret in (*HOLDERS, "Zqx", "Awa", REFUSAL, DEFERRAL, GROUNDS, "agent_foncier", "e2e-"):
            assert secret not in tracked.text, (secret, tracked.text)
    assert public.call("GET", "/suivi/DEM-STORY-001/0000-0000-0000-0000", 404)

    # 13. The deferred request is overdue: deliberated is due 20 days after its deferral (60 days ago).
    overdue = officer.get(f"/communes/{BARGNY}/overdue")
    late = {f["id"]: f for f in overdue["files"]}
    assert late[deferred]["days_late"] == 40 and late[deferred]["step"] == "deferred", late[deferred]
    for pid in granted:
        assert pid not in late
    assert "Zqx" not in str(overdue)
    board = officer.get(f"/dashboards/commune/{BARGNY}")
    procedures_late = [f for f in overdue["files"] if f["file"] == "procedure"]
    assert board["procedures"]["overdue"] == len(procedures_late) >= 1, board["procedures"]
    print(f"\nthe commission's story over HTTP: {time.perf_counter() - started:.1f} s")
