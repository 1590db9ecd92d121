"""Dashboards of a commune or a pole: the figures, as plain data.

Parcels by land use and by tenure regime, NICAD coverage, land-allocation procedures by their
current state, imports per month and overlapping parcels. Public aggregates only: no party, no
author, no holder is read. Every query binds its values and filters current parcels by
``commune_code = ANY(:communes)``, which the partial index ``ix_parcel_version_commune_current``
serves for one commune as for the communes of a pole. Drawing them is :mod:`sifc.dashboard_charts`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.errors import NotFound
from sifc.localites import indicators
from sifc.models import PROCEDURE_STEPS
from sifc.parcels.quality import NOISE_M2
from sifc.tracking import deadlines

LEVELS = ("commune", "pole")
MAX_CONFLICT_PAIRS = 10_000
"""Overlapping pairs counted at most; beyond, ``conflicts.truncated`` is true (the count is a floor)."""
MAX_CONFLICT_PARCELS = 200_000
"""Above this many current parcels, overlaps are not searched for the dashboard (``computed`` false)."""


def _unit(session: Session, level: str, code: str) -> tuple[str, list[dict[str, str]]]:
    """The unit's name and its communes (code, name); 404 for an unknown level or code."""
    if level not in LEVELS:
        raise NotFound("dashboard.unknown_level", level=level, levels=", ".join(LEVELS))
    if level == "commune":
        name = session.execute(text("SELECT name FROM commune WHERE code = :code"), {"code": code}).scalar()
        if name is None:
            raise NotFound("territory.not_found", level=level, code=code)
        return str(name), [{"code": code, "name": str(name)}]
    name = session.execute(text("SELECT name FROM pole WHERE code = :code"), {"code": code}).scalar()
    if name is None:
        raise NotFound("territory.not_found", level=level, code=code)
    rows = session.execute(text("""
        SELECT c.code, c.name FROM commune c JOIN region r ON r.code = c.region_code
        WHERE r.pole_code = :code ORDER BY c.code"""), {"code": code}).all()
    return str(name), [{"code": r[0], "name": r[1]} for r in rows]


def _parcel_figures(session: Session, communes: list[str]) -> dict[str, Any]:
    """Totals, by land use, tenure regime, NICAD status and commune: one scan (grouping sets)."""
    rows = session.execute(text("""
        SELECT CASE WHEN GROUPING(p.land_use) = 0 THEN 'land_use'
                    WHEN GROUPING(p.tenure_regime) = 0 THEN 'tenure_regime'
                    WHEN GROUPING(p.nicad_status) = 0 THEN 'nicad_status'
                    WHEN GROUPING(p.commune_code) = 0 THEN 'commune' ELSE 'total' END AS figure,
               coalesce(p.land_use, p.tenure_regime, p.nicad_status, p.commune_code) AS value,
               count(*) AS parcels, coalesce(sum(p.area_m2), 0) AS area_m2,
               count(*) FILTER (WHERE p.nicad IS NOT NULL) AS with_nicad
        FROM parcel p WHERE p.commune_code = ANY(CAST(:communes AS text[]))
        GROUP BY GROUPING SETS ((p.land_use), (p.tenure_regime), (p.nicad_status), (p.commune_code), ())
    """), {"communes": communes}).mappings().all()
    figures: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        figures.setdefault(row["figure"], []).append({
            "value": row["value"], "parcels": int(row["parcels"]), "area_m2": round(float(row["area_m2"]), 2),
            "with_nicad": int(row["with_nicad"])})
    for values in figures.values():
        values.sort(key=lambda v: (-v["parcels"], v["value"] or ""))
    [total] = figures.get("total", [{"parcels": 0, "area_m2": 0.0, "with_nicad": 0}])
    return {"total": total, **{k: v for k, v in figures.items() if k != "total"}}


