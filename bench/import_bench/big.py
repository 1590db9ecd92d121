"""``make bench-10m``: ten million parcels from a GeoPackage, ``sifc import`` against ogr2ogr, one run each.

The question is memory, not speed: the peak resident memory of ``sifc import``'s whole process
tree (the process and every descendant, summed at one instant) must stay under 1.5 GB however
large the file, and the PostgreSQL backends serving it are reported beside it (their RSS, which
counts every page of ``shared_buffers`` they touched, and their PSS, which shares such pages among
the processes that map them). Both loads run once, as child processes, sampled every 0.2 s
(``measure.Sampler``); wall times and the ratio sifc / ogr2ogr are reported too, and sifc's report
and rejects file are checked against the ground truth as the import benchmark checks them.

Before anything is written, the free disk the run needs is computed and compared with what the
file systems hold: the file (when it is still to be generated), ogr2ogr's table, sifc's database at
its peak and the WAL it writes, each from a calibration load of 100,000 parcels of the same layout
extrapolated with a safety factor, plus twice ``max_wal_size`` of WAL headroom. It refuses in one
line when that is not there.

The loads go into databases of their own (``sifc_bench_big_run``, ``sifc_bench_big_plain``), so an
import benchmark running meanwhile does not drop them; the template is the import benchmark's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.import_bench.databases import REPO, TEMPLATE, Server
from bench.import_bench.generate import FORMATS, dataset_name, generate
from bench.import_bench.runner import (
    Context,
    Run,
    _environment,
    ensure_ogr2ogr,
    log,
    run_ogr2ogr,
    run_sifc,
)
from bench.revision import code_line, materialise

BENCH = Path(__file__).resolve().parents[1]
RUN_DATABASE = "sifc_bench_big_run"
PLAIN_DATABASE = "sifc_bench_big_plain"
METHODS = ("ogr2ogr", "sifc")
MAX_TREE_BYTES = 1.5e9  # the target: peak RSS of sifc import's process tree
CALIBRATION_PARCELS = 100_000
SAFETY = 1.5  # on the extrapolated bytes: indexes and TOAST do not grow exactly linearly
# Bytes per feature of the generated GeoPackage (1,002,500 features: 265,863,168 bytes, 2026-12-05).
GPKG_BYTES_PER_FEATURE = 266
GIB = 2**30
MIB = 2**20


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.import_bench big", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parcels", type=int, default=10_000_000,
                        help="parcels in the file (200000 or 1000000 to try the harness)")
    parser.add_argument("--per-commune", type=int, default=200_000,
                        help="parcels per commune: Dialacoto, then the communes of its region, pole, country")
    parser.add_argument("--defect-rate", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated, in run order, among ogr2ogr,sifc (one run each)")
    parser.add_argument("--period", type=float, default=0.2, help="seconds between memory samples")
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--work-dir", type=Path, default=BENCH / "work")
    parser.add_argument("--keep", action="store_true", help="keep the report, rejects and logs under --work-dir")
    parser.add_argument("--regenerate", action="store_true", help="write the file again even if it exists")
    parser.add_argument("--rebuild-template", action="store_true")
    parser.add_argument("--sifc-at", metavar="REF",
                        help="run sifc import as git revision REF has it (a worktree under --work-dir, its own "
                             "template), e.g. while the working tree is being edited")
    parser.add_argument("--no-calibrate", action="store_true",
                        help="skip the 100,000-parcel calibration loads: the disk check then uses the file's "
                             "size only, plus the WAL headroom (not recommended)")
    return parser.parse_args(argv)


def _free(path: Path) -> tuple[int, int]:
    """(device, bytes free to an unprivileged writer) of the file system holding ``path`` or its nearest parent."""
    while not path.exists():
        path = path.parent
    stat = os.statvfs(path)
    return os.stat(path).st_dev, stat.f_bavail * stat.f_frsize


def _server_paths(server: Server) -> tuple[Path | None, Path | None, int, bool]:
    """The server's data and WAL directories when on this machine, ``max_wal_size`` in bytes, any replication slot.

    A replication slot may hold every byte of WAL an import writes until its subscriber catches up.
    """
    with server.admin() as conn:
        data = Path(conn.execute("SHOW data_directory").fetchone()[0])
        max_wal = int(conn.execute("SELECT setting::bigint * 1024 * 1024 FROM pg_settings "
                                   "WHERE name = 'max_wal_size'").fetchone()[0])
        slots = conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0]
    if not data.exists():
        return None, None, max_wal, bool(slots)
    return data, (data / "pg_wal").resolve(), max_wal, bool(slots)


def _generate(server: Server, args: argparse.Namespace, parcels: int, *, force: bool = False):
    """The dataset, generated in a child process when missing.

    The harness stays small so: the peak RSS ``wait4`` reports for a child counts the image it was
    forked from (Linux keeps the high-water mark across ``execve``), here the harness at spawn time.
    """
    options = ["--parcels", str(parcels), "--defect-rate", str(args.defect_rate), "--seed", str(args.seed),
               "--per-commune", str(args.per_commune), "--format", "gpkg", "--data-dir", str(args.data_dir)]
    done = subprocess.run([sys.executable, "-m", "bench.import_bench", "generate", *options,
                           *(["--regenerate"] if force else [])], cwd=REPO, stdout=sys.stderr)
    if done.returncode != 0:
        raise SystemExit(f"generating {parcels} parcels failed ({done.returncode})")
    return generate(args.data_dir, parcels=parcels, defect_rate=args.defect_rate, seed=args.seed,
                    admin_url=server.url(TEMPLATE), per_commune=args.per_commune, fmt="gpkg", log=log)


def calibrate(server: Server, args: argparse.Namespace, methods: list[str], work: Path,
              revisions: dict) -> dict[str, float]:
    """Bytes per parcel each load leaves on the server, from one load of 100,000 parcels of the same layout."""
    parcels = min(CALIBRATION_PARCELS, args.parcels)
    dataset = _generate(server, args, parcels)
    ctx = _context(server, dataset, work / "calibration", keep=False)
    ctx.revisions = revisions
    per_parcel: dict[str, float] = {"parcels": parcels}
    if "ogr2ogr" in methods:
        run = run_ogr2ogr(ctx, 0)
        sizes = run.sizes or {}
        per_parcel["ogr2ogr_table"] = max(sizes.get("database_peak_grew", 0), sizes.get("database_grew", 0)) / parcels
        per_parcel["ogr2ogr_wal"] = sizes.get("wal", 0) / parcels
    if "sifc" in methods:
        run = run_sifc(ctx, 0)
        if run.returncode != 0:
            raise SystemExit(f"calibration: sifc import of {parcels} parcels failed: {(run.error or '')[-300:]}")
        sizes = run.sizes or {}
        per_parcel["sifc_database"] = max(sizes.get("database_peak_grew", 0), sizes.get("database_grew", 0)) / parcels
        per_parcel["sifc_wal"] = sizes.get("wal", 0) / parcels
    log("calibration, bytes per parcel: " + ", ".join(f"{k} {v:,.0f}" for k, v in per_parcel.items()))
    return per_parcel


def disk_needed(args: argparse.Namespace, file_exists: bool, per_parcel: dict[str, float],
                server_paths: tuple[Path | None, Path | None, int, bool]) -> list[dict[str, Any]]:
    """What each file system must hold: one line per need, with where it goes."""
    data, wal_dir, max_wal, slots = server_paths
    n = args.parcels
    needs: list[dict[str, Any]] = []
    if not file_exists:
        features = n * (1 + 1.25 * args.defect_rate / 4 * 2)  # copies and slivers are extra features
        needs.append({"what": "the GeoPackage", "where": args.data_dir, "bytes": features * GPKG_BYTES_PER_FEATURE})
    if data is not None:
        for key, label in (("ogr2ogr_table", "ogr2ogr's table"), ("sifc_database", "sifc's database at its peak")):
            if key in per_parcel:
                needs.append({"what": label, "where": data, "bytes": SAFETY * per_parcel[key] * n})
        wal = 2 * max_wal
        if slots:  # the WAL of the whole import may stay
            wal += SAFETY * max(per_parcel.get("sifc_wal", 0), per_parcel.get("ogr2ogr_wal", 0)) * n
        needs.append({"what": "WAL headroom", "where": wal_dir, "bytes": wal})
    return needs


def check_disk(needs: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the needs per file system; refuse in one line when one of them lacks the room."""
    by_device: dict[int, dict[str, Any]] = {}
    for need in needs:
        device, free = _free(Path(need["where"]))
        entry = by_device.setdefault(device, {"free": free, "needed": 0.0, "paths": set(), "what": []})
        entry["needed"] += need["bytes"]
        entry["paths"].add(str(need["where"]))
        entry["what"].append(f"{need['what']} {need['bytes'] / GIB:.1f} GiB")
    for entry in by_device.values():
        if entry["needed"] > entry["free"]:
            raise SystemExit(f"bench-10m: needs {entry['needed'] / GIB:.1f} GiB free on the file system of "
                             f"{', '.join(sorted(entry['paths']))} ({'; '.join(entry['what'])}), df says "
                             f"{entry['free'] / GIB:.1f} GiB: free some space or lower --parcels")
    return {str(device): {"free_gib": round(e["free"] / GIB, 1), "needed_gib": round(e["needed"] / GIB, 1),
                          "paths": sorted(e["paths"]), "what": e["what"]} for device, e in by_device.items()}


