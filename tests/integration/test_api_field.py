"""Field packages over HTTP: POST /field/packages and its record, list, download, lost, reassign, per role."""

from __future__ import annotations

import io
import zipfile

import pyogrio
import pytest
from sqlalchemy import text

from sifc.auth import users
from sifc.auth.scopes import parse as parse_scope
from sifc.demo import load_demo
from tests.conftest import api_key
from tests.integration.test_auth import assert_problem

BARGNY = "SN0104-bargny"
SANDIARA = "SN1301-sandiara"


@pytest.fixture
def demo(db):
    assert load_demo(db) is not None


def key(db, role: str, commune: str = BARGNY, name: str | None = None) -> dict[str, str]:
    return {"X-API-Key": api_key(db, role=role, scope=(f"commune:{commune}",), name=name or f"{role} {commune}")}


def test_an_officer_checks_out_lists_reads_and_downloads_a_package(client, db, demo, tmp_path):
    officer = key(db, "agent_foncier")
    made = client.post("/field/packages", headers=officer, json={"commune": BARGNY})
    assert made.status_code == 201, made.text
    record = made.json()
    assert record["commune_code"] == BARGNY and record["item_count"] == 480 and record["status"] == "open"
    assert not record["includes_holders"] and record["issued_to"].endswith("agent_foncier SN0104-bargny")
    assert made.headers["location"] == record["links"]["self"] == f"http://testserver/field/packages/{record['id']}"

    listed = client.get("/field/packages", headers=officer)
    assert listed.status_code == 200 and [p["id"] for p in listed.json()["packages"]] == [record["id"]]
    assert client.get(f"/field/packages/{record['id']}", headers=officer).json()["zip_sha256"] == record["zip_sha256"]

    download = client.get(record["links"]["download"].removeprefix("http://testserver"), headers=officer)
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    assert len(download.content) == record["zip_bytes"]
    bundle = zipfile.ZipFile(io.BytesIO(download.content))
    assert {"data.gpkg", "projet.qgs", "DCIM/", "LISEZMOI.txt"} == set(bundle.namelist())
    bundle.extract("data.gpkg", tmp_path)
    assert "holders" not in {name for name, _ in pyogrio.list_layers(tmp_path / "data.gpkg")}


def test_roles_and_scope(client, db, demo):
    for role in ("analyste_sig", "administrateur"):
        assert client.post("/field/packages", headers=key(db, role), json={"commune": BARGNY}).status_code == 201
    assert_problem(client.post("/field/packages", json={"commune": BARGNY}), 401, "auth.required")
    assert_problem(client.post("/field/packages", headers=key(db, "lecteur"), json={"commune": BARGNY}), 403,
                   "auth.forbidden")
    assert_problem(client.get("/field/packages", headers=key(db, "lecteur")), 403, "auth.forbidden")
    assert_problem(client.post("/field/packages", headers=key(db, "agent_foncier"), json={"commune": SANDIARA}),
                   403, "auth.out_of_scope")
    elsewhere = client.post("/field/packages", headers=key(db, "agent_foncier", SANDIARA),
                            json={"commune": SANDIARA}).json()
    assert_problem(client.get(f"/field/packages/{elsewhere['id']}", headers=key(db, "agent_foncier")), 403,
                   "auth.out_of_scope")
    assert_problem(client.get(f"/field/packages/{elsewhere['id']}/download", headers=key(db, "agent_foncier")), 403,
                   "auth.out_of_scope")
    assert_problem(client.get("/field/packages/00000000-0000-0000-0000-000000000000",
                              headers=key(db, "agent_foncier")), 404, "field.package_not_found")


def test_holders_need_a_purpose_and_are_logged(client, db, demo):
    officer = key(db, "agent_foncier")
    assert_problem(client.post("/field/packages", headers=officer, json={"commune": BARGNY, "include_holders": True}),
                   422, "field.purpose_required")
    made = client.post("/field/packages", headers=officer,
                       json={"commune": BARGNY, "include_holders": True, "purpose": "enquête publique"})
    assert made.status_code == 201, made.text
    rows = db.execute(text("SELECT count(*), min(method), min(endpoint), min(purpose) FROM access_audit "
                           "WHERE subject_kind = 'parcel' AND purpose = 'enquête publique'")).one()
    assert tuple(rows) == (480, "POST", "/field/packages", "enquête publique")


