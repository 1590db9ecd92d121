"""The web application at ``/`` in a real browser.

Debian's chromium (installed by scripts/ensure-browser.sh when missing; Playwright never downloads a
browser) renders MapLibre GL JS with SwiftShader's software WebGL, against a real server on a fresh
database with the demo parcels. Screenshots are kept under ``tests/artifacts/`` (gitignored).
"""

from __future__ import annotations

import io
import json
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyproj
import pytest
from matplotlib.image import imsave
from playwright.sync_api import sync_playwright

from sifc.settings import Settings
from tests.conftest import IN_CI, REPO, env_for
from tests.e2e.helpers import SIFC, free_port, get, run_cli, start_server

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
BARGNY = (-17.2283, 14.6933)  # the demo's centre in Bargny (sifc/demo.py)
PASSWORD = "un mot de passe assez long"
TIMEOUT_MS = 30_000


def _chromium() -> str:
    done = subprocess.run(["bash", "scripts/ensure-browser.sh"], cwd=REPO, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=900, check=False)
    if done.returncode != 0:
        message = f"chromium absent and scripts/ensure-browser.sh failed: {done.stderr[-1500:]}"
        if IN_CI:
            pytest.fail(message + " — in CI this is a failure")
        pytest.skip(message)
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def server(fresh_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    built = subprocess.run(["bash", "scripts/web.sh"], cwd=REPO, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=600, check=False)
    assert built.returncode == 0, built.stderr
    loaded = run_cli(fresh_db, "demo", "load")
    assert loaded.returncode == 0, loaded.stderr
    for username, role in (("agent.bargny", "agent_foncier"), ("analyste.bargny", "analyste_sig")):
        created = subprocess.run([*SIFC, "users", "create", username, "--role", role, "--scope",
                                  "commune:SN0104-bargny", "--password-stdin"], cwd=REPO, env=env_for(fresh_db),
                                 input=PASSWORD + "\n", capture_output=True, text=True, timeout=120, check=False)
        assert created.returncode == 0, created.stderr
    port = free_port()
    process = start_server(fresh_db, port, tmp_path_factory.mktemp("web") / "server.log")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    executable = _chromium()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=executable, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800}, locale="fr-FR")
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        context.close()


# The page's policy forbids eval: every predicate is a function (Playwright calls it, never evals a string).
CSP_WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
                          (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


@contextmanager
def _watched(browser_context, server: str, *also_allowed: str, blocked: tuple[str, ...] = ()) -> Iterator[object]:
    """A new page; on leaving, no script error, no Content-Security-Policy violation (events and console)
    happened, and nothing was fetched but from the service (and ``also_allowed`` origins).

    ``blocked``: outside URLs a page names and the policy is expected to stop (they never leave the browser).
    """
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text else None)
    page.add_init_script(CSP_WATCH)
    external: list[str] = []
    page.on("request", lambda request: None if request.url.startswith((server, *also_allowed, "data:", "blob:"))
            else external.append(request.url))
    reached: list[str] = []
    page.on("requestfinished", lambda request: None if request.url.startswith(
        (server, *also_allowed, "data:", "blob:")) else reached.append(request.url))
    yield page
    refused += page.evaluate("window.__csp || []")
    assert not errors, errors
    assert not [text for text in refused if not any(url in text for url in blocked)], \
        f"the policy refused: {refused[:5]}"
    assert not [url for url in external if not url.startswith(blocked)], \
        f"the page fetched from outside the service: {external[:5]}"
    assert not reached, f"a request left the machine: {reached[:5]}"
    page.close()


@contextmanager
def _open_app(browser_context, server: str, *also_allowed: str) -> Iterator[object]:
    """The application of ``server`` in a new page with empty storage (see :func:`_watched`)."""
    with _watched(browser_context, server, *also_allowed) as page:
        page.goto(server + "/")
        page.evaluate("sessionStorage.clear(); localStorage.clear()")
        page.reload()
        page.wait_for_function("() => window.sifc && window.sifc.map && window.sifc.map.loaded()")
        yield page


@pytest.fixture
def page(browser_context, server: str):
    with _open_app(browser_context, server) as opened:
        yield opened


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"web_{name}.png"
    page.screenshot(path=str(path))
    return path


def _go(page, lon: float, lat: float, zoom: float) -> None:
    page.evaluate("([lon, lat, zoom]) => window.sifc.map.jumpTo({center: [lon, lat], zoom})", [lon, lat, zoom])
    page.wait_for_function("() => window.sifc.map.loaded() && window.sifc.map.areTilesLoaded()")
    page.wait_for_timeout(300)
    page.wait_for_function("() => window.sifc.map.loaded()")


