"""The security headers on every answer, the policy of docs/security-headers.md, the API documentation offline."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import get_reader, get_session
from api.middleware import basemap_origin
from sifc.db import SessionReader

HEADERS = {"x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "same-origin"}


def _directives(policy: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/"), ("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json"), ("GET", "/health"),
    ("GET", "/ogc"), ("GET", "/communes/SN0104-bargny"), ("GET", "/tiles/communes/8/121/117.mvt"),
    ("GET", "/nothing-here"), ("GET", "/parcels/not-a-parcel"), ("POST", "/parcels"),
    ("GET", "/app/vendor/swagger-ui/swagger-ui-bundle.js"), ("GET", "/documents/verify/" + "0" * 64),
])
def test_every_answer_carries_the_headers(client, method, path):
    response = client.request(method, path)
    for name, value in HEADERS.items():
        assert response.headers[name] == value, (path, name)
    policy = _directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'self'"] and policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert "blob:" in policy["worker-src"]


def test_refusals_carry_them_too(client):
    for response, status, problem in (
            (client.get("/ogc", headers={"Host": "evil.example"}), 400, "http.host_not_allowed"),
            (client.post("/parcels/intersecting", content=b"[" * (3 * 1024 * 1024)), 413, "http.body_too_large")):
        assert (response.status_code, response.json()["type"]) == (status, f"urn:sifc:problem:{problem}")
        assert response.headers["x-frame-options"] == "DENY" and "content-security-policy" in response.headers


def test_the_policy_allows_no_other_origin_without_a_base_map(client):
    policy = client.get("/").headers["content-security-policy"]
    assert not re.search(r"https?://", policy)
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    # Only ReDoc's page allows inline styles (its styled-components); scripts stay the service's own.
    redoc = _directives(client.get("/redoc").headers["content-security-policy"])
    assert redoc["style-src"] == ["'self'", "'unsafe-inline'"] and redoc["script-src"] == ["'self'"]


def test_the_base_map_origin_is_the_one_other_source(settings, db):
    app = create_app(settings.model_copy(update={"basemap_url": "https://tuiles.example.sn:8443/osm/{z}/{x}/{y}.png"}))
    app.dependency_overrides[get_session] = lambda: (yield db)
    app.dependency_overrides[get_reader] = lambda: SessionReader(db)
    policy = _directives(TestClient(app).get("/").headers["content-security-policy"])
    assert policy["img-src"][-1] == policy["connect-src"][-1] == "https://tuiles.example.sn:8443"
    assert basemap_origin("https://{s}.tile.example.org/{z}/{x}/{y}.png") == "https://*.tile.example.org"
    assert basemap_origin(None) is None


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_nothing_from_outside(client, page):
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"""(src|href)=["']https?://""", html), html
    assert "<script>" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script
    for asset in re.findall(r"""(?:src|href)="(/[^"]+)\"""", html):
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert served.headers["x-content-type-options"] == "nosniff"


def test_the_vendored_files_are_only_those_the_pages_need(client):
    assert client.get("/app/vendor/swagger-ui/index.html").status_code == 404
    assert client.get("/app/vendor/swagger-ui/swagger-initializer.js").status_code == 404
    assert client.get("/app/vendor/redoc/..%2F..%2Fpackage.json").status_code == 404
    assert client.get("/app/vendor/nothing/LICENSE.txt").status_code == 404
    for package in ("swagger-ui", "redoc", "maplibre-gl"):
        assert client.get(f"/app/vendor/{package}/LICENSE.txt").status_code == 200
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert "/docs" not in [path for path in client.get("/openapi.json").json()["paths"]]
