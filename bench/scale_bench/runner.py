"""One run: each operation timed at every scale, alternating, and how its time grows with the data it touches.

The databases are ``bench.serve_bench``'s for ``--scales`` (``sifc_bench_serve_<N>``, loaded one
commune file at a time, kept between runs). Each operation is run as users run it:

- ``export-gpkg``, ``export-geojson``: ``sifc export parcels FILE --commune CODE`` (the command line,
  a child process, as the service role); ``export-http``: ``GET /communes/{code}/parcels/export``
  (GeoJSON, streamed) from ``sifc serve``;
- ``dashboard``, ``dashboard-pdf``: ``GET /dashboards/pole/{code}`` and its ``.pdf`` from ``sifc serve``;
  ``dashboard-commune``: ``GET /dashboards/commune/{code}`` of the exported commune;
- ``overlaps``: ``GET /communes/{code}/overlaps`` from ``sifc serve``;
- ``backup``: ``sifc db backup FILE`` (``pg_dump`` custom format), ``restore``: ``sifc db restore FILE
  --database sifc_bench_scale_restore`` into a new database (dropped afterwards, untimed).

The cheap ones run ``--runs`` times after ``--warmup`` untimed runs per scale; backup and restore
``--dump-runs`` times. Within a run, the scales alternate and their order rotates from run to run.
For each operation: the median time at each scale, the size of the data it touches at each
(the commune's current parcels, the pole's, the database's bytes), and the exponent
``log(t_N / t_1) / log(size_N / size_1)``, which stays at or below 1 when the time grows no faster
than that data. Where the data touched is the same at both scales (a commune of the same size), the
exponent is taken against the registry's size instead, which should be near 0.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.import_bench.databases import REPO, Server
from bench.revision import code_line
from bench.serve_bench import database, servers
from bench.serve_bench.runner import _git

OPERATIONS = ("export-gpkg", "export-geojson", "export-http", "dashboard", "dashboard-pdf", "dashboard-commune",
              "overlaps", "backup", "restore")
TOUCHES = {"export-gpkg": "commune", "export-geojson": "commune", "export-http": "commune", "overlaps": "commune",
           "dashboard": "pole", "dashboard-pdf": "pole", "dashboard-commune": "commune", "backup": "database",
           "restore": "database"}
EXPENSIVE = ("backup", "restore")
HTTP_PATHS = {"export-http": "/communes/{commune}/parcels/export", "dashboard": "/dashboards/pole/{pole}",
              "dashboard-pdf": "/dashboards/pole/{pole}.pdf", "dashboard-commune": "/dashboards/commune/{commune}",
              "overlaps": "/communes/{commune}/overlaps"}
MAX_EXPONENT = 1.1
"""Flagged above: the time grows faster than the data the operation touches."""
MAX_SAME_DATA_GROWTH = 1.25
"""Where the data touched does not grow, flagged when the time grows by more than this (target 3's bound)."""
RESTORED = "sifc_bench_scale_restore"
SIFC = str(REPO / ".venv" / "bin" / "sifc")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Scale:
    """One registry size: its database, its service, the sizes of the data the operations touch."""

    parcels: int
    database: str
    service_url: str
    admin_url: str
    work: Path
    service: servers.Service | None = None
    sizes: dict[str, int] | None = None


def measure_sizes(scale: Scale, commune: str, pole: str) -> dict[str, int]:
    """Rows of the commune and of the pole (current parcels), the whole registry, the database in bytes."""
    with psycopg.connect(scale.admin_url, connect_timeout=10) as conn:
        def one(statement: str, **params: Any) -> int:
            return int(conn.execute(statement, params).fetchone()[0])
        return {
            "commune": one("SELECT count(*) FROM parcel WHERE commune_code = %(c)s", c=commune),
            "pole": one("""SELECT count(*) FROM parcel p JOIN commune c ON c.code = p.commune_code
                           JOIN region r ON r.code = c.region_code WHERE r.pole_code = %(p)s""", p=pole),
            "parcels": one("SELECT count(*) FROM parcel"),
            "parcel_versions": one("SELECT count(*) FROM parcel_version"),
            "database": one("SELECT pg_database_size(current_database())"),
        }


def _pole_of(url: str, commune: str) -> str:
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SELECT r.pole_code FROM commune c JOIN region r ON r.code = c.region_code "
                           "WHERE c.code = %s", (commune,)).fetchone()
    if row is None:
        raise SystemExit(f"commune {commune} unknown")
    return str(row[0])


