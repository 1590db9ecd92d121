"""The API of a node in the federation (ADR 0004): writes refused outside the node's communes, naming their
owner; ``/health``'s federation; the national node's data-age header and subject-access answer; accounts per node.

Most tests change the node's role inside the test's transaction (rolled back). Those that need the app's
own pool (the header, the guard's owner lookup, the worker, two nodes) run on databases of their own,
copied from the migrated template and dropped at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from shapely.geometry import mapping
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from api.app import create_app
from api.deps import SessionDep, get_session
from sifc import keyring, provision
from sifc.auth import keys, users
from sifc.auth.principal import ScopeEntry
from sifc.db import make_engine, transaction
from sifc.errors import NotOwner
from sifc.federation import directory
from sifc.imports import jobs, worker
from sifc.settings import Settings
from tests.integration.fixtures import bargny_origin, square, write

BARGNY, SANDIARA = "SN0104-bargny", "SN1301-sandiara"  # poles DKR and THS
DAKAR_URL, THIES_URL = "https://dakar.sifc.example", "https://thies.sifc.example"
NOT_OWNER = "urn:sifc:problem:federation.not-owner"


def as_owner(db: Session, settings: Settings, sql: str, params: dict[str, object] | None = None) -> None:
    """Run ``sql`` as the database's owner (the node's own row is not the service's to change), in the test's
    transaction."""
    connection = db.connection()
    connection.exec_driver_sql("RESET ROLE")
    connection.execute(text(sql), params or {})
    role = (settings.db_url.username or "sifc_app").replace('"', '""')
    connection.exec_driver_sql(f'SET LOCAL ROLE "{role}"')


DIRECTORY = """
    INSERT INTO federation_node (node_id, role, pole_code, url) VALUES
        ('dakar', 'pole', 'DKR', :dakar), ('thies', 'pole', 'THS', :thies), ('national', 'national', NULL, :national)
    ON CONFLICT (node_id) DO UPDATE SET url = excluded.url"""


# Dakar's heartbeat as replication applies it at the national node (a node writes only its own beat).
BEAT = ("INSERT INTO federation_heartbeat (node_id, beat_at) VALUES ('dakar', now() - make_interval(secs => :s)) "
        "ON CONFLICT (node_id) DO UPDATE SET beat_at = excluded.beat_at")


def become(db: Session, settings: Settings, role: str, *, pole: str | None = None, node_id: str = "node",
           personal: str = "pole") -> None:
    """Make the test's node ``role`` (of ``pole``), with the directory of two poles and the national node."""
    as_owner(db, settings, DIRECTORY, {"dakar": DAKAR_URL, "thies": THIES_URL, "national": "https://sifc.example"})
    # personal = 'national' needs the reference of its CDP formality (CHECK ck_sifc_node_legal_basis): synthetic here.
    as_owner(db, settings, "UPDATE sifc_node SET role = :role, pole_code = :pole, node_id = :node, personal = :personal, "
                           "legal_basis = :basis",
             {"role": role, "pole": pole, "node": node_id, "personal": personal,
              "basis": "CDP, récépissé n° 0000/TEST" if personal == "national" else None})


def feature(geom, **properties):
    return {"type": "Feature", "geometry": mapping(geom), "properties": {"reason": "levé", **properties}}


def sandiara_origin(db: Session) -> tuple[float, float]:
    row = db.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Buffer(geom, -300)) p "
                          "FROM commune WHERE code = :c) t"), {"c": SANDIARA}).one()
    return float(row[0]), float(row[1])


@pytest.fixture
def writer(client, admin_headers) -> TestClient:
    client.headers.update(admin_headers)
    return client


# --- refused writes ------------------------------------------------------------------------------------------

