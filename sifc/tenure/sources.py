"""Sources (LADM ``LA_AdministrativeSource``): délibérations, approvals, acts, survey plans, procès-verbaux.

A source is recorded once and never changed; its scanned files are attached to it, each stored
with its SHA-256, its media type (read from the file's first bytes, not from the name or the
header the client sent) and its size, within ``SIFC_MAX_DOCUMENT_BYTES``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import bounds, journal
from sifc.auth import audit
from sifc.auth.principal import Principal
from sifc.errors import InvalidInput, NotFound, TooLarge, UnsupportedFormat
from sifc.models import APPROVING_AUTHORITIES, SOURCE_KINDS
from sifc.personal import FREE_TEXT_FIELDS, require_reader
from sifc.tenure.common import authorise
from sifc.versioning import parse_id

# Magic numbers of the scanned documents a commune keeps.
SIGNATURES = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"),
              (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))


@dataclass
class SourceInput:
    """What a land officer gives to record a source."""

    kind: str
    document_date: date
    commune_code: str
    reference: str | None = None
    authority: str | None = None
    council_session: str | None = None
    description: str | None = None


def _json(row: Any, *, personal: bool) -> dict[str, Any]:
    body = {"id": str(row["id"]), "kind": row["kind"], "reference": row["reference"],
            "document_date": row["document_date"].isoformat(), "authority": row["authority"],
            "council_session": row["council_session"], "commune_code": row["commune_code"],
            "synthetic": row["synthetic"], "created_at": row["created_at"].isoformat()}
    if personal:  # an officer's description may name people
        body.update({name: row[name] for name in sorted(FREE_TEXT_FIELDS["sources"])})
    return body


def create(session: Session, *, data: SourceInput, by: Principal | None, author: str, synthetic: bool = False) -> str:
    """Record a source of a commune in ``by``'s scope; return its id."""
    if data.kind not in SOURCE_KINDS:
        raise InvalidInput("source.bad_kind", kind=data.kind, kinds=", ".join(SOURCE_KINDS))
    bounds.check("source.document_date", data.document_date, field="document_date")
    if data.kind == "deliberation" and not (data.reference and data.council_session):
        raise InvalidInput("source.deliberation_fields")
    if data.kind == "approbation" and data.authority not in APPROVING_AUTHORITIES:
        raise InvalidInput("source.bad_authority", authorities=", ".join(APPROVING_AUTHORITIES))
    if not session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": data.commune_code}).scalar():
        raise InvalidInput("party.unknown_commune", commune=data.commune_code)
    authorise(session, by, data.commune_code)
    sid = uuid.uuid4()
    session.execute(text("""
        INSERT INTO source_document (id, kind, reference, document_date, authority, council_session, commune_code,
                                     description, synthetic, created_by)
        VALUES (:id, :kind, :reference, :document_date, :authority, :council_session, :commune_code, :description,
                :synthetic, :author)"""),
        {"id": sid, **data.__dict__, "synthetic": synthetic, "author": author})
    journal.record(session, by, author=author, operation="source.create", object_kind="source", object_id=sid,
                   commune_code=data.commune_code, after=_get(session, str(sid), personal=True))
    return str(sid)


def get(session: Session, *, source_id: str, reader: Principal) -> dict[str, Any]:
    """A source with its description and the list of its files (name, type, size, checksum).

    For a ``reader`` of personal data in the source's commune (an officer's description, a scan's
    name may name people): refused as :func:`sifc.personal.require_reader` refuses. The read is
    logged, like the read of one of the source's files (:func:`file`).
    """
    commune = require_reader(reader, commune_of(session, source_id=source_id),
                             NotFound("source.not_found", id=source_id))
    found = _get(session, source_id, personal=True)
    audit.record(session, reader, service=f"{__name__}.get", subject_kind="source", subject_id=str(found["id"]),
                 commune_code=commune)
    return found


def as_written(session: Session, *, source_id: str, by: Principal) -> dict[str, Any]:
    """The source as its writer sees it right after recording it (``by`` may write in its commune, else 403)."""
    found = _get(session, source_id, personal=True)
    authorise(session, by, found["commune_code"])
    return found


