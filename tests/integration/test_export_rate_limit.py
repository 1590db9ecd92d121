"""Exports are rate limited per client: 429 problem+json with Retry-After, per key or address."""

from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import get_reader, get_session
from sifc.db import SessionReader
from tests.conftest import api_key


def test_exports_beyond_the_rate_get_a_429_with_retry_after(settings, db):
    app = create_app(settings.model_copy(update={"export_rate_per_minute": 2}))
    app.dependency_overrides[get_session] = lambda: (yield db)
    app.dependency_overrides[get_reader] = lambda: SessionReader(db)
    client = TestClient(app)
    url = "/communes/SN0104-bargny/parcels/export?format=csv"
    assert [client.get(url).status_code for _ in range(2)] == [200, 200]
    refused = client.get("/exports/parcels", headers={"Accept-Language": "en"})
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert refused.json()["type"] == "urn:sifc:problem:export.rate_limited"
    # Another client (an API key) has its own allowance.
    key = {"X-API-Key": api_key(db, role="lecteur", scope=("commune:SN0104-bargny",))}
    assert client.get(url, headers=key).status_code == 200
    assert "429" in app.openapi()["paths"]["/exports/parcels"]["get"]["responses"]


def test_import_uploads_beyond_the_rate_get_a_429(settings, db):
    app = create_app(settings.model_copy(update={"import_rate_per_minute": 1}))
    app.dependency_overrides[get_session] = lambda: (yield db)
    client = TestClient(app)
    key = {"X-API-Key": api_key(db, role="analyste_sig", scope=("commune:SN0104-bargny",))}
    url = "/imports?filename=vide.txt&commune=SN0104-bargny"
    first = client.post(url, content=b"x", headers=key)
    assert first.status_code == 415  # counted, then refused for its format
    refused = client.post(url, content=b"x", headers=key)
    assert refused.status_code == 429 and refused.json()["type"] == "urn:sifc:problem:import_job.rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