def _child(command: list[str], env: dict[str, str]) -> float:
    """Run a command to its end; its wall time. A failure stops the run with its output."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-2000:])
        raise SystemExit(f"{' '.join(command[1:4])} failed ({done.returncode})")
    return seconds


def _http(url: str) -> tuple[float, int]:
    """GET to the last byte: wall time and body size; anything but 200 stops the run."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=3600) as response:
            size = 0
            while chunk := response.read(1 << 20):
                size += len(chunk)
            status = response.status
    except urllib.error.HTTPError as error:
        raise SystemExit(f"GET {url}: {error.code} {error.read()[:300]!r}") from error
    if status != 200:
        raise SystemExit(f"GET {url}: {status}")
    return time.perf_counter() - started, size


def _environment(scale: Scale) -> dict[str, str]:
    return dict(os.environ, SIFC_DATABASE_URL=scale.service_url, SIFC_ADMIN_DATABASE_URL=scale.admin_url,
                SIFC_ENVIRONMENT="development")


def _drop_restored(server: Server) -> None:
    server.drop(RESTORED)
    with server.admin() as conn:
        conn.execute("CHECKPOINT")


def run_operation(name: str, scale: Scale, *, commune: str, pole: str, server: Server) -> dict[str, Any]:
    """One timed run of operation ``name`` at ``scale``: seconds, and the bytes it produced."""
    env = _environment(scale)
    out = scale.work / "out"
    out.mkdir(parents=True, exist_ok=True)
    if name in ("export-gpkg", "export-geojson"):
        target = out / f"export-{commune}.{name.removeprefix('export-')}"
        seconds = _child([SIFC, "export", "parcels", str(target), "--commune", commune, "--overwrite"], env)
        return {"seconds": seconds, "bytes": target.stat().st_size}
    if name == "backup":
        target = scale.work / "backup.dump"
        target.unlink(missing_ok=True)
        seconds = _child([SIFC, "db", "backup", str(target)], env)
        return {"seconds": seconds, "bytes": target.stat().st_size}
    if name == "restore":
        dump = scale.work / "backup.dump"
        if not dump.exists():
            log(f"{scale.parcels:,}: no dump yet, one made first (untimed)")
            _child([SIFC, "db", "backup", str(dump)], env)
        _drop_restored(server)
        seconds = _child([SIFC, "db", "restore", str(dump), "--database", RESTORED], env)
        with psycopg.connect(server.url(RESTORED), connect_timeout=10) as conn:
            restored = conn.execute("SELECT count(*) FROM parcel").fetchone()[0]
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        _drop_restored(server)
        if scale.sizes and restored != scale.sizes["parcels"]:
            raise SystemExit(f"restore at {scale.parcels:,}: {restored} parcels, {scale.sizes['parcels']} expected")
        return {"seconds": seconds, "bytes": size, "dump_bytes": dump.stat().st_size}
    assert scale.service is not None
    seconds, size = _http(scale.service.base + HTTP_PATHS[name].format(commune=commune, pole=pole))
    return {"seconds": seconds, "bytes": size}


def exponent(t_small: float, t_big: float, size_small: float, size_big: float) -> float | None:
    """``log(t_big / t_small) / log(size_big / size_small)``; None where the size does not grow (by 5 % or more)."""
    if size_small <= 0 or size_big / size_small < 1.05 or t_small <= 0:
        return None
    return math.log(t_big / t_small) / math.log(size_big / size_small)


