"""Timed, alternating loads of one generated file: ogr2ogr, ``sifc import``, geopandas.

``sifc@REF`` is ``sifc import`` as revision REF of our code has it (``bench.revision``: a git
worktree run with the same virtual environment), on a template built by that revision's own
migrations: ``--against REF`` compares the working tree with the commit a refactor started from.

Each method runs ``runs`` times, alternating, the order rotating from run to run (a, b, c, then
b, c, a, …) so that drifts of a shared machine (page cache, other jobs, autovacuum) spread over
all of them and no method always follows the same one; medians are compared.
Untimed between runs: the previous table or database is dropped and a ``CHECKPOINT`` flushes
its writes, so that no run pays for another's I/O.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.import_bench.check import compare, compare_rejects
from bench.import_bench.databases import PLAIN, REPO, RUN, TEMPLATE, Server
from bench.import_bench.generate import Dataset, generate
from bench.import_bench.measure import Measurement, Sampler, measure, measure_sampled
from bench.revision import Revision, code_line, materialise, migration_differences, write_results

METHODS = ("ogr2ogr", "sifc", "geopandas")
REVISION_PREFIX = "sifc@"
STAGES = ("read", "stage", "validate", "commit")
# Targets of the issue (stated at 200,000 parcels for the times, 1,000,000 for memory).
MAX_RATIO_TO_OGR2OGR = 2.0
MAX_PEAK_MEMORY_BYTES = 1.5e9
MEMORY_TARGET_PARCELS = 1_000_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Run:
    """One timed run of one method."""

    method: str
    run: int
    wall_s: float
    max_rss_mib: float
    user_s: float
    sys_s: float
    returncode: int
    rows: int | None = None
    timings: dict[str, float] | None = None
    check: dict[str, Any] | None = None
    error: str | None = None
    # With sampling: peaks of the whole process tree and of the PostgreSQL backends serving it (Sampler.as_dict)
    memory: dict[str, Any] | None = None
    # Bytes the load left on the server: the table or database it grew, the WAL it wrote
    sizes: dict[str, int] | None = None


@dataclass
class Context:
    server: Server
    dataset: Dataset
    truth: dict[str, Any]
    work: Path
    keep: bool
    python: str = field(default_factory=lambda: str(REPO / ".venv" / "bin" / "python"))
    sifc: str = field(default_factory=lambda: str(REPO / ".venv" / "bin" / "sifc"))
    # Other revisions of our code by method name (``sifc@REF``), each with the template it built.
    revisions: dict[str, tuple[Revision, str]] = field(default_factory=dict)
    # Sample the memory of each run's process tree and of its database's backends (measure.Sampler)
    sample: bool = False
    period: float = 0.2  # seconds between samples
    # Where the loads go: another invocation (``big``) may use databases of its own
    run_database: str = RUN
    plain: str = PLAIN


def ensure_ogr2ogr() -> str:
    """Path of ogr2ogr, installing Debian's gdal-bin when it is missing (root and apt-get needed)."""
    found = shutil.which("ogr2ogr")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise SystemExit("ogr2ogr is missing: install GDAL (Debian: apt-get install gdal-bin) and run again")
    log("installing gdal-bin (ogr2ogr)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "gdal-bin"], check=True, env=env)
    return shutil.which("ogr2ogr") or "ogr2ogr"


def _record(method: str, number: int, m: Measurement) -> Run:
    run = Run(method, number, m.wall_s, m.max_rss_mib, m.user_s, m.sys_s, m.returncode)
    if m.returncode != 0:
        run.error = (m.stderr or m.stdout).strip()[-1500:]
    return run


def _count_rows(server: Server, database: str, table: str) -> int | None:
    try:
        with server.admin(database) as conn:
            return conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    except Exception:  # the load failed: the table may not be there
        return None


def _checkpoint(server: Server) -> None:
    with server.admin() as conn:
        conn.execute("CHECKPOINT")


def _wal_lsn(server: Server) -> int:
    with server.admin() as conn:
        return int(conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0])


def _database_bytes(server: Server, database: str) -> int:
    with server.admin() as conn:
        return int(conn.execute("SELECT pg_database_size(%s)", (database,)).fetchone()[0])


