"""Parties (LADM ``LA_Party``): natural persons, groups (famille, GIE, association…), legal entities.

A party is the series of its versions in ``party_version``, like a parcel; a change writes a new
version and closes the previous one. Name, given names, identity number (NIN, CNI, NINEA) and
contact are personal data (loi 2008-12): only the roles allowed to read personal data in the
party's commune get them, and :func:`get` and :func:`versions` write each read to the access
audit, whoever calls them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal, require
from sifc.errors import InvalidInput, NotFound
from sifc.models import PARTY_KINDS
from sifc.personal import FREE_TEXT_FIELDS
from sifc.tenure.common import authorise, linkable_parties
from sifc.versioning import check_expected, close_version, parse_id

GROUP_TYPES = ("famille", "gie", "association", "cooperative", "autre")
FIELDS = ("kind", "group_type", "name", "given_names", "id_number", "contact", "members", "commune_code", "sex")
PERSONAL = frozenset({"name", "given_names", "id_number", "contact", "members", "sex"})
SEXES = ("F", "M")  # optional (None: not recorded); read only in scope, published only as aggregates


@dataclass
class PartyInput:
    """What a land officer gives to register a party or change it."""

    values: dict[str, Any]
    reason: str | None = None


def _row_json(row: Any, *, personal: bool) -> dict[str, Any]:
    body = {"id": str(row["party_id"]), "version": row["version"], "kind": row["kind"],
            "group_type": row["group_type"], "commune_code": row["commune_code"], "synthetic": row["synthetic"],
            "valid_from": row["valid_from"].isoformat(),
            "valid_to": row["valid_to"].isoformat() if row["valid_to"] else None}
    if personal:
        body.update({name: row[name] for name in sorted(FREE_TEXT_FIELDS["parties"])})
        body.update({"name": row["name"], "given_names": row["given_names"], "id_number": row["id_number"],
                     "contact": row["contact"], "sex": row["sex"], "author": row["author"],
                     "closed_by": row["closed_by"],
                     "members": [str(m) for m in row["members"]] if row["members"] is not None else None})
    return body


SELECT = """SELECT party_id, version, kind, group_type, name, given_names, id_number, contact, members, commune_code,
                   sex, synthetic, author, reason, valid_from, valid_to, closed_by, close_reason FROM party_version"""


def _validate(session: Session, values: dict[str, Any], by: Principal | None) -> dict[str, Any]:
    kind = values.get("kind")
    if kind not in PARTY_KINDS:
        raise InvalidInput("party.bad_kind", kind=str(kind), kinds=", ".join(PARTY_KINDS))
    if kind == "group":
        if values.get("group_type") not in GROUP_TYPES:
            raise InvalidInput("party.bad_group_type", types=", ".join(GROUP_TYPES))
    else:
        if values.get("group_type"):
            raise InvalidInput("party.members_of_group_only")
        if values.get("members"):
            raise InvalidInput("party.members_of_group_only")
        values["members"] = None
    if not str(values.get("name") or "").strip():
        raise InvalidInput("party.name_required")
    if values.get("sex") is not None:
        if values["sex"] not in SEXES:
            raise InvalidInput("party.bad_sex", sexes=", ".join(SEXES))
        if kind != "natural_person":
            raise InvalidInput("party.sex_of_person_only")
    if kind == "group" and values.get("members"):
        members = [parse_id(m, key="party.not_found", kind="partie") for m in values["members"]]
        linkable_parties(session, members, by=by)  # a group's members, as a right's holders
        values["members"] = members
    commune = values.get("commune_code")
    if not session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": commune}).scalar():
        raise InvalidInput("party.unknown_commune", commune=str(commune))
    return values


def _insert(session: Session, pid: uuid.UUID, version: int, values: dict[str, Any], *, action: str, author: str,
            reason: str | None, synthetic: bool = False) -> None:
    session.execute(text("""
        INSERT INTO party_version (party_id, version, kind, group_type, name, given_names, id_number, contact,
                                   members, commune_code, sex, synthetic, action, author, reason)
        VALUES (:pid, :version, :kind, :group_type, :name, :given_names, :id_number, :contact,
                CAST(:members AS uuid[]), :commune_code, :sex, :synthetic, :action, :author, :reason)"""),
        {"pid": pid, "version": version, **{k: values.get(k) for k in FIELDS}, "synthetic": synthetic,
         "action": action, "author": author, "reason": reason})


def create(session: Session, *, data: PartyInput, by: Principal | None, author: str, synthetic: bool = False) -> str:
    """Register a party in a commune of ``by``'s scope; return its id."""
    values = _validate(session, {k: data.values.get(k) for k in FIELDS}, by)
    authorise(session, by, values["commune_code"])
    pid = uuid.uuid4()
    _insert(session, pid, 1, values, action="api:create", author=author, reason=data.reason, synthetic=synthetic)
    journal.record(session, by, author=author, operation="party.create", object_kind="party", object_id=pid,
                   commune_code=values["commune_code"], after=_get(session, str(pid)))
    return str(pid)


