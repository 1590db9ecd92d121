"""The service's database role may do what the service does, nothing more (migration 0012).

Accounts and API keys change only through the database's account functions, which the service role
may not call (the owner's command line calls them); they still check who asks (the owner, or an
active administrator whose scope covers the account) and journal the change themselves; a version is closed only in the name of the transaction's declared actor.
Refusals are checked on the service's very login (``SET LOCAL SESSION AUTHORIZATION``), not only
with its privileges.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from sifc.auth import keys, scopes, users
from sifc.auth.principal import Principal, ScopeEntry
from sifc.db import act_as
from sifc.errors import Forbidden, TooManyRequests, Unauthorized
from sifc.settings import Settings
from tests.conftest import table_fingerprint

PASSWORD = "un mot de passe assez long"
BARGNY = "SN0104-bargny"
SANDIARA = "SN1301-sandiara"


def _as_service_login(db: Session, settings: Settings) -> None:
    """From here on, the transaction is the service's own login (session_user and current_user)."""
    role = (settings.db_url.username or "sifc_app").replace('"', '""')
    db.execute(text(f'SET LOCAL SESSION AUTHORIZATION "{role}"'))
    assert db.execute(text("SELECT session_user = current_user AND current_user = :r"),
                      {"r": settings.db_url.username}).scalar()


def _account(db: Session, name: str, role: str, *scope: str) -> users.User:
    user_id = users.create(db, username=name, password=PASSWORD, role=role, scope=scopes.parse(list(scope)),
                           created_by="tests")
    return users.get(db, user_id=user_id)


def _principal(user: users.User) -> Principal:
    return Principal(kind="user", role=user.role, id=user.id, name=user.username, scope=user.scope)


def _journal(db: Session, user: users.User) -> list:
    return db.execute(text("""
        SELECT actor_kind, actor_id, actor, operation, before, after FROM write_audit
        WHERE object_kind = 'app_user' AND object_id = :id ORDER BY id"""), {"id": str(user.id)}).all()


def _refused(db: Session, statement: str, values: dict | None = None, match: str = "permission denied") -> None:
    with pytest.raises(DBAPIError, match=match), db.begin_nested():
        db.execute(text(statement), values or {})


@pytest.fixture
def agent(db: Session) -> users.User:
    return _account(db, "agent.bargny", "agent_foncier", f"commune:{BARGNY}")


@pytest.fixture
def bargny_admin(db: Session) -> users.User:
    return _account(db, "admin.bargny", "administrateur", f"commune:{BARGNY}")


# --- accounts: the service's role cannot change them -----------------------------------------------

@pytest.mark.parametrize("statement", [
    "UPDATE app_user SET role = 'administrateur' WHERE id = :id",
    "UPDATE app_user SET active = true WHERE id = :id",
    "UPDATE app_user SET password_hash = '$argon2id$forged' WHERE id = :id",
    "INSERT INTO app_user (username, password_hash, role, created_by) "
    "VALUES ('intrus', '$argon2id$x', 'administrateur', 'x')",
    "INSERT INTO app_user_scope (user_id, level, code) VALUES (:id, 'country', 'SN')",
    "DELETE FROM app_user_scope WHERE user_id = :id",
    "INSERT INTO api_key (prefix, secret_hash, name, role, created_by) "
    f"VALUES ('0123456789', '{'0' * 64}', 'intrus', 'administrateur', 'x')",
    "UPDATE api_key SET revoked_at = NULL",
    "UPDATE import_job SET created_by = 'someone.else'",
    "UPDATE import_job SET upload_path = '/etc/passwd'",
])
def test_the_service_role_cannot_write_accounts(db, settings, agent, statement):
    _as_service_login(db, settings)
    _refused(db, statement, {"id": agent.id})
    assert users.get(db, user_id=agent.id).role == "agent_foncier"