def _measure(ctx: Context, command: list[str], *, env: dict[str, str] | None, cwd: Path, logs: Path,
             database: str) -> tuple[Measurement, dict[str, Any] | None, dict[str, int]]:
    """The run, its memory peaks when sampled, and what it grew on the server (database, WAL)."""
    before, wal = _database_bytes(ctx.server, database), _wal_lsn(ctx.server)
    sampler = Sampler(ctx.server.url("postgres"), database, ctx.period, database_bytes=before) if ctx.sample else None
    if sampler is None:
        m = measure(command, env=env, cwd=cwd, logs=logs)
    else:
        m = measure_sampled(command, env=env, cwd=cwd, logs=logs, sampler=sampler)
    sizes = {"database_grew": _database_bytes(ctx.server, database) - before, "wal": _wal_lsn(ctx.server) - wal}
    if sampler is not None and sampler.database_bytes_peak:
        sizes["database_peak_grew"] = sampler.database_bytes_peak - before
    return m, (sampler.as_dict() if sampler else None), sizes


def _rejected(path: Path) -> dict[int, str] | None:
    """Feature → status of the rejects GeoPackage, None when there is none (nothing rejected)."""
    if not path.exists():
        return None
    from pyogrio import read_arrow

    _, table = read_arrow(path, columns=["sifc_feature", "sifc_status"], read_geometry=False)
    return dict(zip(table["sifc_feature"].to_pylist(), table["sifc_status"].to_pylist(), strict=True))


def run_ogr2ogr(ctx: Context, number: int) -> Run:
    table = f"bench_ogr_{number}"
    ctx.server.drop_table(ctx.plain, table)
    _checkpoint(ctx.server)
    command = [ensure_ogr2ogr(), "-f", "PostgreSQL", ctx.server.ogr_connection(ctx.plain),
               str(ctx.dataset.shapefile),
               "-nln", table, "-nlt", "PROMOTE_TO_MULTI", "-lco", "GEOMETRY_NAME=geom", "-lco", "SPATIAL_INDEX=GIST",
               "--config", "PG_USE_COPY", "YES", "-overwrite"]
    m, run_memory, sizes = _measure(ctx, command, env=None, cwd=REPO, logs=ctx.work / f"ogr2ogr_{number}",
                                    database=ctx.plain)
    run = _record("ogr2ogr", number, m)
    run.memory, run.sizes = run_memory, sizes
    run.rows = _count_rows(ctx.server, ctx.plain, table)
    ctx.server.drop_table(ctx.plain, table)
    return run


def run_geopandas(ctx: Context, number: int) -> Run:
    table = f"bench_gpd_{number}"
    ctx.server.drop_table(ctx.plain, table)
    _checkpoint(ctx.server)
    command = [ctx.python, "-m", "bench.import_bench.gpd_load", str(ctx.dataset.shapefile),
               ctx.server.sqlalchemy_url(ctx.plain), table]
    m, run_memory, sizes = _measure(ctx, command, env=None, cwd=REPO, logs=ctx.work / f"geopandas_{number}",
                                    database=ctx.plain)
    run = _record("geopandas", number, m)
    run.memory, run.sizes = run_memory, sizes
    run.rows = _count_rows(ctx.server, ctx.plain, table)
    ctx.server.drop_table(ctx.plain, table)
    return run


