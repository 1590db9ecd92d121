"""Seal keys: Ed25519 key pairs for the documents sealed since the federation, HMAC keys of before still verifying.

A new seal key (first start, rotation) is an Ed25519 key pair whose id starts with the node's id; the key
file keeps its private key, the node publishes its public key, and a document's code is the signature.
An HMAC seal key of before, and ``legacy-v1``, still verify what they sealed. The field packages' MAC key
is derived from the seal key's secret half, never from what the node publishes.
"""

from __future__ import annotations

import base64
import json
import secrets
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sifc import keyring
from sifc.documents import layout, verification
from sifc.documents.verification import SealKey
from sifc.errors import ConfigurationError
from sifc.field import mac
from sifc.settings import Settings

CONTENT = verification.canonical({"document": "fiche_parcellaire", "parcel": {"area_m2": 900.0}})


def hmac_key(kid: str = "seal-20260101-0a0b0c0d") -> keyring.SigningKey:
    """An HMAC seal key as made before the federation (random: no key of the source ever seals)."""
    return keyring.SigningKey("seal", kid, secrets.token_bytes(32), "2026-01-01T00:00:00+00:00")


def ed25519_key(kid: str = "dakar-seal-20261205-0a0b0c0d") -> keyring.SigningKey:
    return keyring.SigningKey("seal", kid, Ed25519PrivateKey.generate().private_bytes_raw(),
                              "2026-12-05T00:00:00+00:00", alg=keyring.ED25519)


def test_a_new_key_file_seals_with_an_ed25519_key_named_after_the_node(tmp_path):
    path = tmp_path / "keys" / "signing-keys.json"
    ring = keyring.Keyring(path, node_id="dakar")
    seal, token = ring.current("seal"), ring.current("token")
    assert seal.alg == keyring.ED25519 and token.alg == keyring.HMAC_SHA256
    assert seal.kid.startswith("dakar-seal-") and keyring.node_of(seal.kid) == "dakar"
    assert token.kid.startswith("token-")  # accounts and tokens are per node: no prefix needed there
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())["seal"]["keys"][0]
    assert stored["alg"] == "Ed25519" and "public_key" not in stored  # the private key, in the private file
    assert keyring.Keyring(path).current("seal") == seal  # read back the same


def test_without_a_node_id_the_seal_key_has_no_prefix(tmp_path):
    seal = keyring.Keyring(tmp_path / "k.json").current("seal")
    assert seal.kid.startswith("seal-") and keyring.node_of(seal.kid) is None and seal.alg == keyring.ED25519


def test_the_public_keys_are_published_current_and_retired(tmp_path):
    ring = keyring.Keyring(tmp_path / "k.json", node_id="thies")
    first = ring.current("seal")
    second = ring.rotate("seal")
    assert second.alg == keyring.ED25519 and second.kid.startswith("thies-seal-") and second.kid != first.kid
    published = ring.public_keys()
    assert [p["kid"] for p in published] == [first.kid, second.kid]
    assert set(published[0]) == {"kid", "alg", "public_key", "created_at", "retired_at"}
    assert published[0]["alg"] == "Ed25519" and published[0]["retired_at"] and published[1]["retired_at"] is None
    raw = keyring.from_b64(published[1]["public_key"])
    assert len(raw) == 32 and raw == second.public_key and "=" not in published[1]["public_key"]
    assert all(keyring.b64_raw(key.secret) not in json.dumps(published) for key in ring.keys("seal"))


def test_seal_public_keys_reads_the_settings_key_file(tmp_path):
    settings = Settings(environment="test", key_file=tmp_path / "k.json", node_id="national")
    published = keyring.seal_public_keys(settings)
    assert len(published) == 1 and published[0]["kid"].startswith("national-seal-")


def test_an_hmac_key_file_of_before_keeps_verifying_and_rotates_to_ed25519(tmp_path):
    path = tmp_path / "k.json"
    old = hmac_key()
    document = {"format": 1,
                "token": {"current": "token-20260101-01020304", "keys": [{
                    "kid": "token-20260101-01020304", "secret": base64.urlsafe_b64encode(secrets.token_bytes(32))
                    .decode(), "created_at": old.created_at, "retired_at": None}]},
                "seal": {"current": old.kid, "keys": [{"kid": old.kid, "secret": base64.urlsafe_b64encode(
                    old.secret).decode(), "created_at": old.created_at, "retired_at": None}]}}
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    ring = keyring.Keyring(path, node_id="dakar")
    assert ring.current("seal") == old and ring.public_keys() == []  # an HMAC key has nothing to publish
    code = verification.sign(old, CONTENT)
    assert len(code) == 64
    new = ring.rotate("seal")
    assert new.alg == keyring.ED25519 and new.kid.startswith("dakar-seal-")
    found = ring.find("seal", old.kid)
    assert found is not None and found.alg == keyring.HMAC_SHA256 and found.retired_at
    assert verification.matches(SealKey(old.kid, None, local=found), CONTENT, code)
    assert [p["kid"] for p in ring.public_keys()] == [new.kid]


