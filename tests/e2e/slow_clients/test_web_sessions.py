"""The council sessions page (web/src/pages/sessions.html) in a real browser, as Bargny's land officer.

The officer signs in on the map, opens the page of Bargny's sessions, plans a session of the commission
domaniale, puts two surveyed requests on its agenda, records three members present (the demo's quorum), closes
the agenda and deliberates the whole session (one granted, one deferred with its motive) under one délibération;
then asks for the session's documents and sees the job's progress. An anonymous visitor gets no list. Same
browser, server and helpers as ``test_web_map.py``.
"""

from __future__ import annotations

import json
from datetime import date

from tests.e2e.helpers import get
from tests.e2e.slow_clients import test_web_map as web_map

browser_context = web_map.browser_context
server = web_map.server
BARGNY = "SN0104-bargny"


def _sign_in(page, server: str, username: str) -> str:
    """Signed in as the map page signs in (its tokens in sessionStorage), without going through the map."""
    import urllib.parse
    import urllib.request

    form = urllib.parse.urlencode({"username": username, "password": web_map.PASSWORD}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{server}/auth/token", data=form), timeout=30) as response:
        tokens = json.loads(response.read())
    page.goto(f"{server}/app/pages/sessions.html")
    page.evaluate("([token, refresh, user]) => { sessionStorage.setItem('sifc.token', token); "
                  "sessionStorage.setItem('sifc.refresh', refresh); sessionStorage.setItem('sifc.user', user); "
                  "localStorage.clear(); }", [tokens["access_token"], tokens.get("refresh_token") or "", username])
    page.reload()
    return str(tokens["access_token"])


def _free_parcels(server: str, token: str, count: int) -> list[str]:
    """Demo parcels of Bargny with no right, no procedure and no litige: a request may be registered on each."""
    status, _, body = get(f"{server}/communes/{BARGNY}/parcels?limit=200")
    assert status == 200, body[:300]
    found = []
    for feature in reversed(json.loads(body)["features"]):
        status, _, rights = get(f"{server}/parcels/{feature['id']}/rights")
        if status != 200 or json.loads(rights)["rights"]:
            continue
        procedures, _ = web_map._call(server, "GET", f"/parcels/{feature['id']}/procedures", token)
        if not procedures:
            found.append(str(feature["id"]))
        if len(found) == count:
            return found
    raise AssertionError("not enough free demo parcels in Bargny")


def _surveyed(server: str, token: str, parcel: str, n: int) -> dict:
    today = date.today().isoformat()
    party, _ = web_map._call(server, "POST", "/parties", token, {
        "kind": "natural_person", "name": f"Demandeur web {n}", "commune_code": BARGNY})
    made, headers = web_map._call(server, "POST", "/procedures", token, {
        "parcel_id": parcel, "applicants": [{"party_id": party["id"], "share": "1"}], "registered_on": today,
        "reference": f"DEM-WEB-{n}"})
    pv, _ = web_map._call(server, "POST", "/sources", token, {
        "kind": "proces_verbal", "document_date": today, "commune_code": BARGNY, "reference": f"PV-WEB-{n}"})
    import urllib.request

    request = urllib.request.Request(f"{server}/procedures/{made['id']}/steps", method="POST", data=json.dumps({
        "step": "surveyed", "occurred_on": today, "source_ids": [pv["id"]],
        "details": {"neighbours_consulted": True}}).encode(), headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "If-Match": next(v for k, v in headers.items() if k.lower() == "etag")})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    return made


def test_an_officer_deliberates_a_session_from_the_page(browser_context, server):
    with web_map._watched(browser_context, server) as page:
        token = _sign_in(page, server, "agent.bargny")
        # The demo makes fees due before the deliberation; this page's story is the session's, not the régie's.
        web_map._call(server, "POST", f"/communes/{BARGNY}/settings/fees_required_before", token, {
            "value": {}, "valid_from": date.today().isoformat(), "source": "test : aucune redevance avant la séance"})
        procedures = [_surveyed(server, token, parcel, n)
                      for n, parcel in enumerate(_free_parcels(server, token, 2))]
        deliberation, _ = web_map._call(server, "POST", "/sources", token, {
            "kind": "deliberation", "document_date": date.today().isoformat(), "commune_code": BARGNY,
            "reference": "DEL-WEB-1", "council_session": "session de test"})
        page.fill("#commune", BARGNY)
        page.click("#pick button[type=submit]")
        page.wait_for_function("() => !document.getElementById('list').hidden")
        assert "agent.bargny" in page.inner_text("#who")

        page.select_option("#create-kind", "commission_domaniale")
        page.fill("#create-reference", "session ordinaire (test)")
        page.click("#create-form button[type=submit]")
        page.wait_for_selector("#detail:not([hidden])")
        assert page.inner_text("#detail-state") == "En préparation"
        for procedure in procedures:
            page.fill("#add-procedure", procedure["id"])
            page.click("#add-form button[type=submit]")
            page.wait_for_function(f"() => document.querySelectorAll('#items tr').length === "
                                   f"{procedures.index(procedure) + 1}")
        for n, capacity in enumerate(("president", "membre", "membre")):
            page.select_option("#attendee-capacity", capacity)
            page.fill("#attendee-name", f"Conseiller {n}")
            page.click("#attendee-form button[type=submit]")
            page.wait_for_function(f"() => document.querySelectorAll('#attendees li').length === {n + 1}")
        page.click("#close-agenda")
        page.wait_for_function("() => document.getElementById('detail-state').textContent === 'Ordre du jour fermé'")

        page.select_option(f"#items select[data-procedure='{procedures[1]['id']}']", "deferred")
        page.fill(f"#items input[data-procedure='{procedures[1]['id']}']", "pièces à compléter")
        page.fill("#deliberate-number", "DEL-WEB-1")
        page.fill("#deliberate-source", deliberation["id"])
        page.click("#deliberate-form button[type=submit]")
        page.wait_for_function("() => document.getElementById('detail-state').textContent === 'Délibérée'")
        assert "DEL-WEB-1" in page.inner_text("#detail-deliberation")
        assert [page.inner_text(f"#items tr:nth-child({i}) td:nth-child(4)") for i in (1, 2)] == [
            "Accordée", "Ajournée"]
        states = [web_map._call(server, "GET", f"/procedures/{p['id']}", token)[0]["state"] for p in procedures]
        assert states == ["deliberated", "deferred"]

        # The documents of the session: a job, its progress in the page.
        page.click("#documents")
        page.wait_for_function("() => document.getElementById('documents-progress').textContent.startsWith('Documents')"
                               " || document.getElementById('message').getAttribute('role') === 'alert'")
        page.click("#lang")
        assert page.inner_text("#detail-state") == "Deliberated"


def test_an_anonymous_visitor_gets_no_list(browser_context, server):
    with web_map._watched(browser_context, server) as page:
        page.goto(f"{server}/app/pages/sessions.html")
        page.evaluate("sessionStorage.clear(); localStorage.clear()")
        page.reload()
        page.fill("#commune", BARGNY)
        page.click("#pick button[type=submit]")
        page.wait_for_selector("#message[role=alert]")
        assert page.locator("#list").is_hidden()
