"""Where a package build or a return spends its time: cProfile and every SQL statement timed, in process.

``python -m bench.field_bench profile --part package|return`` runs the same code as the timed
child (:mod:`bench.field_bench.child`) in this process, on a fresh copy of the template, under
``cProfile``, with SQLAlchemy cursor events timing each statement as the client sees it (a
server-side cursor's later fetches are in the profile, under ``fetchmany``, not here). Writes
``bench/results/field-profile-<part>-<date>.md``: the heaviest functions (cumulative and own
time) and statements.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import io
import os
import pstats
import time
from collections import defaultdict
from typing import Any

from bench.field_bench import child
from bench.field_bench.data import FIELD_TEMPLATE, OFFICER, dataset, ensure_template
from bench.field_bench.runner import RETURN_TEMPLATE, RUN, Context, _empty_uploads, _fresh, log, prepare_return
from bench.import_bench.databases import REPO, TEMPLATE, Server


class Statements:
    """Client-side time of each distinct statement (whitespace folded), with its calls and rows."""

    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.seen: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])

    def before(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        self.started[id(cursor)] = time.perf_counter()

    def after(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seconds = time.perf_counter() - self.started.pop(id(cursor), time.perf_counter())
        entry = self.seen[" ".join(statement.split())]
        entry[0] += 1
        entry[1] += seconds
        entry[2] += max(cursor.rowcount or 0, 0)


def main(args) -> int:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    server = Server.from_environment()
    server.ensure_template(log=log)
    data = dataset(args.data_dir.resolve(), package_parcels=args.parcels, new_parcels=args.new_parcels,
                   seed=args.seed, admin_url=server.url(TEMPLATE), log=log)
    ensure_template(server, data, log=log)
    started = dt.datetime.now(dt.UTC)
    work = args.work_dir.resolve() / f"field-profile-{started:%Y%m%d-%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    env = {"SIFC_KEY_FILE": str(work / "keys" / "signing-keys.json"), "SIFC_UPLOAD_DIR": str(work / "uploads"),
           "PYTHONPATH": str(REPO)}
    ctx = Context(server, data, work, env, args.edits)
    if args.part == "return":
        prepare_return(ctx)
        _fresh(ctx, RETURN_TEMPLATE)
    else:
        _fresh(ctx, FIELD_TEMPLATE)
        _empty_uploads(ctx)
    os.environ.update(ctx.sifc_env(RUN))
    # Imported before the profile starts, as in a running service: the profile shows the work only.
    from pyogrio import write_arrow  # noqa: F401

    import sifc.field.packages  # noqa: F401
    import sifc.field.returns_apply  # noqa: F401
    import sifc.imports.worker  # noqa: F401
    import sifc.parcels.service  # noqa: F401

    statements = Statements()
    event.listen(Engine, "before_cursor_execute", statements.before)
    event.listen(Engine, "after_cursor_execute", statements.after)
    profiler = cProfile.Profile()
    wall = time.perf_counter()
    profiler.enable()
    if args.part == "return":
        assert ctx.return_zip is not None
        result: dict[str, Any] = child.give_back(ctx.return_zip, OFFICER)
    else:
        result = child.build(data.area_geojson, OFFICER)
    profiler.disable()
    wall = time.perf_counter() - wall
    server.drop(RUN)

    def table(sort: str) -> str:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(sort).print_stats(args.top)
        text = out.getvalue()
        return text[text.find("   ncalls"):].rstrip()

    heaviest = sorted(statements.seen.items(), key=lambda kv: -kv[1][1])[:args.top]
    lines = [f"# Field benchmark profile — {args.part}, {data.package_parcels:,} parcels"
             + (f", {args.edits:,} edits" if args.part == "return" else ""), "",
             f"{started:%Y-%m-%d %H:%M} UTC · wall in process {wall:.2f} s (imports excluded) · "
             f"SQL statements, client time: {sum(v[1] for v in statements.seen.values()):.2f} s over "
             f"{sum(int(v[0]) for v in statements.seen.values()):,} executions", "",
             f"Result: `{result}`", "", "## Heaviest statements", "",
             "| seconds | calls | rows | statement |", "|---|---|---|---|"]
    lines += [f"| {v[1]:.3f} | {int(v[0])} | {int(v[2])} | `{k[:300]}` |" for k, v in heaviest]
    lines += ["", "## Functions by cumulative time", "", "```", table("cumulative"), "```", "",
              "## Functions by own time", "", "```", table("tottime"), "```", ""]
    args.results_dir.mkdir(parents=True, exist_ok=True)
    target = args.results_dir / f"field-profile-{args.part}-{started:%Y%m%d-%H%M%S}.md"
    target.write_text("\n".join(lines))
    profiler.dump_stats(str(work / f"{args.part}.prof"))
    log(f"profile: {target} (raw: {work / f'{args.part}.prof'})")
    return 0
