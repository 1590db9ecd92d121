"""The access audit (loi 2008-12): who read personal data, when, through which channel, about whom.

``access_audit`` is append-only for everyone (migration 0006). A row names the subject by its
kind and internal id (a party's id, a parcel's id), never by its name or identity number, so
the log itself adds no personal data about the subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth.principal import Principal


@dataclass(frozen=True)
class AccessRecord:
    """One read of personal data."""

    occurred_at: datetime
    actor_kind: str
    actor_id: int | None
    actor: str
    role: str
    method: str
    endpoint: str
    subject_kind: str
    subject_id: str
    commune_code: str | None
    purpose: str | None


def _channel(principal: Principal, service: str) -> tuple[str, str]:
    """The method and endpoint of the read: the principal's channel, or the service called in-process."""
    if principal.channel is not None:
        return principal.channel.method, principal.channel.endpoint
    return "CALL", service  # a caller that named no channel is still logged, by the service it called


def record(session: Session, principal: Principal, *, service: str, subject_kind: str, subject_id: str,
           commune_code: str | None = None, purpose: str | None = None) -> None:
    """Log one read of personal data by ``principal``, in the caller's transaction.

    Called by the domain service that decided to reveal the data, whoever called it (API, CLI,
    job). The method and endpoint are the principal's :class:`~sifc.auth.principal.Channel`;
    without one, ``CALL`` and ``service``, the qualified name of the service that read.
    """
    record_many(session, principal, service=service, subject_kind=subject_kind,
                subjects=[(str(subject_id), commune_code)], purpose=purpose)


def record_many(session: Session, principal: Principal, *, service: str, subject_kind: str,
                subjects: list[tuple[str, str | None]], purpose: str | None = None) -> None:
    """Log one read of personal data per ``(subject_id, commune_code)`` (a page of a list), in one statement."""
    if not principal.authenticated:
        raise ValueError("personal data is never served to an anonymous caller")
    if not subjects:
        return
    method, endpoint = _channel(principal, service)
    session.execute(text("""
        INSERT INTO access_audit (actor_kind, actor_id, actor, role, method, endpoint, subject_kind, subject_id,
                                  commune_code, purpose)
        SELECT :kind, :id, :actor, :role, :method, :endpoint, :subject_kind, s.id, s.commune, :purpose
        FROM unnest(CAST(:ids AS text[]), CAST(:communes AS text[])) AS s(id, commune)"""),
        {"kind": principal.kind, "id": principal.id, "actor": principal.name, "role": principal.role,
         "method": method.upper(), "endpoint": endpoint, "subject_kind": subject_kind,
         "ids": [str(s[0]) for s in subjects], "communes": [s[1] for s in subjects], "purpose": purpose})


def for_subject(session: Session, *, subject_kind: str, subject_id: str) -> list[AccessRecord]:
    """Who read this subject's data, oldest first (for a subject access request)."""
    rows = session.execute(text("""
        SELECT occurred_at, actor_kind, actor_id, actor, role, method, endpoint, subject_kind, subject_id,
               commune_code, purpose
        FROM access_audit WHERE subject_kind = :kind AND subject_id = :id ORDER BY occurred_at, id"""),
        {"kind": subject_kind, "id": str(subject_id)}).all()
    return [AccessRecord(*row) for row in rows]