def test_a_key_file_naming_an_unknown_algorithm_is_invalid(tmp_path):
    path = tmp_path / "k.json"
    keyring.Keyring(path).ensure()
    document = json.loads(path.read_text())
    document["seal"]["keys"][0]["alg"] = "none"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigurationError) as opened:
        keyring.Keyring(path).keys("seal")
    assert opened.value.key == "config.key_file_invalid"


def test_an_ed25519_code_is_the_signature_and_verifies_with_the_public_key_alone():
    key, other = ed25519_key(), ed25519_key("dakar-seal-20261205-ffffffff")
    code = verification.sign(key, CONTENT)
    assert len(code) == 128 and int(code, 16) >= 0 and code == verification.sign(key, CONTENT)  # deterministic
    assert verification.seal(key, {"document": "fiche_parcellaire", "parcel": {"area_m2": 900.0}}) == \
        verification.Sealed(CONTENT, code, key.kid)
    local, public = SealKey(key.kid, "dakar", local=key), SealKey(key.kid, "dakar", public_key=key.public_key)
    for verifier in (local, public):
        assert verification.matches(verifier, CONTENT, code)
        assert verification.matches(verifier, CONTENT, code.upper().lower())
        assert not verification.matches(verifier, CONTENT + b" ", code)
        assert not verification.matches(verifier, CONTENT, code[:-2] + ("00" if code[-2:] != "00" else "11"))
        assert not verification.matches(verifier, CONTENT, "é" * 128)
        assert not verification.matches(verifier, CONTENT, code[:64])
    assert not verification.matches(SealKey(key.kid, "x", public_key=other.public_key), CONTENT, code)


def test_an_hmac_code_verifies_only_with_its_secret():
    key = hmac_key()
    code = verification.sign(key, CONTENT)
    assert verification.matches(SealKey(key.kid, None, local=key), CONTENT, code)
    assert not verification.matches(SealKey(key.kid, None, local=hmac_key()), CONTENT, code)
    assert not verification.matches(SealKey(key.kid, None), CONTENT, code)  # no key material at all


def test_the_legacy_key_of_the_operators_secret_still_verifies(tmp_path):
    seed = secrets.token_urlsafe(48)
    ring = keyring.Keyring(tmp_path / "k.json", seed=seed, node_id="dakar")
    legacy = ring.find("seal", keyring.LEGACY_SEAL_KID)
    assert legacy is not None and legacy.alg == keyring.HMAC_SHA256 and ring.current("seal").alg == keyring.ED25519
    code = verification.sign(legacy, CONTENT)
    assert verification.matches(SealKey(legacy.kid, None, local=legacy), CONTENT, code)


def test_the_field_mac_derives_from_the_private_key_never_the_public_one(tmp_path):
    ring = keyring.Keyring(tmp_path / "k.json", node_id="dakar")
    seal = ring.current("seal")
    assert seal.alg == keyring.ED25519 and seal.public_key is not None
    claims = {"id": "p1", "commune": "SN0104-bargny", "issued_to": "agent", "issued_at": "x", "expires_at": "y",
              "format": "1"}
    signed, kid = mac.sign(ring, claims)
    assert kid == seal.kid and mac.verify(ring, claims, kid=kid, mac=signed)
    assert mac._key(seal.secret) != mac._key(seal.public_key)  # what a node publishes makes no package MAC
    ring.rotate("seal")
    assert mac.verify(ring, claims, kid=kid, mac=signed)


@pytest.mark.parametrize("kid,node", [("dakar-seal-20261205-9f3a61c2", "dakar"),
                                      ("pole-thies-2-seal-20261205-9f3a61c2", "pole-thies-2"),
                                      ("seal-20261205-9f3a61c2", None), ("legacy-v1", None),
                                      ("dakar-seal-2026-9f3a61c2", None)])
def test_the_node_is_read_from_a_seal_key_id(kid, node):
    assert keyring.node_of(kid) == node


@pytest.mark.parametrize("value,expected", [(None, None), ("", None), (" dakar ", "dakar"), ("pole-2", "pole-2")])
def test_the_node_id_setting(value, expected):
    assert Settings(environment="test", node_id=value).node_id == expected


@pytest.mark.parametrize("value", ["Dakar", "-dakar", "da kar", "a" * 42, "dakar_1"])
def test_a_node_id_that_cannot_start_a_key_id_is_refused(value):
    with pytest.raises(ValueError, match="SIFC_NODE_ID"):  # pydantic's error, carrying the message of config.node_id
        Settings(environment="test", node_id=value)


def test_a_long_code_is_printed_in_lines_of_sixteen_groups():
    signature = "ab12" * 32
    lines = layout.code_lines(signature)
    assert len(lines) == 2 and all(len(line.split()) == 16 for line in lines)
    assert verification.normalise(" ".join(lines).upper()) == signature
    assert layout.code_lines("cd34" * 16) == [verification.grouped("cd34" * 16)]