def test_a_pole_writes_its_communes_and_refuses_another_poles_naming_its_node(writer, db, settings):
    become(db, settings, "pole", pole="DKR", node_id="dakar")
    x, y = bargny_origin(db)
    own = writer.post("/parcels", params={"crs": "EPSG:32628"}, json=feature(square(x, y)))
    assert own.status_code == 201, own.text

    sx, sy = sandiara_origin(db)
    refused = writer.post("/parcels", params={"crs": "EPSG:32628"}, json=feature(square(sx, sy)))
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    body = refused.json()
    assert body["type"] == NOT_OWNER
    assert body["title"] == "Commune gérée par un autre nœud"
    assert (body["commune"], body["owner_node"], body["owner_url"]) == (SANDIARA, "thies", THIES_URL)
    assert "thies" in body["detail"] and THIES_URL in body["detail"]
    assert db.execute(text("SELECT count(*) FROM parcel_version WHERE commune_code = :c"),
                      {"c": SANDIARA}).scalar() == 0

    english = writer.post("/parcels", params={"crs": "EPSG:32628"}, json=feature(square(sx, sy)),
                          headers={"Accept-Language": "en"})
    assert english.status_code == 403
    assert english.json()["title"] == "Commune owned by another node"
    assert english.json()["detail"].startswith(f"Commune {SANDIARA} is owned by node 'thies'")


def test_the_national_node_writes_no_commune(writer, db, settings):
    x, y = bargny_origin(db)
    created = writer.post("/parcels", params={"crs": "EPSG:32628"}, json=feature(square(x, y)))
    assert created.status_code == 201, created.text
    become(db, settings, "national", node_id="national")

    again = writer.post("/parcels", params={"crs": "EPSG:32628"}, json=feature(square(x + 40, y)))
    assert again.status_code == 403 and again.json()["owner_node"] == "dakar", again.text
    parcel = created.json()["id"]
    etag = writer.get(f"/parcels/{parcel}").headers["ETag"]
    retire = writer.post(f"/parcels/{parcel}/retire", headers={"If-Match": etag}, json={"reason": "test"})
    assert retire.status_code == 403 and retire.json()["commune"] == BARGNY, retire.text


def test_an_unknown_pole_is_named_as_such(writer, db, settings):
    become(db, settings, "pole", pole="THS", node_id="thies")
    as_owner(db, settings, "DELETE FROM federation_node WHERE node_id = 'dakar'")
    x, y = bargny_origin(db)
    refused = writer.post("/parcels", params={"crs": "EPSG:32628"}, json=feature(square(x, y)))
    assert refused.status_code == 403
    body = refused.json()
    assert (body["commune"], body["owner_node"], body["owner_url"]) == (BARGNY, None, None)
    assert "annuaire" in body["detail"]


def test_tenure_and_import_submissions_are_refused_before_anything_is_written(writer, db, settings):
    become(db, settings, "pole", pole="THS", node_id="thies")
    party = writer.post("/parties", json={"kind": "natural_person", "name": "Ndiaye", "given_names": "Awa",
                                          "commune_code": BARGNY, "reason": "test"})
    assert party.status_code == 403 and party.json()["type"] == NOT_OWNER, party.text

    upload = writer.post("/imports", data={"commune": BARGNY}, files={"file": ("p.geojson", b"{}")})
    assert upload.status_code == 403 and upload.json()["owner_node"] == "dakar", upload.text
    national_import = writer.post("/imports", files={"file": ("p.geojson", b"{}")})
    assert national_import.status_code == 403, national_import.text
    assert national_import.json()["type"] == "urn:sifc:problem:federation.import_commune_required"
    assert db.execute(text("SELECT count(*) FROM import_job")).scalar() == 0


def test_a_document_is_not_issued_for_another_nodes_commune(writer, db, settings):
    """A document issued is kept in the commune's register (``issued_document``, a pole's table)."""
    x, y = bargny_origin(db)
    parcel = writer.post("/parcels", params={"crs": "EPSG:32628"}, json=feature(square(x, y))).json()["id"]
    become(db, settings, "national", node_id="national")
    refused = writer.get(f"/parcels/{parcel}/fiche.pdf")
    assert refused.status_code == 403, refused.text
    assert (refused.json()["type"], refused.json()["owner_node"]) == (NOT_OWNER, "dakar")
    assert db.execute(text("SELECT count(*) FROM issued_document")).scalar() == 0


FORGETFUL = "/tests/writes-without-asking"


def add_forgetful_route(app: FastAPI) -> None:
    """A route that writes a pole's table without asking whether the node owns the commune: the guard refuses."""

    def write_without_asking(session: SessionDep) -> dict[str, str]:
        session.execute(text("INSERT INTO source_document (id, kind, reference, document_date, commune_code, "
                             "created_by) VALUES (gen_random_uuid(), 'deliberation', 'D-1', current_date, :c, "
                             "'tests')"), {"c": BARGNY})
        return {"written": "yes"}

    app.add_api_route(FORGETFUL, write_without_asking, methods=["POST"])


