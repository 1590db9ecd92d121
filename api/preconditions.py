"""Optimistic concurrency (RFC 9110 §13.1.1, RFC 6585 §3) and as-of reads, shared by the routers (issue 8)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Header, Query

from sifc.errors import PreconditionRequired
from sifc.tenure.common import version_from_etag

IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=2000, description=(
    "L'ETag de la version lue (obligatoire) : 412 si elle n'est plus en vigueur, 428 s'il manque."))]
AtParam = Annotated[date | datetime | None, Query(description=(
    "Lecture à date : l'état du registre à cet instant (une date seule : la fin de ce jour)."))]
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


