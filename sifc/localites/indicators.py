"""Gender indicators of tenure: holders of current affectations by sex, per commune, small counts withheld.

A person's sex (``party_version.sex``) is personal data (loi 2008-12): under ``personal = 'pole'``
it never leaves the pole, so each pole counts, per commune, the holders of the affectations in
force into ``tenure_indicator`` (migration 0023), a table of aggregates that the national node
receives. A count below the commune's ``gender_min_count`` (a dated, sourced setting: ADR 0005 §1;
no default is known, open question 6) could point at a person: when the women or the men are fewer,
the three figures by sex are withheld (``withheld = 'small_counts'``); without the setting nothing is
published (``withheld = 'setting_missing'``), and the row says so. The dashboards read these rows
only, never the parties.

A holder is counted once per commune however many parcels they hold; groups and legal entities
are counted apart (``entities``), persons whose sex is not recorded in ``unrecorded``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import journal
from sifc.auth.principal import Action, Principal, require
from sifc.federation import directory
from sifc.rules import service as rules

INDICATOR = "holders_by_sex"
SETTING = "gender_min_count"

COUNTS = """
SELECT v.commune_code,
       count(DISTINCT h.party_id) AS holders,
       count(DISTINCT h.party_id) FILTER (WHERE p.kind = 'natural_person' AND p.sex = 'F') AS women,
       count(DISTINCT h.party_id) FILTER (WHERE p.kind = 'natural_person' AND p.sex = 'M') AS men,
       count(DISTINCT h.party_id) FILTER (WHERE p.kind = 'natural_person' AND p.sex IS NULL) AS unrecorded,
       count(DISTINCT h.party_id) FILTER (WHERE p.kind <> 'natural_person') AS entities
FROM rrr_version v
JOIN rrr_holder h ON h.rrr_id = v.rrr_id AND h.version = v.version
JOIN party_version p ON p.party_id = h.party_id AND p.valid_to IS NULL
WHERE v.valid_to IS NULL AND v.type = 'affectation' AND v.end_date IS NULL
  AND v.commune_code = ANY(CAST(:communes AS text[]))
GROUP BY v.commune_code"""


def _communes(session: Session, communes: Iterable[str] | None) -> list[str]:
    """The communes to refresh: those named, else this node's communes that hold an affectation or a row."""
    if communes is not None:
        codes = sorted(set(communes))
        known = set(session.execute(text("SELECT code FROM commune WHERE code = ANY(:c)"), {"c": codes}).scalars())
        missing = [c for c in codes if c not in known]
        if missing:
            from sifc.errors import NotFound

            raise NotFound("territory.not_found", level="commune", code=missing[0][:100])
        return codes
    found = session.execute(text("""
        SELECT DISTINCT commune_code FROM rrr_version WHERE valid_to IS NULL AND type = 'affectation'
        UNION SELECT commune_code FROM tenure_indicator ORDER BY 1""")).scalars()
    return [code for code in found if not directory.unowned(session, [code])]


def figures(*, holders: int, women: int, men: int, unrecorded: int, min_count: int | None) -> dict[str, Any]:
    """What may be published of one commune's counts: the figures, or None and why they are withheld."""
    withheld = None
    if min_count is None:
        withheld = "setting_missing"
    elif holders == 0:
        withheld = "no_holders"
    elif women < min_count or men < min_count:
        withheld = "small_counts"
    if withheld is not None:
        return {"women": None, "men": None, "unrecorded": None, "withheld": withheld}
    return {"women": women, "men": men, "unrecorded": unrecorded, "withheld": None}


def refresh(session: Session, *, communes: Iterable[str] | None = None, by: Principal | None, author: str,
            on: date | None = None) -> list[dict[str, Any]]:
    """Count again the holders by sex of ``communes`` (default: this node's communes with affectations).

    Each commune's row is replaced (one per commune and indicator) and journaled. ``by`` needs to
    write tenure in every commune; this node must own them. Returns the rows as written.
    """
    codes = _communes(session, communes)
    if by is not None:
        require(by, Action.WRITE_TENURE, communes=codes)
    directory.ensure_owned(session, codes)
    day = on or datetime.now(UTC).date()
    counted = {row["commune_code"]: dict(row) for row in session.execute(text(COUNTS), {"communes": codes}).mappings()}
    written = []
    for code in codes:
        counts = counted.get(code, {"holders": 0, "women": 0, "men": 0, "unrecorded": 0, "entities": 0})
        min_count = rules.maybe_in_force(session, commune_code=code, key=SETTING, on=day)
        row = {"commune_code": code, "indicator": INDICATOR, "min_count": min_count,
               "holders": int(counts["holders"]), "entities": int(counts["entities"]),
               **figures(holders=int(counts["holders"]), women=int(counts["women"]), men=int(counts["men"]),
                         unrecorded=int(counts["unrecorded"]), min_count=min_count)}
        session.execute(text("""
            INSERT INTO tenure_indicator (commune_code, indicator, computed_at, min_count, holders, women, men,
                                          unrecorded, entities, withheld)
            VALUES (:commune_code, :indicator, now(), :min_count, :holders, :women, :men, :unrecorded, :entities,
                    :withheld)
            ON CONFLICT (commune_code, indicator) DO UPDATE SET
                computed_at = now(), min_count = EXCLUDED.min_count, holders = EXCLUDED.holders,
                women = EXCLUDED.women, men = EXCLUDED.men, unrecorded = EXCLUDED.unrecorded,
                entities = EXCLUDED.entities, withheld = EXCLUDED.withheld"""), row)
        journal.record(session, by, author=author, operation="indicator.refresh", object_kind="tenure_indicator",
                       object_id=f"{code}/{INDICATOR}", commune_code=code, after=row)
        written.append(row)
    return written


def _share(women: int, men: int) -> float | None:
    return round(women / (women + men), 4) if women + men else None


def summary(session: Session, communes: list[str]) -> dict[str, Any]:
    """The dashboard's figures: the share of women among holders per commune and for all ``communes`` together.

    Read from ``tenure_indicator`` only (what the pole computed; at the national node, what it
    received). The whole's figure adds the published communes only, each at or above its threshold,
    and says how many communes it covers.
    """
    rows = session.execute(text("""
        SELECT commune_code, computed_at, min_count, holders, women, men, unrecorded, entities, withheld
        FROM tenure_indicator WHERE indicator = :i AND commune_code = ANY(CAST(:c AS text[]))
        ORDER BY commune_code"""), {"i": INDICATOR, "c": communes}).mappings().all()
    per_commune = [{"commune_code": r["commune_code"], "computed_at": r["computed_at"].isoformat(),
                    "holders": r["holders"], "women": r["women"], "men": r["men"], "unrecorded": r["unrecorded"],
                    "entities": r["entities"], "min_count": r["min_count"], "withheld": r["withheld"],
                    "women_share": None if r["withheld"] else _share(r["women"], r["men"])} for r in rows]
    published = [r for r in per_commune if not r["withheld"]]
    women = sum(r["women"] for r in published)
    men = sum(r["men"] for r in published)
    return {"indicator": INDICATOR, "communes": per_commune,
            "total": {"women": women if published else None, "men": men if published else None,
                      "women_share": _share(women, men) if published else None,
                      "communes_published": len(published), "communes_computed": len(per_commune),
                      "communes": len(communes)}}