def _api(server: str, path: str) -> dict:
    status, _, body = get(server + path)
    assert status == 200, body[:500]
    return json.loads(body)


def test_map_loads_offline_with_communes_drawn_and_labelled(page, server):
    assert page.title().startswith("SIFC")
    _go(page, -17.2, 14.72, 10)
    communes = page.evaluate("window.sifc.map.queryRenderedFeatures({layers: ['communes-fill']})"
                             ".map(f => [f.properties.code, f.properties.boundary_status])")
    assert ["SN0104-bargny", "provisional"] in communes
    provisional = page.evaluate("window.sifc.map.queryRenderedFeatures({layers: ['communes-provisional']}).length")
    assert provisional > 0
    label = page.locator(".commune-label[data-code='SN0104-bargny']")
    assert "limite provisoire" in label.inner_text()
    _shot(page, "communes")
    licence = get(server + "/app/vendor/maplibre-gl/LICENSE.txt")
    assert licence[0] == 200 and b"MapLibre" in licence[2]


def test_the_policy_headers_are_sent_and_the_map_runs_under_them(page, server):
    _go(page, *BARGNY, 16)  # tiles, MapLibre's blob: workers, the parcels drawn: no violation (checked on leaving)
    assert _rendered(page, "parcels-fill") > 0
    status, headers, _ = get(server + "/")
    assert status == 200
    policy = {name.lower(): value for name, value in headers.items()}
    assert "worker-src 'self' blob:" in policy["content-security-policy"]
    assert "frame-ancestors 'none'" in policy["content-security-policy"]
    assert policy["x-frame-options"] == "DENY" and policy["x-content-type-options"] == "nosniff"
    assert policy["referrer-policy"] == "same-origin"


def test_the_api_documentation_renders_from_the_service_alone(browser_context, server):
    with _watched(browser_context, server) as docs:
        docs.goto(server + "/docs")
        docs.wait_for_selector(".swagger-ui .opblock", state="visible")
        # Swagger UI draws a large document lazily (the operations near the viewport only): count what it
        # loaded rather than what it drew.
        assert docs.evaluate("window.ui.specSelectors.operations().size") > 50
        assert docs.locator(".swagger-ui .info .title").inner_text().startswith("SIFC")
        docs.locator(".swagger-ui .opblock-summary").first.click()
        docs.wait_for_selector(".swagger-ui .opblock-body", state="visible")
        _shot(docs, "docs")
    # ReDoc names one outside image (Redocly's logo, cdn.redoc.ly): the policy stops it, nothing leaves.
    with _watched(browser_context, server, blocked=("https://cdn.redoc.ly/",)) as reference:
        reference.goto(server + "/redoc")
        reference.wait_for_selector("[data-section-id]", state="attached")
        assert reference.locator("h1").first.inner_text().startswith("SIFC")
        _shot(reference, "redoc")
    for path in ("/app/vendor/swagger-ui/LICENSE.txt", "/app/vendor/redoc/LICENSE.txt"):
        status, _, body = get(server + path)
        assert status == 200 and b"License" in body


def _rendered(page, layer: str) -> int:
    return page.evaluate(f"window.sifc.map.queryRenderedFeatures({{layers: ['{layer}']}}).length")


def test_layers_switch_off_and_stay_off_and_there_is_no_base_layer_by_default(page, server):
    assert not page.locator("#basemap-toggle").is_visible()
    assert page.evaluate("window.sifc.map.getLayer('basemap') === undefined")
    _go(page, *BARGNY, 16)
    assert _rendered(page, "parcels-fill") > 0
    page.uncheck("#legend [data-layer-group=parcels]")
    page.uncheck("#legend [data-layer-group=provisional]")
    page.wait_for_function("() => window.sifc.map.loaded()")
    assert page.evaluate("window.sifc.map.getLayoutProperty('parcels-fill', 'visibility')") == "none"
    assert _rendered(page, "parcels-fill") == 0 and _rendered(page, "communes-provisional") == 0
    _shot(page, "layers_off")
    page.reload()  # the choice is kept
    page.wait_for_function("() => window.sifc && window.sifc.map && window.sifc.map.loaded()")
    assert not page.locator("#legend [data-layer-group=parcels]").is_checked()
    assert page.evaluate("window.sifc.map.getLayoutProperty('parcels-fill', 'visibility')") == "none"
    page.check("#legend [data-layer-group=parcels]")
    page.check("#legend [data-layer-group=provisional]")
    _go(page, *BARGNY, 16)
    assert _rendered(page, "parcels-fill") > 0 and _rendered(page, "communes-provisional") > 0
    page.uncheck("#legend [data-layer-group=communes]")  # the commune labels go with the communes
    _go(page, -17.2, 14.72, 10)
    assert page.locator(".commune-label").count() == 0
    page.check("#legend [data-layer-group=communes]")
    _go(page, -17.2, 14.72, 10.01)
    assert page.locator(".commune-label").count() > 0