def run_sifc(ctx: Context, number: int, method: str = "sifc") -> Run:
    revision, template = ctx.revisions.get(method, (None, TEMPLATE))
    ctx.server.clone(template, ctx.run_database)
    _checkpoint(ctx.server)
    stem = method.replace("@", "_at_")
    report = ctx.work / f"{stem}_{number}.report.json"
    report.unlink(missing_ok=True)
    rejects = ctx.work / f"{stem}_{number}_rejets.gpkg"
    rejects.unlink(missing_ok=True)
    arguments = ["import", "parcels", str(ctx.dataset.shapefile), "--report", str(report),
                 "--rejects", str(rejects)]
    env = ctx.server.sifc_environment(ctx.run_database)
    if revision is None:
        command, cwd = [ctx.sifc, *arguments], REPO
    else:
        command, cwd, env = revision.command(*arguments), revision.tree, revision.environment(env)
    m, run_memory, sizes = _measure(ctx, command, env=env, cwd=cwd, logs=ctx.work / f"{stem}_{number}",
                                    database=ctx.run_database)
    run = _record(method, number, m)
    run.memory, run.sizes = run_memory, sizes
    run.rows = _count_rows(ctx.server, ctx.run_database, "parcel_version")
    if report.exists():
        data = json.loads(report.read_bytes())
        timings = data.get("timings")
        run.timings = {k: float(v) for k, v in timings.items()} if isinstance(timings, dict) else None
        checked = compare(data, ctx.truth)
        compare_rejects(_rejected(rejects) or {}, ctx.truth, checked)
        run.check = checked.as_dict()
        if not ctx.keep:
            report.unlink()
            rejects.unlink(missing_ok=True)
    elif run.error is None:
        run.error = "no report written"
    ctx.server.drop(ctx.run_database)
    return run


RUNNERS = {"ogr2ogr": run_ogr2ogr, "sifc": run_sifc, "geopandas": run_geopandas}


def run_method(ctx: Context, method: str, number: int) -> Run:
    if method in ctx.revisions:
        return run_sifc(ctx, number, method)
    return RUNNERS[method](ctx, number)


def is_sifc(method: str) -> bool:
    """``sifc`` or another revision's ``sifc@REF``: runs checked against the ground truth."""
    return method == "sifc" or method.startswith(REVISION_PREFIX)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[Run], methods: list[str], parcels: int) -> dict[str, Any]:
    ok = [r for r in runs if r.returncode == 0]
    median = {m: {"wall_s": _median([r.wall_s for r in ok if r.method == m]),
                  "max_rss_mib": _median([r.max_rss_mib for r in ok if r.method == m]),
                  "cpu_s": _median([r.user_s + r.sys_s for r in ok if r.method == m]),
                  "peak_rss_mib": max((r.max_rss_mib for r in ok if r.method == m), default=None),
                  "runs": sum(1 for r in ok if r.method == m)} for m in methods}
    ratios: dict[str, float | None] = {}
    sifc_wall = median.get("sifc", {}).get("wall_s")
    for other in ("ogr2ogr", "geopandas", *(m for m in methods if m.startswith(REVISION_PREFIX))):
        other_wall = median.get(other, {}).get("wall_s")
        if sifc_wall and other_wall:
            ratios[f"sifc/{other}"] = sifc_wall / other_wall
    # Against another revision, also the median of the run-by-run ratios: each pair ran back to back,
    # so a drift of the machine's load over the invocation cancels in it.
    paired: dict[str, float | None] = {}
    for other in (m for m in methods if m.startswith(REVISION_PREFIX)):
        walls = {(r.method, r.run): r.wall_s for r in ok}
        pairs = [walls[("sifc", n)] / walls[(other, n)] for (m, n) in walls if m == "sifc" and (other, n) in walls]
        paired[f"sifc/{other}"] = _median(pairs)
        # The process's own CPU time (user + system) hardly moves with the machine's load, unlike its wall time;
        # PostgreSQL's share of the work is not in it.
        ours_cpu, their_cpu = median.get("sifc", {}).get("cpu_s"), median.get(other, {}).get("cpu_s")
        if ours_cpu and their_cpu:
            paired[f"sifc/{other}, CPU time of the import process"] = ours_cpu / their_cpu
    stages_by_method = {}
    for method in filter(is_sifc, methods):
        staged = [r.timings for r in ok if r.method == method and r.timings]
        stages_by_method[method] = {s: _median([t.get(s, 0.0) for t in staged]) for s in STAGES} if staged else None
    stages = stages_by_method.get("sifc")
    targets: dict[str, Any] = {}
    if "sifc/ogr2ogr" in ratios:
        targets["sifc <= 2 x ogr2ogr"] = {"value": ratios["sifc/ogr2ogr"], "ok": ratios["sifc/ogr2ogr"]
                                          <= MAX_RATIO_TO_OGR2OGR, "stated_at": 200_000}
    if "sifc/geopandas" in ratios:
        targets["sifc faster than geopandas"] = {"value": ratios["sifc/geopandas"],
                                                 "ok": ratios["sifc/geopandas"] < 1.0, "stated_at": 200_000}
    peak = median.get("sifc", {}).get("peak_rss_mib")
    if peak is not None:
        targets["sifc peak memory < 1.5 GB"] = {"value_mib": peak, "ok": peak * 2**20 < MAX_PEAK_MEMORY_BYTES,
                                                "stated_at": MEMORY_TARGET_PARCELS,
                                                "applies": parcels >= MEMORY_TARGET_PARCELS}
    checks = [r.check for r in runs if r.check is not None]
    return {"median": median, "ratios": ratios, "paired_ratios": paired, "stages": stages,
            "stages_by_method": stages_by_method,
            "targets": targets,
            "truth_ok": bool(checks) and all(c["ok"] for c in checks) if any(map(is_sifc, methods)) else None}


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.rstrip("\n")  # keep the leading blank of porcelain lines
    return {"commit": git("rev-parse", "HEAD"), "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "uncommitted": [line[3:] for line in git("status", "--porcelain", "--", "sifc", "api", "migrations")
                            .splitlines()]}


