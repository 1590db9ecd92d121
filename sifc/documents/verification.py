"""Verification codes of the documents SIFC issues, and the verification of an uploaded PDF.

A document's facts are serialised canonically (JSON, sorted keys, UTF-8: :func:`canonical`) and
signed with an HMAC-SHA256 by the current seal key (:func:`sign`; the seal keys are not the token
keys: :mod:`sifc.keyring`); the PDF carries that content as an embedded file (``sifc-document.json``),
the code and the seal key's id in its metadata, and prints the code. Each issued document is kept in
``issued_document`` (append-only) with its key id and the SHA-256 of the exact bytes of the PDF, so
that a verification finds any change: to the facts (the HMAC no longer matches), to the printed page
or any other byte (the file's digest differs). Retired seal keys are kept: a document verifies with
the key that sealed it, whatever rotations came after.
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

from sifc.errors import InvalidInput, UnsupportedFormat
from sifc.keyring import Keyring, SigningKey
from sifc.personal import FREE_TEXT_FIELDS

log = logging.getLogger(__name__)

ATTACHMENT = "sifc-document.json"
CODE_KEY = "/SIFCCode"
KEY_ID_KEY = "/SIFCKeyId"
VERIFY_PATH = "/documents/verify"

# Officers' free text (a request's purpose, a right's description...) is personal: no verification
# answer carries it, whatever the document kind, nor whatever an older row of the register kept.
FREE_TEXT = frozenset().union(*FREE_TEXT_FIELDS.values())


def canonical(content: dict[str, Any]) -> bytes:
    """The canonical serialisation of a document's facts: JSON, sorted keys, no spaces, UTF-8."""
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def sign(key: SigningKey, content: bytes) -> str:
    """The verification code of ``content`` (canonical bytes): HMAC-SHA256 under a seal key, 64 hex digits."""
    if key.kind != "seal":
        raise ValueError("documents are sealed with a seal key, never a token key")
    return hmac.new(key.secret, content, hashlib.sha256).hexdigest()


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
        FROM issued_document WHERE code = :code"""), {"code": normalise(code)[:64]}).mappings().first()
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


def verify(session: Session, *, keys: Keyring, pdf: bytes) -> dict[str, Any]:
    """Whether ``pdf`` is a document SIFC issued, unchanged; with what it certifies when it is.

    The code is checked with the key that sealed the document: the one the register names for that
    code (the PDF's own claim of a key id is only used for a code the register does not know).
    """
    found = read(pdf)
    checks = {"readable": found.content is not None and found.code is not None,
              "code_matches_content": False, "issued": False, "file_unchanged": False}
    issued = None
    if found.content is not None and found.code is not None:
        issued = lookup(session, code=found.code)
        key = keys.find("seal", issued["key_id"] if issued is not None else found.key_id or "")
        checks["code_matches_content"] = key is not None and hmac.compare_digest(
            sign(key, found.content).encode(), found.code.encode())
        checks["issued"] = issued is not None
        checks["file_unchanged"] = bool(issued and issued["pdf_sha256"] == hashlib.sha256(pdf).hexdigest())
    authentic = all(checks.values())
    answer: dict[str, Any] = {"authentic": authentic, "status": "authentique" if authentic else "non authentique",
                              "checks": checks}
    if authentic and issued is not None and found.content is not None:
        answer.update({"code": issued["code"], "kind": issued["kind"], "issued_at": issued["issued_at"],
                       "certifies": without_free_text(orjson.loads(found.content))})
    return answer