def test_parcels_render_from_tiles_and_a_click_opens_the_right_sheet(page, server):
    _go(page, *BARGNY, 17)
    count = page.evaluate("window.sifc.map.queryRenderedFeatures({layers: ['parcels-fill']}).length")
    assert count > 0
    _shot(page, "parcels")
    box = page.locator("#map").bounding_box()
    x, y = box["width"] * 0.4, box["height"] * 0.45  # a point of the map, left of the side panel
    lon, lat = page.evaluate("([x, y]) => { const p = window.sifc.map.unproject([x, y]); return [p.lng, p.lat]; }",
                             [x, y])
    expected = _api(server, f"/parcels/at?lon={lon}&lat={lat}")["features"]
    assert expected, "the clicked point should be in a demo parcel"
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_selector("#parcel-sheet")
    assert page.locator("#sheet-nicad").inner_text() == expected[0]["properties"]["nicad"]
    page.wait_for_selector("#sheet-rights")
    page.wait_for_selector("#sheet-lineage")
    assert page.locator("#fiche-link").get_attribute("href") == f"/parcels/{expected[0]['id']}/fiche.pdf"
    _shot(page, "sheet")


def test_search_by_nicad_flies_to_the_parcel(page, server):
    parcels = _api(server, "/communes/SN0104-bargny/parcels?limit=5")["features"]
    nicad = next(f["properties"]["nicad"] for f in parcels if f["properties"]["nicad"])
    page.select_option("#search-kind", "nicad")
    page.fill("#search-text", nicad)
    page.click("#search button[type=submit]")
    page.wait_for_selector("#parcel-sheet")
    assert page.locator("#sheet-nicad").inner_text() == nicad
    page.wait_for_function("() => window.sifc.map.getZoom() > 15")


