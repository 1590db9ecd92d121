"""A parcel's whole history: every version of the parcel, of its rights and of its procedures.

It reads both wings (parcels, tenure), so it sits above them, as the mutations do.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.orm import Session

from sifc.parcels import service as parcels
from sifc.tenure import procedures, rights
from sifc.versioning import parse_id


def parcel_history(session: Session, *, parcel_id: str, personal: bool, crs: int = 4326) -> dict[str, Any]:
    """Versions of the parcel (GeoJSON features), of its rights (with holders if ``personal``) and its procedures."""
    pid = parse_id(parcel_id, key="parcel.not_found", kind="parcelle")
    versions = orjson.loads(parcels.versions(session, parcel_id=str(pid), crs=crs, personal=personal))
    return {"parcel_id": str(pid), "versions": versions["features"],
            "rights": rights.history(session, parcel_id=pid, personal=personal),
            "procedures": procedures.for_parcel(session, parcel_id=pid, personal=personal)}
