"""The register's facts that documents print: parcels, their rights and holders, the sources' references."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

PARCEL = """SELECT p.parcel_id, p.version, p.nicad, p.nicad_status, p.commune_code, c.name AS commune_name, p.section,
       p.local_number, p.area_m2, p.declared_area_m2, p.land_use, p.tenure_regime, ST_AsBinary(p.geom) AS wkb
FROM parcel p JOIN commune c ON c.code = p.commune_code"""


def rounded(value: float | None) -> float | None:
    """An area to the square centimetre, so that its canonical form is stable."""
    return None if value is None else round(float(value), 2)


def parcel_facts(row: Any) -> dict[str, Any]:
    """The public facts of a current parcel version."""
    return {"id": str(row["parcel_id"]), "version": row["version"], "nicad": row["nicad"],
            "nicad_status": row["nicad_status"], "commune_code": row["commune_code"],
            "commune": row["commune_name"], "section": row["section"], "local_number": row["local_number"],
            "area_m2": rounded(row["area_m2"]), "declared_area_m2": rounded(row["declared_area_m2"]),
            "land_use": row["land_use"], "tenure_regime": row["tenure_regime"], "status": "in_force"}


def current_parcel(session: Session, parcel_id: uuid.UUID) -> Any:
    """The current version of a parcel with its commune's name and its geometry (WKB, EPSG:32628)."""
    return session.execute(text(PARCEL + " WHERE p.parcel_id = :id"), {"id": parcel_id}).mappings().first()


def source_refs(session: Session, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Kind, reference, date (and authority, session) of each source, by id."""
    if not ids:
        return {}
    rows = session.execute(text("""
        SELECT id::text AS id, kind, reference, document_date, authority, council_session FROM source_document
        WHERE id = ANY(CAST(:ids AS uuid[]))"""), {"ids": ids}).mappings().all()
    return {r["id"]: {"kind": r["kind"], "reference": r["reference"], "date": r["document_date"].isoformat(),
                      "authority": r["authority"], "session": r["council_session"]} for r in rows}


def holder_facts(holders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A right's holders as printed: full name and share."""
    return [{"name": " ".join(x for x in (h.get("given_names"), h.get("name")) if x), "share": h["share"]}
            for h in holders]


def right_facts(session: Session, *, read: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rights in force or to come among ``read`` (type, dates, sources; holders when the read carried them).

    Whether the holders were read is the document service's decision (``sifc.personal.may_reveal``).
    """
    found = [r for r in read if r["status"] != "ended"]
    refs = source_refs(session, sorted({s for r in found for s in r["source_ids"]}))
    out = []
    for r in found:
        facts = {"id": r["id"], "type": r["type"], "status": r["status"], "start_date": r["start_date"],
                 "end_date": r["end_date"], "tf_number": r["tf_number"],
                 "sources": [refs[s] for s in r["source_ids"] if s in refs]}
        if "holders" in r:
            facts["holders"] = holder_facts(r["holders"])
        out.append(facts)
    return out


def share_text(share: str) -> str:
    """A share as printed: ``1/1`` is whole."""
    return "1" if share in ("1/1", "1") else share


def latest_parcel(session: Session, parcel_id: uuid.UUID) -> Any:
    """The last version of a parcel (current or retired since) with its commune's name."""
    return session.execute(text("""
        SELECT p.parcel_id, p.version, p.nicad, p.section, p.local_number, p.area_m2, p.commune_code,
               c.name AS commune_name
        FROM parcel_version p JOIN commune c ON c.code = p.commune_code
        WHERE p.parcel_id = :id ORDER BY p.version DESC LIMIT 1"""), {"id": parcel_id}).mappings().first()
