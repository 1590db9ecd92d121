"""Verification codes of the documents SIFC issues, and the verification of an uploaded PDF.

A document's facts are serialised canonically (JSON, sorted keys, UTF-8: :func:`canonical`) and
signed by the current seal key (:func:`sign`; the seal keys are not the token keys: :mod:`sifc.keyring`):
an Ed25519 signature (RFC 8032, 128 hex digits) for the keys made since the federation, an
HMAC-SHA256 (64 hex digits) for those made before, which still verify what they sealed. The PDF
carries that content as an embedded file (``sifc-document.json``), the code and the seal key's id in
its metadata, and prints the code. Each issued document is kept in
``issued_document`` (append-only) with its key id and the SHA-256 of the exact bytes of the PDF, so
that a verification finds any change: to the facts (the seal no longer matches), to the printed page
or any other byte (the file's digest differs). Retired seal keys are kept: a document verifies with
the key that sealed it, whatever rotations came after.

Any node verifies a document another node sealed (ADR 0004): the key the register (or, when this
node's register does not hold the document, the PDF) names is looked up in this node's keyring, then
among the public keys of the federation's directory (``federation_node.seal_keys``). A document this
node's register does not hold, sealed by another node's key, is checked by its seal alone: its facts are
those the node signed, but this node has no copy of the file to compare the printed page with; the
answer says so (``verified_by``: ``seal``, against ``register``).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import keyring
from sifc.errors import InvalidInput, UnsupportedFormat
from sifc.i18n import translate
from sifc.keyring import ED25519, Keyring, SigningKey
from sifc.personal import FREE_TEXT_FIELDS

log = logging.getLogger(__name__)

ATTACHMENT = "sifc-document.json"
CODE_KEY = "/SIFCCode"
KEY_ID_KEY = "/SIFCKeyId"
VERIFY_PATH = "/documents/verify"
CODE_MAX = 128  # an Ed25519 signature in hex; an HMAC-SHA256 code has 64 digits

# Officers' free text (a request's purpose, a right's description...) is personal: no verification
# answer carries it, whatever the document kind, nor whatever an older row of the register kept.
FREE_TEXT = frozenset().union(*FREE_TEXT_FIELDS.values())


def canonical(content: dict[str, Any]) -> bytes:
    """The canonical serialisation of a document's facts: JSON, sorted keys, no spaces, UTF-8."""
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def sign(key: SigningKey, content: bytes) -> str:
    """The verification code of ``content`` (canonical bytes) under a seal key, in hex.

    Ed25519 key: its signature (128 digits); an HMAC key of before: HMAC-SHA256 (64 digits).
    """
    if key.kind != "seal":
        raise ValueError("documents are sealed with a seal key, never a token key")
    if key.alg == ED25519:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(key.secret).sign(content).hex()
    return hmac.new(key.secret, content, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SealKey:
    """A key that verifies seals: one of this node's (``local``, its secret) or another node's public key."""

    kid: str
    node_id: str | None
    local: SigningKey | None = None
    public_key: bytes | None = None  # raw Ed25519 public key, from federation_node.seal_keys


def matches(key: SealKey, content: bytes, code: str) -> bool:
    """Whether ``code`` is the seal of ``content`` under ``key`` (the algorithm is the key's)."""
    if key.local is not None and key.local.alg != ED25519:
        return hmac.compare_digest(sign(key.local, content).encode(), code.encode())
    public = key.local.public_key if key.local is not None else key.public_key
    if public is None:
        return False
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(bytes.fromhex(code), content)
    except (InvalidSignature, ValueError):
        return False
    return True


def _exists(session: Session, table: str) -> bool:
    # The federation's tables come with migration 0016; a node migrated before verifies with its keyring.
    return bool(session.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"public.{table}"}).scalar())


def own_node(session: Session, keys: Keyring) -> str | None:
    """The node's own id: ``SIFC_NODE_ID``, else ``sifc_node.node_id`` when the federation's tables exist."""
    if keys.node_id is not None:
        return keys.node_id
    if not _exists(session, "sifc_node"):
        return None
    found = session.execute(text("SELECT node_id FROM sifc_node")).scalar()
    return str(found) if found is not None else None


