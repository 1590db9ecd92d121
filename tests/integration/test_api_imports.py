"""Uploads over HTTP become queued import jobs; bad uploads get a specific problem and leave nothing."""

import io
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import text

from api.app import create_app
from api.deps import get_session
from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin, square, write


@pytest.fixture
def client(client, admin_headers):
    """Imports need an analyste_sig or administrateur: a national administrator's key."""
    client.headers.update(admin_headers)
    return client


def _jobs(db):
    return db.execute(text("SELECT count(*) FROM import_job")).scalar()


def _gpkg_bytes(db, tmp_path):
    x, y = bargny_origin(db)
    return write(tmp_path, [{"NICAD": "0104040100001", "geometry": square(x, y)}]).read_bytes()


def test_multipart_upload_queues_a_job(client, db, tmp_path, settings):
    data = _gpkg_bytes(db, tmp_path)
    response = client.post("/imports", files={"file": ("levé.gpkg", data)},
                           data={"dry_run": "true", "commune": "Bargny", "crs": "EPSG:32628"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued" and job["dry_run"] is True and job["file_name"] == "levé.gpkg"
    assert job["options"]["commune"] == "Bargny" and job["size_bytes"] == len(data)
    assert response.headers["location"].endswith(f"/imports/{job['id']}")
    stored = db.execute(text("SELECT upload_path FROM import_job WHERE id = CAST(:id AS uuid)"),
                        {"id": job["id"]}).scalar()
    assert Path(stored).read_bytes() == data and stored.startswith(str(settings.upload_dir))
    assert "upload_path" not in job and "created_by" not in job

    again = client.get(f"/imports/{job['id']}").json()
    assert again["status"] == "queued" and again["links"]["self"].endswith(job["id"])
    listed = client.get("/imports").json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]


def test_raw_body_upload_with_filename(client, db, tmp_path):
    data = _gpkg_bytes(db, tmp_path)
    response = client.post("/imports?filename=parcelles.gpkg&on_invalid=reject", content=data,
                           headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 202, response.text
    assert response.json()["options"]["on_invalid"] == "reject"


@pytest.mark.parametrize(("name", "status", "key"), [
    ("parcelles.exe", 415, "upload.unsupported"),
    ("", 415, "upload.unsupported"),
])
def test_unsupported_files_are_refused(client, name, status, key):
    response = client.post("/imports", files={"file": (name or "noname", b"MZ...")} if name else None,
                           content=None if name else b"abc",
                           headers={"Accept-Language": "en"} if name else {"Content-Type": "application/zip"})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:sifc:problem:{key}"


def test_hostile_zips_are_refused_and_nothing_stays(client, db, settings):
    traversal = io.BytesIO()
    with zipfile.ZipFile(traversal, "w") as bundle:
        bundle.writestr("../../etc/evil.shp", b"x")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("big.shp", b"\0" * (50 * 1024**2))
    before = sorted(settings.upload_dir.rglob("*"))
    for payload, key in ((traversal, "import.zip_unsafe"), (bomb, "import.zip_bomb"),
                         (io.BytesIO(b"not a zip"), "import.unreadable")):
        response = client.post("/imports", files={"file": ("levé.zip", payload.getvalue())})
        assert response.status_code == 422, response.text
        assert response.json()["type"] == f"urn:sifc:problem:{key}"
    assert _jobs(db) == 0
    assert sorted(settings.upload_dir.rglob("*")) == before


def test_upload_beyond_the_limit_is_refused(settings, db, admin_headers):
    from fastapi.testclient import TestClient

    small = settings.model_copy(update={"max_upload_bytes": 1000})
    app = create_app(small)
    app.dependency_overrides[get_session] = lambda: (yield db)
    client = TestClient(app, headers=admin_headers)
    # Declared too large: refused before reading.
    response = client.post("/imports?filename=a.geojson", content=b"{" * 5000,
                           headers={"Accept-Language": "fr"})
    assert response.status_code == 413
    assert "au plus" in response.json()["detail"]

    # Sent without a length (chunked), it is cut off as it grows.
    def chunks():
        for _ in range(10):
            yield b" " * 500

    response = client.post("/imports?filename=a.geojson", content=chunks())
    assert response.status_code == 413
    response = client.post("/imports", files={"file": ("a.geojson", b" " * 5000)})
    assert response.status_code == 413
    assert _jobs(db) == 0


def test_bad_options_and_unknown_jobs(client, db, tmp_path):
    data = _gpkg_bytes(db, tmp_path)
    response = client.post("/imports", files={"file": ("a.gpkg", data)}, data={"overlap_tolerance_m2": "beaucoup"})
    assert response.status_code == 422 and "overlap_tolerance_m2" in response.json()["detail"]
    response = client.post("/imports", files={"file": ("a.gpkg", data)}, data={"mapping": "{nope"})
    assert response.status_code == 422
    response = client.post("/imports", files={"file": ("a.gpkg", data)}, data={"colour": "blue"})
    assert response.status_code == 422 and "colour" in response.json()["detail"]
    assert _jobs(db) == 0
    assert client.get("/imports/not-a-uuid").status_code == 404
    assert client.get("/imports/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/imports/00000000-0000-0000-0000-000000000000/report").status_code == 404
    queued = client.post("/imports", files={"file": ("a.gpkg", data)}).json()
    response = client.post(f"/imports/{queued['id']}/retry")
    assert response.status_code == 409 and response.json()["type"] == "urn:sifc:problem:import_job.not_failed"
    assert client.get(f"/imports/{queued['id']}/report").status_code == 409
    assert client.get(f"/imports/{queued['id']}/rejects").status_code == 404


# --- permissions -------------------------------------------------------------------------

@pytest.fixture
def analysts(db):
    return {
        "bargny": {"X-API-Key": api_key(db, role="analyste_sig", scope=("commune:SN0104-bargny",), name="sig-b")},
        "sandiara": {"X-API-Key": api_key(db, role="analyste_sig", scope=("commune:SN1301-sandiara",), name="sig-s")},
        "agent": {"X-API-Key": api_key(db, role="agent_foncier", scope=("commune:SN0104-bargny",), name="agent")},
    }


def test_imports_need_an_analyst_in_scope(client, db, tmp_path, analysts):
    data = _gpkg_bytes(db, tmp_path)
    anonymous = client.post("/imports", files={"file": ("a.gpkg", data)}, data={"commune": "Bargny"},
                            headers={"X-API-Key": ""})
    assert anonymous.status_code == 401
    agent = client.post("/imports", files={"file": ("a.gpkg", data)}, data={"commune": "Bargny"},
                        headers=analysts["agent"])
    assert agent.status_code == 403
    no_commune = client.post("/imports", files={"file": ("a.gpkg", data)}, headers=analysts["bargny"])
    assert no_commune.status_code == 403
    assert no_commune.json()["type"] == "urn:sifc:problem:import_job.commune_required"
    elsewhere = client.post("/imports", files={"file": ("a.gpkg", data)}, data={"commune": "Sandiara"},
                            headers=analysts["bargny"])
    assert elsewhere.status_code == 403 and elsewhere.json()["type"] == "urn:sifc:problem:auth.out_of_scope"
    assert _jobs(db) == 0
    mine = client.post("/imports", files={"file": ("a.gpkg", data)}, data={"commune": "bargny"},
                       headers=analysts["bargny"])
    assert mine.status_code == 202, mine.text
    job = mine.json()
    assert job["options"]["commune_code"] == "SN0104-bargny"
    author = db.execute(text("SELECT created_by FROM import_job WHERE id = CAST(:id AS uuid)"), {"id": job["id"]})
    assert author.scalar().endswith(" sig-b")
    national = client.post("/imports", files={"file": ("a.gpkg", data)}).json()  # the administrator's, no commune
    for url in (f"/imports/{job['id']}", f"/imports/{job['id']}/report", f"/imports/{job['id']}/rejects",
                f"/imports/{job['id']}/retry"):
        call = client.post if url.endswith("retry") else client.get
        assert call(url, headers=analysts["sandiara"]).status_code == 403, url
        assert call(url, headers=analysts["bargny"]).status_code not in (401, 403), url
        assert call(url, headers=analysts["agent"]).status_code == 403, url
    assert client.get(f"/imports/{national['id']}", headers=analysts["bargny"]).status_code == 403
    seen = {j["id"] for j in client.get("/imports", headers=analysts["bargny"]).json()["jobs"]}
    assert seen == {job["id"]}
    assert client.get("/imports", headers=analysts["sandiara"]).json()["jobs"] == []
    assert {j["id"] for j in client.get("/imports").json()["jobs"]} >= {job["id"], national["id"]}