def test_the_guard_is_the_backstop_of_a_path_that_does_not_ask(db, settings):
    app = create_app(settings)
    add_forgetful_route(app)
    app.dependency_overrides[get_session] = lambda: db
    become(db, settings, "national", node_id="national")
    refused = TestClient(app).post(FORGETFUL)
    assert refused.status_code == 403, refused.text
    body = refused.json()
    # This app has no pool of its own (tests share their transaction): the owner is not looked up here, it is
    # in test_national_reads_carry_the_data_age_and_the_guard_names_the_owner.
    assert (body["type"], body["commune"], body["owner_node"]) == (NOT_OWNER, BARGNY, None)
    assert "annuaire" in body["detail"]


def test_the_guards_error_carries_the_commune(db, settings):
    x, y = bargny_origin(db)
    become(db, settings, "national", node_id="national")
    with pytest.raises(DBAPIError) as raised, db.begin_nested():
        db.execute(text("INSERT INTO source_document (id, kind, reference, document_date, commune_code, created_by) "
                        "VALUES (gen_random_uuid(), 'deliberation', 'D-1', current_date, :c, 'tests')"),
                   {"c": BARGNY})
    assert raised.value.orig.sqlstate == "SF403"
    assert directory.refused_commune(raised.value) == BARGNY
    refusal = directory.translate(db, raised.value)
    assert isinstance(refusal, NotOwner) and refusal.extensions == {
        "commune": BARGNY, "owner_node": "dakar", "owner_url": DAKAR_URL}
    assert directory.refused_commune(ValueError("x")) is None


# --- /health -------------------------------------------------------------------------------------------------

def test_health_says_the_role(client, db, settings):
    assert client.get("/health").json()["federation"] == {"role": "single"}
    become(db, settings, "pole", pole="DKR", node_id="dakar")
    assert client.get("/health").json()["federation"] == {"role": "pole", "node_id": "dakar"}


def test_health_at_the_national_node_lists_each_pole(client, db, settings):
    become(db, settings, "national", node_id="national")
    if db.execute(text("SELECT to_regclass('federation_heartbeat')")).scalar() is not None:
        as_owner(db, settings, "SET LOCAL session_replication_role = replica")
        as_owner(db, settings, BEAT, {"s": 7})
        as_owner(db, settings, "SET LOCAL session_replication_role = origin")
    federation = client.get("/health").json()["federation"]
    assert federation["role"] == "national" and federation["node_id"] == "national"
    assert set(federation["poles"]) == {"dakar", "thies"}
    # No subscription in this test database: each pole's is missing, without lag.
    assert federation["poles"]["thies"] == {"data_age_s": None, "lag_bytes": None, "status": "missing"}
    dakar = federation["poles"]["dakar"]
    assert dakar["status"] == "missing" and dakar["lag_bytes"] is None
    if db.execute(text("SELECT to_regclass('federation_heartbeat')")).scalar() is not None:
        assert 7 <= dakar["data_age_s"] < 60


def test_health_says_a_subscriptions_state_and_never_its_connection_string(client, db, settings):
    become(db, settings, "national", node_id="national")
    # A subscription made without connecting is disabled; its connection string names a password.
    as_owner(db, settings, "CREATE SUBSCRIPTION sifc_from_dakar CONNECTION 'host=127.0.0.1 port=1 dbname=sifc "
                           "user=replicator password=not-for-health' PUBLICATION sifc_pole WITH (connect = false)")
    answer = client.get("/health")
    assert answer.json()["federation"]["poles"]["dakar"]["status"] == "disabled"
    assert answer.json()["federation"]["poles"]["thies"]["status"] == "missing"
    assert "not-for-health" not in answer.text and "replicator" not in answer.text


def test_health_reads_subscriptions_without_their_connection_strings(db):
    """``pg_subscription``'s connection string may hold a password: the service's role cannot read it."""
    db.execute(text("SELECT subname, subenabled FROM pg_subscription"))  # readable, as health reads it
    with pytest.raises(DBAPIError), db.begin_nested():
        db.execute(text("SELECT subconninfo FROM pg_subscription"))


# --- subject access at the national node ----------------------------------------------------------------------

