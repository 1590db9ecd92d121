"""The campaigns page (web/src/pages/campagnes.html) in a real browser, as Bargny's land officer.

Bargny's rules for the display are set (synthetic, as the demo's); a campaign lists a demo parcel with a
presumed holder. The officer opens the page, opens the public display (started 30 days ago), records a claim,
rejects it with a reason, closes the display: the parcel gets its régularisation procedure. An anonymous visitor
gets no list. Same browser, server and helpers as ``test_web_map.py``.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from datetime import date, timedelta

from sqlalchemy import text

from sifc.db import make_engine, make_sessionmaker
from tests.e2e.helpers import get
from tests.e2e.slow_clients import test_web_map as web_map

browser_context = web_map.browser_context
server = web_map.server
BARGNY = "SN0104-bargny"


def _sign_in(page, server: str, username: str) -> str:
    """Sign in as the map page does (its token kept in the tab's sessionStorage, which every page reads)."""
    body = urllib.parse.urlencode({"username": username, "password": web_map.PASSWORD}).encode()
    request = urllib.request.Request(f"{server}/auth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as response:
        token = json.loads(response.read())["access_token"]
    page.goto(f"{server}/app/pages/campagnes.html")
    page.evaluate("([token, user]) => { sessionStorage.clear(); localStorage.clear(); "
                  "sessionStorage.setItem('sifc.token', token); sessionStorage.setItem('sifc.user', user); }",
                  [token, username])
    return str(token)


def _rules(settings) -> None:
    from tests.helpers_rules import TENURE_RULES, set_rules

    engine = make_engine(settings.admin_url)
    with make_sessionmaker(engine)() as session:
        if not session.execute(text("SELECT 1 FROM commune_setting WHERE commune_code = :c AND key = 'display_days'"),
                               {"c": BARGNY}).scalar():
            set_rules(session, BARGNY, display_days=15, display_shows_names=False,
                      procedure_kinds=["affectation", "regularisation"], **TENURE_RULES)
            session.commit()
    engine.dispose()


def _campaign(server: str, token: str) -> tuple[str, str]:
    """A campaign of Bargny around one demo parcel with no open request, its presumed holder registered."""
    status, _, body = get(f"{server}/communes/{BARGNY}/parcels?limit=100")
    assert status == 200, body[:300]
    for feature in reversed(json.loads(body)["features"]):
        pid = str(feature["id"])
        status, _, rights = get(f"{server}/parcels/{pid}/rights")
        if status == 200 and not json.loads(rights)["rights"]:
            break
    else:
        raise AssertionError("no demo parcel of Bargny without rights")
    lons = [c[0] for ring in feature["geometry"]["coordinates"] for part in ring for c in part] \
        if feature["geometry"]["type"] == "MultiPolygon" else [c[0] for c in feature["geometry"]["coordinates"][0]]
    lats = [c[1] for ring in feature["geometry"]["coordinates"] for part in ring for c in part] \
        if feature["geometry"]["type"] == "MultiPolygon" else [c[1] for c in feature["geometry"]["coordinates"][0]]
    made, _ = web_map._call(server, "POST", "/campaigns", token, {
        "commune_code": BARGNY, "name": "Campagne navigateur",
        "area": {"kind": "bbox", "bbox": [min(lons) - 1e-4, min(lats) - 1e-4, max(lons) + 1e-4, max(lats) + 1e-4]}})
    party, _ = web_map._call(server, "POST", "/parties", token, {
        "kind": "natural_person", "name": "Sarr", "given_names": "Khady", "commune_code": BARGNY})
    web_map._call(server, "POST", f"/campaigns/{made['id']}/parcels", token, {
        "source": "parcels", "parcels": [{"parcel_id": pid, "presumed_holders": [{"party_id": party["id"]}]}]})
    return str(made["id"]), pid


def test_an_officer_displays_a_campaign_records_and_resolves_a_claim_then_closes(browser_context, server, fresh_db):
    _rules(fresh_db)
    with web_map._watched(browser_context, server) as page:
        token = _sign_in(page, server, "agent.bargny")
        campaign, parcel = _campaign(server, token)
        page.goto(f"{server}/app/pages/campagnes.html?commune={BARGNY}")
        page.wait_for_function("() => !document.getElementById('list').hidden")
        page.click(f"#rows tr[data-id='{campaign}'] button")
        page.wait_for_selector("#detail:not([hidden])")
        assert "Khady Sarr" in page.inner_text("#parcel-rows")

        started = (date.today() - timedelta(days=30)).isoformat()
        page.fill("#display-on", started)
        page.click("#display-form button[type=submit]")
        page.wait_for_function("() => document.getElementById('message').textContent.includes('Affichage public ouvert')")
        page.wait_for_function("() => document.getElementById('detail-state').textContent === 'En affichage'")

        # A claim dated today is outside the display (15 days from 30 days ago): refused in one line.
        page.fill("#claim-name", "Moussa Diouf")
        page.fill("#claim-grounds", "limite contestée")
        page.click("#claim-form button[type=submit]")
        page.wait_for_selector("#message[role=alert]")
        assert "hors de la période d'affichage" in page.inner_text("#message")
        page.fill("#claim-on", (date.today() - timedelta(days=25)).isoformat())
        page.click("#claim-form button[type=submit]")
        page.wait_for_function("() => document.querySelectorAll('#claim-rows tr').length === 1")
        page.select_option("#claim-rows .decision", "rejected")
        page.fill("#claim-rows .reason", "limite confirmée par le plan")
        page.click("#claim-rows button")
        page.wait_for_function("() => document.querySelector('#claim-rows .claim-state').textContent === 'Rejetée'")

        page.click("#close-form button[type=submit]")
        page.wait_for_function("() => document.getElementById('message').textContent.includes('1 procédure')")
        page.wait_for_function("() => document.getElementById('detail-state').textContent === 'Close'")
        status, _, body = get(f"{server}/campaigns/{campaign}", headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and json.loads(body)["counts"]["registered"] == 1
        status, _, body = get(f"{server}/parcels/{parcel}/procedures", headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and any(p["kind"] == "regularisation" for p in json.loads(body)), body[:300]

        page.click("#lang")
        assert page.inner_text("#detail-state") == "Closed"


def test_an_anonymous_visitor_gets_no_campaign(browser_context, server):
    with web_map._watched(browser_context, server) as page:
        page.goto(f"{server}/app/pages/campagnes.html")
        page.evaluate("sessionStorage.clear(); localStorage.clear()")
        page.goto(f"{server}/app/pages/campagnes.html?commune={BARGNY}")
        page.wait_for_selector("#message[role=alert]")
        assert page.locator("#list").is_hidden()
