"""Subject access requests and the access log (loi 2008-12): real HTTP app, real database."""

import uuid

import pytest
from shapely.geometry import mapping
from sqlalchemy import text

from sifc.auth import scopes, subjects, users
from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin, square

BARGNY = "SN0104-bargny"
PASSWORD = "un mot de passe assez long"


@pytest.fixture
def awa(client, db):
    """An agent of Bargny who signed in and wrote a parcel; a reader of Bargny then read its history."""
    user_id = users.create(db, username="awa.diop", password=PASSWORD, role="agent_foncier",
                           scope=scopes.parse([f"commune:{BARGNY}"]), created_by="tests")
    signed_in = client.post("/auth/token", data={"username": "awa.diop", "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    bearer = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    x, y = bargny_origin(db)
    created = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=bearer,
                          json={"type": "Feature", "geometry": mapping(square(x, y)), "properties": {"reason": "levé"}})
    assert created.status_code == 201, created.text
    parcel_id = created.json()["id"]
    reader = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",), name="lecteur")}
    assert client.get(f"/parcels/{parcel_id}/versions", headers=reader).status_code == 200
    return {"id": user_id, "parcel": parcel_id}


@pytest.fixture
def admin(db):
    return {"X-API-Key": api_key(db, name="dpo")}


def _source(report: dict, name: str) -> dict:
    return next(source for source in report["sources"] if source["name"] == name)


def test_a_subject_access_request_gathers_everything_about_the_person(client, admin, awa):
    answer = client.get("/admin/subjects/awa.diop", headers=admin)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["subject"] == {"query": "awa.diop", "name": "awa.diop", "user_id": awa["id"],
                                 "audit_kind": "app_user", "audit_id": str(awa["id"]), "party_ids": []}
    [account] = _source(report, "account")["rows"]
    assert account["username"] == "awa.diop" and account["role"] == "agent_foncier"
    assert _source(report, "account_scope")["rows"] == [{"level": "commune", "code": BARGNY}]
    assert _source(report, "sessions")["count"] == 1
    [version] = _source(report, "parcel_versions_authored")["rows"]
    assert version["parcel_id"] == awa["parcel"] and version["commune_code"] == BARGNY
    assert "argon2" not in answer.text and "password_hash" not in answer.text  # no secret, ever
    # Who read it: the reader of the parcel's history (which names her), and this very request.
    reads = report["reads"]["rows"]
    assert [(r["actor"].split()[-1], r["subject_kind"], r["subject_id"]) for r in reads
            if r["subject_kind"] == "parcel"] == [("lecteur", "parcel", awa["parcel"])]
    [request] = [r for r in reads if r["purpose"] == subjects.SAR_PURPOSE]
    assert request["endpoint"] == "/admin/subjects/{subject}" and request["actor"].endswith(" dpo")
    assert request["subject_kind"] == "app_user" and request["subject_id"] == str(awa["id"])


def test_the_person_is_found_by_account_number_and_without_regard_to_case(client, admin, awa):
    for query in (str(awa["id"]), "AWA.Diop"):
        report = client.get(f"/admin/subjects/{query}", headers=admin).json()
        assert report["subject"]["user_id"] == awa["id"] and report["subject"]["name"] == "awa.diop"


def test_a_name_without_account_is_searched_in_provenance_and_never_written_to_the_log(client, db, admin):
    db.execute(text("""INSERT INTO import_batch (id, file_name, sha256, options, counts, report, created_by,
                                                commune_code)
                       VALUES (:id, 'leve.gpkg', repeat('0', 64), '{}', '{}', '{}', 'Moussa Ndiaye', 'SN0104-bargny')"""),
               {"id": uuid.uuid4()})
    report = client.get("/admin/subjects/moussa ndiaye", headers=admin).json()
    assert report["subject"]["user_id"] is None and report["subject"]["audit_kind"] == "person"
    assert report["subject"]["audit_id"].startswith("sha256:")
    assert _source(report, "import_batches")["count"] == 1 and _source(report, "account")["count"] == 0
    logged = db.execute(text("SELECT count(*) FROM access_audit WHERE subject_id ILIKE '%moussa%' "
                             "OR actor ILIKE '%moussa%'")).scalar()
    assert logged == 0
    assert report["reads"]["count"] == 1  # this request, under the digest


@pytest.mark.parametrize("query", ["x' OR '1'='1", "%", "awa.diop'; DROP TABLE app_user; --", "*", "1 OR 1=1"])
def test_hostile_subjects_find_nothing_and_break_nothing(client, admin, awa, query):
    answer = client.get("/admin/subjects/" + query.replace("%", "%25"), headers=admin)
    assert answer.status_code == 200, answer.text
    assert all(source["count"] == 0 for source in answer.json()["sources"])


def test_a_blank_subject_is_refused_in_both_languages(client, admin):
    answer = client.get("/admin/subjects/%20%20", headers=admin)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "Personne à rechercher invalide" in answer.json()["detail"]
    english = client.get("/admin/subjects/%20", headers={**admin, "Accept-Language": "en"})
    assert "Invalid person to look up" in english.json()["detail"]


@pytest.mark.parametrize("path", ["/admin/subjects/awa.diop", "/admin/audit"])
def test_only_an_administrator_may_ask(client, db, path):
    assert client.get(path).status_code == 401
    for role in ("lecteur", "agent_foncier", "analyste_sig"):
        headers = {"X-API-Key": api_key(db, role=role, scope=(f"commune:{BARGNY}",), name=role)}
        answer = client.get(path, headers=headers)
        assert answer.status_code == 403, (role, answer.text)
    assert db.execute(text("SELECT count(*) FROM access_audit WHERE purpose = :p"),
                      {"p": subjects.SAR_PURPOSE}).scalar() == 0


def test_the_access_log_is_filtered_and_paged(client, admin, awa):
    client.get("/admin/subjects/awa.diop", headers=admin)
    everything = client.get("/admin/audit", headers=admin).json()
    assert everything["count"] >= 2
    about = client.get("/admin/audit", params={"subject": awa["parcel"]}, headers=admin).json()
    assert about["count"] == 1 and about["rows"][0]["subject_kind"] == "parcel"
    by_dpo = client.get("/admin/audit", params={"user": everything["rows"][0]["actor"]}, headers=admin).json()
    assert by_dpo["count"] >= 1 and {row["purpose"] for row in by_dpo["rows"]} == {subjects.SAR_PURPOSE}
    kind = client.get("/admin/audit", params={"subject_kind": "app_user", "subject": str(awa["id"])},
                      headers=admin).json()
    assert kind["count"] == 1
    assert client.get("/admin/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=admin).json()["count"] == 0
    first = client.get("/admin/audit", params={"limit": 1}, headers=admin).json()
    assert len(first["rows"]) == 1 and first["next_offset"] == 1
    second = client.get("/admin/audit", params={"limit": 1, "offset": 1}, headers=admin).json()
    assert second["rows"] != first["rows"]
    assert client.get("/admin/audit", params={"since": "hier"}, headers=admin).status_code == 422


def test_every_personal_data_source_names_real_columns_and_no_secret():
    for source in subjects.SOURCES:
        table = source.sa_table()
        for name in (source.column, *source.columns, *(column for column, _ in source.where),
                     *([source.audit_key] if source.audit_key else [])):
            assert name in table.c, f"{source.name}: {source.table}.{name}"
        assert not {"password_hash", "secret_hash", "token_hash"} & set(source.columns), source.name