def test_a_package_with_holders_is_downloaded_by_its_holder_only_and_a_new_holder_is_logged(client, db, demo):
    officer = key(db, "agent_foncier")
    record = client.post("/field/packages", headers=officer,
                         json={"commune": BARGNY, "include_holders": True, "purpose": "levé contradictoire"}).json()
    path = f"/field/packages/{record['id']}"
    colleague = key(db, "agent_foncier", name="agent foncier collègue")
    assert client.get(f"{path}/download", headers=officer).status_code == 200
    assert_problem(client.get(f"{path}/download", headers=colleague), 403, "field.holders_holder_only")
    assert_problem(client.get(f"{path}/download", headers=key(db, "administrateur")), 403, "field.holders_holder_only")
    logged = "SELECT count(*) FROM access_audit WHERE endpoint = '/field/packages/{package_id}/download'"
    assert db.execute(text(logged)).scalar() == 0  # the holder's reads were logged when it was issued

    users.create(db, username="agent.releve", password="y" * 16, role="agent_foncier",
                 scope=parse_scope([f"commune:{BARGNY}"]), created_by="tests")
    moved = client.post(f"{path}/reassign", headers=key(db, "administrateur"), json={"to": "agent.releve",
                                                                                      "reason": "congé"})
    assert moved.status_code == 200, moved.text
    assert_problem(client.get(f"{path}/download", headers=officer), 403, "field.holders_holder_only")
    signed_in = client.post("/auth/token", data={"username": "agent.releve", "password": "y" * 16})
    assert signed_in.status_code == 200, signed_in.text
    new_holder = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    download = client.get(f"{path}/download", headers=new_holder)
    assert download.status_code == 200, download.text
    rows = db.execute(text(logged.replace("count(*)", "count(*), min(actor), min(purpose)"))).one()
    assert tuple(rows) == (480, "agent.releve", "levé contradictoire")


def test_bad_areas_are_refused_with_their_key(client, db, demo):
    officer = key(db, "agent_foncier")
    assert_problem(client.post("/field/packages", headers=officer, json={}), 422, "field.area_required")
    assert_problem(client.post("/field/packages", headers=officer,
                               json={"commune": BARGNY, "section": "ZZ", "bbox": [-17.23, 14.69, -17.22, 14.70]}),
                   422, "field.one_area")
    assert_problem(client.post("/field/packages", headers=officer, json={"commune": BARGNY, "section": "ZZZ"}),
                   404, "field.section_empty")
    assert_problem(client.post("/field/packages", headers=officer,
                               json={"commune": BARGNY, "expires_at": "2099-01-01T00:00:00Z"}),
                   422, "field.expiry_too_far")


def test_lost_and_reassign_are_for_administrators_of_the_commune(client, db, demo):
    officer = key(db, "agent_foncier")
    record = client.post("/field/packages", headers=officer, json={"commune": BARGNY}).json()
    path = f"/field/packages/{record['id']}"
    assert_problem(client.post(f"{path}/lost", headers=officer, json={"reason": "perdu"}), 403, "auth.forbidden")
    assert_problem(client.post(f"{path}/lost", headers=key(db, "administrateur", SANDIARA), json={"reason": "x"}),
                   403, "auth.out_of_scope")
    admin = key(db, "administrateur")
    users.create(db, username="agent.recoit", password="y" * 16, role="agent_foncier",
                 scope=parse_scope([f"commune:{BARGNY}"]), created_by="tests")
    moved = client.post(f"{path}/reassign", headers=admin, json={"to": "agent.recoit", "reason": "congé"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["issued_to"] == "agent.recoit"
    assert_problem(client.post(f"{path}/reassign", headers=admin, json={"to": "personne", "reason": "x"}), 404,
                   "auth.unknown_user")
    lost = client.post(f"{path}/lost", headers=admin, json={"reason": "tablette volée"})
    assert lost.status_code == 200, lost.text
    assert lost.json()["status"] == "lost" and "download" not in lost.json()["links"]
    assert_problem(client.post(f"{path}/lost", headers=admin, json={"reason": "encore"}), 409,
                   "field.package_not_open")
    assert [p["status"] for p in client.get("/field/packages", headers=admin,
                                            params={"status": "lost"}).json()["packages"]] == ["lost"]
