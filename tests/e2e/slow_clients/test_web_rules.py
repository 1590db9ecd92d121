"""Commune settings in a real browser (web/src/pages/reglages.html): anyone reads the values in force with their
origin and cited source; a land officer of Bargny sets a new dated, sourced value, a malformed one being refused with
the service's sentence. Same browser, server and helpers as ``test_web_map.py``."""

from __future__ import annotations

from tests.e2e.slow_clients import test_web_disputes as disputes
from tests.e2e.slow_clients import test_web_map as web_map

browser_context = web_map.browser_context
server = web_map.server
BARGNY = "SN0104-bargny"


def test_anyone_reads_the_settings_in_force_with_their_sources(browser_context, server):
    with web_map._watched(browser_context, server) as tab:
        tab.goto(f"{server}/app/pages/reglages.html?commune={BARGNY}")
        tab.wait_for_function("() => document.querySelectorAll('#rows tr').length > 0")
        row = tab.locator("#rows tr[data-key=required_sources]")
        assert row.get_attribute("data-origin") == "commune"
        assert "Démo SIFC" in row.inner_text() and "proces_verbal" in row.inner_text()
        assert tab.locator("#rows tr[data-key=gender_min_count]").get_attribute("data-origin") == "none"


def test_an_officer_sets_a_dated_sourced_value(browser_context, server):
    with web_map._watched(browser_context, server) as tab:
        disputes._sign_in(tab, server, "agent.bargny")
        tab.goto(f"{server}/app/pages/reglages.html?commune={BARGNY}")
        tab.wait_for_function("() => document.querySelectorAll('#rows tr').length > 0")

        # A value that does not follow the key's schema: the service's sentence, nothing written.
        tab.locator("#rows tr[data-key=display_days] button.choose").click()
        tab.fill("#value", '"quinze"')
        tab.fill("#valid-from", "2024-01-01")
        tab.fill("#source", "Délibération n° 2024-11 du 2 janvier 2024")
        tab.click("#save")
        tab.wait_for_function("() => document.getElementById('message').classList.contains('error')")
        assert "display_days" in tab.inner_text("#message")
        assert tab.locator("#rows tr[data-key=display_days]").get_attribute("data-origin") != "commune" or \
            "2024-11" not in tab.inner_text("#rows")

        tab.fill("#value", "not json")
        tab.click("#save")
        tab.wait_for_function("() => document.getElementById('message').textContent.includes('JSON')")

        tab.fill("#value", "15")
        tab.click("#save")
        tab.wait_for_function(
            "() => document.querySelector('#rows tr[data-key=display_days]').textContent.includes('2024-11')")
        row = tab.locator("#rows tr[data-key=display_days]")
        assert row.get_attribute("data-origin") == "commune" and "15" in row.locator(".value").inner_text()
        assert "display_days" in tab.inner_text("#message")
        web_map._shot(tab, "reglages")
