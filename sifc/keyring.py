"""The service's signing keys: one set signs access tokens, another seals the documents it issues.

No key is ever written in the repository. The keys live in one JSON file outside it
(``SIFC_KEY_FILE``, by default ``~/.local/share/sifc/keys/signing-keys.json``), created on first use
with 256-bit random keys from :mod:`secrets`, mode 0600 in a 0700 folder: only the service's user
reads it (a file that others may read is refused, as ssh refuses a private key). Each key has an id
(``kid``): a token names it in its JWT header (RFC 7515 §4.1.4), an issued document in the register.

Token keys are HMAC-SHA256 (HS256) keys, private to the node. Seal keys are **Ed25519** key pairs
(RFC 8032): the file keeps the private key, and the node publishes the public one
(:func:`seal_public_keys`, stored in ``sifc_node.seal_keys`` and replicated with the federation's
directory ``federation_node``), so that any node verifies a document any other node sealed (ADR 0004).
The id of a seal key starts with the node's id when it has one (``SIFC_NODE_ID``: ``dakar-seal-...``).
Seal keys made before (HMAC-SHA256, and ``legacy-v1``) stay in the file and still verify what they
sealed, at the node that holds them: an HMAC key cannot be published.

Rotation (``sifc keys rotate --kind token|seal``) makes a new current key and keeps the old ones,
marked retired. A retired **seal** key still verifies the documents it sealed, for ever: a document
is evidence. A retired **token** key verifies nothing: the access tokens it signed get 401 and their
clients renew them with their refresh token (those are stored in the database, not signed).

``SIFC_SECRET_KEY``, when an operator sets it, is the token key's seed instead of the file (secrets
from the environment in production), and the seed of the ``legacy-v1`` seal key that sealed the
documents issued before keys had ids. It is refused shorter than 32 bytes, or when it is a string
published in the source (:func:`published`): such a key lets anyone sign.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sifc.errors import ConfigurationError

if TYPE_CHECKING:
    from sifc.settings import Settings

Kind = Literal["token", "seal"]
KINDS: tuple[Kind, ...] = ("token", "seal")
Algorithm = Literal["HMAC-SHA256", "Ed25519"]
HMAC_SHA256: Algorithm = "HMAC-SHA256"
ED25519: Algorithm = "Ed25519"
ALGORITHMS: tuple[Algorithm, ...] = (HMAC_SHA256, ED25519)
KEY_BYTES = 32  # HS256 and HMAC-SHA256 keys of 256 bits (RFC 7518 §3.2); an Ed25519 private key's 32 bytes
FORMAT = 1
LEGACY_SEAL_KID = "legacy-v1"  # documents sealed before keys had ids (migration 0011 labels them so)
LEGACY_SEAL_LABEL = b"sifc-documents-v1"  # how the seal key was derived from SIFC_SECRET_KEY then
TOKEN_LABEL = b"sifc-access-tokens-v2"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
# SHA-256 of secrets that were once published in this repository (a default that has since been removed):
# an installed copy without the history still refuses them.
PUBLISHED_DIGESTS = frozenset({"b6e40f8bbd39e8c26918e5ab830ca8a006838587c80897818d1a089b1a2c8571"})


@dataclass(frozen=True)
class SigningKey:
    """One key: its kind, id, secret bytes (never printed), when it was made and retired, its algorithm.

    ``secret`` is the HMAC key, or the raw 32-byte private key of an Ed25519 seal key.
    """

    kind: Kind
    kid: str
    secret: bytes = field(repr=False)
    created_at: str
    retired_at: str | None = None
    alg: Algorithm = HMAC_SHA256

    @property
    def current(self) -> bool:
        """Whether this key signs (a retired one only verifies, and only seals)."""
        return self.retired_at is None

    @property
    def public_key(self) -> bytes | None:
        """The raw 32-byte public key of an Ed25519 key; None for an HMAC key, which has no public half."""
        if self.alg != ED25519:
            return None
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(self.secret).public_key().public_bytes_raw()

    def published(self) -> dict[str, Any]:
        """What other nodes are told of an Ed25519 seal key: id, algorithm, public key, dates."""
        public = self.public_key
        if public is None:
            raise ValueError("only an Ed25519 key has a public key to publish")
        return {"kid": self.kid, "alg": ED25519, "public_key": b64_raw(public), "created_at": self.created_at,
                "retired_at": self.retired_at}


def _derive(seed: str, label: bytes) -> bytes:
    return hmac.new(seed.encode("utf-8"), label, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def b64_raw(data: bytes) -> str:
    """``data`` in base64url without padding (RFC 4648 §5, as JWK writes keys: RFC 8037 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64(value: str) -> bytes:
    """Bytes of base64url text, padded or not (a malformed text raises ValueError)."""
    text = value.strip()
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def new_kid(kind: Kind, node_id: str | None = None) -> str:
    """A fresh key id: the kind, the day, random hex (``seal-20261205-9f3a61c2``).

    A seal key's id starts with the node's id when it has one (``dakar-seal-20261205-9f3a61c2``): a
    document names its key, and so the node that sealed it, wherever it is verified.
    """
    kid = f"{kind}-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
    return f"{node_id}-{kid}" if node_id and kind == "seal" else kid


_NODE_KID = re.compile(r"(?P<node>[a-z0-9][a-z0-9-]*)-seal-[0-9]{8}-[0-9a-f]{8}")


def node_of(kid: str) -> str | None:
    """The node id a seal key's id starts with (:func:`new_kid`); None for a key made without one."""
    found = _NODE_KID.fullmatch(kid)
    return found["node"] if found else None


def _new_entry(kind: Kind, node_id: str | None = None) -> dict[str, Any]:
    if kind == "seal":  # a key pair: the file keeps the private key, the node publishes the public one
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return {"kid": new_kid(kind, node_id), "alg": ED25519,
                "secret": _b64(Ed25519PrivateKey.generate().private_bytes_raw()), "created_at": _now(),
                "retired_at": None}
    return {"kid": new_kid(kind), "secret": _b64(secrets.token_bytes(KEY_BYTES)), "created_at": _now(),
            "retired_at": None}


# --- secrets published in the source ------------------------------------------------------------

def _source_files() -> list[Path]:
    """The files of the source: the tracked files of a git checkout, else the installed packages."""
    if (SOURCE_ROOT / ".git").exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            listed = subprocess.run(["git", "ls-files", "-z"], cwd=SOURCE_ROOT, capture_output=True, check=True,
                                    timeout=30).stdout
            return [SOURCE_ROOT / name for name in listed.decode("utf-8", "replace").split("\0") if name]
    return [path for package in ("sifc", "api", "migrations") for path in (SOURCE_ROOT / package).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts]


@lru_cache(maxsize=8)
def _in_source(digest: str, secret: bytes) -> bool:
    del digest  # the cache's key; the secret is compared, never stored elsewhere
    for path in _source_files():
        with contextlib.suppress(OSError):
            if secret in path.read_bytes():
                return True
    return False


def published(secret: str) -> bool:
    """Whether ``secret`` appears in a file of the source (or was once published): anyone may know it."""
    value = secret.strip().encode("utf-8")
    digest = hashlib.sha256(value).hexdigest()
    return digest in PUBLISHED_DIGESTS or _in_source(digest, value)


# --- the key file -------------------------------------------------------------------------------

def _write_private(path: Path, document: dict[str, Any], *, replace: bool) -> bool:
    """Write ``document`` to ``path`` mode 0600, atomically; without ``replace``, only if absent."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)  # fails if another process made the file first: theirs is kept
            return True
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


class Keyring:
    """The token and seal keys of one service, read from its key file (re-read when the file changes).

    A rotation made by the command line while the service runs is seen by its next request.
    """

    def __init__(self, path: Path, *, seed: str | None = None, node_id: str | None = None) -> None:
        self.path = path
        self.seed = seed
        self.node_id = node_id  # the prefix of the ids of the seal keys made here (``SIFC_NODE_ID``)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[Kind, list[SigningKey]] = {"token": [], "seal": []}

    # reading

    def _document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"format": FORMAT}
        for kind in KINDS:
            entry = _new_entry(kind, self.node_id)
            document[kind] = {"current": entry["kid"], "keys": [entry]}
        if self.seed is not None:  # documents sealed before key ids keep verifying
            document["seal"]["keys"].append({"kid": LEGACY_SEAL_KID, "secret": _b64(_derive(self.seed,
                                             LEGACY_SEAL_LABEL)), "created_at": _now(), "retired_at": _now()})
        return document

    def ensure(self) -> Path:
        """Create the key file if there is none (first start); its path."""
        if not self.path.exists():
            _write_private(self.path, self._document(), replace=False)
        self._load()
        return self.path

    def _load(self) -> dict[Kind, list[SigningKey]]:
        try:
            status = self.path.stat()
        except FileNotFoundError:
            _write_private(self.path, self._document(), replace=False)
            status = self.path.stat()
        # The mode on every check: a chmod changes neither the file's time nor its size.
        if status.st_mode & 0o077:
            raise ConfigurationError("config.key_file_mode", path=str(self.path))
        stamp = (status.st_ino, status.st_mtime_ns, status.st_size)
        with self._lock:
            if stamp == self._stamp:
                return self._keys
            try:
                document = json.loads(self.path.read_text(encoding="utf-8"))
                keys: dict[Kind, list[SigningKey]] = {}
                for kind in KINDS:
                    section = document[kind]
                    keys[kind] = [SigningKey(kind, str(e["kid"]), base64.urlsafe_b64decode(e["secret"]),
                                             str(e["created_at"]), e.get("retired_at"), e.get("alg", HMAC_SHA256))
                                  for e in section["keys"]]
                    if any(key.alg not in ALGORITHMS or (kind == "token" and key.alg != HMAC_SHA256)
                           or (key.alg == ED25519 and len(key.secret) != KEY_BYTES) for key in keys[kind]):
                        raise ValueError(kind)
                    current = [key for key in keys[kind] if key.kid == section["current"]]
                    if len(current) != 1 or not current[0].current:
                        raise ValueError(kind)
                    if any(len(key.secret) < KEY_BYTES for key in keys[kind]):  # retired keys still verify
                        raise ValueError(kind)
            except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
                raise ConfigurationError("config.key_file_invalid", path=str(self.path)) from error
            self._keys, self._stamp = keys, stamp
            return keys

    def keys(self, kind: Kind) -> list[SigningKey]:
        """Every key of ``kind`` in the file, current and retired."""
        return list(self._load()[kind])

    def current(self, kind: Kind) -> SigningKey:
        """The key that signs ``kind`` now (the token key comes from ``SIFC_SECRET_KEY`` when that is set)."""
        if kind == "token" and self.seed is not None:
            secret = _derive(self.seed, TOKEN_LABEL)
            return SigningKey("token", "env-" + hashlib.sha256(secret).hexdigest()[:12], secret, "")
        return next(key for key in self._load()[kind] if key.current)

    def find(self, kind: Kind, kid: str) -> SigningKey | None:
        """The key ``kid`` that verifies ``kind``: only the current token key, any seal key ever made."""
        if kind == "token":
            current = self.current("token")
            return current if hmac.compare_digest(current.kid.encode(), kid.encode()) else None
        found = next((key for key in self._load()["seal"] if key.kid == kid), None)
        if found is None and kid == LEGACY_SEAL_KID and self.seed is not None:
            found = SigningKey("seal", LEGACY_SEAL_KID, _derive(self.seed, LEGACY_SEAL_LABEL), "", _now())
        return found

    # rotating

    def rotate(self, kind: Kind) -> SigningKey:
        """Make a new current key of ``kind``; the previous one is kept, retired."""
        if kind == "token" and self.seed is not None:
            raise ConfigurationError("keys.token_from_environment")
        with _locked(self.path):
            self._load()
            document = json.loads(self.path.read_text(encoding="utf-8"))
            section = document[kind]
            for entry in section["keys"]:
                if entry["kid"] == section["current"]:
                    entry["retired_at"] = _now()
            entry = _new_entry(kind, self.node_id)
            section["keys"].append(entry)
            section["current"] = entry["kid"]
            _write_private(self.path, document, replace=True)
        return self.current(kind)

    # publishing

    def public_keys(self) -> list[dict[str, Any]]:
        """The public keys of this node's Ed25519 seal keys, current and retired (HMAC keys have none)."""
        return [key.published() for key in self.keys("seal") if key.alg == ED25519]


_KEYRINGS: dict[tuple[str, str | None, str | None], Keyring] = {}
_KEYRINGS_LOCK = threading.Lock()


def for_settings(settings: Settings) -> Keyring:
    """The keyring of ``settings`` (one per key file, seed and node in a process, so the file is read once)."""
    seed = settings.secret_key.get_secret_value().strip() if settings.secret_key is not None else None
    path = settings.key_file.expanduser()
    with _KEYRINGS_LOCK:
        return _KEYRINGS.setdefault((str(path), seed, settings.node_id),
                                    Keyring(path, seed=seed, node_id=settings.node_id))


def seal_public_keys(settings: Settings) -> list[dict[str, Any]]:
    """The node's seal public keys, for ``sifc_node.seal_keys`` and the federation's ``federation_node``.

    Each: ``{"kid", "alg": "Ed25519", "public_key": base64url of the raw 32 bytes, "created_at",
    "retired_at"}``; retired keys included (they verify the documents they sealed, for ever). The key
    file is made if there is none, as on a first start.
    """
    return for_settings(settings).public_keys()
