"""The disputes page (web/src/pages/litiges.html) in a real browser, as Bargny's land officer.

The officer signs in on the map, opens the page of Bargny's disputes, opens a dispute on a demo parcel (the
parcel freezes: its rights show the litige), records a mediation and a resolution, closes it (the litige is
lifted); an anonymous visitor gets no list. Same browser, server and helpers as ``test_web_map.py``.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from datetime import date

from tests.e2e.helpers import get
from tests.e2e.slow_clients import test_web_map as web_map

browser_context = web_map.browser_context
server = web_map.server
BARGNY = "SN0104-bargny"


def _parcel(server: str) -> str:
    status, _, body = get(f"{server}/communes/{BARGNY}/parcels?limit=50")
    assert status == 200, body[:300]
    for feature in reversed(json.loads(body)["features"]):  # one with no litige of the demo
        status, _, rights = get(f"{server}/parcels/{feature['id']}/rights")
        if status == 200 and not any(r["type"] == "litige" for r in json.loads(rights)["rights"]):
            return str(feature["id"])
    raise AssertionError("no demo parcel of Bargny without a litige")


def _sign_in(page, server: str, username: str) -> str:
    """Sign in as the map page does (its token kept in the tab's sessionStorage, which every page reads)."""
    body = urllib.parse.urlencode({"username": username, "password": web_map.PASSWORD}).encode()
    request = urllib.request.Request(f"{server}/auth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as response:
        token = json.loads(response.read())["access_token"]
    page.goto(f"{server}/app/pages/litiges.html")
    page.evaluate("([token, user]) => { sessionStorage.clear(); localStorage.clear(); "
                  "sessionStorage.setItem('sifc.token', token); sessionStorage.setItem('sifc.user', user); }",
                  [token, username])
    return str(token)


def test_an_officer_opens_follows_and_closes_a_dispute(browser_context, server):
    with web_map._watched(browser_context, server) as page:
        token = _sign_in(page, server, "agent.bargny")
        source, _ = web_map._call(server, "POST", "/sources", token, {
            "kind": "proces_verbal", "document_date": date.today().isoformat(), "commune_code": BARGNY,
            "reference": "PV-LITIGE-WEB"})
        parcel = _parcel(server)
        page.goto(f"{server}/app/pages/litiges.html?commune={BARGNY}")
        page.wait_for_function("() => !document.getElementById('list').hidden")
        assert "agent.bargny" in page.inner_text("#who")

        page.select_option("#open-kind", "occupation")
        page.fill("#open-parcels", parcel)
        page.fill("#open-sources", source["id"])
        page.fill("#open-description", "occupation contestée")
        page.click("#open-form button[type=submit]")
        page.wait_for_selector("#detail:not([hidden])")
        page.wait_for_function("() => document.getElementById('message').textContent.includes('gelée')")
        assert page.inner_text("#detail-state") == "Déclaré"
        page.wait_for_function("() => document.querySelectorAll('#rows tr').length >= 1")
        status, _, body = get(f"{server}/parcels/{parcel}/rights")
        assert status == 200 and any(r["type"] == "litige" and r["status"] == "in_force"
                                     for r in json.loads(body)["rights"])

        page.select_option("#step-name", "mediation")
        page.fill("#step-note", "médiation chez le délégué de quartier")
        page.click("#step-form button[type=submit]")
        page.wait_for_function("() => document.getElementById('detail-state').textContent === 'Médiation'")
        page.select_option("#step-name", "resolved")
        page.click("#step-form button[type=submit]")
        page.wait_for_function("() => document.getElementById('detail-state').textContent === 'Résolu'")
        page.fill("#close-outcome", "accord des parties")
        page.click("#close-form button[type=submit]")
        page.wait_for_function("() => document.getElementById('detail-state').textContent === 'Clos'")
        assert page.locator("#step-form").is_hidden() and page.locator("#close-form").is_hidden()
        assert page.locator("#detail-steps tr").count() == 4
        status, _, body = get(f"{server}/parcels/{parcel}/rights")
        lifted = [r for r in json.loads(body)["rights"] if r["type"] == "litige"]
        assert lifted and all(r["end_cause"] == "mainlevee" for r in lifted)

        # A refusal is one line in the page: a step on the closed dispute is not offered; a wrong parcel is said.
        page.fill("#open-parcels", "00000000-0000-0000-0000-000000000000")
        page.click("#open-form button[type=submit]")
        page.wait_for_selector("#message[role=alert]")

        page.click("#lang")
        assert page.inner_text("#detail-state") == "Closed"


def test_an_anonymous_visitor_gets_no_list(browser_context, server):
    with web_map._watched(browser_context, server) as page:
        page.goto(f"{server}/app/pages/litiges.html")
        page.evaluate("sessionStorage.clear(); localStorage.clear()")
        page.goto(f"{server}/app/pages/litiges.html?commune={BARGNY}")
        page.wait_for_selector("#message[role=alert]")
        assert page.locator("#list").is_hidden()
