"""Due dates and overdue files, computed from the commune's settings in force, never stored (ADR 0005 §8).

A procedure's current step is due ``target_days[kind][next step]`` days after its last step
(``occurred_on``): after ``registered``, the survey is due; after a deferral, the next deliberation. The
setting read is the one in force on the day the clock started (the last step's date), so a later
change of the commune's targets does not move a deadline already running. A claim is due
``claim_days`` after it was received; a dispute's state ``target_days["dispute"][state]`` days after the
state began. Where the commune sets no target, there is no deadline, and the answer says so
(``deadline: "none"``): SIFC never guesses a duration of law or practice.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.tenure import procedures

TARGET_KEY = "target_days"
CLAIM_KEY = "claim_days"


@dataclass(frozen=True)
class Deadline:
    """Where a file stands against its target: the step awaited, since when, until when."""

    next_step: str | None
    since: date | None
    target_days: int | None
    due_on: date | None
    today: date

    @property
    def state(self) -> str:
        """``closed`` (nothing awaited), ``none`` (no target set: no deadline), else ``set``."""
        if self.next_step is None:
            return "closed"
        return "none" if self.due_on is None else "set"

    @property
    def overdue(self) -> bool:
        """Whether the awaited step is past its due date (a file without a deadline is never overdue)."""
        return self.due_on is not None and self.today > self.due_on

    @property
    def days_late(self) -> int:
        """Days past the due date (0 when not overdue)."""
        return (self.today - self.due_on).days if self.due_on is not None and self.overdue else 0

    def as_json(self) -> dict[str, Any]:
        """The deadline as the answers carry it (dates only: nothing personal)."""
        return {"deadline": self.state, "next_step": self.next_step, "target_days": self.target_days,
                "due_on": self.due_on.isoformat() if self.due_on else None, "overdue": self.overdue,
                "days_late": self.days_late}


class Targets:
    """The commune settings read while computing deadlines, each (commune, key, day) read once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._seen: dict[tuple[str, str, date], Any] = {}

    def value(self, *, commune_code: str, key: str, on: date) -> Any:
        """The setting ``key`` in force ``on`` that day in the commune; None where none is set."""
        found = self._seen.get((commune_code, key, on), ...)
        if found is ...:
            from sifc.rules import service as rules

            found = rules.maybe_in_force(self.session, commune_code=commune_code, key=key, on=on)
            self._seen[(commune_code, key, on)] = found
        return found

    def days(self, *, commune_code: str, on: date, kind: str, step: str) -> int | None:
        """``target_days[kind][step]`` in force ``on``; None where the commune sets none."""
        table = self.value(commune_code=commune_code, key=TARGET_KEY, on=on)
        found = table.get(kind, {}).get(step) if isinstance(table, dict) and isinstance(table.get(kind), dict) else None
        return int(found) if isinstance(found, int | float) and not isinstance(found, bool) else None


def next_step(kind: str, steps: list[str]) -> str | None:
    """The step a procedure of ``kind`` awaits after ``steps`` (in order); None once closed.

    After a deferral (ajournement) the council deliberates again: the awaited step is ``deliberated``.
    """
    order = procedures.KIND_STEPS.get(kind, procedures.ORDER)
    if not steps or steps[-1] in ("notified", "refused"):
        return None
    if steps[-1] == "deferred":
        return "deliberated"
    done = [s for s in steps if s in order]
    position = order.index(done[-1]) if done else 0
    return order[position + 1] if position + 1 < len(order) else None


def for_steps(targets: Targets, *, commune_code: str, kind: str, steps: list[tuple[str, date]],
              today: date) -> Deadline:
    """The deadline of a procedure of ``kind`` whose steps are ``steps`` (name, date), oldest first."""
    awaited = next_step(kind, [name for name, _ in steps])
    if awaited is None:
        return Deadline(None, None, None, None, today)
    since = steps[-1][1]
    days = targets.days(commune_code=commune_code, on=since, kind=kind, step=awaited)
    return Deadline(awaited, since, days, since + timedelta(days=days) if days is not None else None, today)


def of_procedure(session: Session, *, procedure: dict[str, Any], today: date | None = None) -> Deadline:
    """The deadline of a procedure as :mod:`sifc.tenure.procedures` answers it (``kind``, ``steps``)."""
    steps = [(s["step"], date.fromisoformat(s["occurred_on"])) for s in procedure["steps"]]
    return for_steps(Targets(session), commune_code=procedure["commune_code"], kind=procedure["kind"], steps=steps,
                     today=today or date.today())


def _open_procedures(session: Session, communes: Collection[str]) -> Iterable[Any]:
    """Every open procedure of the communes with its steps (name, date), oldest step first."""
    return session.execute(text("""
        SELECT t.id, t.kind, t.commune_code,
               array_agg(s.step ORDER BY s.seq) AS steps, array_agg(s.occurred_on ORDER BY s.seq) AS dates
        FROM tenure_procedure t JOIN procedure_step s ON s.procedure_id = t.id
        WHERE t.commune_code = ANY(CAST(:communes AS text[]))
          AND NOT EXISTS (SELECT 1 FROM procedure_step e WHERE e.procedure_id = t.id
                          AND e.step IN ('notified', 'refused'))
        GROUP BY t.id, t.kind, t.commune_code
        ORDER BY t.commune_code, t.id"""), {"communes": list(communes)}).mappings()


