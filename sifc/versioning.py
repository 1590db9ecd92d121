"""Versioned records, shared by every wing (parcels, tenure, mutations): ids, expected versions, freezes.

Each register table keeps every version of an object (``valid_from``/``valid_to``); a write names the
version it read, closes it only if it is still current, and inserts the next one. These primitives
belong to no wing: parcels and tenure both build on them, and neither imports the other.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import hooks
from sifc.errors import Conflict, NotFound, PreconditionFailed

VERSIONED = {"parcel_version": "parcel_id", "party_version": "party_id", "rrr_version": "rrr_id",
             "borne_version": "borne_id", "localite_version": "localite_id"}


def parse_id(value: Any, *, key: str = "tenure.not_found", kind: str = "objet") -> uuid.UUID:
    """``value`` as a UUID, or the 404 of an unknown object."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError) as error:
        raise NotFound(key, kind=kind, id=str(value)[:64]) from error


def instant(at: date | datetime | None) -> datetime | None:
    """The instant an as-of read answers for: a date stands for the end of that day (UTC, Dakar's time)."""
    if at is None:
        return None
    if isinstance(at, datetime):
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    return datetime.combine(at, time.max, tzinfo=UTC)


def check_expected(expected: int | None, current: int) -> None:
    """The expected-version check of a versioned write (``If-Match`` over HTTP), then the test seam.

    The check alone cannot stop two writers that read the same version: the write itself closes
    ``version`` only if it is still current (:func:`close_version`), so one of them gets 412.
    The seam (:func:`sifc.hooks.after_precondition`) lets a test interleave two writers here.
    """
    if expected is not None and expected != current:
        raise PreconditionFailed("http.precondition_failed")
    hooks.after_precondition()


def close_version(session: Session, table: str, key: str, object_id: uuid.UUID, version: int, *, author: str,
                  reason: str) -> None:
    """Close ``version`` if it is still the current one; otherwise another write won (412)."""
    assert VERSIONED.get(table) == key, (table, key)
    closed = session.execute(text(f"""
        UPDATE {table} SET valid_to = now(), closed_by = :author, close_reason = :reason
        WHERE {key} = :id AND version = :version AND valid_to IS NULL"""),
        {"id": object_id, "version": version, "author": author, "reason": reason})
    if closed.rowcount != 1:  # type: ignore[attr-defined]
        raise PreconditionFailed("http.precondition_failed")


def litiges(session: Session, parcel_id: uuid.UUID) -> list[str]:
    """The ids of the litiges in force on a parcel today (current versions, not ended)."""
    return [str(r) for r in session.execute(text("""
        SELECT rrr_id FROM rrr_version
        WHERE parcel_id = :id AND valid_to IS NULL AND type = 'litige'
          AND start_date <= current_date AND (end_date IS NULL OR end_date > current_date)
        ORDER BY rrr_id"""), {"id": parcel_id}).scalars()]


def refuse_if_frozen(session: Session, parcel_id: uuid.UUID) -> None:
    """A litige freezes every change to the parcel until it is lifted (domain notes)."""
    found = litiges(session, parcel_id)
    if found:
        raise Conflict("tenure.under_litige", id=str(parcel_id), litiges=", ".join(found))


def parcel_communes(session: Session, parcel_id: str) -> set[str]:
    """The communes of every version of a parcel (empty for an unknown one).

    Where the parcel, its history and its tenure may be read: parcels and tenure both ask it, so it
    lives below both.
    """
    try:
        pid = uuid.UUID(str(parcel_id))
    except ValueError:
        return set()
    return set(session.execute(text("SELECT DISTINCT commune_code FROM parcel_version WHERE parcel_id = :id"),
                               {"id": pid}).scalars())