def federation_key(session: Session, kid: str) -> SealKey | None:
    """Another node's seal public key ``kid``, from the federation's directory (None when unknown there).

    Only an Ed25519 key of 32 bytes is taken: an entry of another algorithm, or malformed, verifies nothing.
    """
    if not _exists(session, "federation_node"):
        return None
    row = session.execute(text("""
        SELECT f.node_id, k.value AS key
        FROM federation_node f CROSS JOIN LATERAL jsonb_array_elements(f.seal_keys) AS k(value)
        WHERE jsonb_typeof(f.seal_keys) = 'array' AND k.value ->> 'kid' = :kid
        ORDER BY f.node_id LIMIT 1"""), {"kid": kid}).mappings().first()
    if row is None or not isinstance(row["key"], dict) or row["key"].get("alg") != ED25519:
        return None
    try:
        public = keyring.from_b64(str(row["key"].get("public_key", "")))
    except ValueError:
        return None
    return SealKey(kid, str(row["node_id"]), public_key=public) if len(public) == 32 else None


def find_key(session: Session, keys: Keyring, kid: str) -> SealKey | None:
    """The key ``kid`` names: this node's (its keyring), else another node's (the federation's directory)."""
    local = keys.find("seal", kid) if kid else None
    if local is not None:
        return SealKey(kid, keyring.node_of(kid) or own_node(session, keys), local=local)
    return federation_key(session, kid) if kid else None


def normalise(code: str) -> str:
    """A code as typed from paper: case, spaces and dashes ignored."""
    return "".join(c for c in code.lower() if c not in " -\t")


def grouped(code: str) -> str:
    """A code printed in groups of four, for a reader who types it."""
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4))


def new_header(kind: str, lang: str) -> dict[str, Any]:
    """What every document states of itself: its kind, number, instant of issue and language."""
    return {"document": kind, "format": 1, "number": str(uuid.uuid4()),
            "issued_at": datetime.now(UTC).replace(microsecond=0).isoformat(), "lang": lang}


def without_free_text(value: Any) -> Any:
    """``value`` (a document's facts or summary) without any officer's free-text field, at any depth."""
    if isinstance(value, dict):
        return {k: without_free_text(v) for k, v in value.items() if k not in FREE_TEXT}
    if isinstance(value, list):
        return [without_free_text(v) for v in value]
    return value


@dataclass(frozen=True)
class Sealed:
    """A document's canonical content, its code and the id of the key that sealed it."""

    content: bytes
    code: str
    key_id: str


def seal(key: SigningKey, content: dict[str, Any]) -> Sealed:
    """Serialise ``content`` and sign it with ``key`` (the current seal key)."""
    body = canonical(content)
    return Sealed(body, sign(key, body), key.kid)


