"""What the tenure services share: legal dates, shares, the parcel lock, sources.

The versioning primitives (ids, as-of instants, expected versions, the litige freeze) are in :mod:`sifc.versioning`,
shared with the parcels; entity tags and ``If-Match`` are HTTP, in :mod:`api.preconditions`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth.principal import Action, Principal, require
from sifc.errors import Conflict, InvalidInput, NotFound
from sifc.federation import directory
from sifc.versioning import parse_id

MAX_DENOMINATOR = 1_000_000


def not_future(day: date, field: str) -> None:
    """Refuse a legal date after today (a step, a notice, a start)."""
    if day > datetime.now(UTC).date() + timedelta(days=1):
        raise InvalidInput("tenure.date_in_future", field=field, date=day.isoformat())


@dataclass(frozen=True)
class Share:
    """A holder of a right and their share (a fraction, as LADM's ``Fraction``)."""

    party_id: uuid.UUID
    share: Fraction

    def as_row(self) -> dict[str, Any]:
        """The JSON of a holder without personal fields."""
        return {"party_id": str(self.party_id), "share": f"{self.share.numerator}/{self.share.denominator}"}


def parse_share(value: Any) -> Fraction:
    """``"1/2"``, ``"0.25"``, ``1`` or ``0.5`` as a fraction in ]0, 1]."""
    try:
        share = Fraction(str(value).strip()).limit_denominator(MAX_DENOMINATOR)
    except (ValueError, ZeroDivisionError) as error:
        raise InvalidInput("rrr.bad_share", share=str(value)[:32]) from error
    if not 0 < share <= 1:
        raise InvalidInput("rrr.bad_share", share=str(value)[:32])
    return share


def readable_parties(session: Session, ids: Iterable[uuid.UUID], *, by: Principal | None) -> set[uuid.UUID]:
    """The current parties among ``ids`` that ``by`` may read in the commune each is registered in.

    ``by`` None is the system itself (a migration, a test seam). A party ``by`` may not read is
    answered as one that does not exist, so that linking cannot be used to learn who is registered.
    """
    rows = session.execute(text(
        "SELECT party_id, commune_code FROM party_version WHERE valid_to IS NULL AND party_id = ANY(:ids)"),
        {"ids": list(ids)}).all()
    return {party for party, commune in rows if by is None or by.may(Action.READ_PERSONAL, commune)}


def linkable_parties(session: Session, ids: Iterable[uuid.UUID], *, by: Principal | None) -> None:
    """Refuse (404, as for an unknown party) every party of ``ids`` that ``by`` may not read."""
    wanted = list(dict.fromkeys(ids))
    found = readable_parties(session, wanted, by=by)
    missing = [str(p) for p in wanted if p not in found]
    if missing:
        raise NotFound("party.not_found", id=", ".join(missing))


def shares(session: Session, holders: Iterable[dict[str, Any]], *, required: bool, by: Principal | None
           ) -> list[Share]:
    """Holders as shares that sum to exactly 1 (the rule of LADM-COL and SOLA).

    Each is a current party that ``by`` may read in its registered commune: an officer links only
    the people they may see; to act elsewhere, the person is registered in that commune.
    """
    parsed: dict[uuid.UUID, Fraction] = {}
    for holder in holders:
        party = parse_id(holder.get("party_id"), key="party.not_found", kind="partie")
        if party in parsed:
            raise InvalidInput("rrr.duplicate_holder", party=str(party))
        parsed[party] = parse_share(holder.get("share", "1"))
    if not parsed:
        if required:
            raise InvalidInput("rrr.holders_required")
        return []
    total = sum(parsed.values(), Fraction(0))
    if total != 1:
        raise InvalidInput("rrr.shares_not_one", total=f"{total.numerator}/{total.denominator}")
    linkable_parties(session, parsed, by=by)
    return [Share(party, share) for party, share in parsed.items()]


@dataclass(frozen=True)
class ParcelState:
    """The current version of a parcel, as a tenure write sees it."""

    parcel_id: uuid.UUID
    version: int
    commune_code: str
    area_m2: float
    nicad: str | None


def current_parcel(session: Session, parcel_id: uuid.UUID, *, lock: bool = False) -> ParcelState:
    """The parcel's current version; ``lock`` takes its row lock, which serialises the parcel's writes.

    A parcel update closes the locked row and inserts a new one: a waiting writer then finds no
    current row in the old one, and reads again.
    """
    for _ in range(3):
        row = session.execute(text(
            "SELECT parcel_id, version, commune_code, area_m2, nicad FROM parcel_version "
            "WHERE parcel_id = :id AND valid_to IS NULL" + (" FOR UPDATE" if lock else "")),
            {"id": parcel_id}).first()
        if row is not None:
            return ParcelState(*row)
        if not lock:
            break
    exists = session.execute(text("SELECT 1 FROM parcel_version WHERE parcel_id = :id LIMIT 1"),
                             {"id": parcel_id}).scalar()
    if exists:
        raise Conflict("tenure.parcel_retired", id=str(parcel_id))
    raise NotFound("parcel.not_found", id=str(parcel_id))




def authorise(session: Session, principal: Principal | None, *communes: str) -> None:
    """Tenure writes: agent foncier or administrateur, every commune in scope, and owned by this node."""
    if principal is not None:
        require(principal, Action.WRITE_TENURE, communes=communes)
    directory.ensure_owned(session, communes)


def sources_of(session: Session, source_ids: Iterable[Any], *, commune_code: str, by: Principal | None
               ) -> list[dict[str, Any]]:
    """The sources named by a write, each existing, readable by ``by`` and of the parcel's commune.

    A source ``by`` may not read (another commune's délibération names people) is answered as an
    unknown one (404); a readable source of another commune than the parcel's is a 422.
    """
    ids = [parse_id(s, key="source.not_found", kind="source") for s in source_ids]
    if not ids:
        return []
    rows = session.execute(text("""
        SELECT id, kind, reference, document_date, authority, council_session, commune_code
        FROM source_document WHERE id = ANY(:ids)"""), {"ids": ids}).mappings().all()
    found = {row["id"]: dict(row) for row in rows
             if by is None or by.may(Action.READ_PERSONAL, row["commune_code"])}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise NotFound("source.not_found", id=", ".join(missing))
    foreign = [str(i) for i in ids if found[i]["commune_code"] != commune_code]
    if foreign:
        raise InvalidInput("source.other_commune", id=", ".join(foreign), commune=commune_code)
    return [found[i] for i in ids]