# Each account function, called as the service role would: in any administrator's name it chooses.
ACCOUNT_CALLS = [
    "SELECT * FROM sifc_create_user(:admin, 'x', 'intrus', '$argon2id$x', 'administrateur', NULL, NULL)",
    "SELECT * FROM sifc_set_user_role(:admin, 'x', :id, 'administrateur', NULL, NULL)",
    "SELECT * FROM sifc_set_user_active(:admin, 'x', :id, false)",
    "SELECT * FROM sifc_create_api_key(:admin, 'x', '0123456789', '" + "0" * 64 + "', 'intrus', "
    "'administrateur', NULL, NULL, NULL)",
    "SELECT * FROM sifc_revoke_api_key(:admin, 'x', :prefix)",
]


@pytest.mark.parametrize("login", [False, True], ids=["service-role", "service-login"])
@pytest.mark.parametrize("statement", ACCOUNT_CALLS)
def test_the_service_role_cannot_call_the_account_functions(db, settings, agent, statement, login):
    admin = _account(db, "admin.national", "administrateur")
    prefix = keys.split(keys.create(db, name="carte", role="lecteur", scope=scopes.parse([f"commune:{BARGNY}"]),
                                    expires_at=None, created_by="tests")[1])[0]
    before = {table: table_fingerprint(db, table) for table in ("app_user", "app_user_scope", "api_key",
                                                                 "api_key_scope", "write_audit")}
    if login:
        _as_service_login(db, settings)
    else:  # the db fixture's own role: the owner's login with the service's privileges
        assert db.execute(text("SELECT current_user = :r"), {"r": settings.db_url.username}).scalar()
    _refused(db, statement, {"admin": admin.id, "id": agent.id, "prefix": prefix},
             match="permission denied for function sifc_")
    assert {table: table_fingerprint(db, table) for table in before} == before


def test_the_service_login_cannot_use_the_account_functions(db, settings, agent):
    _as_service_login(db, settings)
    _refused(db, "SELECT sifc_set_user_role(NULL, 'x', :id, 'administrateur')", {"id": agent.id})
    with pytest.raises(Forbidden):
        users.set_role(db, username=agent.username, role="administrateur")
    with pytest.raises(Forbidden):
        users.create(db, username="intrus", password=PASSWORD, role="administrateur", scope=(), created_by="x")
    with pytest.raises(Forbidden):
        keys.create(db, name="intrus", role="administrateur", scope=(), expires_at=None, created_by="x")
    # The helpers that decide who asks are the owner's alone.
    _refused(db, "SELECT sifc_account_actor(NULL, '{}', '{}')")
    assert users.get(db, user_id=agent.id).role == "agent_foncier"


def test_a_role_change_by_the_owner_is_journaled(db, agent):
    changed = users.set_role(db, username=agent.username, role="lecteur", scope=scopes.parse(["department:SN0104"]),
                             author="cli")
    assert changed.role == "lecteur" and changed.scope == (ScopeEntry("department", "SN0104"),)
    kind, actor_id, actor, operation, before, after = _journal(db, agent)[-1]
    assert (kind, actor_id, actor, operation) == ("cli", None, "cli", "account.role")
    assert before == {"role": "agent_foncier", "scope": [f"commune:{BARGNY}"]}
    assert after == {"role": "lecteur", "scope": ["department:SN0104"]}


def test_an_administrator_in_scope_changes_a_role_through_the_function(db, settings, agent, bargny_admin):
    # The owner's path asking in an administrator's name: the functions check that administrator.
    changed = users.set_role(db, username=agent.username, role="lecteur", by=_principal(bargny_admin))
    assert changed.role == "lecteur" and changed.scope == agent.scope
    kind, actor_id, actor, operation, before, after = _journal(db, agent)[-1]
    assert (kind, actor_id, actor, operation) == ("user", bargny_admin.id, "admin.bargny", "account.role")
    assert (before["role"], after["role"]) == ("agent_foncier", "lecteur")
    users.disable(db, username=agent.username, principal=_principal(bargny_admin))
    assert not users.get(db, user_id=agent.id).active
    assert _journal(db, agent)[-1][3] == "account.disable"


