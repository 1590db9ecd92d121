"""Accounts, tokens, API keys, lockout, scopes and the access audit, on real PostGIS."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from api.app import create_app
from api.deps import PrincipalDep, get_session
from sifc.auth import audit, keys, scopes, tokens, users
from sifc.auth.passwords import hash_password, verify_password
from sifc.auth.principal import ANONYMOUS, Action, Principal, ScopeEntry, require
from sifc.auth.ratelimit import TokenBucket
from sifc.auth.service import from_api_key
from sifc.errors import Conflict, Forbidden, InvalidInput, TooManyRequests, Unauthorized
from sifc.settings import Settings

PASSWORD = "correct horse battery"
BARGNY, SANDIARA = "SN0104-bargny", "SN1301-sandiara"


@pytest.fixture
def agent(db):
    user_id = users.create(db, username="Agent.Bargny", password=PASSWORD, role="agent_foncier",
                           scope=[ScopeEntry("commune", BARGNY)], created_by="test")
    return users.get(db, user_id=user_id)


def sign_in(client: TestClient, username: str = "agent.bargny", password: str = PASSWORD):
    return client.post("/auth/token", data={"username": username, "password": password})


def assert_problem(response, status: int, key: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == f"urn:sifc:problem:{key}"
    return body


# --- passwords ---------------------------------------------------------------------------

def test_passwords_are_hashed_with_argon2id_and_verified():
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert hashed != hash_password(PASSWORD)  # salted
    assert verify_password(hashed, PASSWORD)
    assert not verify_password(hashed, PASSWORD + "!")
    assert not verify_password(None, PASSWORD)
    assert not verify_password("not a hash", PASSWORD)
    with pytest.raises(InvalidInput):
        hash_password("short")


def test_the_database_stores_only_the_hash(db, agent):
    stored = db.execute(text("SELECT username, password_hash FROM app_user WHERE id = :id"), {"id": agent.id}).one()
    assert stored.username == "agent.bargny"  # normalized
    assert stored.password_hash.startswith("$argon2id$")


def test_usernames_are_unique_and_checked(db, agent):
    with pytest.raises(Conflict) as taken:
        users.create(db, username="agent.bargny", password=PASSWORD, role="lecteur",
                     scope=[ScopeEntry("commune", BARGNY)], created_by="test")
    assert taken.value.key == "auth.username_taken"
    with pytest.raises(InvalidInput):
        users.create(db, username="x y", password=PASSWORD, role="lecteur", scope=[], created_by="test")
    with pytest.raises(InvalidInput) as role:
        users.create(db, username="someone", password=PASSWORD, role="superuser", scope=[], created_by="test")
    assert role.value.key == "auth.bad_role"
    with pytest.raises(InvalidInput) as scope:
        users.create(db, username="someone", password=PASSWORD, role="lecteur", scope=[], created_by="test")
    assert scope.value.key == "auth.scope_required"
    with pytest.raises(InvalidInput) as unknown:
        users.create(db, username="someone", password=PASSWORD, role="lecteur",
                     scope=[ScopeEntry("department", "SN9999")], created_by="test")
    assert unknown.value.key == "auth.unknown_scope"


# --- access tokens -----------------------------------------------------------------------

def test_sign_in_issues_a_short_lived_token_and_me_describes_the_caller(client, agent):
    response = sign_in(client)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60 and body["refresh_token"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    # The token names the account and its session; what it may do is read from the database per request.
    assert {"sub", "sid", "exp", "iat", "jti"} <= claims.keys() and not {"role", "scope"} & claims.keys()
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert jwt.get_unverified_header(body["access_token"])["kid"].startswith("token-")

    me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json() | {"actions": None} == {
        "kind": "user", "name": "agent.bargny", "role": "agent_foncier", "scope": [f"commune:{BARGNY}"],
        "everywhere": False, "communes": [BARGNY], "actions": None}
    assert "write_parcels" in me.json()["actions"] and "run_imports" not in me.json()["actions"]


def test_wrong_password_and_unknown_user_answer_the_same_401(client, agent):
    wrong = assert_problem(sign_in(client, password="not the password"), 401, "auth.bad_credentials")
    unknown = assert_problem(sign_in(client, username="nobody"), 401, "auth.bad_credentials")
    assert wrong["detail"] == unknown["detail"] == "Identifiant ou mot de passe incorrect."


def test_anonymous_me_asks_for_authentication(client):
    response = client.get("/auth/me")
    assert_problem(response, 401, "auth.required")
    assert response.headers["www-authenticate"].startswith("Bearer")


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "1"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_expired_tampered_foreign_or_unsigned_tokens_are_refused_with_401(client, db, settings, agent):
    good = tokens.start_session(db, settings, user_id=agent.id).access_token
    expired = tokens.start_session(db, settings, user_id=agent.id,
                                   now=datetime.now(UTC) - timedelta(minutes=16)).access_token
    foreign = jwt.encode({**jwt.decode(good, options={"verify_signature": False})}, "another secret, 32 bytes or more, not ours",
                         algorithm="HS256")
    unsigned = jwt.encode(jwt.decode(good, options={"verify_signature": False}), None, algorithm="none")
    cases = {"auth.token_expired": [expired],
             "auth.token_invalid": [_tamper(good), foreign, unsigned, "not-a-jwt", good[:-4]]}
    for key, candidates in cases.items():
        for candidate in candidates:
            response = client.get("/auth/me", headers={"Authorization": f"Bearer {candidate}"})
            assert_problem(response, 401, key)
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
    english = client.get("/auth/me", headers={"Authorization": f"Bearer {expired}", "Accept-Language": "en"})
    assert english.json()["detail"].startswith("The access token has expired")
    assert client.get("/auth/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_an_unknown_authorization_scheme_is_refused(client):
    assert_problem(client.get("/auth/me", headers={"Authorization": "Basic YTpi"}), 401, "auth.bad_scheme")


# --- refresh tokens ----------------------------------------------------------------------

def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_family(client, agent):
    first = sign_in(client).json()
    second = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"]
    assert client.get("/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"}).status_code == 200

    # The first token comes back (stolen copy, or replay): refused, and the whole family dies.
    assert_problem(client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}), 401,
                   "auth.refresh_reused")
    assert_problem(client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]}), 401,
                   "auth.refresh_invalid")
    assert_problem(client.post("/auth/refresh", json={"refresh_token": "made-up"}), 401, "auth.refresh_invalid")


def test_logout_revokes_the_session(client, agent):
    session = sign_in(client).json()
    assert client.post("/auth/logout", json={"refresh_token": session["refresh_token"]}).status_code == 204
    assert_problem(client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}), 401,
                   "auth.refresh_invalid")


def test_expired_refresh_tokens_and_disabled_accounts_are_refused(db, settings, agent):
    token, _ = tokens.issue_refresh_token(db, settings, user_id=agent.id)
    with pytest.raises(Unauthorized):
        tokens.rotate_refresh_token(db, settings, token, now=datetime.now(UTC) + timedelta(days=15))
    token, _ = tokens.issue_refresh_token(db, settings, user_id=agent.id)
    users.disable(db, username="agent.bargny")
    with pytest.raises(Unauthorized):
        tokens.rotate_refresh_token(db, settings, token)
    with pytest.raises(Unauthorized) as disabled:
        users.authenticate(db, username="agent.bargny", password=PASSWORD, settings=settings)
    assert disabled.value.key == "auth.account_disabled"


# --- lockout and rate limits -------------------------------------------------------------

def test_five_failures_lock_the_account_for_fifteen_minutes(client, db, agent):
    for _ in range(4):
        assert_problem(sign_in(client, password="wrong password"), 401, "auth.bad_credentials")
    locked = sign_in(client, password="wrong password")
    body = assert_problem(locked, 429, "auth.locked")
    assert int(locked.headers["retry-after"]) == 15 * 60
    assert body["detail"] == ("Compte verrouillé après trop d'échecs d'authentification : "
                              "réessayez dans 15 min.")
    # Even the right password is refused while the account is locked.
    assert sign_in(client).status_code == 429
    until = db.execute(text("SELECT locked_until FROM app_user WHERE id = :id"), {"id": agent.id}).scalar()
    assert timedelta(minutes=14) < until - datetime.now(UTC) <= timedelta(minutes=15)


def test_the_lock_expires_and_a_success_resets_the_counter(db, settings, agent):
    later = datetime.now(UTC) + timedelta(minutes=16)
    for _ in range(4):
        with pytest.raises(Unauthorized) as refused:
            users.authenticate(db, username="agent.bargny", password="wrong password", settings=settings)
        assert refused.value.key == "auth.bad_credentials"
    with pytest.raises(TooManyRequests) as locked:  # the fifth failure locks the account
        users.authenticate(db, username="agent.bargny", password="wrong password", settings=settings)
    assert locked.value.key == "auth.locked"
    user = users.authenticate(db, username="agent.bargny", password=PASSWORD, settings=settings, now=later)
    assert user.id == agent.id
    assert db.execute(text("SELECT failed_attempts, locked_until FROM app_user WHERE id = :id"),
                      {"id": agent.id}).one() == (0, None)


def test_sign_in_is_rate_limited_per_client_address(settings, db, agent):
    app = create_app(settings.model_copy(update={"login_rate_per_ip": 2}))
    app.dependency_overrides[get_session] = lambda: (yield db)
    client = TestClient(app)
    assert sign_in(client).status_code == 200
    assert sign_in(client, username="nobody").status_code == 401
    limited = sign_in(client)
    assert_problem(limited, 429, "auth.rate_limited")
    assert int(limited.headers["retry-after"]) >= 1


def test_token_bucket_refills():
    now = [0.0]
    bucket = TokenBucket(2, 1.0, clock=lambda: now[0])
    assert bucket.take("a") == 0 and bucket.take("a") == 0
    assert bucket.take("a") == pytest.approx(1.0)
    assert bucket.take("b") == 0  # keys are independent
    now[0] = 1.0
    assert bucket.wait("a") == 0 and bucket.take("a") == 0


# --- API keys ----------------------------------------------------------------------------

def test_api_keys_are_shown_once_stored_hashed_used_and_revoked(client, db):
    key_id, key = keys.create(db, name="carte-bargny", role="lecteur", scope=[ScopeEntry("commune", BARGNY)],
                              expires_at=None, created_by="test")
    prefix, secret = keys.split(key)
    assert key.startswith(f"sifc_{prefix}_")
    stored = db.execute(text("SELECT prefix, secret_hash FROM api_key WHERE id = :id"), {"id": key_id}).one()
    assert stored.prefix == prefix and secret not in stored.secret_hash

    for headers in ({"X-API-Key": key}, {"Authorization": f"ApiKey {key}"}, {"Authorization": f"Bearer {key}"}):
        me = client.get("/auth/me", headers=headers)
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "api_key" and me.json()["role"] == "lecteur"
        assert me.json()["communes"] == [BARGNY]
    assert db.execute(text("SELECT last_used_at FROM api_key WHERE id = :id"), {"id": key_id}).scalar() is not None

    assert_problem(client.get("/auth/me", headers={"X-API-Key": key[:-2] + "xx"}), 401, "auth.key_invalid")
    assert_problem(client.get("/auth/me", headers={"X-API-Key": "sifc_0000000000_nothing"}), 401,
                   "auth.key_invalid")
    keys.revoke(db, prefix=prefix)
    assert_problem(client.get("/auth/me", headers={"X-API-Key": key}), 401, "auth.key_invalid")
    assert [k.status() for k in keys.list_keys(db)] == ["revoked"]


def test_api_keys_expire(db):
    expiry = datetime.now(UTC) + timedelta(days=1)
    _key_id, key = keys.create(db, name="app", role="lecteur", scope=[ScopeEntry("commune", BARGNY)],
                               expires_at=expiry, created_by="test")
    assert from_api_key(db, key).role == "lecteur"
    with pytest.raises(Unauthorized):
        keys.authenticate(db, key, now=expiry + timedelta(seconds=1))
    with pytest.raises(InvalidInput):
        keys.create(db, name="app", role="lecteur", scope=[ScopeEntry("commune", BARGNY)],
                    expires_at=datetime.now(UTC) - timedelta(days=1), created_by="test")


# --- principal dependency on any route ---------------------------------------------------

def test_the_principal_dependency_is_anonymous_without_credentials(settings, db, agent):
    app: FastAPI = create_app(settings)
    app.dependency_overrides[get_session] = lambda: (yield db)

    @app.get("/probe")
    def probe(principal: PrincipalDep) -> dict:
        return {"kind": principal.kind, "role": principal.role}

    client = TestClient(app)
    assert client.get("/probe").json() == {"kind": "anonymous", "role": "public"}
    access = sign_in(client).json()["access_token"]
    assert client.get("/probe", headers={"Authorization": f"Bearer {access}"}).json() == {
        "kind": "user", "role": "agent_foncier"}
    assert client.get("/probe", headers={"Authorization": "Bearer garbage"}).status_code == 401


# --- scopes and permissions --------------------------------------------------------------

@pytest.mark.parametrize(("entry", "inside", "outside"), [
    (ScopeEntry("commune", BARGNY), {BARGNY}, {SANDIARA, "SN0104-rufisque-est"}),
    (ScopeEntry("department", "SN0104"), {BARGNY, "SN0104-rufisque-est"}, {SANDIARA}),
    (ScopeEntry("region", "SN01"), {BARGNY}, {SANDIARA}),
    (ScopeEntry("pole", "DKR"), {BARGNY}, {SANDIARA}),
])
def test_a_scope_expands_to_the_communes_it_covers(db, entry, inside, outside):
    everywhere, communes = scopes.expand(db, [entry])
    assert not everywhere
    assert inside <= communes and not (outside & communes)
    departments = db.execute(text("SELECT DISTINCT department_code FROM commune WHERE code = ANY(:c)"),
                             {"c": list(communes)}).scalars().all()
    if entry.level == "department":
        assert departments == ["SN0104"]
        assert len(communes) == db.execute(text("SELECT count(*) FROM commune WHERE department_code = 'SN0104'")
                                           ).scalar()


def test_a_user_scope_expands_in_the_database_view(db):
    user_id = users.create(db, username="lecteur.dakar", password=PASSWORD, role="lecteur",
                           scope=[ScopeEntry("department", "SN0104"), ScopeEntry("commune", SANDIARA)],
                           created_by="test")
    expanded = set(db.execute(text("SELECT commune_code FROM app_user_commune WHERE user_id = :id"),
                              {"id": user_id}).scalars())
    assert {BARGNY, SANDIARA} <= expanded
    assert expanded == scopes.expand(db, users.get(db, user_id=user_id).scope)[1]


def test_the_country_scope_covers_every_commune(db):
    assert scopes.expand(db, [ScopeEntry("country", "SN")]) == (True, frozenset())
    admin_id = users.create(db, username="admin", password=PASSWORD, role="administrateur", scope=[],
                            created_by="test")
    assert users.get(db, user_id=admin_id).scope == (ScopeEntry("country", "SN"),)


def test_scope_entries_parse_french_and_english_levels():
    assert ScopeEntry.parse("département:sn0104") == ScopeEntry("department", "SN0104")
    assert ScopeEntry.parse("pays:anything") == ScopeEntry("country", "SN")
    assert ScopeEntry.parse("commune:SN0104-bargny") == ScopeEntry("commune", BARGNY)
    for bad in ("bargny", "village:x", "commune:"):
        with pytest.raises(InvalidInput):
            ScopeEntry.parse(bad)


def test_require_checks_the_role_then_every_commune_of_the_scope():
    agent = Principal(kind="user", role="agent_foncier", id=1, name="a", communes=frozenset({BARGNY}))
    require(agent, Action.WRITE_PARCELS, communes=[BARGNY])
    with pytest.raises(Forbidden) as outside:
        require(agent, Action.WRITE_PARCELS, communes=[BARGNY, SANDIARA])
    assert outside.value.key == "auth.out_of_scope" and SANDIARA in outside.value.message("fr")
    with pytest.raises(Forbidden) as role:
        require(agent, Action.RUN_IMPORTS, communes=[BARGNY])
    assert role.value.key == "auth.forbidden"
    with pytest.raises(Unauthorized):
        require(ANONYMOUS, Action.READ_PERSONAL)
    require(ANONYMOUS, Action.READ_PUBLIC)
    national = Principal(kind="user", role="administrateur", id=2, name="b", everywhere=True)
    require(national, Action.RUN_IMPORTS, communes=[SANDIARA])
    assert agent.may(Action.READ_PERSONAL, BARGNY) and not agent.may(Action.READ_PERSONAL, SANDIARA)


# --- settings ----------------------------------------------------------------------------

@pytest.mark.parametrize("environment", ["development", "test", "production"])
@pytest.mark.parametrize("secret", ["", "   ", "too-short-for-production", "x" * 31])
def test_every_environment_refuses_an_empty_or_short_secret(environment, secret):
    with pytest.raises(ValidationError) as refused:
        Settings(environment=environment, secret_key=secret)
    assert "SIFC_SECRET_KEY" in str(refused.value)


def test_a_random_secret_is_accepted_and_none_is_needed():
    assert Settings(environment="production", secret_key=secrets.token_urlsafe(48)).environment == "production"
    assert Settings(environment="development").secret_key is None  # the key file's keys sign


# --- access audit ------------------------------------------------------------------------

def _audit_one(db, agent) -> None:
    principal = Principal(kind="user", role=agent.role, id=agent.id, name=agent.username,
                          communes=frozenset({BARGNY})).via("get", "/parties/{party_id}")
    audit.record(db, principal, service="tests", subject_kind="party", subject_id="42", commune_code=BARGNY,
                 purpose="instruction d'une demande")


def test_access_is_audited_and_listed_per_subject(db, agent):
    _audit_one(db, agent)
    [row] = audit.for_subject(db, subject_kind="party", subject_id="42")
    assert (row.actor, row.method, row.endpoint, row.role) == ("agent.bargny", "GET", "/parties/{party_id}",
                                                               "agent_foncier")
    with pytest.raises(ValueError):
        audit.record(db, ANONYMOUS.via("GET", "/x"), service="tests", subject_kind="party", subject_id="1")


@pytest.mark.parametrize("statement", [
    "UPDATE access_audit SET purpose = 'rewritten'",
    "DELETE FROM access_audit",
    "TRUNCATE access_audit",
])
def test_the_service_role_cannot_rewrite_the_audit(db, agent, statement):
    _audit_one(db, agent)
    db.flush()
    with pytest.raises(ProgrammingError) as refused, db.begin_nested():
        db.execute(text(statement))
    # The privileges refuse it first; the append-only trigger is for the owner (the test below).
    assert refused.value.orig.sqlstate == "42501"
    assert "permission denied for table access_audit" in str(refused.value)


@pytest.mark.parametrize("statement", [
    "UPDATE access_audit SET purpose = 'rewritten'",
    "DELETE FROM access_audit",
    "TRUNCATE access_audit",
])
def test_not_even_the_owner_can_rewrite_the_audit(admin_engine, statement):
    with admin_engine.connect() as conn:
        conn.execute(text("""INSERT INTO access_audit (actor_kind, actor, role, method, endpoint, subject_kind,
                             subject_id) VALUES ('cli', 'test', 'administrateur', 'GET', '/x', 'party', '1')"""))
        with pytest.raises(DBAPIError) as refused:
            conn.execute(text(statement))
        assert "append-only" in str(refused.value)
        conn.rollback()


def test_the_service_role_cannot_delete_accounts_or_keys(db, agent):
    for statement in ("DELETE FROM app_user", "DELETE FROM api_key", "DELETE FROM refresh_token",
                      "UPDATE app_user SET username = 'renamed'", "UPDATE api_key SET secret_hash = ''"):
        with pytest.raises(ProgrammingError, match="permission denied"), db.begin_nested():
            db.execute(text(statement))
