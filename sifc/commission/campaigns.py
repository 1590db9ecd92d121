"""Systematic campaigns (ADR 0005 §5): the surveyed parcels of an area and their presumed holders.

Programmes such as PROCASEF survey a whole village at once; the results are then shown publicly
(:mod:`sifc.commission.display`) and parcels without an open claim become régularisation procedures.
A campaign covers an area of one commune — a localité's surroundings, a cadastral section or a box —
and lists its parcels: every current parcel of the area, the parcels of an import batch (whose
presumed holders came from the survey file, :func:`add_imported`), or parcels named one by one.

Presumed holders are personal data (loi 2008-12): they are kept shaped like a request's applicants
(``[{party_id, share}]``), served only to readers of personal data in the commune, each read logged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal
from sifc.crs import STORAGE_SRID
from sifc.errors import Conflict, InvalidInput, NotFound
from sifc.personal import require_reader
from sifc.tenure.common import authorise, shares
from sifc.versioning import parse_id

AREA_KINDS = ("localite", "section", "bbox")
SOURCES = ("area", "batch", "parcels")
# How far around a localité's place a campaign reaches when the officer gives no radius: none — the
# officer states it (a village's extent is local knowledge, not a value of law).


@dataclass
class AreaInput:
    """Where a campaign runs: a localité (with a radius in metres), a section, or a WGS 84 box."""

    kind: str
    localite_id: str | None = None
    radius_m: float | None = None
    section: str | None = None
    bbox: list[float] | None = None


@dataclass
class CampaignInput:
    """A new campaign."""

    commune_code: str
    name: str
    area: AreaInput


@dataclass
class ParcelsInput:
    """Parcels to add: every current parcel of the area, an import batch's, or listed (with holders)."""

    source: str
    batch_id: str | None = None
    parcels: list[dict[str, Any]] = field(default_factory=list)


def _commune_exists(session: Session, code: str) -> None:
    if not session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": code}).scalar():
        raise NotFound("campaign.unknown_commune", commune=str(code)[:64])


