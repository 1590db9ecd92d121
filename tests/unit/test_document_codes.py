"""Verification codes of printed documents (issue 10): canonical content, HMAC, reading an upload."""

from __future__ import annotations

import pytest

from sifc.documents import verification
from sifc.errors import InvalidInput, UnsupportedFormat

SECRET = "a test secret of more than thirty-two characters"


def test_the_canonical_form_does_not_depend_on_key_order():
    assert verification.canonical({"b": 1, "a": [2, {"d": 3, "c": 4}]}) == \
        verification.canonical({"a": [2, {"c": 4, "d": 3}], "b": 1}) == b'{"a":[2,{"c":4,"d":3}],"b":1}'


def test_the_code_is_an_hmac_keyed_by_a_key_derived_from_the_secret():
    content = verification.canonical({"area_m2": 900.0})
    code = verification.sign(SECRET, content)
    assert len(code) == 64 and code == verification.sign(SECRET, content)
    assert code != verification.sign(SECRET + "x", content)
    assert code != verification.sign(SECRET, verification.canonical({"area_m2": 900.01}))
    assert verification.key(SECRET) != SECRET.encode()


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
