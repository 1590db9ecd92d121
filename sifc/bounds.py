"""Plausible bounds of every number and date a client can send: one table, read by every check.

A value that passes the schema is stored for ever (history is immutable) and read back by every
listing, export and journal: a declared area of ``1e308`` or a servitude from year 1 breaks those
reads, or at best lies in them. So each number and date a client sends has a bound here, with
where it comes from. The API's request schemas (``api/bounded.py``), the domain services (which
the CLI, the imports and the demo call) and the database's CHECK constraints (migration 0010)
enforce the same bounds; ``docs/bounds.md`` lists them.

The values that law, history or geography decide are read from ``data/bounds.yaml``; a
deployment may narrow them there, never widen them past what the database enforces
(:data:`ENVELOPE`), since the database would then refuse what the service accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from sifc.errors import InvalidInput
from sifc.i18n import translate

BOUNDS_FILE = Path(__file__).resolve().parent.parent / "data" / "bounds.yaml"

# What the database's CHECK constraints enforce (migration 0010): the widest configurable values.
ENVELOPE: dict[str, Any] = {
    "earliest_document": date(1850, 1, 1),
    "earliest_affectation": date(1972, 10, 27),
    "max_declared_area_km2": 197_000.0,
    "max_future_years": 100,
}
# The loosest precision of a borne, in metres (migration 0013: ck_borne_version_precision_bounds).
MAX_BORNE_PRECISION_M = 50.0
# JSON numbers every client reads exactly (IEEE 754 doubles: JavaScript's Number.MAX_SAFE_INTEGER).
MAX_SAFE_INTEGER = 2**53 - 1
# Relative upper bounds of dates, in days after today (UTC).
TOMORROW = 1


@dataclass(frozen=True)
class Bound:
    """One field's bounds, where clients send it and why."""

    name: str
    kind: Literal["date", "number"]
    low: Any
    high: Any = None
    low_open: bool = False
    high_open: bool = False
    until_days: int | None = None  # a date: at most this many days after today (UTC)
    unit: str = ""
    sent_by: str = ""
    why: str = ""
    column: str | None = None  # the column whose CHECK enforces it (migration 0010)

    def highest(self, today: date | None = None) -> Any:
        """The upper bound in force (a relative one computed for ``today``)."""
        if self.until_days is None:
            return self.high
        return (today or utc_today()) + timedelta(days=self.until_days)

    def admits(self, value: Any, today: date | None = None) -> bool:
        """Whether ``value`` lies within the bounds."""
        if self.kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                return False
        high = self.highest(today)
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return high is None or not (value > high or (self.high_open and value == high))

    def describe(self, lang: Literal["fr", "en"] = "fr") -> str:
        """The interval a user reads (``]0, 197000000000] m²``, ``[1850-01-01, demain (UTC)]``)."""
        low = "" if self.low is None else _number(self.low)
        if self.until_days == TOMORROW:
            high = translate("bounds.tomorrow", lang)
        elif self.until_days is not None:
            high = translate("bounds.today_plus", lang, days=self.until_days)
        else:
            high = "" if self.high is None else _number(self.high)
        text = f"{']' if self.low_open else '['}{low}, {high}{'[' if self.high_open else ']'}"
        return f"{text} {self.unit}".strip()


def _number(value: Any) -> str:
    return f"{value:.0f}" if isinstance(value, float) and value.is_integer() else str(value)


def utc_today() -> date:
    """Today in UTC, Dakar's time (the service's dates of record)."""
    return datetime.now(UTC).date()


