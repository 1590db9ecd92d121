"""The régie page (web/src/pages/regie.html) in a real browser, as Bargny's régisseur.

Bargny's settings say receipts are numbered by SIFC; a schedule of 20 000 F (a synthetic délibération) gives
a demo parcel's new request its fee. The régisseur finds the file by its number, records a payment, prints
its receipt (which verifies), cancels it with a reason, and shows and prints the bordereau of the day; no
applicant's name appears anywhere. Same browser, server and helpers as ``test_web_map.py``.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sifc.db import make_engine, transaction
from sifc.settings import Settings
from tests.conftest import REPO, env_for
from tests.e2e.helpers import SIFC, create_key, get
from tests.e2e.slow_clients import test_web_map as web_map
from tests.helpers_rules import set_rules

browser_context = web_map.browser_context
server = web_map.server
BARGNY = "SN0104-bargny"
TODAY = date.today().isoformat()
NUMBER = "REGIE-2026-001"


def _sign_in(page, server: str, username: str) -> None:
    """Sign in as the map page does: its token kept in the tab's sessionStorage, which every page reads."""
    body = urllib.parse.urlencode({"username": username, "password": web_map.PASSWORD}).encode()
    request = urllib.request.Request(f"{server}/auth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as response:
        token = json.loads(response.read())["access_token"]
    page.goto(f"{server}/app/pages/regie.html")
    page.evaluate("([token, user]) => { sessionStorage.clear(); localStorage.clear(); "
                  "sessionStorage.setItem('sifc.token', token); sessionStorage.setItem('sifc.user', user); }",
                  [token, username])


def _post(server: str, path: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(server + path, method="POST", data=json.dumps(body).encode(),
                                     headers={**headers, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


@pytest.fixture(scope="module")
def desk(server: str, fresh_db: Settings) -> dict[str, str]:
    """The régisseur's account, Bargny's receipt mode and schedule, and a new request with its fee."""
    created = subprocess.run([*SIFC, "users", "create", "regisseur.bargny", "--role", "regisseur", "--scope",
                              f"commune:{BARGNY}", "--password-stdin"], cwd=REPO, env=env_for(fresh_db),
                             input=web_map.PASSWORD + "\n", capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, created.stderr
    engine = make_engine(fresh_db.db_url)
    with transaction(engine) as session:
        set_rules(session, BARGNY, receipt_mode="recu_pdf")
    engine.dispose()
    admin = create_key(fresh_db)
    deliberation = _post(server, "/sources", admin, {
        "kind": "deliberation", "document_date": "2026-01-15", "commune_code": BARGNY,
        "reference": "DEL-REGIE-1", "council_session": "séance budgétaire (fictive)"})
    _post(server, "/fee-schedules", admin, {"commune_code": BARGNY, "procedure_kind": "affectation",
                                           "valid_from": "2026-01-01", "rule": {"kind": "fixed", "amount": 20000},
                                           "deliberation_source_id": deliberation["id"]})
    party = _post(server, "/parties", admin, {"kind": "natural_person", "name": "Zqxsarr", "given_names": "Khady",
                                              "commune_code": BARGNY})
    status, _, body = get(f"{server}/communes/{BARGNY}/parcels?limit=200")
    assert status == 200, body[:300]
    for feature in json.loads(body)["features"]:
        try:
            procedure = _post(server, "/procedures", admin, {
                "parcel_id": feature["id"], "applicants": [{"party_id": party["id"], "share": "1"}],
                "registered_on": TODAY, "reference": NUMBER})
            break
        except urllib.error.HTTPError:
            continue  # an affectation or an open request there already
    else:
        raise AssertionError("no demo parcel of Bargny free for a new request")
    return {"procedure": procedure["id"]}


def test_the_regisseur_collects_prints_cancels_and_pays_over(browser_context, server, desk):
    with web_map._watched(browser_context, server) as page:
        _sign_in(page, server, "regisseur.bargny")
        page.goto(f"{server}/app/pages/regie.html?commune={BARGNY}")
        page.wait_for_function("() => document.getElementById('commune').value === 'SN0104-bargny'")
        page.fill("#number", "REGIE-2026")
        page.click("#find button[type=submit]")
        page.wait_for_selector("#detail:not([hidden])")
        assert page.inner_text("#detail-number") == NUMBER
        assert "20" in page.inner_text("#detail-due") and "DEL-REGIE-1" in page.inner_text("#detail-schedule")

        page.fill("#pay-amount", "5000")
        page.click("#pay-form button[type=submit]")
        receipt = f"{date.today().year}-000001"
        page.wait_for_function(f"() => document.getElementById('payment-rows').textContent.includes('{receipt}')")
        assert receipt in page.inner_text("#message")
        assert "15" in page.inner_text("#detail-balance")

        with page.expect_download() as download:
            page.click("#payment-rows button:has-text('Reçu')")
        pdf = Path(download.value.path()).read_bytes()
        assert pdf.startswith(b"%PDF")
        boundary = "sifcfees"
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"recu.pdf\"\r\n"
                "Content-Type: application/pdf\r\n\r\n").encode() + pdf + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(f"{server}/documents/verify", data=form, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            verified = json.loads(response.read())
        assert verified["authentic"] and verified["kind"] == "recu"
        assert verified["certifies"]["procedure"]["file_number"] == NUMBER

        page.once("dialog", lambda dialog: dialog.accept("erreur de montant"))
        page.click("#payment-rows button:has-text('Annuler')")
        page.wait_for_function("() => document.getElementById('payment-rows').textContent.includes('Annulé')")
        assert "20" in page.inner_text("#detail-balance")

        page.click("#bordereau-form button[type=submit]")
        page.wait_for_selector("#bordereau:not([hidden])")
        assert "1 paiement" in page.inner_text("#bordereau-totals")
        assert receipt in page.inner_text("#bordereau-rows")
        with page.expect_download() as slip:
            page.click("#bordereau-pdf")
        assert Path(slip.value.path()).read_bytes().startswith(b"%PDF")
        assert "Zqxsarr" not in page.content() and "Khady" not in page.content()


def test_a_visitor_signed_out_is_told_to_sign_in(browser_context, server):
    with web_map._watched(browser_context, server) as page:
        page.goto(f"{server}/app/pages/regie.html")
        page.evaluate("sessionStorage.clear(); localStorage.clear()")
        page.reload()
        page.wait_for_function("() => document.getElementById('message').textContent.length > 0")
        assert "Connectez-vous" in page.inner_text("#message")
        page.fill("#commune", BARGNY)
        page.click("#find button[type=submit]")
        page.wait_for_function("() => document.getElementById('message').getAttribute('role') === 'alert' "
                               "&& !document.getElementById('message').textContent.startsWith('Connectez')")
