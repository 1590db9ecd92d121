"""Optimistic concurrency (RFC 9110 §13.1.1, RFC 6585 §3) and as-of reads, shared by the routers.

The entity tags and the ``If-Match`` header are HTTP; the domain knows only versions
(:func:`sifc.versioning.check_expected`).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Header, Query

from sifc.errors import PreconditionRequired

IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=2000, description=(
    "L'ETag de la version lue (obligatoire) : 412 si elle n'est plus en vigueur, 428 s'il manque."))]
AtParam = Annotated[date | datetime | None, Query(description=(
    "Lecture à date : l'état du registre à cet instant (une date seule : la fin de ce jour)."))]
# Entity tags (RFC 9110 §8.8.3): "<version>-<digest>", the digest a truncated SHA-256 of the kind, the
# full id and the version. The version in clear lets a write know which version a tag names without a
# read; the digest makes the tag one object's: ids of one import batch share their first characters,
# so a tag of a prefix would let a tag read from one parcel validate a write to its neighbour.
TAG_KINDS = ("parcel", "party", "rrr", "procedure", "borne", "claim", "dispute", "localite", "session")
DIGEST_CHARS = 24  # 96 bits: 50 tags (a merge) fit in an If-Match of 2,000 characters
PRECONDITION_RESPONSES: dict[int | str, dict[str, Any]] = {
    412: {"description": "If-Match périmé : l'enregistrement a changé depuis la lecture"},
    428: {"description": "If-Match manquant"}}


def expected(if_match: str | None, kind: str, object_id: str) -> int:
    """The version ``If-Match`` names for this object (-1: none, a 412); ``*`` or nothing is a 428.

    A write says what it read: the tag of one version of this very object (``kind`` and id).
    """
    if if_match is None or not if_match.strip() or if_match.strip() == "*":
        raise PreconditionRequired("http.precondition_required")
    return version_from_etag(if_match, kind, object_id)


def _digest(kind: str, object_id: uuid.UUID, version: int) -> str:
    assert kind in TAG_KINDS, kind
    return hashlib.sha256(f"{kind}:{object_id}:{version}".encode()).hexdigest()[:DIGEST_CHARS]


def _canonical(object_id: Any) -> uuid.UUID | None:
    try:
        return object_id if isinstance(object_id, uuid.UUID) else uuid.UUID(str(object_id))
    except (ValueError, TypeError, AttributeError):
        return None


def etag(kind: str, object_id: Any, version: int) -> str:
    """The strong entity tag of one version of one object (``kind``: parcel, party, rrr, procedure)."""
    canonical = _canonical(object_id)
    assert canonical is not None, object_id
    return f'"{version}-{_digest(kind, canonical, version)}"'


def version_from_etag(value: str, kind: str, object_id: Any) -> int:
    """The version an ``If-Match`` names for this object; -1 if none of its tags is one of this object's.

    Each tag is compared whole (its digest recomputed for this object and the version it states),
    so a list of tags of several objects (a merge) gives each object its own. A weak tag never
    matches (If-Match uses the strong comparison, RFC 9110 §13.1.1).
    """
    canonical = _canonical(object_id)
    if canonical is None:
        return -1
    for tag in (t.strip() for t in value.split(",")):
        if tag.startswith("W/") or len(tag) < 2 or not (tag[0] == tag[-1] == '"'):
            continue
        number, _, digest = tag[1:-1].partition("-")
        if not (number.isascii() and number.isdigit() and len(number) < 10):
            continue
        if digest == _digest(kind, canonical, int(number)):
            return int(number)
    return -1


def content_etag(body: bytes) -> str:
    """A strong validator of a body (RFC 9110 §8.8.3): a 128-bit BLAKE2b hash of its bytes (a tile's)."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def not_modified(if_none_match: str | None, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag`` (weak comparison, RFC 9110 §13.1.2) or is ``*``."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False