def test_subject_access_at_the_national_node_names_the_poles_to_ask(writer, db, settings):
    party = uuid.uuid4()
    single = writer.get(f"/admin/subjects/{party}")
    assert single.status_code == 200, single.text
    assert "federation" not in single.json()

    become(db, settings, "national", node_id="national", personal="pole")
    answer = writer.get(f"/admin/subjects/{party}")
    assert answer.status_code == 200, answer.text
    note = answer.json()["federation"]
    assert note["identities_held"] is False and note["personal"] == "pole"
    assert note["ask"] == [{"node_id": "dakar", "pole_code": "DKR", "url": DAKAR_URL},
                           {"node_id": "thies", "pole_code": "THS", "url": THIES_URL}]
    assert "pôle" in note["message"]
    assert answer.json()["sources"]  # what the national node holds on that party id is still answered
    english = writer.get(f"/admin/subjects/{party}", headers={"Accept-Language": "en"}).json()["federation"]
    assert english["message"].startswith("The national node does not hold")

    become(db, settings, "national", node_id="national", personal="national")
    assert "federation" not in writer.get(f"/admin/subjects/{party}").json()
    become(db, settings, "pole", pole="DKR", node_id="dakar")
    assert "federation" not in writer.get(f"/admin/subjects/{party}").json()


# --- nodes of their own: the app's pool, the worker, two nodes --------------------------------------------------

@contextmanager
def node_database(settings: Settings, template_db: str, name: str, tmp_path: Path) -> Iterator[Settings]:
    """A database of its own copied from the migrated template, with its own signing keys; dropped after."""
    database = f"{settings.db_url.database}_{name}"[:63]
    provision.drop_database(settings.admin_url, database)
    provision.create_database(settings.admin_url, database, template=template_db)
    node = settings.model_copy(update={
        "database_url": settings.db_url.set(database=database).render_as_string(hide_password=False),
        "admin_database_url": settings.admin_url.set(database=database).render_as_string(hide_password=False),
        "key_file": tmp_path / f"{name}-keys.json",
    })
    keyring.for_settings(node).ensure()
    try:
        yield node
    finally:
        provision.drop_database(settings.admin_url, database)


@contextmanager
def owner_session(node: Settings) -> Iterator[Session]:
    engine: Engine = make_engine(node.admin_url)
    try:
        with transaction(engine) as session:
            yield session
    finally:
        engine.dispose()


def make_national(node: Settings, *, beat_seconds_ago: int | None = None) -> None:
    with owner_session(node) as session:
        session.execute(text(DIRECTORY), {"dakar": DAKAR_URL, "thies": THIES_URL, "national": "https://sifc.example"})
        session.execute(text("UPDATE sifc_node SET role = 'national', node_id = 'national', pole_code = NULL"))
        exists = session.execute(text("SELECT to_regclass('federation_heartbeat')")).scalar() is not None
        if beat_seconds_ago is not None and exists:
            session.execute(text("SET LOCAL session_replication_role = replica"))
            session.execute(text(BEAT), {"s": beat_seconds_ago})


def test_national_reads_carry_the_data_age_and_the_guard_names_the_owner(settings, template_db, tmp_path):
    with node_database(settings, template_db, "national", tmp_path) as node:
        with owner_session(node) as session:
            key = keys.create(session, name="t", role="administrateur", scope=(), expires_at=None,
                              created_by="tests")[1]
        app = create_app(node)
        with TestClient(app, headers={"X-API-Key": key}) as single:
            assert "x-sifc-data-age" not in single.get("/communes/" + BARGNY).headers
            x, y = bargny_origin_of(node)
            parcel = single.post("/parcels", params={"crs": "EPSG:32628"}, json=feature(square(x, y)))
            assert parcel.status_code == 201, parcel.text
        make_national(node, beat_seconds_ago=5)
        app = create_app(node)
        add_forgetful_route(app)
        with TestClient(app, headers={"X-API-Key": key}) as national:
            read = national.get("/communes/" + BARGNY)
            assert read.status_code == 200
            ages = dict(part.split("=") for part in read.headers["X-SIFC-Data-Age"].split(", "))
            assert set(ages) == {"dakar", "thies"} and ages["thies"] == "unknown"
            if ages["dakar"] != "unknown":  # the heartbeat table exists (migration 0017)
                assert 5 <= int(ages["dakar"]) < 60
            assert "x-sifc-data-age" in national.get(f"/parcels/{parcel.json()['id']}").headers
            # The guard's refusal on a path that did not ask, with the owner looked up on the app's pool.
            refused = national.post(FORGETFUL)
            assert refused.status_code == 403, refused.text
            assert (refused.json()["owner_node"], refused.json()["owner_url"]) == ("dakar", DAKAR_URL)
            posted = national.post("/parcels", params={"crs": "EPSG:32628"}, json=feature(square(x + 40, y)))
            assert posted.status_code == 403 and "x-sifc-data-age" not in posted.headers