def overdue_procedures(session: Session, *, communes: Collection[str], today: date | None = None
                       ) -> list[dict[str, Any]]:
    """The open procedures of ``communes`` past their due date, most late first: ids, kind, step, dates.

    Nothing personal: no applicant, author, reason or parcel geometry.
    """
    today = today or date.today()
    targets = Targets(session)
    found = []
    for row in _open_procedures(session, communes):
        deadline = for_steps(targets, commune_code=row["commune_code"], kind=row["kind"],
                             steps=list(zip(row["steps"], row["dates"], strict=True)), today=today)
        if deadline.overdue:
            found.append({"file": "procedure", "id": str(row["id"]), "commune_code": row["commune_code"],
                          "kind": row["kind"], "step": row["steps"][-1], "since": deadline.since.isoformat()
                          if deadline.since else None, **deadline.as_json()})
    return sorted(found, key=lambda f: (-f["days_late"], f["id"]))


def _table_exists(session: Session, table: str) -> bool:
    return bool(session.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"public.{table}"}).scalar())


def overdue_claims(session: Session, *, communes: Collection[str], today: date | None = None
                   ) -> list[dict[str, Any]]:
    """The claims still received (not resolved) past ``claim_days`` after their receipt: ids and dates only."""
    today = today or date.today()
    if not _table_exists(session, "claim"):
        return []
    targets = Targets(session)
    found = []
    for row in session.execute(text("""
            SELECT id, commune_code, received_on FROM claim
            WHERE commune_code = ANY(CAST(:communes AS text[])) AND state = 'received' ORDER BY id"""),
            {"communes": list(communes)}).mappings():
        days = targets.value(commune_code=row["commune_code"], key=CLAIM_KEY, on=row["received_on"])
        if not isinstance(days, int) or isinstance(days, bool):
            continue
        deadline = Deadline("resolved", row["received_on"], days, row["received_on"] + timedelta(days=days), today)
        if deadline.overdue:
            found.append({"file": "claim", "id": str(row["id"]), "commune_code": row["commune_code"], "kind": "claim",
                          "step": "received", "since": row["received_on"].isoformat(), **deadline.as_json()})
    return sorted(found, key=lambda f: (-f["days_late"], f["id"]))


def overdue_disputes(session: Session, *, communes: Collection[str], today: date | None = None
                     ) -> list[dict[str, Any]]:
    """The open disputes past ``target_days["dispute"][state]`` days in their current state: ids and dates only."""
    today = today or date.today()
    if not _table_exists(session, "dispute_step"):
        return []
    targets = Targets(session)
    found = []
    for row in session.execute(text("""
            SELECT d.id, d.commune_code, d.kind, last.step, last.occurred_on
            FROM dispute d CROSS JOIN LATERAL (SELECT step, occurred_on FROM dispute_step
                                               WHERE dispute_id = d.id ORDER BY seq DESC LIMIT 1) last
            WHERE d.commune_code = ANY(CAST(:communes AS text[])) AND last.step <> 'closed' ORDER BY d.id"""),
            {"communes": list(communes)}).mappings():
        days = targets.days(commune_code=row["commune_code"], on=row["occurred_on"], kind="dispute", step=row["step"])
        if days is None:
            continue
        deadline = Deadline("next", row["occurred_on"], days, row["occurred_on"] + timedelta(days=days), today)
        if deadline.overdue:
            found.append({"file": "dispute", "id": str(row["id"]), "commune_code": row["commune_code"],
                          "kind": row["kind"], "step": row["step"], "since": row["occurred_on"].isoformat(),
                          **deadline.as_json(), "next_step": None})
    return sorted(found, key=lambda f: (-f["days_late"], f["id"]))


def overdue(session: Session, *, communes: Collection[str], today: date | None = None) -> list[dict[str, Any]]:
    """Every overdue file of ``communes``: procedures, claims, then disputes."""
    return [*overdue_procedures(session, communes=communes, today=today),
            *overdue_claims(session, communes=communes, today=today),
            *overdue_disputes(session, communes=communes, today=today)]


def overdue_counts(session: Session, *, communes: Collection[str], today: date | None = None) -> dict[str, int]:
    """The number of overdue files per commune (every commune of ``communes``, 0 included)."""
    counts = dict.fromkeys(communes, 0)
    for found in overdue(session, communes=communes, today=today):
        counts[found["commune_code"]] = counts.get(found["commune_code"], 0) + 1
    return counts


def procedure_deadline(session: Session, *, procedure_id: str, today: date | None = None) -> Deadline:
    """The deadline of one procedure by its id (no personal read: kind, commune and steps' dates only)."""
    pid = uuid.UUID(procedure_id)
    head = session.execute(text("SELECT kind, commune_code FROM tenure_procedure WHERE id = :id"),
                           {"id": pid}).one()
    steps = [(r[0], r[1]) for r in session.execute(text(
        "SELECT step, occurred_on FROM procedure_step WHERE procedure_id = :id ORDER BY seq"), {"id": pid})]
    return for_steps(Targets(session), commune_code=head.commune_code, kind=head.kind, steps=steps,
                     today=today or date.today())