def summarize(runs: list[dict[str, Any]], scales: list[Scale], operations: list[str]) -> dict[str, Any]:
    """Per operation: median seconds at each scale, the sizes touched, the ratios and exponents, the flag."""
    base, rest = scales[0], scales[1:]
    summary: dict[str, Any] = {}
    for name in operations:
        touched = TOUCHES[name]
        by_scale = {}
        for scale in scales:
            mine = [r for r in runs if r["operation"] == name and r["scale"] == scale.parcels]
            by_scale[scale.parcels] = {
                "seconds": statistics.median(r["seconds"] for r in mine) if mine else None,
                "runs": [round(r["seconds"], 3) for r in mine],
                "bytes": statistics.median(r["bytes"] for r in mine) if mine else None,
                "touched": scale.sizes[touched] if scale.sizes else None,  # type: ignore[index]
            }
        growth = {}
        for scale in rest:
            small, big = by_scale[base.parcels], by_scale[scale.parcels]
            if not (small["seconds"] and big["seconds"]):
                continue
            ratio = big["seconds"] / small["seconds"]
            e_touched = exponent(small["seconds"], big["seconds"], small["touched"], big["touched"])
            e_total = exponent(small["seconds"], big["seconds"], base.sizes["parcels"],  # type: ignore[index]
                               scale.sizes["parcels"])  # type: ignore[index]
            same_data = e_touched is None
            flagged = ratio > MAX_SAME_DATA_GROWTH if same_data else e_touched > MAX_EXPONENT  # type: ignore[operator]
            growth[f"{scale.parcels}/{base.parcels}"] = {
                "time_ratio": ratio, "touched_ratio": big["touched"] / small["touched"] if small["touched"] else None,
                "exponent_touched": e_touched, "exponent_total": e_total, "same_data": same_data,
                "flagged": flagged}
        summary[name] = {"touches": touched, "scales": by_scale, "growth": growth}
    return summary


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "–" if value is None else pattern.format(value)