def bargny_origin_of(node: Settings) -> tuple[float, float]:
    with owner_session(node) as session:
        return bargny_origin(session)


def test_an_import_job_into_a_commune_of_another_node_fails_with_a_job_error(settings, template_db, tmp_path):
    with node_database(settings, template_db, "worker", tmp_path) as node:
        x, y = bargny_origin_of(node)
        path = write(tmp_path, [{"NICAD": "0104040100001", "SUPERFICIE": 400, "geometry": square(x, y)}])
        make_national(node)
        engine = make_engine(node.db_url)
        try:
            with transaction(engine) as session:  # queued as a worker finds it (the early refusal bypassed)
                job = jobs.submit(session, job_id=uuid.uuid4(), file_name=path.name, upload_path=str(path),
                                  size_bytes=path.stat().st_size, options={}, dry_run=False, author="tests")
            with engine.connect() as conn:
                claimed = worker.claim(conn)
                assert claimed is not None and claimed["id"] == job["id"]
                assert worker.run(conn, engine, claimed) == "failed"
            with transaction(engine) as session:
                error = session.execute(text("SELECT error FROM import_job WHERE id = :id"),
                                        {"id": job["id"]}).scalar_one()
        finally:
            engine.dispose()
    assert error["key"] == "federation.not-owner", error
    assert "dakar" in error["fr"] and DAKAR_URL in error["en"]


def test_a_command_refused_by_the_guard_says_one_line(settings, template_db, tmp_path):
    """``sifc import parcels`` writes through the pipeline, which does not ask first: the guard refuses."""
    from tests.e2e.helpers import assert_one_clean_line, run_cli

    with node_database(settings, template_db, "cli", tmp_path) as node:
        x, y = bargny_origin_of(node)
        path = write(tmp_path, [{"NICAD": "0104040100001", "SUPERFICIE": 400, "geometry": square(x, y)}])
        make_national(node)
        done = run_cli(node, "import", "parcels", str(path), "--commune", BARGNY)
        english = run_cli(node, "--lang", "en", "import", "parcels", str(path), "--commune", BARGNY)
    assert done.returncode == 2, done.stderr
    assert_one_clean_line(done)
    assert "dakar" in done.stderr and "gérée par le nœud" in done.stderr
    assert english.returncode == 2 and "is owned by node 'dakar'" in english.stderr, english.stderr


def test_a_token_of_one_node_is_refused_at_another(settings, template_db, tmp_path):
    """Accounts and signing keys are per node: the same account name at two nodes is two accounts."""
    with node_database(settings, template_db, "node_a", tmp_path) as node_a, \
            node_database(settings, template_db, "node_b", tmp_path) as node_b:
        api_keys = {}
        for node in (node_a, node_b):
            with owner_session(node) as session:
                users.create(session, username="agent.bargny", password="correct horse battery",
                             role="agent_foncier", scope=[ScopeEntry("commune", BARGNY)], created_by="tests")
                api_keys[node.db_url.database] = keys.create(session, name="t", role="lecteur", scope=[ScopeEntry("country", "SN")],
                                                             expires_at=None, created_by="tests")[1]
        with TestClient(create_app(node_a)) as at_a, TestClient(create_app(node_b)) as at_b:
            signed_in = at_a.post("/auth/token", data={"username": "agent.bargny", "password": "correct horse battery"})
            assert signed_in.status_code == 200, signed_in.text
            bearer = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
            assert at_a.get("/auth/me", headers=bearer).status_code == 200
            refused = at_b.get("/auth/me", headers=bearer)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
            key_of_a = {"X-API-Key": api_keys[node_a.db_url.database]}
            assert at_a.get("/auth/me", headers=key_of_a).status_code == 200
            assert at_b.get("/auth/me", headers=key_of_a).status_code == 401