def _configured(path: Path) -> dict[str, Any]:
    """The configurable values of ``path``, each checked against the database's envelope."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = sorted(set(raw) - set(ENVELOPE))
    if unknown:
        raise ValueError(f"{path}: unknown bounds {', '.join(unknown)}")
    values = {**ENVELOPE, **raw}
    for name in ("earliest_document", "earliest_affectation"):
        if not isinstance(values[name], date) or values[name] < ENVELOPE[name]:
            raise ValueError(f"{path}: {name} must be a date on or after {ENVELOPE[name]} (migration 0010)")
    for name in ("max_declared_area_km2", "max_future_years"):
        if not isinstance(values[name], int | float) or not 0 < values[name] <= ENVELOPE[name]:
            raise ValueError(f"{path}: {name} must be positive and at most {ENVELOPE[name]} (migration 0010)")
    return values


def _table(values: dict[str, Any]) -> dict[str, Bound]:
    first = values["earliest_document"]
    affectation = values["earliest_affectation"]
    ahead = int(values["max_future_years"] * 365.25)
    document = "le plus ancien acte qu'une commune puisse tenir (data/bounds.yaml : earliest_document)"
    affects = ("loi 64-46 (domaine national) et décret 72-1288 du 27 octobre 1972 (affectation par le conseil) "
               "(data/bounds.yaml : earliest_affectation)")
    past = "une date passée en droit : au plus demain (UTC), pour un acte daté à Dakar avant minuit"
    bounds = [
        Bound("parcel.declared_area_m2", "number", 0.0, values["max_declared_area_km2"] * 1e6, low_open=True,
              unit="m²", column="parcel_version.declared_area_m2",
              sent_by="POST /parcels, PATCH /parcels/{id}, mutations (children, merge), imports (mapped area)",
              why="positive ; au plus la superficie du Sénégal, environ 196 712 km² "
                  "(data/bounds.yaml : max_declared_area_km2)"),
        Bound("source.document_date", "date", first, until_days=TOMORROW, column="source_document.document_date",
              sent_by="POST /sources", why=f"{document} ; {past}"),
        Bound("rrr.start_date", "date", first, until_days=TOMORROW, column="rrr_version.start_date",
              sent_by="POST /parcels/{id}/rights (titres fonciers, baux, servitudes, litiges…)",
              why=f"{document} ; {past}"),
        Bound("rrr.affectation_start_date", "date", affectation, until_days=TOMORROW,
              column="rrr_version.start_date", sent_by="POST /procedures/{id}/steps (the approval's date)",
              why=affects),
        Bound("rrr.end_date", "date", first, until_days=ahead, column="rrr_version.end_date",
              sent_by="POST /rights/{id}/end (and never before the start date)",
              why=f"{document} ; au plus {values['max_future_years']} ans après aujourd'hui "
                  "(un bail emphytéotique dure au plus 99 ans ; data/bounds.yaml : max_future_years)"),
        Bound("rrr.notice_date", "date", first, until_days=TOMORROW, column="rrr_version.notice_date",
              sent_by="POST /rights/{id}/end (désaffectation)", why=f"{document} ; {past}"),
        Bound("procedure.registered_on", "date", affectation, until_days=TOMORROW, column=None,
              sent_by="POST /procedures", why=f"{affects} ; {past}"),
        Bound("procedure.occurred_on", "date", affectation, until_days=TOMORROW,
              column="procedure_step.occurred_on", sent_by="POST /procedures/{id}/steps",
              why=f"{affects} ; {past}"),
        Bound("mutation.occurred_on", "date", first, until_days=TOMORROW, column="parcel_mutation.occurred_on",
              sent_by="POST /parcels/{id}/split, /lotissement, /parcels/merge, /boundary ; sifc parcels …",
              why=f"{document} ; {past}"),
        Bound("share", "number", 0.0, 1.0, low_open=True, column="rrr_holder.share_numerator",
              sent_by="holders of POST /parcels/{id}/rights, PATCH /rights/{id}; applicants of POST /procedures",
              why="une quote-part : fraction de ]0, 1], dénominateur au plus 1 000 000, somme des parts égale à 1"),
        Bound("borne.precision_m", "number", 0.0, MAX_BORNE_PRECISION_M, low_open=True, unit="m",
              column="borne_version.precision_m",
              sent_by="POST /bornes, PATCH /bornes/{id}, bornes CSV import (precision)",
              why="la précision d'un levé en mètres : quelques centimètres au GNSS RTK, quelques mètres numérisée "
                  "sur un plan ; au-delà de 50 m, un point n'est plus une borne"),
        Bound("borne.surveyed_on", "date", first, until_days=TOMORROW, column="borne_version.surveyed_on",
              sent_by="POST /bornes, PATCH /bornes/{id}, bornes CSV import (date)",
              why=f"{document} ; {past}"),
        Bound("mutation.carry_index", "number", 1, 500, sent_by="`rights` of the split and the lotissement",
              why="le numéro d'une parcelle issue (au plus 500 parcelles issues d'un morcellement)"),
        Bound("import.tolerance", "number", 0.0, 1e9, high_open=True,
              sent_by="POST /imports (overlap_tolerance_m2, overlap_tolerance_ratio, area_tolerance_ratio)",
              why="une tolérance : positive ou nulle, finie"),
        Bound("json.number", "number", -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER,
              sent_by="free JSON of a client: `details` of POST /procedures/{id}/steps",
              why="un nombre JSON que tout client relit exactement (entier sûr d'IEEE 754, 2^53 − 1) ; fini"),
    ]
    return {bound.name: bound for bound in bounds}


@lru_cache(maxsize=1)
def table() -> dict[str, Bound]:
    """Every bound, by name (``data/bounds.yaml`` read once)."""
    return _table(_configured(BOUNDS_FILE))


def bound(name: str) -> Bound:
    """The bound called ``name``."""
    return table()[name]


def check(name: str, value: Any, *, field: str | None = None, today: date | None = None) -> Any:
    """``value`` if it lies within bound ``name`` (``None`` passes); a 422 naming the field otherwise."""
    if value is None:
        return None
    found = bound(name)
    if not found.admits(value, today):
        shown = value.isoformat() if isinstance(value, date) else repr(value)[:40]
        raise InvalidInput("bounds.out_of_range", field=field or name.rpartition(".")[2], value=shown,
                           bounds=found.describe(), bounds_en=found.describe("en"), why=found.why)
    return value


def check_json(value: Any, *, field: str, depth: int = 0) -> Any:
    """Free JSON a client sends: every number finite and exactly readable, at most 10 levels deep."""
    if depth > 10:
        raise InvalidInput("bounds.json_too_deep", field=field)
    if isinstance(value, dict):
        for item in value.values():
            check_json(item, field=field, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, field=field, depth=depth + 1)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        check("json.number", value, field=field)
    return value
