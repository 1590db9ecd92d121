"""Timed, alternating runs of both parts of the field benchmark, each side beside its anchor.

(a) **package**: ``sifc.field.packages.build`` of the drawn area (20,000 parcels) against
``ogr2ogr -f GPKG`` of the same layers (:mod:`bench.field_bench.anchor`); both on a fresh copy of
``sifc_bench_field_template``.
(b) **return**: the package of (a), 2,000 of its parcels edited through GDAL, returned and applied
(``sifc.field.returns`` run by the import worker) against ``sifc import parcels`` of 2,000 new
parcels; both on a fresh copy of ``sifc_bench_field_return_template`` (the field template with that
package checked out, built once per invocation by the code under test).

Within each part the two sides alternate, the first one changing from run to run; each side is a
child process (wall time from spawn to exit, peak RSS and CPU from ``wait4``, as
``bench.import_bench.measure``; the anchor of (a) is seven processes: their walls are summed, the
peak is the largest). Untimed before each run: the copy of the template, ``CHECKPOINT``. After
each run its output is checked (:mod:`bench.field_bench.check`); a wrong answer fails the run.
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
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.field_bench import anchor, check
from bench.field_bench.data import FIELD_TEMPLATE, OFFICER, FieldDataset, dataset, ensure_template
from bench.import_bench.databases import REPO, TEMPLATE, Server
from bench.import_bench.measure import Measurement, measure
from bench.import_bench.runner import ensure_ogr2ogr
from bench.revision import code_line

RUN = "sifc_bench_field_run"
RETURN_TEMPLATE = "sifc_bench_field_return_template"
PARTS = {"package": ("package", "ogr2ogr"), "return": ("return", "import")}
MAX_PACKAGE_RATIO = 2.0
MAX_PACKAGE_RSS_BYTES = 300e6
MAX_RETURN_RATIO = 1.5
SYSTEM_PYTHON = "/usr/bin/python3"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Run:
    """One timed run of one side."""

    side: str
    run: int
    wall_s: float
    max_rss_mib: float
    user_s: float
    sys_s: float
    returncode: int
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Context:
    server: Server
    data: FieldDataset
    work: Path
    env: dict[str, str]
    edits: int
    expected: dict[str, Any] = field(default_factory=dict)
    return_zip: Path | None = None
    python: str = field(default_factory=lambda: str(REPO / ".venv" / "bin" / "python"))
    sifc: str = field(default_factory=lambda: str(REPO / ".venv" / "bin" / "sifc"))

    def sifc_env(self, database: str) -> dict[str, str]:
        return {**self.server.sifc_environment(database), **self.env}


def _record(side: str, number: int, m: Measurement) -> Run:
    run = Run(side, number, m.wall_s, m.max_rss_mib, m.user_s, m.sys_s, m.returncode)
    if m.returncode != 0:
        run.error = (m.stderr or m.stdout).strip()[-1500:]
    return run


def _fresh(ctx: Context, template: str) -> None:
    ctx.server.clone(template, RUN)
    with ctx.server.admin() as conn:
        conn.execute("CHECKPOINT")


def _empty_uploads(ctx: Context) -> None:
    uploads = Path(ctx.env["SIFC_UPLOAD_DIR"])
    shutil.rmtree(uploads, ignore_errors=True)
    uploads.mkdir(parents=True)


def build_child(ctx: Context, database: str, logs: Path) -> Measurement:
    return measure([ctx.python, "-m", "bench.field_bench.child", "build", str(ctx.data.area_geojson),
                    "--user", OFFICER], env=ctx.sifc_env(database), cwd=REPO, logs=logs)


def run_package(ctx: Context, number: int) -> Run:
    _fresh(ctx, FIELD_TEMPLATE)
    _empty_uploads(ctx)
    run = _record("package", number, build_child(ctx, RUN, ctx.work / f"package_{number}"))
    if run.returncode == 0:
        run.problems, found = check.check_package(ctx.server, RUN, (ctx.work / f"package_{number}.out").read_text(),
                                                  ctx.expected, ctx.work / "check", ctx.data.package_parcels)
        run.detail = {"zip_bytes": found.get("record", {}).get("zip_bytes"),
                      "layers": found.get("gpkg", {}).get("counts"), "inner_s": found.get("record", {}).get("inner_s")}
    return run


def run_ogr2ogr(ctx: Context, number: int) -> Run:
    _fresh(ctx, FIELD_TEMPLATE)
    target = ctx.work / f"ogr2ogr_{number}.gpkg"
    target.unlink(missing_ok=True)
    layers: dict[str, float] = {}
    total = Run("ogr2ogr", number, 0.0, 0.0, 0.0, 0.0, 0)
    for name, command in anchor.commands(ensure_ogr2ogr(), ctx.server.ogr_connection(RUN), target,
                                         ctx.data.area_wkt.read_text()):
        m = measure(command, env=None, cwd=REPO, logs=ctx.work / f"ogr2ogr_{number}_{name}")
        layers[name] = m.wall_s
        total.wall_s += m.wall_s
        total.user_s += m.user_s
        total.sys_s += m.sys_s
        total.max_rss_mib = max(total.max_rss_mib, m.max_rss_mib)
        if m.returncode != 0:
            total.returncode = m.returncode
            total.error = f"{name}: " + (m.stderr or m.stdout).strip()[-1500:]
            break
    total.detail = {"layers_s": layers}
    if total.returncode == 0:
        total.problems, found = check.check_anchor_gpkg(target, ctx.expected)
        total.detail["layers"] = found.get("counts")
    target.unlink(missing_ok=True)
    return total


def run_return(ctx: Context, number: int) -> Run:
    assert ctx.return_zip is not None
    _fresh(ctx, RETURN_TEMPLATE)
    run = _record("return", number, measure(
        [ctx.python, "-m", "bench.field_bench.child", "return", str(ctx.return_zip), "--user", OFFICER],
        env=ctx.sifc_env(RUN), cwd=REPO, logs=ctx.work / f"return_{number}"))
    out = (ctx.work / f"return_{number}.out").read_text()
    if out.strip():
        run.problems, found = check.check_return(ctx.server, RUN, out, ctx.edits)
        run.detail = {"counts": found.get("outcome", {}).get("counts"), "versions": found.get("versions"),
                      "inner_s": found.get("outcome", {}).get("inner_s")}
    return run


def run_import(ctx: Context, number: int) -> Run:
    _fresh(ctx, RETURN_TEMPLATE)
    report = ctx.work / f"import_{number}.report.json"
    report.unlink(missing_ok=True)
    run = _record("import", number, measure(
        [ctx.sifc, "import", "parcels", str(ctx.data.new_shapefile), "--report", str(report),
         "--rejects", str(ctx.work / f"import_{number}_rejets.gpkg")],
        env=ctx.sifc_env(RUN), cwd=REPO, logs=ctx.work / f"import_{number}"))
    if run.returncode == 0:
        run.problems, run.detail = check.check_import(ctx.server, RUN, report, ctx.data.new_parcels,
                                                      ctx.data.registered_parcels)
        timings = run.detail.get("timings") or {}
        run.detail["inner_s"] = sum(float(v) for v in timings.values()) if timings else None
    return run


RUNNERS = {"package": run_package, "ogr2ogr": run_ogr2ogr, "return": run_return, "import": run_import}


def prepare_return(ctx: Context) -> dict[str, Any]:
    """The return template (the field template with one package checked out) and the edited return zip."""
    log(f"building {RETURN_TEMPLATE}: a package checked out to {OFFICER}, then {ctx.edits:,} parcels edited")
    ctx.server.clone(FIELD_TEMPLATE, RETURN_TEMPLATE)
    _empty_uploads(ctx)
    built = build_child(ctx, RETURN_TEMPLATE, ctx.work / "prepare_package")
    if built.returncode != 0:
        raise SystemExit(f"the package of the return could not be built:\n{built.stderr[-2000:]}")
    record = json.loads(built.stdout.strip().splitlines()[-1])
    source = ctx.work / "return_src"
    shutil.rmtree(source, ignore_errors=True)
    with zipfile.ZipFile(record["zip"]) as opened:
        opened.extractall(source)
    python = SYSTEM_PYTHON if Path(SYSTEM_PYTHON).exists() else "python3"
    edited = subprocess.run([python, str(Path(__file__).with_name("edit_return.py")), str(source / "data.gpkg"),
                             "--edits", str(ctx.edits)], capture_output=True, text=True)
    if edited.returncode != 0:
        raise SystemExit(f"editing the package failed (GDAL's Python bindings, python3-gdal):\n{edited.stderr}")
    fids = json.loads(edited.stdout)
    bundle = ctx.work / f"retour-{ctx.edits}.zip"
    bundle.unlink(missing_ok=True)
    with zipfile.ZipFile(bundle, "w", compression=zipfile.ZIP_DEFLATED) as packed:
        for path in sorted(source.rglob("*")):
            name = path.relative_to(source).as_posix() + ("/" if path.is_dir() else "")
            if path.is_dir():
                packed.writestr(zipfile.ZipInfo(name), b"")
            else:
                packed.write(path, name)
    shutil.rmtree(source)
    ctx.return_zip = bundle
    _empty_uploads(ctx)
    return {"package_id": record["id"], "package_build_s": built.wall_s, "edited": len(fids),
            "zip_bytes": bundle.stat().st_size}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[Run], sides: list[str]) -> dict[str, Any]:
    good = [r for r in runs if r.returncode == 0 and r.ok]
    median = {s: {"wall_s": _median([r.wall_s for r in good if r.side == s]),
                  "max_rss_mib": _median([r.max_rss_mib for r in good if r.side == s]),
                  "peak_rss_mib": max((r.max_rss_mib for r in good if r.side == s), default=None),
                  "cpu_s": _median([r.user_s + r.sys_s for r in good if r.side == s]),
                  "inner_s": _median([r.detail["inner_s"] for r in good if r.side == s
                                      and r.detail.get("inner_s") is not None]),
                  "runs": sum(1 for r in good if r.side == s)} for s in sides}
    ratios: dict[str, float] = {}
    paired: dict[str, float | None] = {}
    targets: dict[str, Any] = {}
    walls = {(r.side, r.run): r.wall_s for r in good}
    for ours, theirs in PARTS.values():
        a, b = median.get(ours, {}).get("wall_s"), median.get(theirs, {}).get("wall_s")
        if a and b:
            ratios[f"{ours}/{theirs}"] = a / b
            pairs = [walls[(ours, n)] / walls[(theirs, n)] for (s, n) in walls if s == ours and (theirs, n) in walls]
            paired[f"{ours}/{theirs}"] = _median(pairs)
    if "package/ogr2ogr" in ratios:
        targets["package <= 2 x ogr2ogr"] = {"value": ratios["package/ogr2ogr"],
                                             "ok": ratios["package/ogr2ogr"] <= MAX_PACKAGE_RATIO}
    peak = median.get("package", {}).get("peak_rss_mib")
    if peak is not None:
        targets["package peak RSS < 300 MB"] = {"value_mib": peak, "ok": peak * 2**20 < MAX_PACKAGE_RSS_BYTES}
    if "return/import" in ratios:
        targets["return <= 1.5 x import"] = {"value": ratios["return/import"],
                                             "ok": ratios["return/import"] <= MAX_RETURN_RATIO}
    return {"median": median, "ratios": ratios, "paired_ratios": paired, "targets": targets,
            "all_checked_ok": all(r.ok for r in runs)}


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.rstrip("\n")
    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted": [line[3:] for line in git("status", "--porcelain", "--", "sifc", "api", "migrations")
                            .splitlines()]}


def _environment(server: Server) -> dict[str, Any]:
    import pyogrio

    gdal = subprocess.run([ensure_ogr2ogr(), "--version"], capture_output=True, text=True).stdout.strip()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    with server.admin() as conn:
        postgres = conn.execute("SHOW server_version").fetchone()[0]
    return {"machine": {"cpus": os.cpu_count(), "memory_gib": round(memory, 1), "platform": platform.platform(),
                        "load_average": os.getloadavg()},
            "versions": {"ogr2ogr": gdal, "pyogrio_gdal": pyogrio.__gdal_version_string__,
                         "python": platform.python_version(), "postgresql": postgres},
            "git": _git()}


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "–" if value is None else pattern.format(value)


def render_markdown(result: dict[str, Any]) -> str:
    s, d = result["summary"], result["dataset"]
    lines = [f"# Field benchmark — package of {d['package_parcels']:,} parcels, return of {result['edits']:,} edits",
             "", f"{result['started']} · {result['runs_per_side']} alternating runs per side · "
             f"{d['registered_parcels']:,} parcels registered, {d['bornes']:,} bornes · seed {d['seed']}", "",
             "| side | median wall (s) | runs (s) | median peak RSS (MiB) | median CPU (s) | median in process (s) |",
             "|---|---|---|---|---|---|"]
    for side, m in s["median"].items():
        walls = ", ".join(f"{r['wall_s']:.2f}" + ("" if r["ok"] else "✗") for r in result["runs"] if r["side"] == side)
        lines.append(f"| {side} | {_fmt(m['wall_s'])} | {walls} | {_fmt(m['max_rss_mib'], '{:.0f}')} | "
                     f"{_fmt(m['cpu_s'])} | {_fmt(m.get('inner_s'))} |")
    lines += ["", "In process: the build's or the return's own seconds, start-up and imports excluded (what a "
                  "running service spends); for `sifc import`, the sum of its report's `timings`."]
    lines += ["", "| ratio of medians | value | median of the run-by-run ratios |", "|---|---|---|"]
    lines += [f"| {k} | {v:.2f} | {_fmt(s['paired_ratios'].get(k))} |" for k, v in s["ratios"].items()]
    layer_walls = [r["detail"].get("layers_s") for r in result["runs"] if r["side"] == "ogr2ogr" and r["ok"]]
    if layer_walls:
        lines += ["", "ogr2ogr per layer (median s): " + ", ".join(
            f"{name} {statistics.median(w[name] for w in layer_walls):.2f}" for name in layer_walls[0])]
    lines += ["", f"Python start-up with the modules the sifc sides load: {result['startup_s']:.2f} s.",
              "", "| target | value | verdict |", "|---|---|---|"]
    for name, t in s["targets"].items():
        value = f"{t['value']:.2f}" if "value" in t else f"{t['value_mib']:.0f} MiB"
        lines.append(f"| {name} | {value} | {'met' if t['ok'] else 'missed'} |")
    lines += ["", "Checks: " + ("every run produced the expected result." if s["all_checked_ok"] else "FAILED:")]
    for r in result["runs"]:
        for problem in r["problems"] + ([r["error"][-300:]] if r.get("error") else []):
            lines.append(f"- {r['side']} run {r['run']}: {problem}")
    env = result["environment"]
    lines += ["", f"Machine: {env['machine']['cpus']} CPUs, {env['machine']['memory_gib']} GiB, load average at "
              f"the start {', '.join(f'{x:.1f}' for x in env['machine']['load_average'])}; PostgreSQL "
              f"{env['versions']['postgresql']}; {env['versions']['ogr2ogr']}; pyogrio's GDAL "
              f"{env['versions']['pyogrio_gdal']}.",
              code_line(env["git"]), ""]
    return "\n".join(lines)


def main(args) -> int:
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts {sorted(unknown)} (known: {', '.join(PARTS)})")
    server = Server.from_environment()
    ensure_ogr2ogr()
    server.ensure_template(rebuild=args.rebuild_template, log=log)
    data_dir = args.data_dir.resolve()
    data = dataset(data_dir, package_parcels=args.parcels, new_parcels=args.new_parcels, seed=args.seed,
                   admin_url=server.url(TEMPLATE), force=args.regenerate, log=log)
    ensure_template(server, data, rebuild=args.rebuild_template or args.regenerate, log=log)
    started = dt.datetime.now(dt.UTC)
    work = args.work_dir.resolve() / f"field-{started:%Y%m%d-%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    # The package's MAC key (SIFC_KEY_FILE) must outlive one invocation only: each builds its return template.
    env = {"SIFC_KEY_FILE": str(work / "keys" / "signing-keys.json"), "SIFC_UPLOAD_DIR": str(work / "uploads"),
           "PYTHONPATH": str(REPO)}
    ctx = Context(server, data, work, env, args.edits)
    with server.admin(FIELD_TEMPLATE) as conn:
        bornes = conn.execute("SELECT count(*) FROM borne").fetchone()[0]
    ctx.expected = check.expected_layers(server, FIELD_TEMPLATE, data.area_wkt.read_text())
    log(f"expected layers: {ctx.expected['counts']}")
    prepared = prepare_return(ctx) if "return" in parts else None
    startup = measure([ctx.python, "-c", "import sifc.field.packages, sifc.field.returns, sifc.imports.worker"],
                      env=ctx.sifc_env(FIELD_TEMPLATE), cwd=REPO, logs=work / "startup").wall_s
    sides = [side for part in parts for side in PARTS[part]]
    runs: list[Run] = []
    for number in range(1, args.runs + 1):
        for part in parts:
            pair = list(PARTS[part])
            for side in pair if number % 2 else reversed(pair):
                run = RUNNERS[side](ctx, number)
                run.ok = run.returncode == 0 and not run.problems
                runs.append(run)
                log(f"run {number} {side:<8} {run.wall_s:7.2f} s  {run.max_rss_mib:6.0f} MiB"
                    + ("" if run.ok else "  FAILED") + (f"  exit {run.returncode}" if run.returncode else ""))
                for problem in run.problems:
                    log(f"    {problem}")
                if run.error:
                    log("    " + run.error.replace("\n", "\n    ")[-800:])
    server.drop(RUN)
    result = {"started": f"{started:%Y-%m-%d %H:%M} UTC", "runs_per_side": args.runs, "parts": parts,
              "edits": args.edits,
              "dataset": {"package_parcels": data.package_parcels, "registered_parcels": data.registered_parcels,
                          "new_parcels": data.new_parcels, "seed": data.seed, "bornes": bornes,
                          "directory": data.directory.name},
              "expected": ctx.expected, "return_file": prepared,
              "commands": {
                  "package": "python -m bench.field_bench.child build AREA.geojson --user OFFICER "
                             "(sifc.field.packages.build, committed)",
                  "ogr2ogr": [" ".join(c[:5]) + " -sql … -nln " + n for n, c in
                              anchor.commands("ogr2ogr", "PG:…", Path("anchor.gpkg"), "…")],
                  "ogr2ogr_sql": {n: s for n, _g, s in anchor.layers("AREA_WKT")},
                  "return": "python -m bench.field_bench.child return RETOUR.zip --user OFFICER "
                            "(sifc.field.returns.submit_return, then the import worker runs the job once)",
                  "import": "sifc import parcels new.shp --report R.json --rejects R.gpkg"},
              "environment": _environment(server), "startup_s": startup,
              "runs": [asdict(r) for r in runs], "summary": summarize(runs, sides)}
    markdown = render_markdown(result)
    print(markdown)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"field-{args.runs}-{started:%Y%m%d-%H%M%S}"
    (args.results_dir / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    (args.results_dir / f"{stem}.md").write_text(markdown)
    log(f"results: {args.results_dir / stem}.md / .json")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if any(r.returncode != 0 for r in runs):
        return 2
    if not result["summary"]["all_checked_ok"]:
        return 1
    if args.enforce_targets and not all(t["ok"] for t in result["summary"]["targets"].values()):
        return 3
    return 0
