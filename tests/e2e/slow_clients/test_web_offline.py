"""The web map without its link to the service, in a real browser (web/src/sw.js).

A commune office views Bargny's parcels and opens one; then the service goes away (its server stopped, as when
the office's link to the pole is down) and the page is reloaded: the map, the parcels viewed and the sheet opened
come from the service worker's copies, under the banner « Hors ligne — carte en lecture seule, données du … », and
every action that writes is disabled. A signed-in officer's answers are never kept. Same browser and helpers as
``test_web_map.py``; a server of its own, which the test stops and starts again.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from sifc.settings import Settings
from tests.conftest import REPO, env_for
from tests.e2e.helpers import SIFC, free_port, run_cli, start_server
from tests.e2e.slow_clients import test_web_map as web_map

# test_web_map's browser, found by pytest under this name.
browser_context = web_map.browser_context
_go, _rendered, _shot, _sign_in = web_map._go, web_map._rendered, web_map._shot, web_map._sign_in

BARGNY = web_map.BARGNY
BANNER = "Hors ligne — carte en lecture seule, données du "
DATA_CACHE = "sifc-data-1"


class Service:
    """The service of the module's database on one port, stopped and started again by the test."""

    def __init__(self, settings: Settings, log_dir) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = start_server(self.settings, self.port, self.log_dir / f"server-{id(self)}.log",
                                    extra_env={"SIFC_IMPORT_WORKERS": "0"})

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture(scope="module")
def service(fresh_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    built = subprocess.run(["bash", "scripts/web.sh"], cwd=REPO, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=600, check=False)
    assert built.returncode == 0, built.stderr
    loaded = run_cli(fresh_db, "demo", "load")
    assert loaded.returncode == 0, loaded.stderr
    created = subprocess.run([*SIFC, "users", "create", "agent.bargny", "--role", "agent_foncier", "--scope",
                              "commune:SN0104-bargny", "--password-stdin"], cwd=REPO, env=env_for(fresh_db),
                             input=web_map.PASSWORD + "\n", capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, created.stderr
    running = Service(fresh_db, tmp_path_factory.mktemp("offline"))
    running.start()
    yield running
    running.stop()


def _kept(page) -> list[str]:
    """The paths (and queries) of the answers the service worker keeps, as the page's own Cache API sees them."""
    return page.evaluate(f"""async () => {{
        const cache = await caches.open("{DATA_CACHE}");
        return (await cache.keys()).map((r) => {{ const u = new URL(r.url); return u.pathname + u.search; }});
    }}""")


def _parcels_at_centre(page) -> list[str]:
    return page.evaluate("""() => {
        const map = window.sifc.map, box = map.getCanvas().getBoundingClientRect();
        return map.queryRenderedFeatures([box.width / 2, box.height / 2], {layers: ['parcels-fill']})
                  .map((f) => f.properties.id);
    }""")


def _load(page, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_function("() => window.sifc && window.sifc.map && window.sifc.map.loaded()")


def test_the_map_viewed_stays_readable_offline_read_only_with_its_banner(browser_context, service):
    server = service.url
    with web_map._watched(browser_context, server) as page:
        _load(page, server)
        page.evaluate("sessionStorage.clear(); localStorage.clear()")
        page.wait_for_function("() => navigator.serviceWorker.controller !== null")  # installed, controls the page
        _load(page, server)  # from now on every fetch of the page goes through the worker
        assert page.locator("#offline").is_hidden()
        _go(page, *BARGNY, 16)
        online_parcels = _rendered(page, "parcels-fill")
        assert online_parcels > 0
        opened = _parcels_at_centre(page)[0]
        page.evaluate("(id) => window.sifc.openParcel(id)", opened)
        page.wait_for_selector("#sheet-history")
        kept = _kept(page)
        assert any(path.startswith("/tiles/parcels/16/") for path in kept), kept
        assert f"/parcels/{opened}" in kept

        # A signed-in officer's answers (authors, holders, procedures…) are read from the network only.
        _sign_in(page, "agent.bargny")
        other = next(pid for pid in page.evaluate(
            "window.sifc.map.queryRenderedFeatures({layers: ['parcels-fill']}).map((f) => f.properties.id)")
            if pid != opened)
        page.evaluate("(id) => window.sifc.openParcel(id)", other)
        page.wait_for_selector("#sheet-procedures ul", state="attached")
        kept = _kept(page)
        assert not [path for path in kept if other in path], kept
        assert not [path for path in kept if path.startswith(("/auth", "/imports", "/field", "/procedures", "/sources",
                                                              "/dashboards", "/admin"))], kept
        page.click("#logout")
        page.evaluate("sessionStorage.clear()")

        # The link goes down: the page reloads from the worker's copies.
        service.stop()
        _load(page, server)
        page.wait_for_function("() => !document.getElementById('offline').hidden")
        banner = page.locator("#offline").inner_text()
        assert banner.startswith(BANNER), banner
        assert banner[len(BANNER):].strip()[:2].isdigit(), banner  # a date, « 05/12/2026 15:40 »
        _go(page, *BARGNY, 16)
        assert _rendered(page, "parcels-fill") == online_parcels
        assert opened in _parcels_at_centre(page)
        page.evaluate("(id) => window.sifc.openParcel(id)", opened)
        page.wait_for_selector(f"#parcel-sheet[data-id='{opened}']")
        for control in ("#login-open", "#open-imports", "#tools [data-mode='draw-query']"):
            assert page.locator(control).is_disabled(), control
        page.evaluate("(id) => window.sifc.openParcel(id)", other)  # never viewed anonymously: a message, no error
        page.wait_for_function("() => document.querySelector('#panel-body .error')")
        assert "Hors ligne" in page.locator("#panel-body .error").inner_text()
        _shot(page, "offline")

        # The link is back: the banner goes, the actions come back.
        service.start()
        page.evaluate("window.sifc.checkLink()")
        page.wait_for_function("() => document.getElementById('offline').hidden")
        assert page.locator("#login-open").is_enabled() and page.locator("#open-imports").is_enabled()