def test_who_asks_must_be_an_active_administrator_whose_scope_covers_the_account(db, settings, agent,
                                                                                  bargny_admin):
    lecteur = _account(db, "lecteur.bargny", "lecteur", f"commune:{BARGNY}")
    sandiara = _account(db, "agent.sandiara", "agent_foncier", f"commune:{SANDIARA}")
    locked = _account(db, "admin.locked", "administrateur")
    db.execute(text("UPDATE app_user SET locked_until = now() + interval '1 hour' WHERE id = :id"),
               {"id": locked.id})
    journal_before = db.execute(text("SELECT count(*) FROM write_audit")).scalar()
    refusals = [
        (agent, lambda: users.set_role(db, username=agent.username, role="administrateur", by=_principal(agent))),
        (agent, lambda: users.set_role(db, username=agent.username, role="administrateur",
                                       by=_principal(lecteur))),
        # Outside the administrator's scope: the account, or the scope it would be given.
        (sandiara, lambda: users.set_role(db, username=sandiara.username, role="lecteur",
                                          by=_principal(bargny_admin))),
        (agent, lambda: users.set_role(db, username=agent.username, role="agent_foncier",
                                       scope=scopes.parse(["pays:SN"]), by=_principal(bargny_admin))),
        (agent, lambda: users.set_role(db, username=agent.username, role="lecteur", by=_principal(locked))),
        (sandiara, lambda: users.disable(db, username=sandiara.username, principal=_principal(bargny_admin))),
        (agent, lambda: users.set_role(db, username=agent.username, role="lecteur", by=Principal(
            kind="api_key", role="administrateur", id=bargny_admin.id, name="key", everywhere=True))),
    ]
    for target, attempt in refusals:
        with pytest.raises(Forbidden):
            attempt()
        assert users.get(db, user_id=target.id) == target
    # Creating an account or a key beyond one's scope is refused alike.
    with pytest.raises(Forbidden):
        users.create(db, username="admin.national", password=PASSWORD, role="administrateur", scope=(),
                     created_by="x", by=_principal(bargny_admin))
    with pytest.raises(Forbidden):
        keys.create(db, name="cle", role="lecteur", scope=scopes.parse([f"commune:{SANDIARA}"]), expires_at=None,
                    created_by="x", by=_principal(bargny_admin))
    assert db.execute(text("SELECT count(*) FROM write_audit")).scalar() == journal_before


def test_keys_are_created_and_revoked_through_the_functions_and_journaled(db, settings, bargny_admin):
    key_id, key = keys.create(db, name="carte", role="lecteur", scope=scopes.parse([f"commune:{BARGNY}"]),
                              expires_at=datetime.now(UTC) + timedelta(days=30), created_by="cli")
    prefix = keys.split(key)[0]
    revoked = keys.revoke(db, prefix=prefix, by="x", principal=_principal(bargny_admin))
    assert revoked.status() == "revoked"
    operations = db.execute(text("SELECT operation, actor FROM write_audit WHERE object_kind = 'api_key' "
                                 "AND object_id = :id ORDER BY id"), {"id": str(key_id)}).all()
    assert [tuple(row) for row in operations] == [("api_key.create", "cli"), ("api_key.revoke", "admin.bargny")]


# --- the service path still works on the service's login ---------------------------------------------

