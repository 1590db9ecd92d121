"""Where ``sifc import parcels`` spends its time: every SQL statement and pipeline step timed.

The real CLI runs in this process, on a fresh copy of the template database, with:

- SQLAlchemy cursor events around every statement (wall time seen by the client, rows, and
  the pipeline step that issued it);
- every function of ``sifc.imports.parcels`` wrapped with a timer (inclusive times, nested),
  so that time spent outside SQL (reading, COPY, Python) shows as the step's remainder;
- the session's commit timed.

With ``--explain`` a second import runs with each data-changing statement (UPDATE, INSERT,
DELETE, CREATE TABLE AS) prefixed by ``EXPLAIN (ANALYZE, BUFFERS)``: PostgreSQL still executes
it, and the plan of the heaviest ones is kept. No superuser setting, no server log needed (the
service role may not set ``log_min_duration_statement``). That run's own report is not checked:
row counts read from those statements are plan lines there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib
import inspect
import json
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.import_bench.check import compare
from bench.import_bench.databases import RUN, TEMPLATE, Server
from bench.import_bench.generate import generate

# Helpers too small to be steps: their statements are charged to the step that calls them.
NOT_STEPS = {"_sql", "_reject", "_warn", "_count", "_text_value", "_json_default", "_area", "_issue",
             "_default_author"}
# Other modules of the pipeline whose functions are steps too (absent ones are skipped).
STEP_MODULES = ("sifc.imports.checks", "sifc.imports.source")
EXPLAINABLE = re.compile(r"^\s*(UPDATE|INSERT|DELETE|CREATE\s+(TEMP|TEMPORARY|UNLOGGED)?\s*TABLE\s+\S+.*\bAS\b)",
                         re.IGNORECASE | re.DOTALL)


@dataclass
class Statement:
    text: str
    step: str
    calls: int = 0
    seconds: float = 0.0
    rows: int = 0
    plan: str | None = None
    plan_seconds: float = 0.0


@dataclass
class Profile:
    explain: bool = False
    stack: list[str] = field(default_factory=lambda: ["(outside)"])
    # step -> [calls, inclusive seconds, seconds in its own SQL statements, seconds in nested steps]
    steps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0, 0.0, 0.0, 0.0]))
    statements: dict[tuple[str, str], Statement] = field(default_factory=dict)
    started: dict[int, float] = field(default_factory=dict)
    commit_started: float = 0.0

    # --- SQLAlchemy events -----------------------------------------------------------------
    def before(self, conn, cursor, statement, parameters, context, executemany):
        if self.explain and EXPLAINABLE.match(statement) and "EXPLAIN" not in statement[:20].upper():
            statement = "EXPLAIN (ANALYZE, BUFFERS) " + statement
        self.started[id(cursor)] = time.perf_counter()
        return statement, parameters

    def after(self, conn, cursor, statement, parameters, context, executemany):
        seconds = time.perf_counter() - self.started.pop(id(cursor), time.perf_counter())
        plan = None
        if statement.startswith("EXPLAIN (ANALYZE"):
            plan = "\n".join(row[0] for row in cursor.fetchall())
            statement = statement[len("EXPLAIN (ANALYZE, BUFFERS) "):]
        text = " ".join(statement.split())
        step = self.stack[-1]
        entry = self.statements.setdefault((step, text), Statement(text, step))
        entry.calls += 1
        entry.seconds += seconds
        entry.rows += max(cursor.rowcount or 0, 0)
        if plan and seconds >= entry.plan_seconds:
            entry.plan, entry.plan_seconds = plan, seconds
        self.steps[step][2] += seconds  # SQL time charged to the innermost step

    def before_commit(self, session):
        self.commit_started = time.perf_counter()

    def after_commit(self, session):
        seconds = time.perf_counter() - self.commit_started
        entry = self.steps["session.commit (COMMIT)"]
        entry[0] += 1
        entry[1] += seconds
        self.steps[self.stack[-1]][3] += seconds

    # --- step timers -----------------------------------------------------------------------
    def enter(self, name: str) -> float:
        self.stack.append(name)
        return time.perf_counter()

    def leave(self, name: str, started: float) -> None:
        seconds = time.perf_counter() - started
        entry = self.steps[name]
        entry[0] += 1
        entry[1] += seconds
        self.stack.pop()
        self.steps[self.stack[-1]][3] += seconds


_ACTIVE: list[Profile] = []  # the profile being recorded (events and wrappers are installed once)


def _wrap(name: str, function):
    @functools.wraps(function)
    def timed(*args, **kwargs):
        if not _ACTIVE:
            return function(*args, **kwargs)
        profile = _ACTIVE[-1]
        started = profile.enter(name)
        try:
            return function(*args, **kwargs)
        finally:
            profile.leave(name, started)
    return timed


def _instrument() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    import sifc.imports.parcels as pipeline

    if getattr(pipeline, "_bench_instrumented", False):
        return
    pipeline._bench_instrumented = True  # type: ignore[attr-defined]

    def before(*args):
        return _ACTIVE[-1].before(*args) if _ACTIVE else (args[2], args[3])

    def after(*args):
        if _ACTIVE:
            _ACTIVE[-1].after(*args)

    event.listen(Engine, "before_cursor_execute", before, retval=True)
    event.listen(Engine, "after_cursor_execute", after)
    event.listen(Session, "before_commit", lambda session: _ACTIVE and _ACTIVE[-1].before_commit(session))
    event.listen(Session, "after_commit", lambda session: _ACTIVE and _ACTIVE[-1].after_commit(session))
    # Steps: the functions of the import modules. A name imported from one module into another
    # (``from sifc.imports.checks import locate``) is rebound too, so every call is timed.
    modules = [pipeline]
    for extra in STEP_MODULES:
        try:
            modules.append(importlib.import_module(extra))
        except ImportError:
            continue
    wrapped: dict[int, Any] = {}
    for module in modules:
        for name, function in list(vars(module).items()):
            if inspect.isfunction(function) and function.__module__ == module.__name__ and name not in NOT_STEPS:
                label = name if module is pipeline else f"{module.__name__.rsplit('.', 1)[-1]}.{name}"
                wrapped[id(function)] = _wrap(label, function)
    for module in modules:
        for name, value in list(vars(module).items()):
            if id(value) in wrapped:
                setattr(module, name, wrapped[id(value)])


def run_cli(arguments: list[str]) -> None:
    """``sifc ARGUMENTS`` in this process, its summary silenced; a non-zero exit is raised."""
    import cli

    argv = sys.argv
    sys.argv = ["sifc", *arguments]
    try:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # the CLI's summary
            cli.main()
    except SystemExit as leaving:
        if leaving.code not in (0, None):
            raise
    finally:
        sys.argv = argv


def _import_once(server: Server, shapefile: Path, work: Path, *, explain: bool) -> tuple[Profile, dict, float]:
    """Run ``sifc import parcels`` in this process on a fresh database; return the profile and report."""
    server.clone(TEMPLATE, RUN)
    os.environ.update({k: v for k, v in server.sifc_environment(RUN).items()
                       if k in ("SIFC_DATABASE_URL", "SIFC_ADMIN_DATABASE_URL")})
    profile = Profile(explain=explain)
    _instrument()
    _ACTIVE.append(profile)
    report = work / "profile.report.json"
    started = time.perf_counter()
    try:
        run_cli(["import", "parcels", str(shapefile), "--report", str(report),
                 "--rejects", str(work / "profile_rejets.gpkg")])
    finally:
        wall = time.perf_counter() - started
        _ACTIVE.pop()
        server.drop(RUN)
    return profile, json.loads(report.read_bytes()), wall


def _render(profile: Profile, report: dict, wall: float, parcels: int, top: int,
            plans: Profile | None) -> str:
    sql_total = sum(s.seconds for s in profile.statements.values())
    lines = [f"# Where `sifc import parcels` spends its time — {parcels:,} parcels", "",
             f"In-process run of the CLI: {wall:.2f} s from the command's start to its end (interpreter start "
             f"and imports excluded); {sql_total:.2f} s inside {sum(s.calls for s in profile.statements.values())} "
             "SQL statements (client-side wall time). A COPY is not a statement: its time is in the step "
             "that streams it.", ""]
    timings = report.get("timings")
    if timings:
        lines += ["Report `timings`: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()), ""]
    lines += ["## Steps", "",
              "Steps of 10 ms or more. Inclusive time; SQL = statements the step issued itself; nested = time "
              "in the steps it called; self = the rest (Python, GEOS, COPY, I/O).", "",
              "| step | calls | inclusive s | SQL s | nested s | self s |", "|---|---|---|---|---|---|"]
    for name, (calls, seconds, sql_seconds, nested) in sorted(profile.steps.items(), key=lambda kv: -kv[1][1]):
        if name == "(outside)" or seconds < 0.01:
            continue
        lines.append(f"| `{name}` | {calls} | {seconds:.2f} | {sql_seconds:.2f} | {nested:.2f} | "
                     f"{seconds - sql_seconds - nested:.2f} |")
    outside = profile.steps.get("(outside)")
    if outside:
        lines.append(f"| statements outside any step | – | – | {outside[2]:.2f} | – |")
    lines += ["", f"## The {top} heaviest statements", "",
              "| # | s | share of SQL | calls | rows | step | statement |", "|---|---|---|---|---|---|---|"]
    ranked = sorted(profile.statements.values(), key=lambda s: -s.seconds)[:top]
    for number, s in enumerate(ranked, 1):
        shown = s.text if len(s.text) <= 260 else s.text[:257] + "…"
        lines.append(f"| {number} | {s.seconds:.2f} | {100 * s.seconds / sql_total:.0f} % | {s.calls} | {s.rows} | "
                     f"`{s.step}` | `{shown.replace('|', '¦')}` |")
    if plans is not None:
        lines += ["", "## Plans (EXPLAIN ANALYZE, second import) of the heaviest data-changing statements", ""]
        shown_plans = 0
        for s in ranked:
            planned = plans.statements.get((s.step, s.text))
            if planned is None or planned.plan is None:
                continue
            shown_plans += 1
            lines += [f"### {s.step}: {s.text[:140]}…", "", f"{s.seconds:.2f} s in the timed run", "", "```",
                      planned.plan, "```", ""]
            if shown_plans >= 8:
                break
    return "\n".join(lines) + "\n"


def main(args) -> int:
    server = Server.from_environment()
    server.ensure_template(log=lambda m: print(m, file=sys.stderr))
    dataset = generate(args.data_dir, parcels=args.parcels, defect_rate=args.defect_rate, seed=args.seed,
                       admin_url=server.url(TEMPLATE), force=args.regenerate, per_commune=args.per_commune,
                       fmt=args.format, log=lambda m: print(m, file=sys.stderr))
    truth = json.loads(dataset.truth_json.read_text())
    with tempfile.TemporaryDirectory(prefix="sifc-bench-profile-") as folder:
        work = Path(folder)
        profile, report, wall = _import_once(server, dataset.shapefile, work, explain=False)
        check = compare(report, truth)
        plans = None
        if args.explain:
            plans, _, _ = _import_once(server, dataset.shapefile, work, explain=True)
    text = _render(profile, report, wall, dataset.parcels, args.top, plans)
    text += f"\nGround truth of the timed run: {'OK' if check.ok else 'FAILED'}" + "".join(
        f"\n- {line}" for line in check.differences[:5]) + "\n"
    print(text)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    target = args.results_dir / f"profile-{dataset.parcels}-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.md"
    target.write_text(text)
    print(f"profile: {target}", file=sys.stderr)
    return 0 if check.ok else 1

