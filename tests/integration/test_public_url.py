"""Absolute URLs come from the public base URL (SIFC_PUBLIC_URL), never from the Host a client sent.

Every response that writes an absolute URL is crawled: the OGC pages (landing, collections,
items with their next/prev links, one item, queryables, the OpenAPI 3.0 document), the tiles'
index and TileJSON, the verification URL printed on a document, and the import ``Location``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from api.app import create_app
from api.deps import get_reader, get_session
from sifc.db import SessionReader
from sifc.settings import Settings
from tests.integration.fixtures import bargny_origin, square, write
from tests.integration.test_api_spatial import grid  # noqa: F401  (fixture)

PUBLIC = "https://sifc.bargny.example"
ALIAS = "alias.example"  # an allowed name that is not the public one: it must not show either
EVIL = "evil.example"
STARTS = ["/ogc", "/ogc/", "/ogc/api", "/ogc/collections", "/tiles", "/tiles/parcels/tilejson.json",
          "/tiles/communes/tilejson.json?properties=name"]


def _client(settings: Settings, db, host: str, **update: object) -> TestClient:
    app = create_app(settings.model_copy(update=update))

    def _session() -> Iterator:
        yield db

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_reader] = lambda: SessionReader(db)
    return TestClient(app, base_url=f"http://{host}")


@pytest.fixture
def aliased(settings, db) -> TestClient:
    return _client(settings, db, ALIAS, public_url=PUBLIC, allowed_hosts=["testserver", ALIAS])


STANDARDS = ("http://www.opengis.net/", "https://json-schema.org/")  # identifiers, not links of the service


def _hrefs(value: object) -> Iterator[str]:
    """Every absolute URL in a JSON document but the standards' identifiers (CRS, conformance classes)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _hrefs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _hrefs(item)
    elif isinstance(value, str) and "://" in value and not value.startswith(STANDARDS):
        yield value


def _crawl(client: TestClient, starts: list[str], limit: int = 200) -> dict[str, str]:
    """GET every start and every href of the public base they lead to (tiles' templates excepted)."""
    seen: dict[str, str] = {}
    pending = list(starts)
    while pending and len(seen) < limit:
        path = pending.pop(0)
        if path in seen:
            continue
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        seen[path] = response.text + json.dumps(dict(response.headers))
        if "json" not in response.headers["content-type"]:
            continue
        for href in _hrefs(response.json()):
            assert href.startswith(PUBLIC + "/") or href == PUBLIC, (path, href)
            parts = urlsplit(href)
            if "{z}" in href or parts.path in ("/docs", "/openapi.json"):
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if "/items" in parts.path and "offset=" in parts.query and len(seen) > 60:
                continue  # enough pages: the links of a page are the same code as the first
            pending.append(target)
    return seen


@pytest.mark.usefixtures("grid")
def test_no_url_is_built_from_the_host_header(aliased):
    parcel = aliased.get("/ogc/collections/parcels/items?limit=1").json()["features"][0]["id"]
    items = [f"/ogc/collections/parcels/items/{parcel}", "/ogc/collections/communes/items/SN0104-bargny",
             "/ogc/collections/parcels/items?limit=3&offset=3&land_use=habitation&bbox=-17.3,14.6,-17.0,14.8"]
    pages = _crawl(aliased, [*STARTS, *items])
    assert set(items) <= set(pages) and any("offset=10" in path for path in pages)
    assert any(path.startswith("/ogc/collections/parcels/items") for path in pages)
    for path, body in pages.items():
        assert ALIAS not in body and "testserver" not in body, path


@pytest.mark.usefixtures("grid")
def test_the_next_and_prev_links_are_public(aliased):
    page = aliased.get("/ogc/collections/parcels/items?limit=2&offset=2").json()
    rels = {link["rel"]: link["href"] for link in page["links"]}
    assert {"self", "next", "prev"} <= set(rels)
    assert all(href.startswith(f"{PUBLIC}/ogc/collections/parcels/items?") for href in rels.values())


def test_the_verification_url_printed_on_a_document_is_public(aliased, grid):  # noqa: F811
    parcel = aliased.get("/ogc/collections/parcels/items?limit=1").json()["features"][0]["id"]
    pdf = aliased.get(f"/parcels/{parcel}/fiche.pdf")
    assert pdf.status_code == 200, pdf.text[:300]
    text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert ALIAS not in text.replace("\n", "")
    assert urlsplit(PUBLIC).hostname in text.replace("\n", "")


def test_the_import_location_is_public(settings, db, tmp_path, admin_headers):
    client = _client(settings, db, ALIAS, public_url=PUBLIC, allowed_hosts=[ALIAS])
    x, y = bargny_origin(db)
    data = write(tmp_path, [{"NICAD": "0104040100001", "geometry": square(x, y)}]).read_bytes()
    response = client.post("/imports", files={"file": ("p.gpkg", data)}, data={"dry_run": "true"},
                           headers=admin_headers)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"{PUBLIC}/imports/{job['id']}" == job["links"]["self"]
    listed = client.get("/imports", headers=admin_headers).text
    assert ALIAS not in listed and PUBLIC in listed


@pytest.mark.parametrize("path", [*STARTS, "/ogc/collections/parcels/items", "/ogc/conformance", "/health",
                                  "/docs", "/", "/parcels/at?lon=-17.1&lat=14.6"])
@pytest.mark.parametrize("host", [EVIL, f"{EVIL}:8000", "testserver.evil.example", "[::2]"])
def test_an_unknown_host_is_refused(client, path, host):
    response = client.get(path, headers={"Host": host}, follow_redirects=False)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:sifc:problem:http.host_not_allowed"
    assert EVIL not in response.text and "http://testserver" in problem["detail"]


def test_an_unknown_host_is_refused_in_english_before_any_write(client, db, admin_headers):
    from tests.conftest import table_fingerprint

    before = table_fingerprint(db, "import_job")
    response = client.post("/imports?filename=a.geojson&dry_run=true", content=b'{"type":"FeatureCollection",'
                           b'"features":[]}', headers={"Host": EVIL, "Accept-Language": "en", **admin_headers})
    assert response.status_code == 400 and "Host header" in response.json()["detail"]
    assert table_fingerprint(db, "import_job") == before


def test_allowed_hosts_and_the_default_public_url():
    started = Settings(environment="test", host="0.0.0.0", port=8123)
    assert started.public_base == "http://127.0.0.1:8123"
    assert started.public_hosts == {"127.0.0.1", "localhost", "::1"}
    behind = Settings(environment="test", public_url="HTTPS://Sifc.Bargny.sn/")
    assert behind.public_base == "https://sifc.bargny.sn" and "sifc.bargny.sn" in behind.public_hosts
    listed = Settings(environment="test", allowed_hosts=[" [::1] ", "Sifc.sn"])
    assert listed.public_hosts == {"::1", "sifc.sn"}
    for wrong in ("ftp://x.sn", "https://x.sn/sifc", "https://user:pw@x.sn", "x.sn"):
        with pytest.raises(ValueError, match="SIFC_PUBLIC_URL"):
            Settings(environment="test", public_url=wrong)


def test_the_loopback_names_reach_a_default_service(settings, db):
    client = _client(settings, db, "localhost:8000", public_url=None, allowed_hosts=None, port=8000)
    landing = client.get("/ogc")
    assert landing.status_code == 200
    assert landing.json()["links"][0]["href"] == "http://127.0.0.1:8000/ogc"
    assert client.get("/ogc", headers={"Host": "[::1]:8000"}).status_code == 200
    assert client.get("/ogc", headers={"Host": EVIL}).status_code == 400