def _one(session: Session, pid: uuid.UUID, at: datetime | None) -> Any:
    if at is None:
        row = session.execute(text(SELECT + " WHERE party_id = :id AND valid_to IS NULL"),
                              {"id": pid}).mappings().first()
    else:
        row = session.execute(text(SELECT + """ WHERE party_id = :id AND valid_from <= :at
            AND (valid_to IS NULL OR valid_to > :at)"""), {"id": pid, "at": at}).mappings().first()
    if row is None:
        raise NotFound("party.not_found", id=str(pid))
    return row


def commune_of(session: Session, *, party_id: str) -> str | None:
    """The commune a party was registered in (its scope); None for an unknown party."""
    try:
        pid = uuid.UUID(str(party_id))
    except ValueError:
        return None
    return session.execute(text("SELECT commune_code FROM party_version WHERE party_id = :id ORDER BY version DESC "
                                "LIMIT 1"), {"id": pid}).scalar()


def visible_commune(session: Session, *, party_id: str, by: Principal) -> str:
    """The commune a party is registered in, when ``by`` may read it there.

    A role that reads no personal data is refused (401, 403); a party of a commune out of ``by``'s
    scope is answered exactly as a party that does not exist (404), so that a read cannot tell
    whether someone is registered elsewhere.
    """
    require(by, Action.READ_PERSONAL)
    commune = commune_of(session, party_id=party_id)
    if commune is None or not by.may(Action.READ_PERSONAL, commune):
        raise NotFound("party.not_found", id=str(party_id)[:64])
    return commune


def get(session: Session, *, party_id: str, reader: Principal, at: datetime | None = None) -> dict[str, Any]:
    """A party's current version (or the one valid at ``at``), for a ``reader`` of personal data in its commune.

    Refused as :func:`visible_commune` refuses; the read is logged.
    """
    commune = visible_commune(session, party_id=party_id, by=reader)
    party = _get(session, party_id, at=at)
    audit.record(session, reader, service=f"{__name__}.get", subject_kind="party", subject_id=party["id"],
                 commune_code=commune)
    return party


def as_written(session: Session, *, party_id: str, by: Principal) -> dict[str, Any]:
    """The party as its writer sees it right after a write.

    ``by`` must be allowed to write tenure records in the party's commune (403 otherwise). No
    access-log row: the write journal holds this very state under the same actor.
    """
    party = _get(session, party_id)
    authorise(session, by, party["commune_code"])
    return party


def _get(session: Session, party_id: str, *, at: datetime | None = None) -> dict[str, Any]:
    return _row_json(_one(session, parse_id(party_id, key="party.not_found", kind="partie"), at), personal=True)


def versions(session: Session, *, party_id: str, reader: Principal) -> list[dict[str, Any]]:
    """Every version of a party, oldest first (refused and logged as :func:`get`)."""
    commune = visible_commune(session, party_id=party_id, by=reader)
    pid = parse_id(party_id, key="party.not_found", kind="partie")
    rows = session.execute(text(SELECT + " WHERE party_id = :id ORDER BY version"), {"id": pid}).mappings().all()
    if not rows:
        raise NotFound("party.not_found", id=str(pid))
    found = [_row_json(row, personal=True) for row in rows]
    audit.record(session, reader, service=f"{__name__}.versions", subject_kind="party", subject_id=found[0]["id"],
                 commune_code=commune)
    return found


def update(session: Session, *, party_id: str, data: PartyInput, expected_version: int | None, by: Principal | None,
           author: str) -> int:
    """Write a new version of a party with ``data``'s changes; return its number."""
    if not data.reason:
        raise InvalidInput("party.reason_required")
    pid = parse_id(party_id, key="party.not_found", kind="partie")
    current = _one(session, pid, None)
    if by is not None and not by.may(Action.READ_PERSONAL, current["commune_code"]):
        raise NotFound("party.not_found", id=str(pid))  # as for no such party: not an oracle
    authorise(session, by, current["commune_code"])
    check_expected(expected_version, current["version"])
    values = {k: current[k] for k in FIELDS}
    values.update({k: v for k, v in data.values.items() if k in FIELDS})
    values = _validate(session, values, by)
    authorise(session, by, current["commune_code"], values["commune_code"])
    if all(values.get(k) == current[k] for k in FIELDS):
        raise InvalidInput("party.no_change")
    before = _row_json(current, personal=True)
    version: int = current["version"] + 1
    close_version(session, "party_version", "party_id", pid, current["version"], author=author,
                  reason=f"remplacée par la version {version}")
    _insert(session, pid, version, values, action="api:update", author=author, reason=data.reason,
            synthetic=current["synthetic"])
    journal.record(session, by, author=author, operation="party.update", object_kind="party", object_id=pid,
                   commune_code=values["commune_code"], before=before,
                   after=_get(session, str(pid)))
    return version
