"""A field return through the web map's import page, in a real browser.

An agent foncier of Bargny checks out a package through the API, edits its ``data.gpkg`` as QGIS
would (one land use changed, one parcel moved 0.5 m east), sends the zip from the page, previews
it (the changed parcels drawn on the map by status), then applies it and finds the registry
changed. Same browser, server and demo as ``test_web_map.py``, whose fixtures are reused.
"""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from pathlib import Path

from shapely import affinity

from tests.e2e.helpers import get
from tests.e2e.slow_clients import test_web_map as web_map
from tests.integration.test_field_returns import blob, edit, fid_of, shape_of

# test_web_map's fixtures, found by pytest under these names: the demo on a fresh database, its server, chromium.
server = web_map.server
browser_context = web_map.browser_context
page = web_map.page
_api, _call, _shot, _sign_in = web_map._api, web_map._call, web_map._shot, web_map._sign_in

BARGNY = "SN0104-bargny"


# --- editing the package's GeoPackage as QGIS would (the helpers of tests/integration/test_field_returns.py) --
def _edited_zip(package: bytes, folder: Path, relabelled: str, moved: str, disputed: str) -> bytes:
    """The package's zip with ``relabelled``'s land use set to commerce, ``moved`` shifted 0.5 m east and
    ``disputed``'s land use set to voirie."""
    with zipfile.ZipFile(io.BytesIO(package)) as bundle:
        bundle.extractall(folder)
    gpkg = next(folder.rglob("data.gpkg"))
    edit(gpkg, "UPDATE parcels SET land_use = 'commerce' WHERE parcel_id = ?", relabelled)
    edit(gpkg, "UPDATE parcels SET land_use = 'voirie' WHERE parcel_id = ?", disputed)
    fid = fid_of(gpkg, moved)
    edit(gpkg, "UPDATE parcels SET geom = ? WHERE fid = ?", blob(affinity.translate(shape_of(gpkg, fid), xoff=0.5)), fid)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(folder).as_posix())
    return out.getvalue()


def _download(server: str, path: str, token: str) -> bytes:
    status, _, body = get(server + path, timeout=120, headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body[:500]
    return body


def _office_edit(server: str, parcel_id: str, token: str) -> None:
    """The office changes ``parcel_id`` after the checkout (a new version the package has not seen)."""
    status, headers, _ = get(server + f"/parcels/{parcel_id}", headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    tag = next(value for name, value in headers.items() if name.lower() == "etag")
    body = {"type": "Feature", "geometry": None, "properties": {"land_use": "mixte", "reason": "bureau"}}
    request = urllib.request.Request(server + f"/parcels/{parcel_id}", method="PATCH", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                              "If-Match": tag})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def _wait_done(page) -> None:
    page.wait_for_function("() => ['done', 'failed'].includes((document.getElementById('field-status') || {})"
                           ".textContent) && document.querySelector('#field-report table, #field-job .error')",
                           timeout=120_000)
    assert page.locator("#field-status").inner_text() == "done", page.locator("#field-job").inner_text()


def _preview_features(page) -> list[dict]:
    return page.evaluate("window.sifc.map.getSource('field-preview').serialize().data.features"
                         ".map(f => f.properties)")


def test_a_field_worker_previews_then_applies_a_return_from_the_import_page(page, server, tmp_path):
    _sign_in(page, "agent.bargny")
    token = page.evaluate("window.sifc.state.token")
    package, _ = _call(server, "POST", "/field/packages", token, {"commune": BARGNY})
    parcels = _api(server, f"/communes/{BARGNY}/parcels?limit=400")["features"]
    relabelled, moved, disputed = [f["id"] for f in parcels if f["properties"].get("land_use") not in
                                   ("commerce", "voirie", "mixte")][:3]
    edited = _edited_zip(_download(server, f"/field/packages/{package['id']}/download", token), tmp_path,
                         relabelled, moved, disputed)
    _office_edit(server, disputed, token)

    page.click("#open-imports")
    page.wait_for_selector(f"#field-return-form select[name=package] option[value='{package['id']}']",
                           state="attached")
    page.select_option("#field-return-form select[name=package]", package["id"])
    page.set_input_files("#field-return-form input[name=file]", files=[
        {"name": "dossier-terrain.zip", "mimeType": "application/zip", "buffer": edited}])
    assert page.locator("#field-apply").is_disabled()
    page.click("#field-preview-send")
    _wait_done(page)
    assert page.locator("#field-report h3").inner_text().startswith("Aperçu")
    counts = {k: int(page.locator(f"#field-count-{k}").inner_text()) for k in ("applied", "conflict", "refused")}
    # The moved parcel is applied, or refused where it now overlaps its neighbour beyond the tolerance.
    assert counts["conflict"] == 1 and counts["applied"] + counts["refused"] == 2, counts
    assert page.locator("#field-features li").count() == 3
    assert all(text.endswith("À appliquer")
               for text in page.locator("#field-features li[data-status=applied]").all_inner_texts())
    page.wait_for_function("() => window.sifc.map.getSource('field-preview').serialize().data.features.length >= 4")
    drawn = _preview_features(page)
    assert sorted((p["status"], p["side"]) for p in drawn if p["status"] == "conflict") == [
        ("conflict", "field"), ("conflict", "registry")]
    assert len([p for p in drawn if p["side"] == "field"]) == 3
    page.wait_for_function("() => window.sifc.map.getZoom() > 14 && window.sifc.map.loaded()")
    for layer in ("field-preview-fill", "field-preview-line", "field-preview-registry"):
        page.wait_for_function("layer => window.sifc.map.queryRenderedFeatures({layers: [layer]}).length > 0", arg=layer)
    _shot(page, "field_return_preview")
    # The preview wrote nothing.
    assert _call(server, "GET", f"/parcels/{relabelled}", token)[0]["properties"]["land_use"] != "commerce"

    page.click("#field-apply")
    _wait_done(page)
    assert page.locator("#field-report h3").inner_text().startswith("Résultat")
    assert int(page.locator("#field-count-applied").inner_text()) == counts["applied"] >= 1
    assert int(page.locator("#field-count-conflict").inner_text()) == 1
    applied = page.locator("#field-features li[data-status=applied]").all_inner_texts()
    assert applied and all("Appliquées" in text for text in applied)
    parcel = _call(server, "GET", f"/parcels/{relabelled}", token)[0]["properties"]
    assert parcel["land_use"] == "commerce"
    assert _call(server, "GET", f"/parcels/{disputed}", token)[0]["properties"]["land_use"] == "mixte"
    # The conflict (and any refusal) to fix and return: a GeoPackage, one click away.
    with page.expect_download() as download:
        page.click("#field-rejects")
    assert download.value.suggested_filename.endswith(".gpkg")
    assert Path(download.value.path()).read_bytes()[:16] == b"SQLite format 3\x00"
    _shot(page, "field_return_applied")