def test_sign_in_and_lockout_on_the_service_login(db, settings, agent):
    _as_service_login(db, settings)
    for _ in range(settings.login_max_failures - 1):
        with pytest.raises(Unauthorized):
            users.authenticate(db, username=agent.username, password="mauvais mot de passe", settings=settings)
    with pytest.raises(TooManyRequests):
        users.authenticate(db, username=agent.username, password="mauvais mot de passe", settings=settings)
    with pytest.raises(TooManyRequests):
        users.authenticate(db, username=agent.username, password=PASSWORD, settings=settings)
    later = datetime.now(UTC) + timedelta(minutes=settings.login_lockout_minutes + 1)
    signed_in = users.authenticate(db, username=agent.username, password=PASSWORD, settings=settings, now=later)
    assert signed_in.id == agent.id
    row = db.execute(text("SELECT failed_attempts, locked_until, last_login_at FROM app_user WHERE id = :id"),
                     {"id": agent.id}).one()
    assert row.failed_attempts == 0 and row.locked_until is None and row.last_login_at == later


# --- closing a version: only in the name of the transaction's actor ----------------------------------

def _versions(db: Session) -> dict[str, tuple[str, str]]:
    """One current version of each versioned table, written as the service writes them."""
    parcel, party, right = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    db.execute(text("""
        INSERT INTO parcel_version (parcel_id, version, nicad_status, commune_code, geom, action, author)
        VALUES (:id, 1, 'absent', :commune, ST_Multi(ST_MakeEnvelope(270000, 1625000, 270020, 1625020, 32628)),
                'api:create', 'agent.bargny')"""), {"id": parcel, "commune": BARGNY})
    db.execute(text("""
        INSERT INTO party_version (party_id, version, kind, name, commune_code, action, author)
        VALUES (:id, 1, 'legal_entity', 'GIE Test', :commune, 'api:create', 'agent.bargny')"""),
        {"id": party, "commune": BARGNY})
    db.execute(text("""
        INSERT INTO rrr_version (rrr_id, version, parcel_id, commune_code, class, type, start_date, source_ids,
                                 action, author)
        VALUES (:id, 1, :parcel, :commune, 'restriction', 'servitude', current_date, ARRAY[gen_random_uuid()],
                'api:create', 'agent.bargny')"""), {"id": right, "parcel": parcel, "commune": BARGNY})
    borne = uuid.uuid4()
    db.execute(text("""
        INSERT INTO borne_version (borne_id, version, commune_code, geom, precision_m, action, author)
        VALUES (:id, 1, :commune, ST_SetSRID(ST_MakePoint(270010, 1625030), 32628), 0.05, 'api:create',
                'agent.bargny')"""), {"id": borne, "commune": BARGNY})
    return {"parcel_version": ("parcel_id", str(parcel)), "party_version": ("party_id", str(party)),
            "rrr_version": ("rrr_id", str(right)), "borne_version": ("borne_id", str(borne))}


@pytest.mark.parametrize("table", ["parcel_version", "party_version", "rrr_version", "borne_version"])
def test_a_version_is_closed_only_in_the_name_of_the_declared_actor(db, settings, table):
    key, object_id = _versions(db)[table]
    _as_service_login(db, settings)
    close = (f"UPDATE {table} SET valid_to = {{when}}, closed_by = :by, close_reason = 'test' "
             f"WHERE {key} = CAST(:id AS uuid) AND valid_to IS NULL")
    # Nobody declared: refused, whatever the name.
    _refused(db, close.format(when="now()"), {"by": "agent.bargny", "id": object_id}, match="actor")
    act_as(db, "agent.bargny")
    _refused(db, close.format(when="now()"), {"by": "admin.national", "id": object_id}, match="actor")
    _refused(db, close.format(when="now() - interval '1 year'"), {"by": "agent.bargny", "id": object_id},
             match="time of the transaction")
    closed = db.execute(text(close.format(when="now()")), {"by": "agent.bargny", "id": object_id})
    assert closed.rowcount == 1
    act_as(db, None)
    assert db.execute(text("SELECT current_setting('sifc.actor', true)")).scalar() == ""