def embed(pdf: bytes, sealed: Sealed, *, title: str) -> bytes:
    """``pdf`` with the canonical content as an embedded file and the code in its metadata."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_attachment(ATTACHMENT, sealed.content)
    writer.add_metadata({"/Title": title, "/Producer": "SIFC", CODE_KEY: sealed.code, KEY_ID_KEY: sealed.key_id,
                         "/SIFCVerify": VERIFY_PATH})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@dataclass(frozen=True)
class Issue:
    """What the register of issued documents keeps of one document."""

    kind: str
    subject_kind: str
    subject_id: str
    commune_code: str | None
    summary: dict[str, Any]
    personal: bool
    issued_by: str


def record(session: Session, *, sealed: Sealed, pdf: bytes | None, issue: Issue) -> None:
    """Keep an issued document (append-only): its code, a public summary and the digests."""
    session.execute(text("""
        INSERT INTO issued_document (code, kind, subject_kind, subject_id, commune_code, summary, personal,
                                     content_sha256, pdf_sha256, issued_by, key_id)
        VALUES (:code, :kind, :subject_kind, :subject_id, :commune, CAST(:summary AS jsonb), :personal,
                :content_sha256, :pdf_sha256, :issued_by, :key_id)"""),
        {"code": sealed.code, "key_id": sealed.key_id, "kind": issue.kind,
         "subject_kind": issue.subject_kind, "subject_id": issue.subject_id,
         "commune": issue.commune_code, "summary": orjson.dumps(without_free_text(issue.summary)).decode(),
         "personal": issue.personal,
         "content_sha256": hashlib.sha256(sealed.content).hexdigest(),
         "pdf_sha256": hashlib.sha256(pdf).hexdigest() if pdf is not None else None, "issued_by": issue.issued_by})


def lookup(session: Session, *, code: str) -> dict[str, Any] | None:
    """What the register says of a code: the public summary of what it certifies; None if never issued."""
    row = session.execute(text("""
        SELECT code, kind, commune_code, summary, personal, content_sha256, pdf_sha256, issued_at, key_id
        FROM issued_document WHERE code = :code"""), {"code": normalise(code)[:CODE_MAX]}).mappings().first()
    if row is None:
        return None
    return {"code": row["code"], "kind": row["kind"], "commune_code": row["commune_code"],
            "issued_at": row["issued_at"].isoformat(), "names_holders": row["personal"],
            "certifies": without_free_text(row["summary"]), "content_sha256": row["content_sha256"],
            "pdf_sha256": row["pdf_sha256"], "key_id": row["key_id"]}


@dataclass(frozen=True)
class Embedded:
    """What an uploaded PDF carries: its canonical content, code and seal key id (None when missing)."""

    content: bytes | None
    code: str | None
    key_id: str | None = None


def read(pdf: bytes) -> Embedded:
    """The content and code a PDF carries; a non-PDF is refused (415), an unreadable PDF carries nothing."""
    if not pdf:
        raise InvalidInput("document.empty")
    if not pdf.lstrip()[:5] == b"%PDF-":
        raise UnsupportedFormat("document.not_a_pdf")
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(pdf))
        attachments = reader.attachments
        content = attachments[ATTACHMENT][0] if ATTACHMENT in attachments else None
        metadata: dict[str, Any] = dict(reader.metadata or {})
        code, key_id = metadata.get(CODE_KEY), metadata.get(KEY_ID_KEY)
    except Exception as error:  # noqa: BLE001 - a damaged PDF is a forged one, whatever pypdf says of it
        log.info("unreadable PDF uploaded for verification: %s", type(error).__name__)
        return Embedded(None, None)
    return Embedded(content, str(code) if code is not None else None, str(key_id) if key_id is not None else None)


def _reason(checks: dict[str, bool], key: SealKey | None) -> str:
    """Why a document is not authentic, the first check that failed (``document.verify.<reason>``)."""
    if not checks["readable"]:
        return "unreadable"
    if key is None:
        return "key_unknown"
    if not checks["code_matches_content"]:
        return "code_mismatch"
    return "not_issued" if not checks["issued"] else "file_changed"


def verify(session: Session, *, keys: Keyring, pdf: bytes, lang: str = "fr") -> dict[str, Any]:
    """Whether ``pdf`` is a document SIFC issued, unchanged; with what it certifies when it is.

    The code is checked with the key that sealed the document: the one the register names for that
    code (the PDF's own claim of a key id is only used for a code the register does not know), found
    in this node's keyring or among the federation's public keys. A document of this node must be in
    its register, byte for byte; another node's document this node's register does not hold is
    authentic by its seal alone (``verified_by``: ``seal``). ``sealed_by_node`` names the node whose
    key verified the code; ``reason`` (with ``detail``, in ``lang``) why a document is not authentic.
    """
    found = read(pdf)
    checks = {"readable": found.content is not None and found.code is not None,
              "code_matches_content": False, "issued": False, "file_unchanged": False}
    issued, key = None, None
    if found.content is not None and found.code is not None:
        issued = lookup(session, code=found.code)
        key = find_key(session, keys, issued["key_id"] if issued is not None else found.key_id or "")
        checks["code_matches_content"] = key is not None and matches(key, found.content, found.code)
        checks["issued"] = issued is not None
        checks["file_unchanged"] = bool(issued and issued["pdf_sha256"] == hashlib.sha256(pdf).hexdigest())
    by_seal = issued is None and key is not None and key.local is None
    authentic = (checks["readable"] and checks["code_matches_content"]) if by_seal else all(checks.values())
    answer: dict[str, Any] = {"authentic": authentic, "status": "authentique" if authentic else "non authentique",
                              "checks": checks, "verified_by": "seal" if by_seal else "register",
                              "sealed_by_node": key.node_id if key is not None and checks["code_matches_content"]
                              else None}
    if authentic and found.content is not None and found.code is not None:
        facts = without_free_text(orjson.loads(found.content))
        if issued is not None:
            answer.update({"code": issued["code"], "kind": issued["kind"], "issued_at": issued["issued_at"]})
        else:  # the document's own header (new_header), which its seal covers
            answer.update({"code": normalise(found.code), "kind": facts.get("document"),
                           "issued_at": facts.get("issued_at")})
        answer["certifies"] = facts
    else:
        reason = _reason(checks, key)
        answer.update({"reason": reason, "detail": translate(f"document.verify.{reason}", "en" if lang == "en"
                                                               else "fr")})
    return answer


def sealed_by(session: Session, *, keys: Keyring, key_id: str) -> str | None:
    """The node whose key ``key_id`` is (this node's keyring or the federation's directory); None if unknown."""
    key = find_key(session, keys, key_id)
    return key.node_id if key is not None else None
