"""``sifc demo load``: synthetic parcels and tenure records in the three pilot communes.

Blocks of 2 × 10 parcels of about 20 × 25 m along 8 m streets, around each commune's
centre, with plausible land uses and tenure regimes and some parcels without NICAD. The
parcels are written to a GeoPackage and loaded through the same import pipeline as a
surveyor's file; their batch is flagged synthetic. Their corners become the demo's bornes
(one per corner shared by neighbouring parcels, GNSS RTK at 3 cm), in the same batch.

Then, in each commune, tenure records written through the tenure services, as a land officer
would: parties (natural persons, a famille and a GIE), sources (procès-verbaux,
délibérations, approbations, notifications, acts), affectations granted by complete procedures
(one shared by two holders), a request refused at the survey, one awaiting approval, a bail, a
titre foncier and a litige. Everything is flagged synthetic; the write audit names ``sifc-demo``.

Nothing here is real: NICADs are made up, names are common given and family names drawn at
random (fixed seed) and identity numbers are ``SYN-…``, which no NIN can be. Loading twice does
nothing the second time (the whole demo is written in one transaction).
"""

from __future__ import annotations

import random
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth.principal import Principal
from sifc.bornes import service as bornes
from sifc.crs import STORAGE_SRID
from sifc.db import act_as
from sifc.imports.formats import BornePoint
from sifc.imports.parcels import ParcelImportOptions, import_parcels
from sifc.settings import REPO_DATA_DIR
from sifc.tenure import parties, procedures, rights, sources

DEMO_FILE = "sifc-demo-parcelles.gpkg"
PILOTS = {  # commune code → centre (lon, lat), as in the data README
    "SN0104-bargny": (-17.2283, 14.6933),
    "SN1301-sandiara": (-16.78, 14.43),
    "SN1303-mont-rolland": (-16.96, 14.93),
}
PARCEL_W, PARCEL_D, STREET = 20.0, 25.0, 8.0
BLOCK_COLS, BLOCK_ROWS = 10, 2
GRID_COLS, GRID_ROWS = 4, 6
LAND_USES = [("habitation", 70), ("commerce", 10), ("agriculture", 10), ("équipement", 5), ("espace vert", 5)]
TENURES = [("domaine national", 75), ("titre foncier", 15), ("bail", 10)]


# --- tenure records -------------------------------------------------------------------------
DEMO_AUTHOR = "sifc-demo"
DEMO_PRINCIPAL = Principal(kind="cli", role="administrateur", name=DEMO_AUTHOR, everywhere=True)
# The pilots' settings for the demo (ADR 0005 §1): synthetic values citing the demo source, written as
# commune rows so that the demo never rests on an unsourced environment value.
DEMO_RULES: dict[str, Any] = {
    "approval_thresholds_ha": [10.0, 50.0],
    "desaffectation_notice_days": 30,
    "required_sources": {kind: {"surveyed": ["proces_verbal"], "deliberated": ["deliberation"],
                                "approved": ["approbation"]} for kind in ("affectation", "reaffectation_heritiers")}
    | {kind: {"deliberated": ["deliberation"], "approved": ["approbation"]}
       for kind in ("desaffectation", "regularisation")},
    # A session deliberates with three members present (commission) or half the members in office (council).
    "session_quorum": {"commission_domaniale": {"kind": "count", "value": 3},
                       "conseil_municipal": {"kind": "fraction", "value": 0.5}},
    # Target days per step (ADR 0005 §8), fictitious like every demo value: some demo files show as overdue.
    "target_days": {kind: {"surveyed": 30, "deliberated": 90, "approved": 60, "notified": 30}
                    for kind in ("affectation", "reaffectation_heritiers")}
    | {kind: {"deliberated": 90, "approved": 60, "notified": 30} for kind in ("desaffectation", "regularisation")}
    | {"dispute": {"declared": 30, "mediation": 60}},
    "claim_days": 30,
}
THRESHOLDS_HA: tuple[float, float] = (DEMO_RULES["approval_thresholds_ha"][0], DEMO_RULES["approval_thresholds_ha"][1])
# The commission's settings the demo adds for the story of docs/commission.md (« Rejouer l'histoire complète »):
# written after the demo's own requests, and kept out of DEMO_RULES, which every test database gets (a test of
# a missing receipt_mode or of a kind not opened relies on their absence). As fictitious as the others.
DEMO_COMMISSION_RULES: dict[str, Any] = {
    "procedure_kinds": ["affectation", "regularisation"],
    "display_days": 15,
    "display_shows_names": False,
    "receipt_mode": "recu_pdf",
    "fees_required_before": {"affectation": "deliberated", "regularisation": "deliberated"},
}
# Fictitious fixed fees (XOF) per procedure kind, from the demo's délibération on fees (no amount is a default).
DEMO_FEES: dict[str, int] = {"affectation": 25000, "regularisation": 15000}
DEMO_FEES_FROM = date(2025, 1, 1)
RULES_FROM = date(2000, 1, 1)
GIVEN_NAMES = ("Awa", "Moussa", "Fatou", "Mamadou", "Aminata", "Ousmane", "Khady", "Ibrahima", "Mariama", "Cheikh",
               "Ndeye", "Abdoulaye", "Astou", "Babacar", "Coumba", "Modou")