def _size(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "database":
        return f"{value / 2**30:.2f} GiB"
    return f"{int(value):,} parcels"


def render_markdown(result: dict[str, Any]) -> str:
    scales = result["scales"]
    base = scales[0]
    lines = [f"# Scale benchmark at {' and '.join(f'{n:,}' for n in scales)} parcels", "",
             f"{result['started']} · commune {result['commune']}, pole {result['pole']} · medians of "
             f"{result['runs']} runs ({result['dump_runs']} for backup and restore), the scales alternating · "
             f"{result['per_commune']:,} parcels per commune", "",
             "| operation | touches | " + " | ".join(f"s at {n:,} (runs)" for n in scales) + " | "
             + " | ".join(f"touched at {n:,}" for n in scales) + " | time ratio | exponent vs touched | "
             "exponent vs registry | verdict |",
             "|---|---|" + "---|" * (2 * len(scales)) + "---|---|---|---|"]
    for name, op in result["summary"].items():
        for _, g in op["growth"].items() or {"": None}.items():
            cells = [f"{_fmt(op['scales'][n]['seconds'], '{:.3f}')} ({', '.join(map(str, op['scales'][n]['runs']))})"
                     for n in scales]
            sizes = [_size(op["scales"][n]["touched"], op["touches"]) for n in scales]
            if g is None:
                lines.append(f"| {name} | {op['touches']} | " + " | ".join(cells + sizes) + " | – | – | – | – |")
                continue
            verdict = ("FASTER THAN ITS DATA" if g["flagged"] else "ok") + (" (same data touched: time ratio ≤ "
                                                                            f"{MAX_SAME_DATA_GROWTH})"
                                                                            if g["same_data"] else "")
            lines.append(f"| {name} | {op['touches']} | " + " | ".join(cells + sizes) + f" | {g['time_ratio']:.2f} | "
                         f"{_fmt(g['exponent_touched'])} | {_fmt(g['exponent_total'])} | {verdict} |")
    lines += ["", f"Exponent: log(t_N / t_{base:,}) / log(size_N / size_{base:,}); above {MAX_EXPONENT} against the "
                  "data touched, the time grows faster than that data. Where the data touched is the same at both "
                  "scales the exponent against it is undefined: the time ratio itself is judged "
                  f"(≤ {MAX_SAME_DATA_GROWTH}), and the exponent against the registry's size should be near 0.", ""]
    lines.append("Sizes: " + "; ".join(
        f"{n:,}: {s['parcels']:,} current parcels, {s['parcel_versions']:,} versions, database "
        f"{s['database'] / 2**30:.2f} GiB, commune {s['commune']:,}, pole {s['pole']:,}"
        for n, s in ((int(k), v) for k, v in result["sizes"].items())))
    produced = {name: {n: op["scales"][n]["bytes"] for n in scales} for name, op in result["summary"].items()}
    lines.append("Bytes produced (file, body, dump, restored database): " + "; ".join(
        f"{name} " + " / ".join(_fmt(v / 2**20 if v else None, "{:.1f}") + " MiB" for v in by.values())
        for name, by in produced.items()))
    env = result["environment"]
    lines += ["", f"Machine: {env['cpus']} CPUs, shared with other jobs; PostgreSQL "
              f"{result['versions']['postgresql']}, PostGIS {result['versions']['postgis']}.",
              code_line(result["git"]), ""]
    return "\n".join(lines)


def main(args) -> int:
    from bench.serve_bench.scales import parse_scales

    operations = [o.strip() for o in args.operations.split(",") if o.strip()]
    if set(operations) - set(OPERATIONS):
        raise SystemExit(f"unknown operations {set(operations) - set(OPERATIONS)} (known: {', '.join(OPERATIONS)})")
    server = Server.from_environment()
    started = dt.datetime.now(dt.UTC)
    work = args.work_dir / f"scale-{started:%Y%m%d-%H%M%S}"
    scales: list[Scale] = []
    for n in parse_scales(args.scales):
        loaded = database.ensure_scale(server, parcels=n, per_commune=args.per_commune, seed=args.seed,
                                       data_dir=args.data_dir, rebuild=args.rebuild, log=log)
        scales.append(Scale(n, loaded.database, server.url(loaded.database, service=True),
                            server.url(loaded.database), work / str(n)))
    commune = args.commune or database.scale_communes(scales[0].admin_url, 1, args.per_commune)[0]
    pole = args.pole or _pole_of(scales[0].admin_url, commune)
    for scale in scales:
        scale.work.mkdir(parents=True, exist_ok=True)
        scale.sizes = measure_sizes(scale, commune, pole)
        log(f"{scale.parcels:,}: {scale.sizes}")
    served = [o for o in operations if o in HTTP_PATHS]
    runs: list[dict[str, Any]] = []

    def timed(name: str, scale: Scale, number: int) -> None:
        result = run_operation(name, scale, commune=commune, pole=pole, server=server)
        runs.append({"operation": name, "scale": scale.parcels, "run": number, **result})
        log(f"run {number} {name:<15} {scale.parcels:>12,}  {result['seconds']:9.3f} s  {result['bytes']:,} bytes")

    try:
        if served:
            for scale in scales:
                scale.service = servers.sifc(scale.service_url, scale.admin_url, pool_size=args.pool_size,
                                             work=scale.work)
                scale.service.start()
        cheap = [o for o in operations if o not in EXPENSIVE]
        for scale in scales:
            for _ in range(args.warmup):
                for name in cheap:
                    run_operation(name, scale, commune=commune, pole=pole, server=server)
        for number in range(1, args.runs + 1):
            shift = (number - 1) % len(scales)
            for name in cheap:
                for scale in scales[shift:] + scales[:shift]:
                    timed(name, scale, number)
        for number in range(1, args.dump_runs + 1):
            shift = (number - 1) % len(scales)
            for name in [o for o in ("backup", "restore") if o in operations]:
                for scale in scales[shift:] + scales[:shift]:
                    timed(name, scale, number)
    finally:
        for scale in scales:
            if scale.service is not None:
                scale.service.stop()
        if "restore" in operations:
            server.drop(RESTORED)
    with psycopg.connect(scales[0].admin_url, autocommit=True, connect_timeout=10) as conn:
        versions = {"postgresql": conn.execute("SHOW server_version").fetchone()[0],
                    "postgis": conn.execute("SELECT postgis_lib_version()").fetchone()[0]}
    result: dict[str, Any] = {
        "started": f"{started:%Y-%m-%d %H:%M} UTC", "scales": [s.parcels for s in scales],
        "per_commune": args.per_commune, "commune": commune, "pole": pole, "runs": args.runs,
        "dump_runs": args.dump_runs, "warmup": args.warmup, "operations": operations,
        "sizes": {str(s.parcels): s.sizes for s in scales}, "databases": {str(s.parcels): s.database for s in scales},
        "versions": versions, "environment": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "git": _git(), "runs_detail": runs}
    result["summary"] = summarize(runs, scales, operations)
    markdown = render_markdown(result)
    print(markdown)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"scale-{started:%Y%m%d-%H%M%S}"
    (args.results_dir / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    (args.results_dir / f"{stem}.md").write_text(markdown)
    log(f"results: {args.results_dir / stem}.md / .json")
    return 0