def _breakdown(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"value": v["value"], "parcels": v["parcels"], "area_m2": v["area_m2"]} for v in values]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _procedures(session: Session, communes: list[str]) -> dict[str, Any]:
    """Each procedure's current state (its last step) counted per state, and per commune."""
    rows = session.execute(text("""
        SELECT t.commune_code, s.step, count(*) AS n
        FROM tenure_procedure t
        CROSS JOIN LATERAL (SELECT step FROM procedure_step WHERE procedure_id = t.id ORDER BY seq DESC LIMIT 1) s
        WHERE t.commune_code = ANY(CAST(:communes AS text[]))
        GROUP BY 1, 2"""), {"communes": communes}).all()
    by_state = dict.fromkeys(PROCEDURE_STEPS, 0)
    per_commune: dict[str, int] = {}
    for commune, step, n in rows:
        by_state[step] = by_state.get(step, 0) + int(n)
        per_commune[commune] = per_commune.get(commune, 0) + int(n)
    return {"total": sum(by_state.values()),
            "by_state": [{"state": state, "procedures": n} for state, n in by_state.items()],
            "in_progress": sum(n for state, n in by_state.items() if state not in ("notified", "refused")),
            "_per_commune": per_commune}


def _median_days(session: Session, communes: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The median days from one step to the next, per step reached, for the unit and per commune.

    Each step of a procedure after its first is measured from the step before it (``occurred_on``);
    ``percentile_cont(0.5)`` over every such interval of the unit's procedures (ADR 0005 §8).
    """
    rows = session.execute(text("""
        WITH intervals AS (
            SELECT t.commune_code, s.step,
                   s.occurred_on - lag(s.occurred_on) OVER (PARTITION BY s.procedure_id ORDER BY s.seq) AS days
            FROM tenure_procedure t JOIN procedure_step s ON s.procedure_id = t.id
            WHERE t.commune_code = ANY(CAST(:communes AS text[]))
        )
        SELECT CASE WHEN GROUPING(commune_code) = 0 THEN commune_code END AS commune_code, step,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY days) AS median, count(*) AS n
        FROM intervals WHERE days IS NOT NULL
        GROUP BY GROUPING SETS ((step), (commune_code, step))"""), {"communes": communes}).mappings().all()
    order = {step: i for i, step in enumerate(PROCEDURE_STEPS)}
    found: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (order.get(r["step"], len(order)), r["step"])):
        found.setdefault(row["commune_code"] or "", []).append(
            {"step": row["step"], "median_days": round(float(row["median"]), 1), "transitions": int(row["n"])})
    return found


def _imports(session: Session, communes: list[str]) -> list[dict[str, Any]]:
    """Import batches per month (UTC, which is Dakar's time) that wrote parcel versions in the communes.

    A batch is not tied to a commune: ``parcel_versions`` counts the versions it wrote in these communes,
    as its report counts them per commune (new and changed parcels: what the batch wrote, read from the
    batch row rather than from its versions, which at national scale are millions); ``accepted`` is the
    batch's whole count of accepted features, all communes of the file together.
    """
    rows = session.execute(text("""
        SELECT to_char(date_trunc('month', b.created_at AT TIME ZONE 'UTC'), 'YYYY-MM') AS month,
               count(*) AS batches, sum(n.versions) AS versions,
               sum(coalesce((b.counts ->> 'accepted')::bigint, 0)) AS accepted
        FROM import_batch b
        CROSS JOIN LATERAL (SELECT coalesce(sum((b.report -> 'communes' ->> c)::bigint), 0) AS versions
                            FROM unnest(CAST(:communes AS text[])) c) n
        WHERE n.versions > 0
        GROUP BY 1 ORDER BY 1"""), {"communes": communes}).mappings().all()
    return [{"month": r["month"], "batches": int(r["batches"]), "parcel_versions": int(r["versions"]),
             "accepted": int(r["accepted"])} for r in rows]


def _conflicts(session: Session, communes: list[str], parcels: int, tolerance_m2: float) -> dict[str, Any]:
    """Pairs of overlapping current parcels, as ``GET /communes/{code}/overlaps`` finds them.

    The same predicate as :func:`sifc.parcels.quality.overlaps` (``overlap_area`` beyond the
    tolerance, the pair's first parcel in the unit, each pair once), counted rather than drawn,
    at most :data:`MAX_CONFLICT_PAIRS` pairs, and not at all above :data:`MAX_CONFLICT_PARCELS` parcels.
    """
    base = {"tolerance_m2": tolerance_m2, "computed": parcels <= MAX_CONFLICT_PARCELS, "pairs": 0,
            "area_m2": 0.0, "truncated": False, "_per_commune": {}}
    if not base["computed"] or parcels == 0:
        return base
    # The unit's parcels are read first, through the communes' index: under the LIMIT, the planner
    # would scan the whole registry for them.
    rows = session.execute(text("""
        WITH unit AS MATERIALIZED (
            SELECT parcel_id, commune_code, geom FROM parcel WHERE commune_code = ANY(CAST(:communes AS text[]))
        ), pairs AS (
            SELECT a.commune_code, overlap_area(a.geom, b.geom) AS area
            FROM unit a JOIN parcel b ON b.geom && a.geom AND b.parcel_id > a.parcel_id
            WHERE overlap_area(a.geom, b.geom) > :tolerance
            LIMIT :cap
        )
        SELECT commune_code, count(*) AS n, sum(area) AS area FROM pairs GROUP BY 1
    """), {"communes": communes, "tolerance": tolerance_m2, "cap": MAX_CONFLICT_PAIRS + 1}).all()
    pairs = sum(int(r[1]) for r in rows)
    base.update(pairs=min(pairs, MAX_CONFLICT_PAIRS), area_m2=round(float(sum(float(r[2]) for r in rows)), 2),
                truncated=pairs > MAX_CONFLICT_PAIRS, _per_commune={r[0]: int(r[1]) for r in rows})
    return base


def get(session: Session, *, level: str, code: str, tolerance_m2: float = NOISE_M2) -> dict[str, Any]:
    """The dashboard of commune or pole ``code``: every figure, with per-commune rows for a pole.

    Raises :class:`~sifc.errors.NotFound` for a level other than ``commune`` or ``pole`` and for
    an unknown code.
    """
    name, members = _unit(session, level, code)
    codes = [m["code"] for m in members]
    parcels = _parcel_figures(session, codes)
    total = parcels["total"]
    procedures = _procedures(session, codes)
    # Deadlines (ADR 0005 §8): overdue files from the communes' target_days, and the median days per step.
    overdue = deadlines.overdue_counts(session, communes=codes)
    medians = _median_days(session, codes)
    procedures.update(overdue=sum(overdue.values()), median_days=medians.get("", []))
    conflicts = _conflicts(session, codes, total["parcels"], tolerance_m2)
    gender = indicators.summary(session, codes)  # share of women among holders, small counts withheld (ADR 0005 §3)
    dashboard: dict[str, Any] = {
        "level": level, "code": code, "name": name,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "parcels": {"count": total["parcels"], "area_m2": total["area_m2"]},
        "by_land_use": _breakdown(parcels.get("land_use", [])),
        "by_tenure_regime": _breakdown(parcels.get("tenure_regime", [])),
        "nicad": {"parcels": total["parcels"], "with_nicad": total["with_nicad"],
                  "coverage": _share(total["with_nicad"], total["parcels"]),
                  "by_status": [{"value": v["value"], "parcels": v["parcels"]}
                                for v in parcels.get("nicad_status", [])]},
        "procedures": {k: v for k, v in procedures.items() if not k.startswith("_")},
        "imports": _imports(session, codes),
        "conflicts": {k: v for k, v in conflicts.items() if not k.startswith("_")},
        "gender": gender,
    }
    if level == "pole":
        names = {m["code"]: m["name"] for m in members}
        dashboard["communes"] = [{
            "code": row["value"], "name": names[row["value"]], "parcels": row["parcels"], "area_m2": row["area_m2"],
            "with_nicad": row["with_nicad"], "nicad_coverage": _share(row["with_nicad"], row["parcels"]),
            "procedures": procedures["_per_commune"].get(row["value"], 0),
            "overdue": overdue.get(row["value"], 0), "median_days": medians.get(row["value"], []),
            "conflicts": conflicts["_per_commune"].get(row["value"], 0) if conflicts["computed"] else None,
            "women_share": next((g["women_share"] for g in gender["communes"] if g["commune_code"] == row["value"]),
                                None),
        } for row in sorted(parcels.get("commune", []), key=lambda r: r["value"])]
    return dashboard
