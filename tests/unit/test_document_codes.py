"""Verification codes of printed documents: canonical content, HMAC, reading an upload."""

from __future__ import annotations

import secrets

import pytest

from sifc.documents import verification
from sifc.errors import InvalidInput, UnsupportedFormat
from sifc.keyring import SigningKey


def seal_key(kid: str = "seal-test-1") -> SigningKey:
    """A seal key made for the test (random: no key of the source ever seals)."""
    return SigningKey("seal", kid, secrets.token_bytes(32), "2026-12-05T00:00:00+00:00")


def test_the_canonical_form_does_not_depend_on_key_order():
    assert verification.canonical({"b": 1, "a": [2, {"d": 3, "c": 4}]}) == \
        verification.canonical({"a": [2, {"c": 4, "d": 3}], "b": 1}) == b'{"a":[2,{"c":4,"d":3}],"b":1}'


def test_the_code_is_an_hmac_under_the_seal_key_and_names_it():
    key, other = seal_key(), seal_key("seal-test-2")
    content = verification.canonical({"area_m2": 900.0})
    code = verification.sign(key, content)
    assert len(code) == 64 and code == verification.sign(key, content)
    assert code != verification.sign(other, content)
    assert code != verification.sign(key, verification.canonical({"area_m2": 900.01}))
    assert verification.seal(key, {"area_m2": 900.0}) == verification.Sealed(content, code, "seal-test-1")


def test_a_token_key_never_seals():
    token_key = SigningKey("token", "token-test", secrets.token_bytes(32), "")
    with pytest.raises(ValueError):
        verification.sign(token_key, b"{}")


def test_a_code_typed_from_paper_is_normalised():
    code = "ab12" * 16
    assert verification.normalise(verification.grouped(code).upper()) == code
    assert verification.normalise("AB12-ab12 ab12") == "ab12ab12ab12"


@pytest.mark.parametrize("content,error", [(b"", InvalidInput), (b"GIF89a", UnsupportedFormat),
                                           (b"\x89PNG\r\n\x1a\n", UnsupportedFormat)])
def test_only_a_pdf_is_read(content, error):
    with pytest.raises(error):
        verification.read(content)


def test_a_damaged_pdf_carries_nothing():
    found = verification.read(b"%PDF-1.4\n garbage")
    assert found.content is None and found.code is None