def test_commune_search_polygon_query_and_measure(page, server):
    page.select_option("#search-kind", "commune")
    page.fill("#search-text", "bargny")
    page.click("#search button[type=submit]")
    page.wait_for_selector("#commune[data-code='SN0104-bargny']")
    page.click("#show-overlaps")
    page.wait_for_function("() => document.getElementById('overlaps-count').textContent !== ''")
    lon, lat = BARGNY
    square = {"type": "Polygon", "coordinates": [[[lon - 0.0008, lat - 0.0008], [lon + 0.0008, lat - 0.0008],
                                                  [lon + 0.0008, lat + 0.0008], [lon - 0.0008, lat + 0.0008],
                                                  [lon - 0.0008, lat - 0.0008]]]}
    page.evaluate("g => window.sifc.queryPolygon(g)", square)
    page.wait_for_selector("#query-results li")
    request = urllib.request.Request(server + "/parcels/intersecting", data=json.dumps(square).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        hit = json.loads(response.read())["features"]
    assert hit and page.locator("#query-results li").count() == len(hit)
    # Measures in the browser agree with the WGS 84 geodesic (pyproj) within 0.1 %.
    ring = square["coordinates"][0]
    geod = pyproj.Geod(ellps="WGS84")
    length = page.evaluate("r => window.sifc.lineLength(r)", ring)
    assert length == pytest.approx(geod.line_length(*zip(*ring, strict=True)), rel=0.001)
    area = page.evaluate("r => window.sifc.ringArea(r.slice(0, -1))", ring)
    assert area == pytest.approx(abs(geod.polygon_area_perimeter(*zip(*ring, strict=True))[0]), rel=0.001)


def test_login_logout_and_english(page, server):
    page.click("#login-open")
    page.fill("#login-form input[name=username]", "agent.bargny")
    page.fill("#login-form input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('who').textContent === 'agent.bargny'")
    assert page.evaluate("Boolean(window.sifc.state.token)")
    assert page.locator("#logout").is_visible()
    # An access token that no longer works is renewed once with the refresh token, and the call retried.
    parcel = _api(server, "/parcels/at?lon=-17.2283&lat=14.6933")["features"][0]["id"]
    page.evaluate("window.sifc.state.token = 'expired'")
    assert page.evaluate("async id => (await window.sifc.api(`/parcels/${id}/procedures`)).status", parcel) == 200
    assert page.evaluate("window.sifc.state.token") != "expired"
    page.click("#lang")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#logout").inner_text() == "Sign out"
    assert page.locator("#search button[type=submit]").inner_text() == "Search"
    _shot(page, "english")
    page.click("#logout")
    page.wait_for_function("() => !window.sifc.state.token")
    assert page.locator("#login-open").inner_text() == "Sign in"


def _sign_in(page, username: str) -> None:
    page.click("#login-open")
    page.fill("#login-form input[name=username]", username)
    page.fill("#login-form input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_function(f"() => document.getElementById('who').textContent === '{username}'")


def _call(server: str, method: str, path: str, token: str, body: dict | None = None) -> tuple[dict, dict]:
    request = urllib.request.Request(server + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read()), dict(response.headers)


def test_procedure_page_records_the_next_step_with_if_match(page, server):
    _sign_in(page, "agent.bargny")
    token = page.evaluate("window.sifc.state.token")
    parcels = _api(server, "/parcels/near?lon=-17.2283&lat=14.6933&distance=300")["features"]
    free = next(f for f in parcels if not _call(server, "GET", f"/parcels/{f['id']}/procedures", token)[0]
                and not _call(server, "GET", f"/parcels/{f['id']}/rights", token)[0]["rights"])
    party, _ = _call(server, "POST", "/parties", token, {"kind": "natural_person", "name": "Sarr", "given_names": "Fatou",
                                                         "commune_code": "SN0104-bargny"})
    procedure, _ = _call(server, "POST", "/procedures", token, {
        "parcel_id": free["id"], "registered_on": "2026-11-02", "reference": "DEM-WEB-1",
        "applicants": [{"party_id": party["id"], "share": "1"}]})
    source, _ = _call(server, "POST", "/sources", token, {"kind": "proces_verbal", "document_date": "2026-11-09",
                                                          "commune_code": "SN0104-bargny", "reference": "PV WEB"})
    page.evaluate("id => window.sifc.openProcedure(id)", procedure["id"])
    page.wait_for_selector("#step-form")
    assert page.locator("#procedure-steps li").count() == 1
    page.select_option("#step-form select[name=step]", "surveyed")
    page.fill("#step-form input[name=occurred_on]", "2026-11-09")
    page.fill("#step-form input[name=source_ids]", source["id"])
    page.check("#step-form input[name=neighbours_consulted]")
    page.click("#step-form button[type=submit]")
    page.wait_for_function("() => document.querySelectorAll('#procedure-steps li').length === 2")
    page.wait_for_selector("#procedure-documents li")
    assert "PV WEB" in page.locator("#procedure-documents").inner_text()
    assert _call(server, "GET", f"/procedures/{procedure['id']}", token)[0]["state"] == "surveyed"
    # The parcel's sheet lists the procedure for a signed-in officer.
    page.evaluate("id => window.sifc.openParcel(id)", free["id"])
    page.wait_for_selector(f"#sheet-procedures [data-procedure='{procedure['id']}']")
    _shot(page, "procedure")


def _overlapping_pair() -> bytes:
    """Two parcels of Bargny, about 1.5 km from the demo's, overlapping each other: both are rejected."""
    def square(lon: float, lat: float, side: float = 0.0002) -> dict:
        ring = [[lon, lat], [lon + side, lat], [lon + side, lat + side], [lon, lat + side], [lon, lat]]
        return {"type": "Feature", "properties": {"nicad": None, "land_use": "habitation"},
                "geometry": {"type": "Polygon", "coordinates": [ring]}}
    return json.dumps({"type": "FeatureCollection",
                       "features": [square(-17.215, 14.705), square(-17.2149, 14.7051)]}).encode()


def test_import_page_follows_the_job_and_shows_the_rejects(page, server):
    _sign_in(page, "analyste.bargny")
    page.click("#open-imports")
    page.set_input_files("#import-form input[name=file]", files=[
        {"name": "levé-web.geojson", "mimeType": "application/geo+json", "buffer": _overlapping_pair()}])
    page.fill("#import-form input[name=commune]", "SN0104-bargny")
    page.check("#import-form input[name=dry_run]")
    page.click("#import-form button[type=submit]")
    page.wait_for_function("() => ['done', 'failed'].includes((document.getElementById('import-status') || {}).textContent)",
                           timeout=90_000)
    assert page.locator("#import-status").inner_text() == "done"
    page.click("#import-job button:has-text('Rapport')")
    page.wait_for_selector("#import-report table")
    assert "overlap_in_file" in page.locator("#import-issues").inner_text()
    page.click("#import-job button:has-text('Rejets')")
    page.wait_for_function("() => window.sifc.map.getZoom() > 15")
    page.wait_for_function("() => window.sifc.map.loaded() && "
                           "window.sifc.map.queryRenderedFeatures({layers: ['rejects-fill']}).length > 0")
    _shot(page, "rejects")


def test_poles_are_drawn_and_a_pole_dashboard_opens(page, server):
    _go(page, -17.0, 14.6, 7)
    assert page.evaluate("window.sifc.map.queryRenderedFeatures({layers: ['poles-line']}).length") > 0
    box = page.locator("#map").bounding_box()
    x, y = page.evaluate("() => { const p = window.sifc.map.project([-16.9, 14.75]); return [p.x, p.y]; }")  # Thiès
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_selector("#pole-dashboard-link")
    page.click("#pole-dashboard-link")
    page.wait_for_function("() => document.querySelector('#pole img') && document.querySelector('#pole img').complete"
                           " && document.querySelector('#pole img').naturalWidth > 0", timeout=30_000)
    _shot(page, "pole_dashboard")


def test_the_sheet_the_map_links_to_downloads_and_verifies(page, server):
    parcel = _api(server, "/communes/SN0104-bargny/parcels?limit=1")["features"][0]
    page.evaluate("(id) => window.sifc.openParcel ? window.sifc.openParcel(id) : null", parcel["id"])
    verdict = page.evaluate("""async (id) => {
        const pdf = await (await fetch(`/parcels/${id}/fiche.pdf`)).blob();
        const form = new FormData();
        form.append("file", pdf, "fiche.pdf");
        return await (await fetch("/documents/verify", {method: "POST", body: form})).json();
    }""", parcel["id"])
    assert verdict["authentic"] is True and verdict["status"] == "authentique"


# ---- the optional base layer: an operator's XYZ raster tile server (here a local one) ------------------------
class _TileServer(ThreadingHTTPServer):
    """Answers every ``/{z}/{x}/{y}.png`` with one green 256 × 256 PNG and remembers the paths asked."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _TileHandler)
        buffer = io.BytesIO()
        imsave(buffer, [[(0.75, 0.87, 0.7)] * 256] * 256, format="png")
        self.png, self.paths = buffer.getvalue(), []


class _TileHandler(BaseHTTPRequestHandler):
    server: _TileServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(self.server.png)))
        self.end_headers()
        self.wfile.write(self.server.png)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tile_server() -> Iterator[_TileServer]:
    tiles = _TileServer()
    threading.Thread(target=tiles.serve_forever, daemon=True).start()
    yield tiles
    tiles.shutdown()
    tiles.server_close()


@pytest.fixture(scope="module")
def basemap_server(server, fresh_db: Settings, tile_server: _TileServer,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{tile_server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    process = start_server(fresh_db, port, tmp_path_factory.mktemp("web-basemap") / "server.log",
                           extra_env={"SIFC_BASEMAP_URL": url, "SIFC_BASEMAP_ATTRIBUTION": "Tuiles de la commune (test)"})
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)


def test_a_configured_base_layer_is_drawn_attributed_and_can_be_switched_off(browser_context, basemap_server,
                                                                            tile_server):
    config = _api(basemap_server, "/app/config.json")["basemap"]
    assert config["tiles"][0].endswith("/{z}/{x}/{y}.png") and config["attribution"]
    tiles_origin = f"http://127.0.0.1:{tile_server.server_address[1]}/"
    with _open_app(browser_context, basemap_server, tiles_origin) as page:
        _go(page, *BARGNY, 15)
        assert page.locator("#basemap-toggle").is_visible()
        assert page.evaluate("window.sifc.map.getLayoutProperty('basemap', 'visibility')") in (None, "visible")
        zooms = {int(path.split("/")[1]) for path in tile_server.paths}
        assert max(zooms) >= 15, sorted(zooms)
        assert "Tuiles de la commune (test)" in page.locator(".maplibregl-ctrl-attrib").inner_text()
        _shot(page, "basemap")
        page.uncheck("#legend [data-layer-group=basemap]")
        assert page.evaluate("window.sifc.map.getLayoutProperty('basemap', 'visibility')") == "none"
        page.reload()
        page.wait_for_function("() => window.sifc && window.sifc.map && window.sifc.map.loaded()")
        assert not page.locator("#legend [data-layer-group=basemap]").is_checked()
        before = len(tile_server.paths)
        _go(page, *BARGNY, 16)
        assert len(tile_server.paths) == before, "a base layer switched off fetches no tile"
        assert _rendered(page, "parcels-fill") > 0