def test_the_api_declares_the_authenticated_caller(client, db, agent):
    token = client.post("/auth/token", data={"username": agent.username, "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/auth/me", headers=headers).status_code == 200
    assert db.execute(text("SELECT current_setting('sifc.actor', true)")).scalar() == agent.username
    assert client.get("/auth/me").status_code == 401  # anonymous: nobody declared
    assert db.execute(text("SELECT current_setting('sifc.actor', true)")).scalar() == ""


# --- the grants themselves ------------------------------------------------------------------------

# Every privilege of the service role beyond SELECT, each for something the service does.
EXPECTED_WRITES = {
    # the territorial reference and its pieces (sifc territories load / import-communes)
    ("pole", "INSERT"), ("pole", "UPDATE"), ("region", "INSERT"), ("region", "UPDATE"),
    ("department", "INSERT"), ("department", "UPDATE"), ("arrondissement", "INSERT"), ("arrondissement", "UPDATE"),
    ("commune", "INSERT"), ("commune", "UPDATE"), ("commune_alias", "INSERT"), ("commune_alias", "UPDATE"),
    ("boundary_version", "INSERT"), ("territory_piece", "INSERT"), ("territory_piece", "DELETE"),
    # the national defaults of the commune settings, upserted by the same loader (migration 0018)
    ("setting_default", "INSERT"), ("setting_default", "UPDATE"),
    # a commune's own settings (migration 0018): append-only, a change is a new row
    ("commune_setting", "INSERT"),
    # the registry: versions are added, and closed in the actor's name only; an uncommitted import
    # withdraws its own refused versions (the guard of migration 0027 refuses every other delete)
    ("import_batch", "INSERT"), ("parcel_version", "INSERT"), ("parcel_version", "DELETE"), ("party_version", "INSERT"),
    ("rrr_version", "INSERT"), ("rrr_holder", "INSERT"), ("source_document", "INSERT"), ("source_file", "INSERT"),
    ("tenure_procedure", "INSERT"), ("procedure_step", "INSERT"), ("parcel_mutation", "INSERT"),
    ("parcel_lineage", "INSERT"), ("issued_document", "INSERT"), ("import_job", "INSERT"),
    ("borne_version", "INSERT"),
    # localités (versions, closed in the actor's name) and the gender indicators (one row per commune, replaced)
    ("localite_version", "INSERT"), ("tenure_indicator", "INSERT"),
    # field packages: the record of what was issued, the returns, photos attached to parcels
    ("field_package", "INSERT"), ("field_package_item", "INSERT"), ("field_return", "INSERT"),
    ("parcel_source", "INSERT"),
    # the journals, append-only
    ("write_audit", "INSERT"), ("access_audit", "INSERT"),
    # sessions: refresh tokens issued, used and revoked
    ("refresh_token", "INSERT"),
    # federation: a pole's own sign of life (sifc serve, sifc node beat; the owner guard allows only its row)
    ("federation_heartbeat", "INSERT"),
    # campaigns, display periods and claims (migration 0024): rows added, states moved by column
    ("campaign", "INSERT"), ("campaign_parcel", "INSERT"), ("display_period", "INSERT"), ("claim", "INSERT"),
    # fees (migration 0025): schedules, assessments and payments appended; the receipt counter taken
    ("fee_schedule", "INSERT"), ("procedure_fee", "INSERT"), ("payment", "INSERT"), ("receipt_counter", "INSERT"),
    # tracking codes of the récépissé: issued, and revoked by a reprint (migration 0026)
    ("tracking_code", "INSERT"),
    # council sessions (migration 0020): a session, its agenda (an item taken off before it closes), attendees
    ("council_session", "INSERT"), ("session_item", "INSERT"), ("session_item", "DELETE"),
    ("session_attendee", "INSERT"),
    # the disputes register (migration 0022): append-only, its state is its last step
    ("dispute", "INSERT"), ("dispute_parcel", "INSERT"), ("dispute_party", "INSERT"), ("dispute_step", "INSERT"),
}
EXPECTED_COLUMN_UPDATES = {
    "parcel_version": {"valid_to", "closed_by", "close_reason"},
    "party_version": {"valid_to", "closed_by", "close_reason"},
    "rrr_version": {"valid_to", "closed_by", "close_reason"},
    "borne_version": {"valid_to", "closed_by", "close_reason"},
    "localite_version": {"valid_to", "closed_by", "close_reason"},
    "tenure_indicator": {"computed_at", "min_count", "holders", "women", "men", "unrecorded", "entities", "withheld"},
    "field_package": {"status", "issued_to", "item_count", "zip_bytes", "zip_sha256", "returned_at", "closed_at",
                      "closed_by", "close_reason"},
    "field_package_item": {"base_version", "fingerprint"},
    "app_user": {"failed_attempts", "locked_until", "last_login_at"},
    "api_key": {"last_used_at"},
    "refresh_token": {"used_at", "revoked_at"},
    "federation_heartbeat": {"beat_at"},
    "campaign": {"state", "updated_at"},
    "campaign_parcel": {"procedure_id"},
    "display_period": {"closed_at", "closed_by"},
    "claim": {"state", "resolved_on", "resolution_reason", "resolved_by", "dispute_id"},
    "receipt_counter": {"last_number"},
    "tracking_code": {"revoked_at"},
    "council_session": {"state", "revision", "deliberation_number", "deliberated_on", "deliberation_source_id",
                        "minutes_source_ids", "members_present", "quorum_met"},
    "session_item": {"position", "decision", "reason", "votes_for", "votes_against", "abstentions", "step_seq"},
    # a batch is completed after its rows, and only while its transaction runs (import_batch_sealed)
    "import_batch": {"counts", "report", "commune_code"},
    "import_job": {"status", "stage", "progress_done", "progress_total", "attempts", "worker", "error", "report",
                   "issues_gz", "rejects_gpkg", "batch_id", "started_at", "updated_at", "finished_at"},
}
def test_the_service_role_holds_only_what_the_service_does(admin_engine, settings):
    role = settings.db_url.username
    with admin_engine.connect() as conn:
        tables = {(row.relname, row.privilege_type) for row in conn.execute(text("""
            SELECT c.relname, a.privilege_type
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
            WHERE n.nspname = 'public' AND a.grantee = to_regrole(:role) AND a.privilege_type <> 'SELECT'
              AND c.relkind IN ('r', 'v', 'p')"""), {"role": role})}
        columns: dict[str, set[str]] = {}
        for row in conn.execute(text("""
            SELECT c.relname, att.attname, a.privilege_type
            FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace,
                 aclexplode(att.attacl) a
            WHERE n.nspname = 'public' AND a.grantee = to_regrole(:role) AND a.privilege_type <> 'SELECT'"""),
                {"role": role}):
            assert row.privilege_type == "UPDATE", row
            columns.setdefault(row.relname, set()).add(row.attname)
        # Functions of ours that run as their owner and that the service may call: none (the account
        # functions are the owner's; trigger functions cannot be called; PostGIS's own are the extension's).
        definers = {row.proname for row in conn.execute(text("""
            SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND p.prosecdef AND p.prorettype <> 'trigger'::regtype
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
              AND has_function_privilege(:role, p.oid, 'EXECUTE')"""), {"role": role})}
        public_definers = {row.proname for row in conn.execute(text("""
            SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND p.prosecdef AND p.prorettype <> 'trigger'::regtype
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
              AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                                                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))"""))}
    assert tables == EXPECTED_WRITES, (f"granted beyond the list: {sorted(tables - EXPECTED_WRITES)}; "
                                       f"no longer granted: {sorted(EXPECTED_WRITES - tables)}")
    assert columns == EXPECTED_COLUMN_UPDATES
    assert not definers, f"SECURITY DEFINER functions the service may call: {sorted(definers)}"
    assert not public_definers, f"SECURITY DEFINER functions anyone may call: {sorted(public_definers)}"