FAMILY_NAMES = ("Diop", "Ndiaye", "Fall", "Sarr", "Faye", "Gueye", "Diallo", "Mbaye", "Cissé", "Diouf", "Thiam",
                "Seck", "Ndour", "Kane", "Niang", "Sène")
GIE_NAMES = ("GIE Jappoo (démo)", "GIE Bokk Jom (démo)", "GIE Liggéey Ak Jikko (démo)")
TF_SUFFIX = {"SN0104-bargny": "RF", "SN1301-sandiara": "MB", "SN1303-mont-rolland": "TV"}
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")
PERSONS_PER_COMMUNE = 8
FAMILY_MEMBERS = 3


@dataclass
class DemoOutcome:
    """What the demo loaded."""

    accepted: int
    communes: str
    parties: int = 0
    sources: int = 0
    rights: int = 0
    procedures: int = 0
    localites: int = 0


@dataclass
class _Tenure:
    """What the tenure part of the demo wrote, and the identity numbers handed out."""

    parties: int = 0
    sources: int = 0
    rights: int = 0
    procedures: int = 0
    next_id: int = 1


def _choice(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    values = [value for value, _weight in weighted]
    return rng.choices(values, weights=[weight for _value, weight in weighted])[0]


def _parcels_for(session: Session, code: str, centre: tuple[float, float]) -> list[dict[str, object]]:
    row = session.execute(text(f"""
        SELECT ST_AsBinary(ST_Buffer(geom, -10)) AS inner_geom,
               ST_X(ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), {STORAGE_SRID})) AS x,
               ST_Y(ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), {STORAGE_SRID})) AS y
        FROM commune WHERE code = :code AND geom IS NOT NULL
    """), {"code": code, "lon": centre[0], "lat": centre[1]}).first()
    if row is None:
        return []
    inner = shapely.from_wkb(bytes(row.inner_geom))
    shapely.prepare(inner)
    rng = random.Random(code)
    block_w = BLOCK_COLS * PARCEL_W + STREET
    block_h = BLOCK_ROWS * PARCEL_D + STREET
    x0 = row.x - GRID_COLS * block_w / 2
    y0 = row.y - GRID_ROWS * block_h / 2
    region, department = code[2:4], code[5]
    parcels = []
    for gy in range(GRID_ROWS):
        for gx in range(GRID_COLS):
            section = gy * GRID_COLS + gx + 1
            for r in range(BLOCK_ROWS):
                for c in range(BLOCK_COLS):
                    minx = x0 + gx * block_w + c * PARCEL_W
                    miny = y0 + gy * block_h + r * PARCEL_D
                    shape = box(minx, miny, minx + PARCEL_W, miny + PARCEL_D)
                    if not inner.contains(shape):
                        continue
                    number = r * BLOCK_COLS + c + 1
                    nicad = f"{region}{department}00001{section:03d}{number:05d}" if rng.random() < 0.8 else None
                    parcels.append({
                        "NICAD": nicad, "SECTION": f"S{section:02d}", "NUMERO": str(number),
                        "SUPERFICIE": round(shape.area * rng.uniform(0.97, 1.03), 1),
                        "USAGE": _choice(rng, LAND_USES), "REGIME": _choice(rng, TENURES),
                        "COMMUNE": code, "geometry": shape,
                    })
    return parcels


def already_loaded(session: Session) -> bool:
    """Whether the demo batch is already in the registry."""
    return bool(session.execute(text(
        "SELECT 1 FROM import_batch WHERE synthetic AND file_name = :f"), {"f": DEMO_FILE}).scalar())


def _past(day: date) -> date:
    """A demo date, never after today (the services refuse legal dates in the future)."""
    return min(day, datetime.now(UTC).date())


def _session_name(day: date) -> str:
    return f"Session ordinaire du conseil municipal du {day.day} {MONTHS[day.month - 1]} {day.year}"


def _party(session: Session, done: _Tenure, code: str, values: dict[str, Any]) -> str:
    party_id = parties.create(session, data=parties.PartyInput({**values, "commune_code": code},
                                                                 reason="démonstration (données synthétiques)"),
                              by=DEMO_PRINCIPAL, author=DEMO_AUTHOR, synthetic=True)
    done.parties += 1
    return party_id


def _person(session: Session, done: _Tenure, rng: random.Random, code: str, family: str | None = None) -> str:
    number = done.next_id
    done.next_id += 1
    return _party(session, done, code, {
        "kind": "natural_person", "name": family or rng.choice(FAMILY_NAMES), "given_names": rng.choice(GIVEN_NAMES),
        "id_number": f"SYN-{number:06d}", "contact": f"partie-{number:06d}@exemple.invalid"})


def _source(session: Session, done: _Tenure, code: str, kind: str, day: date, reference: str, **extra: Any) -> str:
    source_id = sources.create(session, data=sources.SourceInput(
        kind=kind, document_date=_past(day), commune_code=code, reference=reference, **extra),
        by=DEMO_PRINCIPAL, author=DEMO_AUTHOR, synthetic=True)
    done.sources += 1
    return source_id


def _parcel_pools(session: Session, batch_id: str, code: str) -> dict[str, list[Any]]:
    rows = session.execute(text("""
        SELECT parcel_id::text AS id, area_m2, tenure_regime, land_use FROM parcel
        WHERE batch_id = :batch AND commune_code = :code
        ORDER BY section, length(local_number), local_number"""), {"batch": batch_id, "code": code}).all()
    pools: dict[str, list[Any]] = {"domaine national": [], "bail": [], "titre foncier": []}
    for row in rows:
        pools.setdefault(row.tenure_regime, []).append(row)
    return pools


def _take(rng: random.Random, pools: dict[str, list[Any]], regime: str) -> Any:
    """A parcel of ``regime`` not used yet (any other parcel if the commune has none left)."""
    pool = pools.get(regime) or next(p for p in pools.values() if p)
    return pool.pop(rng.randrange(len(pool)))


def _register(session: Session, done: _Tenure, parcel: Any, applicants: list[tuple[str, str]], day: date,
              reference: str, purpose: str) -> str:
    procedure_id = procedures.register(session, data=procedures.ProcedureInput(
        parcel_id=parcel.id, applicants=[{"party_id": p, "share": s} for p, s in applicants],
        registered_on=_past(day), purpose=purpose, reference=reference),
        by=DEMO_PRINCIPAL, author=DEMO_AUTHOR, synthetic=True)
    done.procedures += 1
    return procedure_id


def _step(session: Session, procedure_id: str, step: str, day: date, source_ids: list[str] | None = None,
          **extra: Any) -> dict[str, Any]:
    return procedures.advance(session, procedure_id=procedure_id, step=procedures.StepInput(
        step=step, occurred_on=_past(day), source_ids=source_ids or [], **extra), expected_version=None,
        by=DEMO_PRINCIPAL, author=DEMO_AUTHOR)


def _right(session: Session, done: _Tenure, parcel: Any, kind: str, day: date, source_ids: list[str],
           holders: list[tuple[str, str]], **extra: Any) -> str:
    rrr_id = rights.create(session, parcel_id=parcel.id, data=rights.RightInput(
        type=kind, start_date=_past(day), source_ids=source_ids,
        holders=[{"party_id": p, "share": s} for p, s in holders], **extra),
        by=DEMO_PRINCIPAL, author=DEMO_AUTHOR, synthetic=True)
    done.rights += 1
    return rrr_id


def _tenure_for(session: Session, done: _Tenure, batch_id: str, code: str, index: int) -> None:
    """One commune's parties, sources, procedures and rights, in the order a commission would write them."""
    rng = random.Random(f"sifc-demo-tenure:{code}")
    pools = _parcel_pools(session, batch_id, code)
    if not any(pools.values()):
        return
    base = date(2025, 2, 3) + timedelta(days=9 * index)
    year = base.year
    family = rng.choice(FAMILY_NAMES)
    persons = [_person(session, done, rng, code, family if i < FAMILY_MEMBERS else None)
               for i in range(PERSONS_PER_COMMUNE)]
    famille = _party(session, done, code, {"kind": "group", "group_type": "famille", "name": f"Famille {family}",
                                           "members": persons[:FAMILY_MEMBERS]})
    gie = _party(session, done, code, {"kind": "group", "group_type": "gie", "name": GIE_NAMES[index % len(GIE_NAMES)],
                                       "id_number": f"SYN-NINEA-{done.next_id:06d}"})
    done.next_id += 1

    # Four requests granted by the council's first session, one shared by two holders.
    granted = [([(persons[3], "1")], "habitation"), ([(persons[4], "1/2"), (persons[5], "1/2")], "habitation"),
               ([(famille, "1")], "habitation"), ([(gie, "1")], "maraîchage")]
    council = base + timedelta(days=75)
    deliberation = _source(session, done, code, "deliberation", council, f"DEL-{year}-{10 + index:03d}",
                           council_session=_session_name(council),
                           description="Délibération portant affectation de parcelles (démonstration)")
    approvals: dict[str, str] = {}
    notified_on = base + timedelta(days=115)
    notification = _source(session, done, code, "notification", notified_on, f"NOT-{year}-{10 + index:03d}",
                           description="Notification des affectations aux attributaires (démonstration)")
    affected = []
    for number, (applicants, purpose) in enumerate(granted, start=1):
        parcel = _take(rng, pools, "domaine national")
        procedure_id = _register(session, done, parcel, applicants, base + timedelta(days=5 * number),
                                 f"DEM-{year}-{index + 1}{number:02d}", purpose)
        surveyed = base + timedelta(days=30 + 3 * number)
        pv = _source(session, done, code, "proces_verbal", surveyed, f"PV-{year}-{index + 1}{number:02d}",
                     description="Procès-verbal de constat de la commission domaniale (démonstration)")
        _step(session, procedure_id, "surveyed", surveyed, [pv], details={"neighbours_consulted": True})
        _step(session, procedure_id, "deliberated", council, [deliberation])
        authority = procedures.required_authority(parcel.area_m2, THRESHOLDS_HA)
        if authority not in approvals:
            approvals[authority] = _source(
                session, done, code, "approbation", base + timedelta(days=100),
                f"APP-{year}-{10 + index:03d}-{authority}", authority=authority,
                description=f"Approbation de la délibération DEL-{year}-{10 + index:03d} (démonstration)")
        _step(session, procedure_id, "approved", base + timedelta(days=100), [approvals[authority]])
        found = _step(session, procedure_id, "notified", notified_on, [notification])
        done.rights += 1
        affected.append((parcel, found["rrr_id"]))

    # A request refused at the survey: the plot encroaches on a street's right of way.
    parcel = _take(rng, pools, "domaine national")
    procedure_id = _register(session, done, parcel, [(persons[6], "1")], base + timedelta(days=26),
                             f"DEM-{year}-{index + 1}90", "commerce")
    surveyed = base + timedelta(days=44)
    pv = _source(session, done, code, "proces_verbal", surveyed, f"PV-{year}-{index + 1}90",
                 description="Procès-verbal de constat : empiètement sur l'emprise de la voie (démonstration)")
    _step(session, procedure_id, "refused", surveyed, [pv],
          reason="Empiètement sur l'emprise d'une voie : la parcelle ne peut être affectée en l'état.")

    # A request the council deliberated at its second session, awaiting approval.
    parcel = _take(rng, pools, "domaine national")
    registered = base + timedelta(days=200)
    procedure_id = _register(session, done, parcel, [(persons[7], "1")], registered, f"DEM-{year}-{index + 1}91",
                             "habitation")
    surveyed = registered + timedelta(days=25)
    pv = _source(session, done, code, "proces_verbal", surveyed, f"PV-{year}-{index + 1}91",
                 description="Procès-verbal de constat de la commission domaniale (démonstration)")
    _step(session, procedure_id, "surveyed", surveyed, [pv], details={"neighbours_consulted": True})
    second = registered + timedelta(days=60)
    deliberation = _source(session, done, code, "deliberation", second, f"DEL-{year}-{40 + index:03d}",
                           council_session=_session_name(second),
                           description="Délibération portant affectation de parcelles (démonstration)")
    _step(session, procedure_id, "deliberated", second, [deliberation])

    # A bail and a titre foncier, recorded from their acts.
    parcel = _take(rng, pools, "bail")
    start = date(2022, 3, 1) + timedelta(days=11 * index)
    lease = _source(session, done, code, "acte", start, f"BAIL-{start.year}-{index + 1:03d}",
                    description="Contrat de bail (démonstration)")
    _right(session, done, parcel, "bail", start, [lease], [(persons[1], "1")],
           description="Bail de 18 ans (démonstration)")
    parcel = _take(rng, pools, "titre foncier")
    start = date(2016, 6, 14) + timedelta(days=23 * index)
    number = 1234 + 1111 * index
    certificate = _source(session, done, code, "certificat", start, f"CIF-{number}",
                          description="Certificat d'inscription au livre foncier (démonstration)")
    _right(session, done, parcel, "titre_foncier", start, [certificate], [(persons[0], "1")],
           tf_number=f"TF {number}/{TF_SUFFIX.get(code, 'XX')}")

    # A litige on the first affectation: a neighbour contests its boundary (it freezes the parcel).
    parcel, _ = affected[0]
    contested = base + timedelta(days=300)
    minutes = _source(session, done, code, "proces_verbal", contested, f"PV-LIT-{year}-{index + 1:03d}",
                      description="Procès-verbal de non-conciliation : contestation de limite (démonstration)")
    _right(session, done, parcel, "litige", contested, [minutes], [],
           description="Contestation de limite par un voisin (démonstration)")


def load_tenure(session: Session, batch_id: str) -> _Tenure:
    """The demo's tenure records on the parcels of ``batch_id``, written through the tenure services."""
    act_as(session, DEMO_AUTHOR)
    done = _Tenure()
    for index, code in enumerate(PILOTS):
        _tenure_for(session, done, batch_id, code, index)
    return done


def write_parcels(session: Session, code: str, path: Path) -> int:
    """Write pilot commune ``code``'s demo parcels to a GeoPackage; the number written (0: commune not loaded).

    The same synthetic parcels as ``load_demo``, as a surveyor's file to import (``sifc node demo``).
    """
    records = _parcels_for(session, code, PILOTS[code])
    if records:
        path.unlink(missing_ok=True)
        gpd.GeoDataFrame(records, geometry="geometry", crs=STORAGE_SRID).to_file(path, layer="parcelles",
                                                                                 driver="GPKG")
    return len(records)


def load_demo(session: Session) -> DemoOutcome | None:
    """Generate and import the demo parcels and their tenure records; None when they are already there."""
    act_as(session, DEMO_AUTHOR)
    if already_loaded(session):
        return None
    load_rules(session)
    records = [p for code, centre in PILOTS.items() for p in _parcels_for(session, code, centre)]
    frame = gpd.GeoDataFrame(records, geometry="geometry", crs=STORAGE_SRID)
    with tempfile.TemporaryDirectory(prefix="sifc-demo-") as folder:
        path = Path(folder) / DEMO_FILE
        frame.to_file(path, layer="parcelles", driver="GPKG")
        report = import_parcels(session, path, ParcelImportOptions(author=DEMO_AUTHOR, synthetic=True))
    if report.batch_id:
        corners = [BornePoint(parcel=f"{r['COMMUNE']}/{r['SECTION']}/{r['NUMERO']}", order=i + 1, label=f"B{i + 1}",
                              x=x, y=y, precision_m=0.03, survey_method="gnss_rtk")
                   for r in records for i, (x, y) in enumerate(r["geometry"].exterior.coords[:-1])]  # type: ignore[attr-defined]
        bornes.store_imported(session, corners, srid=STORAGE_SRID, batch_id=uuid.UUID(report.batch_id),
                              author=DEMO_AUTHOR, file_name=DEMO_FILE)
    summary = ", ".join(f"{code} : {count}" for code, count in report.communes.items())
    tenure = load_tenure(session, report.batch_id) if report.batch_id else _Tenure()
    fee_sources = load_commission(session)
    localites = load_localites(session)
    return DemoOutcome(accepted=report.accepted, communes=summary, parties=tenure.parties,
                       sources=tenure.sources + fee_sources, rights=tenure.rights,
                       procedures=tenure.procedures, localites=localites)


def load_rules(session: Session) -> None:
    """The pilots' settings (``DEMO_RULES``), from 2000, citing the demo's synthetic source."""
    from sifc.rules import service as rules

    for code in sorted(PILOTS):
        for key, value in DEMO_RULES.items():
            if not _has_commune_row(session, code, key):
                rules.set(session, commune_code=code, key=key, value=value, valid_from=RULES_FROM,
                          source=rules.DEMO_SOURCE, by=None, author=DEMO_AUTHOR)


def load_commission(session: Session) -> int:
    """The pilots' commission settings (``DEMO_COMMISSION_RULES``) and fee schedules (``DEMO_FEES``).

    After the demo's own requests, which therefore owe nothing (a fee is assessed at registration only).
    Returns the number of sources written (one délibération on fees per commune).
    """
    from sifc.fees import schedules
    from sifc.rules import service as rules

    written = _Tenure()
    for index, code in enumerate(sorted(PILOTS)):
        for key, value in DEMO_COMMISSION_RULES.items():
            if not _has_commune_row(session, code, key):
                rules.set(session, commune_code=code, key=key, value=value, valid_from=RULES_FROM,
                          source=rules.DEMO_SOURCE, by=None, author=DEMO_AUTHOR)
        deliberation = _source(session, written, code, "deliberation", DEMO_FEES_FROM - timedelta(days=20),
                               f"DEL-{DEMO_FEES_FROM.year - 1}-{90 + index:03d}",
                               council_session=_session_name(DEMO_FEES_FROM - timedelta(days=20)),
                               description="Délibération fixant les redevances foncières (démonstration)")
        for kind, amount in DEMO_FEES.items():
            schedules.create(session, data=schedules.ScheduleInput(
                commune_code=code, procedure_kind=kind, valid_from=DEMO_FEES_FROM,
                rule={"kind": "fixed", "amount": amount}, deliberation_source_id=deliberation),
                by=None, author=DEMO_AUTHOR)
    return written.sources


def _has_commune_row(session: Session, code: str, key: str) -> bool:
    return bool(session.execute(text("SELECT 1 FROM commune_setting WHERE commune_code = :c AND key = :k LIMIT 1"),
                                {"c": code, "k": key}).scalar())


def load_localites(session: Session) -> int:
    """The pilot communes' OpenStreetMap localités (real data, ODbL: ``data/senegal/localites_pilotes.gpkg``).

    Idempotent on the OSM node; returns how many were added.
    """
    from sifc.localites import service as localites

    report = localites.load_osm(session, path=REPO_DATA_DIR / "senegal" / "localites_pilotes.gpkg",
                                communes=sorted(PILOTS), by=None, author=DEMO_AUTHOR)
    return int(report["created"])
