"""A parcel's whole history: every version of the parcel, of its rights and of its procedures; its write journal.

It reads both wings (parcels, tenure), so it sits above them, as the mutations do.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.orm import Session

from sifc import journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal, require
from sifc.errors import NotFound
from sifc.parcels import service as parcels
from sifc.personal import may_reveal, require_reader
from sifc.tenure import procedures, rights
from sifc.versioning import parse_id


def parcel_history(session: Session, *, parcel_id: str, reader: Principal, crs: int = 4326) -> dict[str, Any]:
    """Versions of the parcel (GeoJSON features), of its rights and of its procedures.

    Holders, authors, applicants and officers' text only if ``reader`` may read personal data in
    every commune of the parcel; such a read is logged, the parcel as its subject. Anyone else sees
    where each request stands, not who made it nor what officers wrote of it.
    """
    pid = parse_id(parcel_id, key="parcel.not_found", kind="parcelle")
    communes = parcels.communes_of(session, parcel_id=parcel_id)
    personal = may_reveal(reader, communes)
    versions = orjson.loads(parcels._versions(session, str(pid), crs=crs, personal=personal))
    found = {"parcel_id": str(pid), "versions": versions["features"],
             "rights": rights._history(session, pid, personal=personal),
             "procedures": procedures._for_parcel(session, pid, personal=personal)}
    if personal:
        audit.record(session, reader, service=f"{__name__}.parcel_history", subject_kind="parcel",
                     subject_id=parcel_id, commune_code=min(communes))
    else:
        found["procedures"] = [{"id": p["id"], "kind": p["kind"], "state": p["state"], "rrr_id": p["rrr_id"],
                                "steps": [{"step": s["step"], "occurred_on": s["occurred_on"]} for s in p["steps"]]}
                               for p in found["procedures"]]
    return found


def parcel_writes(session: Session, *, parcel_id: str, reader: Principal, limit: int = 100,
                  offset: int = 0) -> list[dict[str, Any]]:
    """The write journal of a parcel (before, after, who, when), newest first.

    For a ``reader`` of personal data in every commune of the parcel (401, 403; 404 for an unknown
    parcel): the entries name their authors. The read is logged, the parcel as its subject.
    """
    communes = parcels.communes_of(session, parcel_id=parcel_id)
    commune = require_reader(reader, min(communes) if communes else None, NotFound("parcel.not_found", id=parcel_id))
    require(reader, Action.READ_PERSONAL, communes=communes)
    rows = journal.entries(session, parcel_id=parcel_id, limit=limit, offset=offset)
    audit.record(session, reader, service=f"{__name__}.parcel_writes", subject_kind="parcel", subject_id=parcel_id,
                 commune_code=commune)
    return rows
