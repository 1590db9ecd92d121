"""Signing keys and sessions, on real PostGIS.

No string of the source signs a token that the service accepts; the keys live in a private file made
on first start; tokens and document seals have separate keys, each with an id, and a seal rotation
keeps every document ever issued verifiable; the account and its session are read on every request,
so a disabled account, a changed role, a sign-out or a revoked session acts on the next request, and
the access log names the account as the database knows it.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import io
import json
import re
import stat
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from shapely.geometry import mapping
from sqlalchemy import Engine, text

from sifc import keyring
from sifc.auth import tokens, users
from sifc.auth.passwords import hash_password
from sifc.auth.principal import ScopeEntry
from sifc.documents import verification
from sifc.errors import ConfigurationError, Unauthorized
from sifc.settings import Settings
from tests.conftest import REPO, app_client
from tests.integration.fixtures import bargny_origin, square

BARGNY = "SN0104-bargny"
PASSWORD = "keys and sessions 2026"
# Once the development default of this repository (removed): anyone who read the source could sign with it.
ONCE_PUBLISHED = "dev-only-change-me-this-is-not-a-secret"
QUOTED = re.compile(r"""(["'`])([^"'`\n]{1,300})\1""")


def source_strings() -> set[str]:
    """Every string literal of every tracked file: Python constants, and quoted text in the other files."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    found = {ONCE_PUBLISHED}
    for name in filter(None, names.decode("utf-8").split("\0")):
        try:
            data = (REPO / name).read_bytes()
        except OSError:  # listed, yet deleted in this working tree
            continue
        if b"\0" in data[:4096]:
            continue
        content = data.decode("utf-8", "replace")
        if name.endswith(".py"):
            found.update(node.value for node in ast.walk(ast.parse(content))
                         if isinstance(node, ast.Constant) and isinstance(node.value, str))
        else:
            found.update(match.group(2) for match in QUOTED.finditer(content))
    return found


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def own_keys(settings, db, tmp_path) -> tuple[Settings, TestClient]:
    """Settings with a key file of this test's own (rotations here touch no other test) and their client."""
    mine = settings.model_copy(update={"key_file": tmp_path / "keys" / "signing-keys.json"})
    return mine, app_client(mine, db)


@pytest.fixture
def committed_account(admin_engine: Engine) -> Iterator[dict]:
    """A lecteur of Bargny committed by the database owner, so that the owner can change it during the test
    (role, active) as an administrator would, and the service's next request sees the change.

    Tests name it first: it is then removed after the test's transaction (which references it) has ended.
    """
    username = f"sessions.{uuid.uuid4().hex[:8]}"
    with admin_engine.begin() as conn:
        user_id = conn.execute(text("""
            INSERT INTO app_user (username, password_hash, role, created_by)
            VALUES (:u, :h, 'lecteur', 'tests') RETURNING id"""), {"u": username, "h": hash_password(PASSWORD)}).scalar()
        conn.execute(text("INSERT INTO app_user_scope (user_id, level, code) VALUES (:id, 'commune', :c)"),
                     {"id": user_id, "c": BARGNY})
    yield {"id": user_id, "username": username}
    with admin_engine.begin() as conn:
        conn.execute(text("SET LOCAL lock_timeout = '20s'"))  # never wait for ever on a test's transaction
        for statement in ("DELETE FROM refresh_token WHERE user_id = :id", "DELETE FROM app_user_scope WHERE user_id = :id",
                          "DELETE FROM app_user WHERE id = :id"):
            conn.execute(text(statement), {"id": user_id})


def as_owner(admin_engine: Engine, statement: str, **values) -> None:
    with admin_engine.begin() as conn:
        conn.execute(text(statement), values)


# --- no key of the source signs ------------------------------------------------------------------

def test_a_token_signed_with_any_string_of_the_source_gets_401(client, db, settings):
    """Whatever the forger writes in it (an administrator's id, a live session, our key id), the signature fails."""
    admin = users.create(db, username="forged.admin", password=PASSWORD, role="administrateur", scope=[],
                         created_by="tests")
    live = tokens.start_session(db, settings, user_id=admin)
    kid = keyring.for_settings(settings).current("token").kid
    now = int(datetime.now(UTC).timestamp())
    claims = {"iss": "sifc", "sub": str(admin), "sid": str(live.session_id), "iat": now, "exp": now + 10 * 365 * 86400,
              "jti": uuid.uuid4().hex, "typ": "access", "role": "administrateur", "scope": ["country:SN"],
              "preferred_username": "forger"}
    candidates = sorted(source_strings())
    assert len(candidates) > 5000 and ONCE_PUBLISHED in candidates
    forged: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns of short HMAC keys: here, that is the point
        for candidate in candidates:
            for headers in ({"kid": kid}, None):
                try:
                    forged.append(jwt.encode(claims, candidate, algorithm="HS256", headers=headers))
                except (jwt.PyJWTError, ValueError, TypeError):  # a key PyJWT will not even use
                    continue
    accepted = []
    for token in forged:
        try:
            tokens.decode_access_token(settings, token)
            accepted.append(token)
        except Unauthorized:
            pass
    assert accepted == []
    # Through HTTP too, on the routes an administrator's token would open (a sample: the decoding is the same).
    for token in forged[:: max(1, len(forged) // 40)] + forged[-2:]:
        for url in ("/auth/me", "/admin/audit"):
            assert client.get(url, headers=bearer(token)).status_code == 401, url
    assert client.get("/auth/me", headers=bearer(live.access_token)).json()["role"] == "administrateur"


@pytest.mark.parametrize("environment", ["development", "test", "production"])
def test_settings_refuse_a_key_written_in_the_source(environment):
    readme = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    sentence = next(line.strip() for line in readme if len(line.strip()) > 60)
    for published in (ONCE_PUBLISHED, sentence, "another secret, 32 bytes or more, not ours"):
        with pytest.raises(ValidationError, match="SIFC_SECRET_KEY appears in a published file"):
            Settings(environment=environment, secret_key=published)
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(environment=environment, secret_key="a" * 31)


# --- the key file --------------------------------------------------------------------------------

def test_the_key_file_is_made_on_first_start_for_the_service_alone(tmp_path):
    path = tmp_path / "state" / "keys" / "signing-keys.json"
    ring = keyring.Keyring(path)
    assert ring.ensure() == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    token, seal = ring.current("token"), ring.current("seal")
    assert len(token.secret) == len(seal.secret) == 32 and token.secret != seal.secret
    assert token.kid.startswith("token-") and seal.kid.startswith("seal-")
    assert token.secret.hex() not in repr(token) and "secret" not in repr(token).split("kid")[0]
    # A second start reads the same keys; another process that races the first start keeps the first file.
    assert keyring.Keyring(path).current("seal") == seal
    path.chmod(0o640)
    with pytest.raises(ConfigurationError) as opened:
        keyring.Keyring(path).current("token")
    assert opened.value.key == "config.key_file_mode"


def test_a_key_file_made_readable_by_others_is_refused_on_the_next_check(tmp_path):
    path = tmp_path / "keys" / "signing-keys.json"
    ring = keyring.Keyring(path)
    ring.ensure()
    ring.current("token")  # read once: the file's time and size are remembered
    path.chmod(0o644)  # a chmod changes neither
    with pytest.raises(ConfigurationError) as opened:
        ring.current("token")
    assert opened.value.key == "config.key_file_mode"


def _rewritten(path, change) -> None:  # noqa: ANN001
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document), encoding="utf-8")


@pytest.mark.parametrize("secret", [b"", b"short", b"x" * 31], ids=["empty", "short", "31-bytes"])
def test_a_retired_key_with_a_short_secret_is_refused(tmp_path, secret):
    path = tmp_path / "keys" / "signing-keys.json"
    keyring.Keyring(path).ensure()
    _rewritten(path, lambda d: d["seal"]["keys"].append({
        "kid": "seal-old", "secret": base64.urlsafe_b64encode(secret).decode(), "created_at": "2026-01-01T00:00:00Z",
        "retired_at": "2026-02-01T00:00:00Z"}))
    with pytest.raises(ConfigurationError) as opened:
        keyring.Keyring(path).keys("seal")
    assert opened.value.key == "config.key_file_invalid"


def test_a_deeply_nested_key_file_is_an_invalid_key_file(tmp_path):
    path = tmp_path / "keys" / "signing-keys.json"
    keyring.Keyring(path).ensure()
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(ConfigurationError) as opened:
        keyring.Keyring(path).current("token")
    assert opened.value.key == "config.key_file_invalid"


def test_a_seed_from_the_environment_signs_tokens_and_keeps_the_legacy_seal_key(tmp_path):
    seed = "an operator's secret from a vault, long enough"
    ring = keyring.Keyring(tmp_path / "k.json", seed=seed)
    ring.ensure()
    assert ring.current("token").kid.startswith("env-")
    legacy = ring.find("seal", keyring.LEGACY_SEAL_KID)
    assert legacy is not None and legacy.secret == hmac.new(seed.encode(), b"sifc-documents-v1", hashlib.sha256).digest()
    # Recorded in the file: the documents it sealed verify even once the variable is gone.
    assert keyring.Keyring(tmp_path / "k.json").find("seal", keyring.LEGACY_SEAL_KID) == legacy
    with pytest.raises(ConfigurationError):
        ring.rotate("token")  # the environment's key changes with the environment


# --- separate keys with ids, and rotation ----------------------------------------------------------

def _parcel(client, db, admin_headers) -> str:
    x, y = bargny_origin(db)
    created = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=admin_headers,
                          json={"type": "Feature", "geometry": mapping(square(x + 40, y + 40)),
                                "properties": {"nicad": "0104040188888", "reason": "cles"}})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def _verify(client, pdf: bytes) -> dict:
    answer = client.post("/documents/verify", files={"file": ("fiche.pdf", pdf, "application/pdf")})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _key_id(db, pdf: bytes) -> str:
    """The seal key id the PDF names, after checking the register names the same one for its code."""
    found = verification.read(pdf)
    assert db.execute(text("SELECT key_id FROM issued_document WHERE code = :c"), {"c": found.code}).scalar() \
        == found.key_id
    return str(found.key_id)


def test_documents_issued_before_a_seal_rotation_still_verify_after_it(own_keys, db, admin_headers):
    mine, client = own_keys
    ring = keyring.for_settings(mine)
    parcel = _parcel(client, db, admin_headers)
    before = client.get(f"/parcels/{parcel}/fiche.pdf").content
    first = ring.current("seal").kid
    assert _key_id(db, before) == first

    rotated = ring.rotate("seal")
    assert rotated.kid != first and {key.kid for key in ring.keys("seal")} >= {first, rotated.kid}
    after = client.get(f"/parcels/{parcel}/fiche.pdf").content
    assert _key_id(db, after) == rotated.kid
    ring.rotate("seal")  # and once more: every key ever made still verifies what it sealed

    assert _verify(client, before)["status"] == "authentique"
    assert _verify(client, after)["status"] == "authentique"
    # Forged (the facts changed, the code kept) or tampered (one byte of the file): still non authentique.
    found = verification.read(before)
    assert found.content is not None
    forged_facts = found.content.replace(b'"SN0104-bargny"', b'"SN1301-sandiara"')
    forged = verification.embed(_blank_pdf(), verification.Sealed(forged_facts, found.code or "", first), title="x")
    assert _verify(client, forged)["status"] == "non authentique"
    tampered = before.replace(b"/Producer", b"/Producex", 1)
    assert tampered != before and _verify(client, tampered)["status"] == "non authentique"


def test_the_seal_key_is_not_the_token_key(own_keys):
    mine, _client = own_keys
    ring = keyring.for_settings(mine)
    assert ring.current("seal").secret != ring.current("token").secret
    assert ring.find("token", ring.current("seal").kid) is None and ring.find("seal", ring.current("token").kid) is None


def _blank_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_document_of_the_legacy_key_verifies_with_the_operators_secret(db, tmp_path):
    """Documents issued before keys had ids were sealed with a key derived from SIFC_SECRET_KEY (migration 0011)."""
    seed = "the operator's production secret, unchanged"
    legacy = keyring.SigningKey("seal", keyring.LEGACY_SEAL_KID,
                                hmac.new(seed.encode(), b"sifc-documents-v1", hashlib.sha256).digest(), "")
    sealed = verification.seal(legacy, {**verification.new_header("fiche_parcellaire", "fr"), "parcel": {"n": 1}})
    pdf = verification.embed(_blank_pdf(), sealed, title="ancienne fiche")
    verification.record(db, sealed=sealed, pdf=pdf, issue=verification.Issue(
        kind="fiche_parcellaire", subject_kind="parcel", subject_id="legacy", commune_code="SN0104-bargny", summary={},
        personal=False, issued_by="tests"))
    with_seed = keyring.Keyring(tmp_path / "with.json", seed=seed)
    assert verification.verify(db, keys=with_seed, pdf=pdf)["status"] == "authentique"
    without = keyring.Keyring(tmp_path / "without.json")
    assert verification.verify(db, keys=without, pdf=pdf)["status"] == "non authentique"


def test_tokens_of_a_retired_token_key_are_refused_and_renewed(own_keys, db):
    mine, client = own_keys
    user_id = users.create(db, username="rotation.user", password=PASSWORD, role="lecteur",
                           scope=[ScopeEntry("commune", BARGNY)], created_by="tests")
    issued = tokens.start_session(db, mine, user_id=user_id)
    assert client.get("/auth/me", headers=bearer(issued.access_token)).status_code == 200
    keyring.for_settings(mine).rotate("token")
    refused = client.get("/auth/me", headers=bearer(issued.access_token))
    assert refused.status_code == 401 and refused.json()["type"] == "urn:sifc:problem:auth.token_invalid"
    renewed = client.post("/auth/refresh", json={"refresh_token": issued.refresh_token})
    assert renewed.status_code == 200, renewed.text
    token = renewed.json()["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == keyring.for_settings(mine).current("token").kid
    assert client.get("/auth/me", headers=bearer(token)).status_code == 200


# --- the account and its session, read on every request ----------------------------------------

def _sign_in(client, username: str) -> dict:
    answer = client.post("/auth/token", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_role_claimed_in_a_token_is_not_believed(client, db, settings):
    user_id = users.create(db, username="claims.lecteur", password=PASSWORD, role="lecteur",
                           scope=[ScopeEntry("commune", BARGNY)], created_by="tests")
    session = tokens.start_session(db, settings, user_id=user_id)
    key = keyring.for_settings(settings).current("token")
    claims = jwt.decode(session.access_token, key.secret, algorithms=["HS256"], issuer="sifc")
    # Signed with the service's own key (an insider, a leaked key): still only the account's rights.
    boasting = jwt.encode({**claims, "role": "administrateur", "scope": ["country:SN"],
                           "preferred_username": "le.prefet"}, key.secret, algorithm="HS256", headers={"kid": key.kid})
    me = client.get("/auth/me", headers=bearer(boasting)).json()
    assert (me["name"], me["role"], me["scope"], me["everywhere"]) == ("claims.lecteur", "lecteur",
                                                                       [f"commune:{BARGNY}"], False)
    assert client.get("/admin/audit", headers=bearer(boasting)).status_code == 403
    someone_else = jwt.encode({**claims, "sub": "999999999"}, key.secret, algorithm="HS256", headers={"kid": key.kid})
    assert client.get("/auth/me", headers=bearer(someone_else)).status_code == 401  # not that account's session


def test_the_access_log_names_the_account_the_database_knows(client, db, settings, admin_headers):
    parcel = _parcel(client, db, admin_headers)
    user_id = users.create(db, username="journal.lecteur", password=PASSWORD, role="lecteur",
                           scope=[ScopeEntry("commune", BARGNY)], created_by="tests")
    session = tokens.start_session(db, settings, user_id=user_id)
    key = keyring.for_settings(settings).current("token")
    claims = jwt.decode(session.access_token, key.secret, algorithms=["HS256"], issuer="sifc")
    named = jwt.encode({**claims, "preferred_username": "quelqu.un.d.autre"}, key.secret, algorithm="HS256",
                       headers={"kid": key.kid})
    assert client.get(f"/parcels/{parcel}/fiche.pdf", headers=bearer(named)).status_code == 200
    row = db.execute(text("SELECT actor_kind, actor_id, actor, role FROM access_audit "
                          "WHERE subject_id = :p ORDER BY occurred_at DESC LIMIT 1"), {"p": parcel}).one()
    assert tuple(row) == ("user", user_id, "journal.lecteur", "lecteur")


def _session_of(db, settings, account: dict) -> str:
    """An access token of a new session of ``account`` (a sign-in would hold the account's row until the end
    of the test's transaction, and the owner's change would wait for it)."""
    return tokens.start_session(db, settings, user_id=account["id"]).access_token


def test_a_disabled_account_is_refused_on_its_next_request(committed_account, client, db, settings, admin_engine):
    token = _session_of(db, settings, committed_account)
    assert client.get("/auth/me", headers=bearer(token)).status_code == 200
    as_owner(admin_engine, "UPDATE app_user SET active = false WHERE id = :id", id=committed_account["id"])
    refused = client.get("/auth/me", headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["type"] == "urn:sifc:problem:auth.session_ended"
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_a_role_change_applies_to_the_next_request(committed_account, client, db, settings, admin_engine):
    token = _session_of(db, settings, committed_account)
    assert client.get("/admin/audit", headers=bearer(token)).status_code == 403
    as_owner(admin_engine, "UPDATE app_user SET role = 'administrateur' WHERE id = :id", id=committed_account["id"])
    as_owner(admin_engine, "UPDATE app_user_scope SET level = 'country', code = 'SN' WHERE user_id = :id",
             id=committed_account["id"])
    assert client.get("/admin/audit", headers=bearer(token)).status_code == 200
    assert client.get("/auth/me", headers=bearer(token)).json()["everywhere"] is True
    as_owner(admin_engine, "UPDATE app_user SET role = 'lecteur' WHERE id = :id", id=committed_account["id"])
    assert client.get("/admin/audit", headers=bearer(token)).status_code == 403


def test_signing_out_ends_the_session_on_the_next_request(client, db, settings):
    users.create(db, username="logout.user", password=PASSWORD, role="lecteur",
                 scope=[ScopeEntry("commune", BARGNY)], created_by="tests")
    first, second = _sign_in(client, "logout.user"), _sign_in(client, "logout.user")
    assert client.post("/auth/logout", json={"refresh_token": first["refresh_token"]}).status_code == 204
    refused = client.get("/auth/me", headers=bearer(first["access_token"]))
    assert refused.status_code == 401 and refused.json()["type"] == "urn:sifc:problem:auth.session_ended"
    # Another session of the same account (another device) is not signed out.
    assert client.get("/auth/me", headers=bearer(second["access_token"])).status_code == 200


def test_a_revoked_session_is_refused_on_the_next_request(client, db):
    users.create(db, username="revoked.user", password=PASSWORD, role="lecteur",
                 scope=[ScopeEntry("commune", BARGNY)], created_by="tests")
    signed_in = _sign_in(client, "revoked.user")
    renewed = client.post("/auth/refresh", json={"refresh_token": signed_in["refresh_token"]}).json()
    assert client.get("/auth/me", headers=bearer(renewed["access_token"])).status_code == 200
    # The first refresh token comes back (a stolen copy): the session is revoked, its access tokens with it.
    assert client.post("/auth/refresh", json={"refresh_token": signed_in["refresh_token"]}).status_code == 401
    for token in (signed_in["access_token"], renewed["access_token"]):
        assert client.get("/auth/me", headers=bearer(token)).status_code == 401