def _context(server: Server, dataset, work: Path, *, keep: bool) -> Context:
    work.mkdir(parents=True, exist_ok=True)
    truth = json.loads(dataset.truth_json.read_text())
    return Context(server, dataset, truth, work, keep, sample=True, run_database=RUN_DATABASE,
                   plain=PLAIN_DATABASE)


def _ensure_plain(server: Server) -> None:
    from psycopg import sql

    if not server.exists(PLAIN_DATABASE):
        with server.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PLAIN_DATABASE)))
    with server.admin(PLAIN_DATABASE) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def render_markdown(result: dict[str, Any]) -> str:
    d = result["dataset"]
    lines = [f"# Import of {d['parcels']:,} parcels ({d['features']:,} features, {len(d['communes'])} communes) "
             "— memory of the whole process tree", "",
             f"{result['started']} · one run each, in this order: {', '.join(result['methods'])} · "
             f"`{d['file']}` ({d['file_bytes'] / GIB:.2f} GiB, GeoPackage) · defects {d['defect_counts']} · "
             f"memory sampled every {result['period_s']} s", "",
             "| method | wall (s) | process tree, peak RSS (MiB) | largest process, peak RSS (wait4, MiB) | "
             "PostgreSQL backends, peak RSS (MiB) | backends, peak PSS (MiB) | tree + backends RSS (MiB) | "
             "left on the server (GiB) | WAL (GiB) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        m, sizes = r.get("memory") or {}, r.get("sizes") or {}
        wall = f"{r['wall_s']:.1f}" + ("" if r["returncode"] == 0 else f" ✗ (exit {r['returncode']})")
        lines.append(f"| {r['method']} | {wall} | {_mib(m.get('tree_rss_peak_mib'))} | {_mib(r['max_rss_mib'])} | "
                     f"{_mib(m.get('backends_rss_peak_mib'))} ({m.get('backends_peak', 0)} backends) | "
                     f"{_mib(m.get('backends_pss_peak_mib'))} | {_mib(m.get('tree_and_backends_rss_peak_mib'))} | "
                     f"{sizes.get('database_grew', 0) / GIB:.2f} | {sizes.get('wal', 0) / GIB:.2f} |")
    s = result["summary"]
    lines += ["", "| measure | value | verdict |", "|---|---|---|"]
    if s.get("ratio_sifc_ogr2ogr"):
        lines.append(f"| wall time sifc / ogr2ogr | {s['ratio_sifc_ogr2ogr']:.2f} | – |")
    if s.get("tree_peak_mib") is not None:
        lines.append(f"| sifc import's process tree, peak RSS < 1.5 GB | {s['tree_peak_mib']:,.0f} MiB "
                     f"({s['tree_peak_mib'] * MIB / 1e9:.2f} GB) | {'met' if s['tree_ok'] else 'missed'} |")
    for r in result["runs"]:
        if r.get("check"):
            c = r["check"]
            found = ", ".join(f"{k} {v['found']}/{v['injected']}" for k, v in c["by_kind"].items())
            lines.append(f"| ground truth ({r['method']}: report and rejects file) | defects found {found}; missed "
                         f"{c['missed']}, wrong {c['wrong']}, not injected {c['unexpected']} | "
                         f"{'OK' if c['ok'] else 'FAILED'} |")
            lines += [f"  - {line}" for line in c["differences"][:8]]
    disk = result["disk"]
    lines += ["", "Disk checked first: " + "; ".join(
        f"{', '.join(v['paths'])}: {v['needed_gib']} GiB needed ({', '.join(v['what'])}), {v['free_gib']} GiB free"
        for v in disk["file_systems"].values()) + ".",
        "Calibration (bytes per parcel, at " + f"{disk['per_parcel'].get('parcels', 0):,.0f} parcels): "
        + ", ".join(f"{k} {v:,.0f}" for k, v in disk["per_parcel"].items() if k != "parcels")
        + f"; safety factor {SAFETY}."]
    lines += ["", "The process tree is sampled (the sums at one instant); the largest process's peak is "
              "`wait4`'s, exact but never below the harness's own size when it spawned the child (Linux keeps the "
              "high-water mark of the forked image across `execve`). Backends: those of the run's database in "
              "`pg_stat_activity` (client backends and parallel workers).",
              f"Commands: ogr2ogr `{result['commands']['ogr2ogr']}`; sifc `{result['commands']['sifc']}`."]
    env = result["environment"]
    lines += ["", f"Machine: {env['machine']['cpus']} CPUs, {env['machine']['memory_gib']} GiB; "
              f"PostgreSQL {env['versions']['postgresql']}; {env['versions']['ogr2ogr']}.",
              code_line(env["git"]), ""]
    return "\n".join(lines)


def summarize(runs: list[Run]) -> dict[str, Any]:
    by = {r.method: r for r in runs}
    summary: dict[str, Any] = {}
    if "sifc" in by and "ogr2ogr" in by and by["sifc"].returncode == 0 and by["ogr2ogr"].returncode == 0:
        summary["ratio_sifc_ogr2ogr"] = by["sifc"].wall_s / by["ogr2ogr"].wall_s
    sifc = by.get("sifc")
    if sifc is not None and sifc.memory:
        summary["tree_peak_mib"] = sifc.memory["tree_rss_peak_mib"]
        summary["tree_ok"] = sifc.memory["tree_rss_peak_mib"] * MIB < MAX_TREE_BYTES
    summary["truth_ok"] = sifc.check["ok"] if sifc is not None and sifc.check else None
    return summary


def main(argv: list[str]) -> int:
    args = parse(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods or set(methods) - set(METHODS) or len(set(methods)) != len(methods):
        raise SystemExit(f"--methods: one or both of {', '.join(METHODS)}, each once")
    server = Server.from_environment()
    if "ogr2ogr" in methods:
        ensure_ogr2ogr()
    server.ensure_template(rebuild=args.rebuild_template, log=log)
    _ensure_plain(server)
    server.drop(RUN_DATABASE)
    revisions = {}
    if args.sifc_at:
        revision = materialise(args.sifc_at, args.work_dir, log=log)
        revisions["sifc"] = (revision, server.ensure_template(rebuild=args.rebuild_template, log=log,
                                                             revision=revision))
    started = dt.datetime.now(dt.UTC)
    stem = dataset_name(args.parcels, args.defect_rate, args.seed, per_commune=args.per_commune, fmt="gpkg")
    file = args.data_dir / f"{stem}{FORMATS['gpkg'][1]}"
    work = args.work_dir / f"big-{args.parcels}-{started:%Y%m%d-%H%M%S}"
    per_parcel = {} if args.no_calibrate else calibrate(server, args, methods, work, revisions)
    file_exists = file.exists() and not args.regenerate and (args.data_dir / f"{stem}.truth.json").exists()
    needs = disk_needed(args, file_exists, per_parcel, _server_paths(server))
    file_systems = check_disk(needs)
    log("disk: " + "; ".join(f"{', '.join(v['paths'])}: {v['needed_gib']} GiB needed, {v['free_gib']} GiB free"
                             for v in file_systems.values()))
    dataset = _generate(server, args, args.parcels, force=args.regenerate)
    ctx = _context(server, dataset, work, keep=args.keep)
    ctx.revisions = revisions
    ctx.period = args.period
    runs: list[Run] = []
    for method in methods:
        log(f"{method}: loading {dataset.file.name}")
        run = run_ogr2ogr(ctx, 1) if method == "ogr2ogr" else run_sifc(ctx, 1)
        runs.append(run)
        memory = run.memory or {}
        log(f"{method}: {run.wall_s:.1f} s, process tree {memory.get('tree_rss_peak_mib')} MiB, backends RSS "
            f"{memory.get('backends_rss_peak_mib')} MiB (PSS {memory.get('backends_pss_peak_mib')} MiB)"
            + (f", exit {run.returncode}" if run.returncode else "")
            + ("" if run.check is None else " truth " + ("OK" if run.check["ok"] else "FAILED")))
        if run.error:
            log("    " + run.error.replace("\n", "\n    ")[-800:])
    truth = ctx.truth
    result = {"started": f"{started:%Y-%m-%d %H:%M} UTC", "methods": methods, "period_s": args.period,
              "dataset": {"file": dataset.file.name, "file_bytes": dataset.file.stat().st_size,
                          "parcels": dataset.parcels, "features": dataset.features,
                          "per_commune": args.per_commune, "communes": dataset.communes,
                          "defect_counts": truth["defect_counts"], "defect_rate": truth["defect_rate"],
                          "seed": truth["seed"]},
              "commands": {"ogr2ogr": "ogr2ogr -f PostgreSQL PG:... FILE.gpkg -nln bench_ogr_1 -nlt PROMOTE_TO_MULTI "
                                      "-lco GEOMETRY_NAME=geom -lco SPATIAL_INDEX=GIST --config PG_USE_COPY YES "
                                      "-overwrite",
                           "sifc": "sifc import parcels FILE.gpkg --report R.json --rejects R.gpkg (fresh database)"
                                   + (f" at {revisions['sifc'][0].commit} ({args.sifc_at})" if revisions else "")},
              "disk": {"per_parcel": per_parcel, "safety": SAFETY, "file_systems": file_systems,
                       "needs": [{**n, "where": str(n["where"])} for n in needs]},
              "environment": _environment(server),
              "runs": [asdict(r) for r in runs],
              "summary": summarize(runs)}
    markdown = render_markdown(result)
    print(markdown)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"import-{dataset.parcels}-{started:%Y%m%d-%H%M%S}"
    out.with_suffix(".json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    out.with_suffix(".md").write_text(markdown)
    log(f"results: {out}.md / .json")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if any(r.returncode != 0 for r in runs):
        return 2
    return 1 if result["summary"]["truth_ok"] is False else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