def _get(session: Session, source_id: str, *, personal: bool) -> dict[str, Any]:
    sid = parse_id(source_id, key="source.not_found", kind="source")
    row = session.execute(text("SELECT * FROM source_document WHERE id = :id"), {"id": sid}).mappings().first()
    if row is None:
        raise NotFound("source.not_found", id=str(sid))
    files = session.execute(text("""
        SELECT id, file_name, media_type, size_bytes, sha256, created_at FROM source_file
        WHERE source_id = :id ORDER BY created_at, id"""), {"id": sid}).mappings().all()
    named = sorted(FREE_TEXT_FIELDS["source_files"]) if personal else []
    return {**_json(row, personal=personal),
            "files": [{"id": str(f["id"]), **{name: f[name] for name in named}, "media_type": f["media_type"],
                       "size_bytes": f["size_bytes"], "sha256": f["sha256"], "created_at": f["created_at"].isoformat()}
                      for f in files]}


def commune_of(session: Session, *, source_id: str) -> str | None:
    """The commune of a source (its scope); None for an unknown one."""
    try:
        sid = uuid.UUID(str(source_id))
    except ValueError:
        return None
    return session.execute(text("SELECT commune_code FROM source_document WHERE id = :id"), {"id": sid}).scalar()


def sniff(content: bytes) -> str:
    """The media type of a document, from its first bytes (PDF, JPEG, PNG, TIFF)."""
    for signature, media_type in SIGNATURES:
        if content.startswith(signature):
            return media_type
    raise UnsupportedFormat("source.bad_file_type")


def attach(session: Session, *, source_id: str, file_name: str, content: bytes, max_bytes: int, by: Principal | None,
           author: str) -> dict[str, Any]:
    """Attach a scanned file to a source; return its description (with its SHA-256)."""
    sid = parse_id(source_id, key="source.not_found", kind="source")
    commune = commune_of(session, source_id=str(sid))
    if commune is None:
        raise NotFound("source.not_found", id=str(sid))
    authorise(session, by, commune)
    if not content:
        raise InvalidInput("source.empty_file")
    if len(content) > max_bytes:
        raise TooLarge("source.file_too_large", limit_mib=round(max_bytes / 1024**2, 1))
    media_type = sniff(content)
    fid = uuid.uuid4()
    digest = hashlib.sha256(content).hexdigest()
    name = (file_name or "document").replace("/", "_").replace("\\", "_")[:200]
    session.execute(text("""
        INSERT INTO source_file (id, source_id, file_name, media_type, size_bytes, sha256, content, created_by)
        VALUES (:id, :sid, :name, :media_type, :size, :sha, :content, :author)"""),
        {"id": fid, "sid": sid, "name": name, "media_type": media_type, "size": len(content), "sha": digest,
         "content": content, "author": author})
    described = {"id": str(fid), "source_id": str(sid), "file_name": name, "media_type": media_type,
                 "size_bytes": len(content), "sha256": digest}
    journal.record(session, by, author=author, operation="source.attach", object_kind="source_file", object_id=fid,
                   commune_code=commune, after=described)
    return described


def file(session: Session, *, source_id: str, file_id: str, reader: Principal) -> tuple[str, str, bytes, str]:
    """A file of a source: (name, media type, content, SHA-256), for a ``reader`` of personal data in its commune.

    Refused as :func:`sifc.personal.require_reader` refuses; the read is logged.
    """
    commune = require_reader(reader, commune_of(session, source_id=source_id),
                             NotFound("source.not_found", id=source_id))
    sid = parse_id(source_id, key="source.not_found", kind="source")
    fid = parse_id(file_id, key="source.file_not_found", kind="fichier")
    row = session.execute(text("""
        SELECT file_name, media_type, content, sha256 FROM source_file WHERE id = :fid AND source_id = :sid"""),
        {"fid": fid, "sid": sid}).first()
    if row is None:
        raise NotFound("source.file_not_found", id=str(fid))
    audit.record(session, reader, service=f"{__name__}.file", subject_kind="source_file", subject_id=file_id,
                 commune_code=commune)
    return row[0], row[1], bytes(row[2]), row[3]