def _area(session: Session, commune: str, area: AreaInput) -> bytes | None:
    """The area as EWKB in the storage CRS (a MULTIPOLYGON), computed by the database; None if empty."""
    if area.kind == "bbox":
        box = area.bbox or []
        if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]):
            raise InvalidInput("campaign.bad_bbox")
        found = session.execute(text("""
            SELECT ST_AsEWKB(ST_Multi(ST_Transform(ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326), :srid)))"""),
            {"x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3], "srid": STORAGE_SRID}).scalar()
    elif area.kind == "section":
        if not (area.section or "").strip():
            raise InvalidInput("campaign.section_required")
        found = session.execute(text("""
            SELECT ST_AsEWKB(ST_Multi(ST_Buffer(ST_Union(geom), 1))) FROM parcel_version
            WHERE valid_to IS NULL AND commune_code = :c AND section = :s"""),
            {"c": commune, "s": area.section}).scalar()
        if found is None:
            raise InvalidInput("campaign.empty_section", section=str(area.section)[:64])
    elif area.kind == "localite":
        found = _localite_area(session, commune, area)
    else:
        raise InvalidInput("campaign.bad_area_kind", kind=str(area.kind)[:32], kinds=", ".join(AREA_KINDS))
    return bytes(found) if found is not None else None


def _localite_area(session: Session, commune: str, area: AreaInput) -> Any:
    """A localité's current place buffered by the officer's radius (the localités register, ADR 0005 §3)."""
    if not area.radius_m or not 0 < area.radius_m <= 20_000:
        raise InvalidInput("campaign.radius_required")
    localite = parse_id(area.localite_id, key="campaign.localite_not_found", kind="localité")
    found = session.execute(text("""
        SELECT ST_AsEWKB(ST_Multi(ST_Buffer(geom, :r))) FROM localite_version
        WHERE localite_id = :l AND valid_to IS NULL AND commune_code = :c"""),
        {"l": localite, "c": commune, "r": area.radius_m}).scalar()
    if found is None:
        raise NotFound("campaign.localite_not_found", id=str(localite))
    return found


def create(session: Session, *, data: CampaignInput, by: Principal | None, author: str) -> str:
    """Open a campaign over an area of a commune; return its id (the area must meet the commune)."""
    name = (data.name or "").strip()
    if not name:
        raise InvalidInput("campaign.name_required")
    _commune_exists(session, data.commune_code)
    authorise(session, by, data.commune_code)
    area = _area(session, data.commune_code, data.area)
    campaign_id = uuid.uuid4()
    inserted = session.execute(text("""
        INSERT INTO campaign (id, commune_code, name, area, area_kind, localite_id, section, created_by)
        SELECT :id, :c, :name, a.geom, :kind, :localite, :section, :author
        FROM (SELECT ST_GeomFromEWKB(:area) AS geom) a, commune m
        WHERE m.code = :c AND a.geom IS NOT NULL AND ST_Intersects(a.geom, m.geom)"""),
        {"area": area, "id": campaign_id, "c": data.commune_code, "name": name, "kind": data.area.kind,
         "localite": data.area.localite_id if data.area.kind == "localite" else None,
         "section": data.area.section if data.area.kind == "section" else None,
         "author": author}).rowcount  # type: ignore[attr-defined]
    if not inserted:
        raise InvalidInput("campaign.area_outside", commune=data.commune_code)
    journal.record(session, by, author=author, operation="campaign.create", object_kind="campaign",
                   object_id=campaign_id, commune_code=data.commune_code, after=_head(session, campaign_id))
    return str(campaign_id)


def _head(session: Session, campaign_id: uuid.UUID) -> dict[str, Any]:
    row = session.execute(text("""
        SELECT c.id, c.commune_code, c.name, c.area_kind, c.localite_id, c.section, c.state, c.created_at,
               ST_AsGeoJSON(ST_Transform(c.area, 4326), 7)::jsonb AS area,
               (SELECT count(*) FROM campaign_parcel p WHERE p.campaign_id = c.id) AS parcels,
               (SELECT count(*) FROM campaign_parcel p WHERE p.campaign_id = c.id AND p.procedure_id IS NOT NULL)
                   AS registered,
               (SELECT count(*) FROM claim k WHERE k.campaign_id = c.id AND k.state = 'received') AS open_claims
        FROM campaign c WHERE c.id = :id"""), {"id": campaign_id}).mappings().first()
    if row is None:
        raise NotFound("campaign.not_found", id=str(campaign_id))
    return {"id": str(row["id"]), "commune_code": row["commune_code"], "name": row["name"],
            "area_kind": row["area_kind"], "localite_id": str(row["localite_id"]) if row["localite_id"] else None,
            "section": row["section"], "state": row["state"], "created_at": row["created_at"].isoformat(),
            "area": row["area"], "counts": {"parcels": row["parcels"], "registered": row["registered"],
                                            "open_claims": row["open_claims"]}}


def commune_of(session: Session, *, campaign_id: str) -> str | None:
    """The commune of a campaign; None for an unknown one (or a malformed id)."""
    try:
        cid = uuid.UUID(str(campaign_id))
    except ValueError:
        return None
    return session.execute(text("SELECT commune_code FROM campaign WHERE id = :id"), {"id": cid}).scalar()


def parcel_count(session: Session, *, campaign_id: str) -> int:
    """How many parcels a campaign lists (0 for an unknown one)."""
    try:
        cid = uuid.UUID(str(campaign_id))
    except ValueError:
        return 0
    return int(session.execute(text("SELECT count(*) FROM campaign_parcel WHERE campaign_id = :id"),
                               {"id": cid}).scalar() or 0)


def reader_commune(session: Session, *, campaign_id: str, reader: Principal) -> str:
    """The campaign's commune once ``reader`` may read personal data there (401, 403; 404 unknown)."""
    return require_reader(reader, commune_of(session, campaign_id=campaign_id),
                          NotFound("campaign.not_found", id=str(campaign_id)[:64]))


def get(session: Session, *, campaign_id: str, reader: Principal) -> dict[str, Any]:
    """A campaign with its counts and display periods (no personal field), for a reader in its commune."""
    reader_commune(session, campaign_id=campaign_id, reader=reader)
    cid = uuid.UUID(str(campaign_id))
    found = _head(session, cid)
    found["display_periods"] = periods(session, campaign_id=cid)
    return found


def periods(session: Session, *, campaign_id: uuid.UUID) -> list[dict[str, Any]]:
    """The campaign's display periods, oldest first (dates and state only)."""
    return [{"id": str(r.id), "localite_id": str(r.localite_id) if r.localite_id else None,
             "starts_on": r.starts_on.isoformat(), "ends_on": r.ends_on.isoformat(), "display_days": r.display_days,
             "closed": r.closed_at is not None}
            for r in session.execute(text("""
                SELECT id, localite_id, starts_on, ends_on, display_days, closed_at FROM display_period
                WHERE campaign_id = :id ORDER BY starts_on, opened_at"""), {"id": campaign_id})]


def list_(session: Session, *, commune_code: str, reader: Principal) -> list[dict[str, Any]]:
    """The campaigns of a commune, newest first, for a reader in its scope."""
    require_reader(reader, commune_code, NotFound("campaign.unknown_commune", commune=str(commune_code)[:64]))
    ids = session.execute(text("SELECT id FROM campaign WHERE commune_code = :c ORDER BY created_at DESC"),
                          {"c": commune_code}).scalars().all()
    return [_head(session, i) for i in ids]


def _locked(session: Session, campaign_id: str, by: Principal | None) -> Any:
    """The campaign row under its lock, once ``by`` may write in its commune."""
    cid = parse_id(campaign_id, key="campaign.not_found", kind="campagne")
    row = session.execute(text("SELECT id, commune_code, state, area FROM campaign WHERE id = :id FOR UPDATE"),
                          {"id": cid}).first()
    if row is None:
        raise NotFound("campaign.not_found", id=str(cid))
    authorise(session, by, row.commune_code)
    return row


def _holders_json(session: Session, holders: list[dict[str, Any]], by: Principal | None) -> str:
    parsed = shares(session, holders, required=False, by=by)
    return orjson.dumps([h.as_row() for h in parsed]).decode()


def add_parcels(session: Session, *, campaign_id: str, data: ParcelsInput, by: Principal | None,
                author: str) -> dict[str, int]:
    """Add parcels to an open campaign; return how many were added and how many were there already.

    ``area``: every current parcel of the commune inside the area (its centroid within it);
    ``batch``: the current parcels an import batch wrote in the area's commune; ``parcels``: the
    listed parcels, each with its presumed holders (parties the officer may read).
    """
    campaign = _locked(session, campaign_id, by)
    if campaign.state != "open":
        raise Conflict("campaign.not_open", state=campaign.state)
    if data.source == "area":
        rows = session.execute(text("""
            SELECT v.parcel_id FROM parcel_version v, campaign c
            WHERE c.id = :id AND v.valid_to IS NULL AND v.commune_code = c.commune_code
              AND ST_Intersects(c.area, v.geom) AND ST_Covers(c.area, ST_PointOnSurface(v.geom))
            ORDER BY v.parcel_id"""), {"id": campaign.id}).scalars().all()
        wanted: list[tuple[Any, str, str, uuid.UUID | None]] = [(p, "[]", "manual", None) for p in rows]
    elif data.source == "batch":
        batch = parse_id(data.batch_id, key="campaign.batch_not_found", kind="lot")
        rows = session.execute(text("""
            SELECT parcel_id FROM parcel_version WHERE batch_id = :b AND valid_to IS NULL AND commune_code = :c
            ORDER BY parcel_id"""), {"b": batch, "c": campaign.commune_code}).scalars().all()
        if not rows:
            raise InvalidInput("campaign.empty_batch", batch=str(batch))
        wanted = [(p, "[]", "import_batch", batch) for p in rows]
    elif data.source == "parcels":
        if not data.parcels:
            raise InvalidInput("campaign.parcels_required")
        wanted = []
        for item in data.parcels:
            pid = parse_id(item.get("parcel_id"), key="parcel.not_found", kind="parcelle")
            commune = session.execute(text("""
                SELECT commune_code FROM parcel_version WHERE parcel_id = :p AND valid_to IS NULL"""),
                {"p": pid}).scalar()
            if commune is None:
                raise NotFound("parcel.not_found", id=str(pid))
            if commune != campaign.commune_code:
                raise InvalidInput("campaign.parcel_other_commune", id=str(pid), commune=campaign.commune_code)
            wanted.append((pid, _holders_json(session, item.get("presumed_holders") or [], by), "manual", None))
    else:
        raise InvalidInput("campaign.bad_source", source=str(data.source)[:32], sources=", ".join(SOURCES))
    return _insert_parcels(session, campaign, wanted, by=by, author=author)


def _insert_parcels(session: Session, campaign: Any, wanted: list[tuple[Any, str, str, Any]], *,
                    by: Principal | None, author: str) -> dict[str, int]:
    added = 0
    for parcel_id, holders, origin, batch in wanted:
        added += session.execute(text("""
            INSERT INTO campaign_parcel (campaign_id, parcel_id, commune_code, presumed_holders, origin, batch_id,
                                         added_by)
            VALUES (:c, :p, :commune, CAST(:h AS jsonb), :origin, :batch, :author)
            ON CONFLICT (campaign_id, parcel_id) DO NOTHING"""),
            {"c": campaign.id, "p": parcel_id, "commune": campaign.commune_code, "h": holders,
             "origin": origin, "batch": batch, "author": author}).rowcount  # type: ignore[attr-defined]
    journal.record(session, by, author=author, operation="campaign.add_parcels", object_kind="campaign",
                   object_id=campaign.id, commune_code=campaign.commune_code,
                   after={"added": added, "parcel_ids": [str(w[0]) for w in wanted]})
    return {"added": added, "already": len(wanted) - added}


SEX_WORDS = {"f": "F", "femme": "F", "feminin": "F", "féminin": "F", "m": "M", "h": "M", "homme": "M",
             "masculin": "M"}


def add_imported(session: Session, *, campaign_id: str, batch_id: str, holders: dict[str, dict[str, Any]],
                 by: Principal | None, author: str) -> dict[str, int]:
    """The parcels an import wrote for a campaign, each with the presumed holder its survey line names.

    ``holders`` maps a parcel id to the file's values (``name``, ``given_names``, ``id_number``,
    ``sex``); a line with a name becomes a party of the campaign's commune, as an applicant is
    registered (:func:`sifc.tenure.parties.create`); a line without one leaves the parcel without
    presumed holder (it will wait at the close).
    """
    from sifc.tenure import parties

    campaign = _locked(session, campaign_id, by)
    if campaign.state != "open":
        raise Conflict("campaign.not_open", state=campaign.state)
    batch = uuid.UUID(str(batch_id))
    wanted = []
    for parcel_id, found in holders.items():
        presumed = []
        if (found.get("name") or "").strip():
            sex = SEX_WORDS.get(str(found.get("sex") or "").strip().lower())
            party = parties.create(session, data=parties.PartyInput({
                "kind": "natural_person", "name": found["name"].strip(), "given_names": found.get("given_names"),
                "id_number": found.get("id_number"), "sex": sex, "commune_code": campaign.commune_code},
                f"campagne {campaign.id}"), by=by, author=author)
            presumed = [{"party_id": str(party), "share": "1/1"}]
        wanted.append((uuid.UUID(parcel_id), orjson.dumps(presumed).decode(), "import_batch", batch))
    return _insert_parcels(session, campaign, wanted, by=by, author=author)


def check_importable(session: Session, *, campaign_id: str, by: Principal | None) -> None:
    """Refuse an import for a campaign that does not exist, is out of ``by``'s scope or is no longer open."""
    campaign = _locked(session, campaign_id, by)
    if campaign.state != "open":
        raise Conflict("campaign.not_open", state=campaign.state)


def parcels(session: Session, *, campaign_id: str, reader: Principal) -> list[dict[str, Any]]:
    """The campaign's parcels with their presumed holders (named), claims and procedure; the read is logged."""
    commune = reader_commune(session, campaign_id=campaign_id, reader=reader)
    found = _parcels(session, uuid.UUID(str(campaign_id)), names=True, reader=reader)
    audit.record(session, reader, service=f"{__name__}.parcels", subject_kind="campaign",
                 subject_id=str(campaign_id), commune_code=commune)
    return found


def _parcels(session: Session, campaign_id: uuid.UUID, *, names: bool,
             reader: Principal | None = None, within: Any = None) -> list[dict[str, Any]]:
    rows = session.execute(text("""
        SELECT cp.parcel_id, cp.presumed_holders, cp.origin, cp.procedure_id, v.nicad, v.section, v.local_number,
               v.area_m2,
               (SELECT count(*) FROM claim k WHERE k.campaign_id = cp.campaign_id AND k.parcel_id = cp.parcel_id
                  AND k.state = 'received') AS open_claims
        FROM campaign_parcel cp
        LEFT JOIN parcel_version v ON v.parcel_id = cp.parcel_id AND v.valid_to IS NULL
        WHERE cp.campaign_id = :id ORDER BY v.nicad NULLS LAST, v.section, v.local_number, cp.parcel_id"""),
        {"id": campaign_id}).mappings().all()
    party_ids = [h["party_id"] for r in rows for h in r["presumed_holders"]]
    named = {}
    if names and party_ids:
        named = {p: (n, c) for p, n, c in session.execute(text("""
            SELECT party_id::text, concat_ws(' ', given_names, name), commune_code FROM party_version
            WHERE valid_to IS NULL AND party_id = ANY(CAST(:ids AS uuid[]))"""), {"ids": party_ids}).all()}
    out = []
    for r in rows:
        body: dict[str, Any] = {
            "parcel_id": str(r["parcel_id"]), "nicad": r["nicad"], "section": r["section"],
            "local_number": r["local_number"], "area_m2": round(float(r["area_m2"]), 2) if r["area_m2"] else None,
            "origin": r["origin"], "procedure_id": str(r["procedure_id"]) if r["procedure_id"] else None,
            "open_claims": r["open_claims"]}
        if names:
            body["presumed_holders"] = [
                {**h, "name": named[h["party_id"]][0] if h["party_id"] in named and (
                    reader is None or reader.may(Action.READ_PERSONAL, named[h["party_id"]][1])) else None}
                for h in r["presumed_holders"]]
        out.append(body)
    return out