def _environment(server: Server) -> dict[str, Any]:
    import pyogrio
    import shapely

    gdal = subprocess.run([ensure_ogr2ogr(), "--version"], capture_output=True, text=True).stdout.strip()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"machine": {"cpus": os.cpu_count(), "memory_gib": round(memory, 1), "platform": platform.platform()},
            "versions": {"ogr2ogr": gdal, "pyogrio": pyogrio.__version__,
                         "pyogrio_gdal": pyogrio.__gdal_version_string__, "shapely": shapely.__version__,
                         "geos": shapely.geos_version_string, "python": platform.python_version(),
                         **server.versions()},
            "git": _git()}


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "–" if value is None else pattern.format(value)


def _memory_cell(runs: list[dict[str, Any]], method: str) -> str:
    """Medians of the sampled peaks: the process tree, then the backends' RSS and PSS."""
    sampled = [r["memory"] for r in runs if r["method"] == method and r.get("memory") and r["returncode"] == 0]
    if not sampled:
        return "–"

    def median_of(key: str) -> float | None:
        return _median([v[key] for v in sampled if v.get(key) is not None])

    return (f"{_fmt(median_of('tree_rss_peak_mib'), '{:.0f}')} / {_fmt(median_of('backends_rss_peak_mib'), '{:.0f}')}"
            f" ({_fmt(median_of('backends_pss_peak_mib'), '{:.0f}')})")


