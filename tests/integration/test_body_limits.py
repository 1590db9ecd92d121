"""Expensive anonymous work is bounded: body sizes before parsing, vertices before shapes, heavy routes rate-limited.

The limits are listed in docs/limits.md: a JSON or form body ``max_json_bytes`` (2 MiB), an import
``max_upload_bytes``, a scanned document ``max_document_bytes``; a posted geometry 10 000 vertices.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import get_reader, get_session
from sifc.db import SessionReader
from tests.conftest import table_fingerprint

HUGE = 25 * 1024 * 1024
BARGNY = "SN0104-bargny"
SMALL_POLYGON = {"type": "Polygon", "coordinates": [[[-17.22, 14.69], [-17.21, 14.69], [-17.21, 14.70],
                                                     [-17.22, 14.69]]]}


def _client(settings, db, **update: object) -> TestClient:
    app = create_app(settings.model_copy(update=update))

    def _session() -> Iterator:
        yield db

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_reader] = lambda: SessionReader(db)
    return TestClient(app)


def _too_large(response) -> None:
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:sifc:problem:http.body_too_large"


@pytest.mark.parametrize("path", ["/parcels/intersecting", "/parcels", "/auth/token", "/parties",
                                  "/parcels/merge", "/documents/verify"])
def test_a_25_mb_body_is_refused_before_it_is_read(client, path):
    started = time.monotonic()
    response = client.post(path, content=b"[" * HUGE, headers={"Content-Type": "application/json"})
    assert time.monotonic() - started < 1.0
    _too_large(response)


def test_a_streamed_body_is_cut_when_it_passes_the_limit(client):
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(HUGE // 65536):
            sent += 65536
            yield b" " * 65536

    started = time.monotonic()
    response = client.post("/parcels/intersecting", content=chunks(), headers={"Content-Type": "application/json",
                                                                              "Accept-Language": "en"})
    assert time.monotonic() - started < 1.0
    _too_large(response)
    assert "at most 2097152 bytes" in response.json()["detail"]


def test_a_refused_body_leaves_the_database_unchanged(client, db, admin_headers):
    before = table_fingerprint(db, "parcel_version")
    feature = {"type": "Feature", "properties": {"commune_code": BARGNY, "padding": "x" * (3 * 1024 * 1024)},
               "geometry": SMALL_POLYGON}
    _too_large(client.post("/parcels", json=feature, headers=admin_headers))
    assert table_fingerprint(db, "parcel_version") == before


def test_a_body_under_the_limit_is_answered(client):
    response = client.post("/parcels/intersecting", json=SMALL_POLYGON)
    assert response.status_code == 200, response.text


def test_limits_follow_the_settings(settings, db):
    small = _client(settings, db, max_json_bytes=2048, max_document_bytes=4096)
    _too_large(small.post("/parcels/intersecting", content=b" " * 3000, headers={"Content-Type": "application/json"}))
    assert small.post("/parcels/intersecting", json=SMALL_POLYGON).status_code == 200
    # A scanned document has its own limit, plus its multipart envelope.
    _too_large(small.post("/documents/verify", files={"file": ("d.pdf", b"%PDF" + b" " * 80_000, "application/pdf")}))
    assert small.post("/documents/verify",
                      files={"file": ("d.pdf", b"%PDF" + b" " * 3000, "application/pdf")}).status_code != 413


def test_a_million_vertex_polygon_is_refused_before_it_is_built(settings, db):
    # Integer UTM coordinates keep a million vertices under a (raised) 8 MiB limit: the size limit lets the
    # body through, the vertex limit must refuse it without building a model or a shape of it.
    client = _client(settings, db, max_json_bytes=8 * 1024 * 1024)
    ring = [[i % 9, i % 7] for i in range(1_000_000)] + [[0, 0]]
    body = json.dumps({"type": "Polygon", "coordinates": [ring]}, separators=(",", ":")).encode()
    assert 5_000_000 < len(body) < 8 * 1024 * 1024
    started = time.monotonic()
    json.loads(body)
    parsing = time.monotonic() - started  # what reading the JSON costs on this machine, now
    started = time.monotonic()
    response = client.post("/parcels/intersecting?geometry-crs=EPSG:32628", content=body,
                           headers={"Content-Type": "application/json"})
    elapsed = time.monotonic() - started
    assert response.status_code == 422, response.text[:300]
    assert response.json()["type"] == "urn:sifc:problem:spatial.too_many_vertices"
    # Building the model and the shape of a million vertices took 6 s; parsing alone is a fraction of that.
    assert elapsed < 0.5 + 2.5 * parsing, (elapsed, parsing)  # before: about 4.5 times the parsing
    # Nested deeper (a multipolygon, a collection) the count is the same.
    many = {"type": "GeometryCollection", "geometries": [
        {"type": "MultiPolygon", "coordinates": [[ring[:6000]], [ring[6000:12000]]]}]}
    refused = client.post("/parcels/intersecting", json=many)
    assert refused.json()["type"] == "urn:sifc:problem:spatial.too_many_vertices"


ANALYSIS, EXPORT = "analysis.rate_limited", "export.rate_limited"
HEAVY = {  # route → its bucket (docs/limits.md)
    "POST /parcels/intersecting": ANALYSIS,
    f"GET /communes/{BARGNY}/overlaps": ANALYSIS,
    f"GET /communes/{BARGNY}/boundary-issues": ANALYSIS,
    f"GET /communes/{BARGNY}/gaps": ANALYSIS,
    f"GET /stats/commune/{BARGNY}": ANALYSIS,
    f"GET /dashboards/commune/{BARGNY}": ANALYSIS,
    f"GET /dashboards/commune/{BARGNY}.png": EXPORT,
    f"GET /communes/{BARGNY}/registre.pdf": EXPORT,
}


def _call(client: TestClient, route: str):
    method, path = route.split(" ")
    return client.post(path, json=SMALL_POLYGON) if method == "POST" else client.get(path)


@pytest.mark.parametrize("route", HEAVY)
def test_heavy_anonymous_routes_are_rate_limited(settings, db, route):
    client = _client(settings, db, analysis_rate_per_minute=2, export_rate_per_minute=2)
    first = [_call(client, route).status_code for _ in range(2)]
    assert all(status < 400 for status in first), first
    refused = _call(client, route)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["type"] == f"urn:sifc:problem:{HEAVY[route]}"


def test_items_point_lookups_and_tiles_are_not_rate_limited(settings, db):
    client = _client(settings, db, analysis_rate_per_minute=1, export_rate_per_minute=1)
    for _ in range(15):
        for path in ("/ogc/collections/parcels/items?limit=5", "/ogc/collections/communes/items/SN0104-bargny",
                     "/parcels/at?lon=-17.2&lat=14.7", "/tiles/parcels/14/7548/7436.mvt",
                     f"/communes/{BARGNY}/parcels?limit=5", "/parcels/near?lon=-17.2&lat=14.7&distance=10"):
            status = client.get(path).status_code
            assert status == (204 if path.startswith("/tiles/") else 200), (path, status)  # no parcel in that tile


def test_every_request_body_has_its_limit_in_the_openapi_document(client):
    document = client.get("/openapi.json").json()
    bodies = {(method, path): operation for path, item in document["paths"].items()
              for method, operation in item.items() if "requestBody" in operation or method == "post"}
    assert ("post", "/parcels/intersecting") in bodies and ("post", "/imports") in bodies
    for (_, path), operation in bodies.items():
        assert "413" in operation["responses"], path
    assert "2097152 octets" in bodies[("post", "/parcels/intersecting")]["responses"]["413"]["description"]
    assert "20971520" not in bodies[("post", "/parcels")]["responses"]["413"]["description"]
