"""The authentication of a field package's id.

A package carries its id in its ``sifc_package`` table, with a MAC over the id and what the server
recorded of it (commune, holder, dates, format). A return whose MAC does not verify was not issued
by this server (or was altered) and is refused before anything else is read. The MAC key is derived
from the secret half of a **seal** key of the service's keyring (never from anything in the repository,
nor from a public key: an Ed25519 seal key's private key, an older HMAC seal key's secret): seal keys are
kept for ever after a rotation, so a package issued before ``sifc keys rotate --kind seal`` still
verifies; ``hmac_kid`` names the seal key a package's MAC was made with.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import orjson

from sifc.keyring import Keyring

LABEL = b"sifc-field-package-v1"


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, LABEL, hashlib.sha256).digest()


def _message(claims: dict[str, Any]) -> bytes:
    def text(value: Any) -> Any:
        if isinstance(value, datetime):  # one spelling whatever the session's time zone: UTC, to the second
            instant = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return instant.astimezone(UTC).replace(microsecond=0).isoformat()
        return str(value)

    return orjson.dumps({k: text(v) for k, v in claims.items()}, option=orjson.OPT_SORT_KEYS)


def claims(*, package_id: Any, commune_code: str, issued_to: str, issued_at: datetime, expires_at: datetime,
           package_format: int) -> dict[str, Any]:
    """What a package's MAC covers."""
    return {"id": str(package_id), "commune": commune_code, "issued_to": issued_to, "issued_at": issued_at,
            "expires_at": expires_at, "format": package_format}


def sign(keys: Keyring, package_claims: dict[str, Any]) -> tuple[str, str]:
    """The MAC of a package (hex) and the id of the seal key it was derived from."""
    seal = keys.current("seal")
    return hmac.new(_key(seal.secret), _message(package_claims), hashlib.sha256).hexdigest(), seal.kid


def verify(keys: Keyring, package_claims: dict[str, Any], *, kid: str, mac: str) -> bool:
    """Whether ``mac`` authenticates ``package_claims`` under the seal key ``kid`` (unknown key: no)."""
    seal = keys.find("seal", kid)
    if seal is None:
        return False
    expected = hmac.new(_key(seal.secret), _message(package_claims), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), mac.encode())
