"""Localités in a real browser: the map draws the pilots' OSM localités with their names and the OSM attribution
from the zoom where they help, and a land officer of Bargny adds, corrects and retires one on the localités page
(web/src/pages/localites.html). Same browser, server and helpers as ``test_web_map.py``."""

from __future__ import annotations

from tests.e2e.slow_clients import test_web_disputes as disputes
from tests.e2e.slow_clients import test_web_map as web_map

browser_context = web_map.browser_context
server = web_map.server
page = web_map.page
BARGNY = "SN0104-bargny"
MONT_ROLLAND = (-16.96, 14.93)


def test_the_map_labels_the_localites_and_credits_openstreetmap(page, server):
    web_map._go(page, *MONT_ROLLAND, 9)
    # Below the layer's zoom, MapLibre does not draw it and the page puts no label (queryRenderedFeatures may still
    # answer from the tiles of a previous, closer view, so the zoom and the labels are what is checked).
    assert page.evaluate("window.sifc.map.getZoom() < window.sifc.map.getLayer('localites-points').minzoom")
    assert page.evaluate("document.querySelectorAll('.localite-label').length") == 0
    web_map._go(page, *MONT_ROLLAND, 13.5)
    page.wait_for_function("() => document.querySelectorAll('.localite-label').length > 0")
    names = page.eval_on_selector_all(".localite-label", "nodes => nodes.map(n => n.textContent)")
    assert "Mont Rolland" in names, names
    assert web_map._rendered(page, "localites-points") > 0
    attribution = page.evaluate("document.querySelector('.maplibregl-ctrl-attrib-inner').textContent")
    assert "OpenStreetMap" in attribution and "ODbL" in attribution
    web_map._shot(page, "localites")
    page.uncheck("#legend [data-layer-group=localites]")
    page.wait_for_function("() => document.querySelectorAll('.localite-label').length === 0")
    assert page.evaluate("window.sifc.map.getLayoutProperty('localites-points', 'visibility')") == "none"
    page.check("#legend [data-layer-group=localites]")


def test_an_officer_adds_corrects_and_retires_a_localite(browser_context, server):
    with web_map._watched(browser_context, server) as tab:
        disputes._sign_in(tab, server, "agent.bargny")
        tab.goto(f"{server}/app/pages/localites.html?commune={BARGNY}")
        tab.wait_for_function("() => document.querySelectorAll('#rows tr').length > 0")
        assert "Bargny" in tab.inner_text("#rows") and "OpenStreetMap" in tab.inner_text("#attribution")

        # A point in Sandiara for Bargny: refused with the service's sentence, nothing added.
        tab.fill("#name", "Hors commune")
        tab.fill("#lon", "-16.78")
        tab.fill("#lat", "14.43")
        tab.click("#save")
        tab.wait_for_function("() => document.getElementById('message').classList.contains('error')")
        assert "hors de la limite" in tab.inner_text("#message")
        assert "Hors commune" not in tab.inner_text("#rows")

        tab.fill("#name", "Quartier Web")
        tab.select_option("#kind", "quartier")
        tab.fill("#lon", "-17.2250")
        tab.fill("#lat", "14.6950")
        tab.click("#save")
        tab.wait_for_function("() => document.getElementById('rows').textContent.includes('Quartier Web')")

        tab.locator("#rows tr", has_text="Quartier Web").locator("button.choose").click()
        tab.fill("#name", "Quartier Web Nord")
        tab.fill("#reason", "nom en usage")
        tab.click("#save")
        tab.wait_for_function("() => document.getElementById('rows').textContent.includes('Quartier Web Nord')")

        tab.locator("#rows tr", has_text="Quartier Web Nord").locator("button.choose").click()
        tab.fill("#reason", "doublon")
        tab.click("#retire")
        tab.wait_for_function("() => !document.getElementById('rows').textContent.includes('Quartier Web')")
        assert not tab.locator("#message.error").count()