def render_markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    d = result["dataset"]
    sampled = any(r.get("memory") for r in result["runs"])
    lines = [f"# Import benchmark — {d['parcels']:,} parcels ({d['features']:,} features)", "",
             f"{result['started']} · {result['runs_per_method']} alternating runs per method · "
             f"defects {d['defect_counts']} (rate {d['defect_rate']}) · seed {d['seed']}", "",
             "| method | median wall (s) | runs (s) | median peak RSS (MiB) | median CPU (s) |"
             + (" process tree / its PostgreSQL backends, peak RSS (PSS) (MiB) |" if sampled else ""),
             "|---|---|---|---|---|" + ("---|" if sampled else "")]
    for method, m in s["median"].items():
        walls = ", ".join(f"{r['wall_s']:.2f}" + ("" if r["returncode"] == 0 else "✗")
                          for r in result["runs"] if r["method"] == method)
        lines.append(f"| {method} | {_fmt(m['wall_s'])} | {walls} | {_fmt(m['max_rss_mib'], '{:.0f}')} | "
                     f"{_fmt(m.get('cpu_s'))} |" + (f" {_memory_cell(result['runs'], method)} |" if sampled else ""))
    lines += ["", "| ratio of medians | value |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in s["ratios"].items()]
    lines += [f"| {k} | {_fmt(v)} |" if "CPU" in k else f"| {k}, median of the runs' ratios (run by run) | {_fmt(v)} |"
              for k, v in s.get("paired_ratios", {}).items()]
    staged = {m: v for m, v in s.get("stages_by_method", {"sifc": s["stages"]}).items() if v}
    if staged:
        startups = result.get("startup_s", {"sifc": result["sifc_startup_s"]})
        lines += ["", "`sifc import` stages (medians of the report's `timings`; the CLI's start-up, "
                      "`sifc --help`, takes " + ", ".join(f"{startups[m]:.2f} s ({m})" for m in staged if m in startups)
                  + "):", "",
                  "| stage | " + " | ".join(f"{m} s | share" for m in staged) + " |",
                  "|---|" + "---|---|" * len(staged)]
        totals = {m: sum(v or 0 for v in stages.values()) or 1.0 for m, stages in staged.items()}
        for stage in STAGES:
            cells = [f"{_fmt(v[stage])} | {100 * (v[stage] or 0) / totals[m]:.0f} %" for m, v in staged.items()]
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    else:
        lines += ["", "`sifc import` stages: the report has no `timings`."]
    lines += ["", "| target | value | verdict |", "|---|---|---|"]
    for name, t in s["targets"].items():
        value = f"{t['value']:.2f}" if "value" in t else f"{t['value_mib']:.0f} MiB"
        verdict = "met" if t["ok"] else "missed"
        if not t.get("applies", True) or d["parcels"] < t["stated_at"] // 2:
            verdict += f" (stated at {t['stated_at']:,} parcels)"
        lines.append(f"| {name} | {value} | {verdict} |")
    checks = [r for r in result["runs"] if r.get("check")]
    lines += ["", "Ground truth:"]
    if not checks:
        lines.append("no `sifc import` report to check.")
    for r in checks:
        c = r["check"]
        found = ", ".join(f"{k} {v['found']}/{v['injected']}" for k, v in c["by_kind"].items())
        lines.append(f"- {r['method']} run {r['run']}: {'OK' if c['ok'] else 'FAILED'} — defects found {found}; "
                     f"missed {c['missed']}, wrong {c['wrong']}, not injected {c['unexpected']}"
                     + (", report incomplete" if c["incomplete"] else ""))
        lines += [f"  - {line}" for line in c["differences"][:8]]
    env = result["environment"]
    lines += ["", f"Machine: {env['machine']['cpus']} CPUs, {env['machine']['memory_gib']} GiB; "
              f"PostgreSQL {env['versions']['postgresql']}; {env['versions']['ogr2ogr']}; "
              f"shapely {env['versions']['shapely']} (GEOS {env['versions']['geos']}).",
              code_line(env["git"])]
    for label, rev in result.get("revisions", {}).items():
        lines.append(f"{label}: {rev['commit'][:10]} from `{rev['tree']}`, its own template "
                     f"`{rev['template']}`; migration files differing from the working tree's: "
                     + (", ".join(rev["migrations_differing"]) or "none") + ".")
    lines.append("")
    return "\n".join(lines)


def main(args) -> int:
    methods = [m.strip() for m in (args.methods or ",".join(METHODS)).split(",") if m.strip()]
    if args.against and f"{REVISION_PREFIX}{args.against}" not in methods:
        if not args.methods:  # --against alone: the working tree against the revision, ogr2ogr as the anchor
            methods = ["ogr2ogr", "sifc"]
        methods.append(f"{REVISION_PREFIX}{args.against}")
    unknown = {m for m in methods if not m.startswith(REVISION_PREFIX)} - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods: {', '.join(sorted(unknown))} (known: {', '.join(METHODS)})")
    server = Server.from_environment()
    if "ogr2ogr" in methods:
        ensure_ogr2ogr()
    server.ensure_template(rebuild=args.rebuild_template, log=log)
    revisions: dict[str, tuple[Revision, str]] = {}
    for method in methods:
        if method.startswith(REVISION_PREFIX):
            revision = materialise(method.removeprefix(REVISION_PREFIX), args.work_dir, log=log)
            template = server.ensure_template(rebuild=args.rebuild_template, log=log, revision=revision)
            revisions[method] = (revision, template)
    server.ensure_plain()
    dataset = generate(args.data_dir, parcels=args.parcels, defect_rate=args.defect_rate, seed=args.seed,
                       admin_url=server.url(TEMPLATE), force=args.regenerate, log=log, per_commune=args.per_commune,
                       fmt=args.format)
    truth = json.loads(dataset.truth_json.read_text())
    started = dt.datetime.now(dt.UTC)
    work = args.work_dir / f"{dataset.shapefile.stem}-{started:%Y%m%d-%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(server, dataset, truth, work, args.keep, revisions=revisions, sample=args.sample_memory)
    # The CLI's fixed cost (interpreter start, imports), part of every sifc wall time below.
    startup = measure([ctx.sifc, "--help"], env=None, cwd=REPO, logs=work / "sifc_startup").wall_s
    startups = {"sifc": startup}
    for method, (revision, _) in revisions.items():
        startups[method] = measure(revision.command("--help"), env=revision.environment(dict(os.environ)),
                                   cwd=revision.tree, logs=work / f"{method.replace('@', '_at_')}_startup").wall_s
    runs: list[Run] = []
    for number in range(1, args.runs + 1):
        shift = (number - 1) % len(methods)
        for method in methods[shift:] + methods[:shift]:
            run = run_method(ctx, method, number)
            runs.append(run)
            extra = ""
            if run.timings:
                extra += " [" + ", ".join(f"{k} {v:.2f}" for k, v in run.timings.items()) + "]"
            if run.check is not None:
                extra += " truth " + ("OK" if run.check["ok"] else f"FAILED ({run.check['differences_count']})")
            log(f"run {number} {method:<14} {run.wall_s:7.2f} s  {run.max_rss_mib:6.0f} MiB"
                + (f"  exit {run.returncode}" if run.returncode else "") + extra)
            if run.error:
                log("    " + run.error.replace("\n", "\n    ")[-800:])
    result = {"started": f"{started:%Y-%m-%d %H:%M} UTC", "runs_per_method": args.runs, "methods": methods,
              "dataset": {"file": dataset.shapefile.name, "parcels": dataset.parcels, "features": dataset.features,
                          "defect_counts": truth["defect_counts"], "defect_rate": truth["defect_rate"],
                          "seed": truth["seed"], "placement": truth["placement"]},
              "commands": {"ogr2ogr": "ogr2ogr -f PostgreSQL PG:... FILE -nln bench_ogr_N -nlt PROMOTE_TO_MULTI "
                                      "-lco GEOMETRY_NAME=geom -lco SPATIAL_INDEX=GIST --config PG_USE_COPY YES "
                                      "-overwrite",
                           "sifc": "sifc import parcels FILE --report R.json --rejects R.gpkg (fresh database)",
                           "geopandas": "geopandas.read_file(FILE).to_postgis(table, engine)",
                           **{m: f"python -m {rev.cli_module} import parcels FILE --report R.json --rejects R.gpkg "
                                 f"(PYTHONPATH and working directory {rev.tree}; fresh database from {template})"
                              for m, (rev, template) in revisions.items()}},
              "revisions": {m: {"ref": rev.ref, "commit": rev.commit, "tree": str(rev.tree),
                                "cli_module": rev.cli_module, "template": template,
                                "migrations_differing": migration_differences(rev)}
                            for m, (rev, template) in revisions.items()},
              "environment": _environment(server),
              "sifc_startup_s": startup,
              "startup_s": startups,
              "runs": [asdict(r) for r in runs],
              "summary": summarize(runs, methods, dataset.parcels)}
    markdown = render_markdown(result)
    print(markdown)
    written = write_results(args.results_dir, f"import-{dataset.parcels}-{started:%Y%m%d-%H%M%S}", result, markdown)
    log(f"results: {written} / .json")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    summary = result["summary"]
    if any(r.returncode != 0 for r in runs):
        return 2
    if summary["truth_ok"] is False:
        return 1
    if args.enforce_targets and not all(t["ok"] for t in summary["targets"].values() if t.get("applies", True)):
        return 3
    return 0
