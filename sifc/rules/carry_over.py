"""``sifc settings carry-over``: what SIFC 0.5 used, written as commune rows for the officer to replace.

Before the commune settings (ADR 0005 §1), two environment settings (``SIFC_APPROVAL_THRESHOLDS_HA``,
``SIFC_DESAFFECTATION_NOTICE_DAYS``) and a constant (``REQUIRED_SOURCE``: the procès-verbal, the
délibération and the approbation of an affectation's steps) decided for every commune. After an upgrade
they still decide (the two settings as an ``unsourced`` fallback) or refuse (the documents: no text fixes
them nationally). Carrying them over writes each as the commune's own row, citing
« reprise de SIFC_… (source à citer) », so that nothing changes for the commune until an officer records
the délibération that really sets it. Idempotent: a key the commune already sets is left alone, and a
value equal to a cited national default is not copied over it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth.principal import Principal
from sifc.rules import service as rules
from sifc.settings import Settings

# What SIFC 0.5 asked at each step of an affectation (the constant REQUIRED_SOURCE, removed).
LEGACY_REQUIRED_SOURCES = {"surveyed": ["proces_verbal"], "deliberated": ["deliberation"],
                           "approved": ["approbation"]}
# Before décret 72-1288 no affectation procedure exists (docs/bounds.md): the carried values cover every record.
FROM = date(1972, 10, 27)


def legacy_values(settings: Settings) -> dict[str, tuple[Any, str]]:
    """Each key's value as SIFC 0.5 used it, and the source a carried row cites."""
    return {
        "approval_thresholds_ha": (list(settings.approval_thresholds_ha),
                                   "reprise de SIFC_APPROVAL_THRESHOLDS_HA (source à citer)"),
        "desaffectation_notice_days": (settings.desaffectation_notice_days,
                                       "reprise de SIFC_DESAFFECTATION_NOTICE_DAYS (source à citer)"),
        "required_sources": ({"affectation": LEGACY_REQUIRED_SOURCES,
                              "reaffectation_heritiers": LEGACY_REQUIRED_SOURCES},
                             "reprise de SIFC_REQUIRED_SOURCE, constante de SIFC 0.5 (source à citer)"),
    }


def communes_in_use(session: Session) -> list[str]:
    """The communes this node owns that hold parcels (the ones whose records the old values decided)."""
    return list(session.execute(text("""
        SELECT DISTINCT commune_code FROM parcel_version WHERE sifc_owns(commune_code) ORDER BY 1""")).scalars())


def _has_row(session: Session, commune_code: str, key: str) -> bool:
    return bool(session.execute(text("SELECT 1 FROM commune_setting WHERE commune_code = :c AND key = :k LIMIT 1"),
                                {"c": commune_code, "k": key}).scalar())


def _default_equal(session: Session, key: str, value: Any) -> bool:
    found = session.execute(text("SELECT value FROM setting_default WHERE key = :k AND valid_to IS NULL "
                                 "ORDER BY valid_from DESC LIMIT 1"), {"k": key}).scalar()
    return found is not None and found == value


def carry_over(session: Session, *, settings: Settings, communes: list[str], valid_from: date = FROM,
               by: Principal | None, author: str) -> list[dict[str, Any]]:
    """Write the legacy values as each commune's rows where it sets none; return the rows written."""
    written = []
    for commune in communes:
        for key, (value, source) in legacy_values(settings).items():
            if _has_row(session, commune, key) or _default_equal(session, key, value):
                continue
            written.append(rules.set(session, commune_code=commune, key=key, value=value, valid_from=valid_from,
                                     source=source, by=by, author=author))
    return written
