"""``--scales``: the same cases at several registry sizes in one run, the sizes alternating.

Each scale has its own database (``sifc_bench_serve_<N>``, :func:`database.ensure_scale`: N parcels,
``--per-commune`` in each commune, one ``sifc import parcels`` per commune), its own inputs drawn
the same way (bboxes around every commune's parcels, points and z16 tiles from every parcel), and
its own services (our ``sifc serve`` and TiPg) and pgbench script. In each round every case runs at
every scale and side, the order rotating from round to round, so the load of a shared machine falls
on every scale alike. The issue's target: at the largest scale, our requests/s at least 1 / 1.25 of
the smallest scale's and the p99 at most 1.25 times it, still ahead of TiPg by the serving targets
and within the same fraction of pgbench.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg

from bench.import_bench.databases import Server
from bench.revision import code_line
from bench.serve_bench import database, load, servers
from bench.serve_bench import inputs as inputs_module
from bench.serve_bench.capture import capture
from bench.serve_bench.runner import (
    CASES,
    _fmt,
    _git,
    _paired,
    _paths,
    _sides,
    alternate,
    check_bodies,
    log,
    summarize,
    tiles_available,
    wrk_side,
)

MAX_SLOWDOWN = 1.25
"""Largest scale against the smallest: requests/s at least 1 / 1.25 of it, p99 at most 1.25 times it."""


def parse_scales(text: str) -> list[int]:
    scales = sorted({int(x.replace("_", "")) for x in text.split(",") if x.strip()})
    if len(scales) < 2:
        raise SystemExit("--scales: at least two sizes, e.g. 1000000,10000000")
    return scales


def _label(side: str, scale: int) -> str:
    return f"{side}/{scale}"


def _loads(loaded: database.Loaded) -> dict[str, Any]:
    """Each commune's first import into the growing registry: the first, the median and the last."""
    seconds = [x["seconds"] for x in loaded.loads]
    if not seconds:
        return {}
    return {"communes": len(seconds), "first_s": seconds[0], "median_s": statistics.median(seconds),
            "last_s": seconds[-1], "total_s": round(sum(seconds), 1), "each": loaded.loads}


def _fraction(sides: dict[str, Any]) -> float | None:
    """Our service's rate over pgbench's on the same statement, in one case at one size."""
    ours, database = sides.get("sifc"), sides.get("pgbench")
    return ours["rate"] / database["rate"] if ours and database and ours["rate"] and database["rate"] else None


def summarize_scales(results: list[load.Result], scales: list[int]) -> dict[str, Any]:
    """Per scale, the one-scale summary (sides, ratios, the serving targets); then each larger scale
    against the smallest, per case and side, and the targets of the issue."""
    per_scale = {n: summarize([r for r in results if r.scale == n]) for n in scales}
    base = scales[0]
    growth: dict[str, dict[str, Any]] = {}
    targets: list[dict[str, Any]] = []
    for n in scales[1:]:
        key = f"{n}/{base}"
        for case, sides in per_scale[n]["sides"].items():
            small_sides = per_scale[base]["sides"].get(case, {})
            for side, big in sides.items():
                small = small_sides.get(side)
                if small is None:
                    continue
                ratio = {k: big[k] / small[k] if big[k] is not None and small[k] else None
                         for k in ("rate", "p50_ms", "p99_ms", "cpu_ms_per_request")}
                ratio["rate_paired"] = _paired([r for r in results if (r.case, r.side, r.scale) == (case, side, n)],
                                               [r for r in results if (r.case, r.side, r.scale) == (case, side, base)])
                growth.setdefault(key, {}).setdefault(case, {})[side] = ratio
            ours = growth.get(key, {}).get(case, {}).get("sifc")
            if ours and ours["rate"] is not None:
                targets.append({"case": case, "what": f"sifc req/s, {key}", "value": ours["rate"],
                                "minimum": round(1 / MAX_SLOWDOWN, 3), "ok": ours["rate"] >= 1 / MAX_SLOWDOWN})
            if ours and ours["p99_ms"] is not None:
                targets.append({"case": case, "what": f"sifc p99, {key}", "value": ours["p99_ms"],
                                "maximum": MAX_SLOWDOWN, "ok": ours["p99_ms"] <= MAX_SLOWDOWN})
            # The same fraction of pgbench at both scales: the fraction at N over the fraction at the base.
            fractions = [_fraction(per_scale[m]["sides"].get(case, {})) for m in (n, base)]
            if None not in fractions:
                growth.setdefault(key, {}).setdefault(case, {})["fraction_of_pgbench"] = fractions[0] / fractions[1]
        for t in per_scale[n]["targets"]:  # the serving targets (TiPg, pgbench, the point's p99) at N
            targets.append({"case": t["case"], "what": f"{t['ratio']} at {n:,}", "value": t["value"],
                            **{k: t[k] for k in ("minimum", "maximum") if k in t}, "ok": t["ok"]})
    return {"per_scale": per_scale, "growth": growth, "targets": targets}


def render_markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    scales = result["scales"]
    lines = [f"# Serving benchmark at {' and '.join(f'{n:,}' for n in scales)} parcels", "",
             f"{result['started']} · {result['rounds']} alternating rounds of {result['duration_s']} s per side and "
             f"scale · {result['connections']} clients, {result['threads']} client threads · 1 uvicorn worker each · "
             f"database pool {result['pool_size']} each · {result['per_commune']:,} parcels per commune, one "
             "`sifc import parcels` per commune", "",
             "| case | side | scale | req/s (median) | rounds | p50 ms | p99 ms | errors | server CPU ms/req "
             "| bytes/req |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for case in result["cases"]:
        for side in result["sides"]:
            for n in scales:
                m = s["per_scale"][n]["sides"].get(case, {}).get(side)
                if m is None:
                    continue
                lines.append(f"| {case} | {side} | {n:,} | {_fmt(m['rate'])} | {', '.join(map(str, m['rates']))} | "
                             f"{_fmt(m['p50_ms'], '{:.2f}')} | {_fmt(m['p99_ms'], '{:.2f}')} | {m['errors']} | "
                             f"{_fmt(m['cpu_ms_per_request'], '{:.2f}')} | {_fmt(m['bytes_per_request'], '{:.0f}')} |")
    for key, by_case in s["growth"].items():
        lines += ["", f"Growth, {key.replace('/', ' parcels over ')} (req/s below 1 and latencies above 1: slower at "
                      "the larger scale):", "",
                  "| case | side | req/s | req/s, median of the rounds' ratios | p50 | p99 | server CPU/req | "
                  "fraction of pgbench |", "|---|---|---|---|---|---|---|---|"]
        for case, sides in by_case.items():
            for side, r in sides.items():
                if side == "fraction_of_pgbench":
                    continue
                lines.append(f"| {case} | {side} | {_fmt(r['rate'], '{:.3f}')} | {_fmt(r['rate_paired'], '{:.3f}')} | "
                             f"{_fmt(r['p50_ms'], '{:.3f}')} | {_fmt(r['p99_ms'], '{:.3f}')} | "
                             f"{_fmt(r['cpu_ms_per_request'], '{:.3f}')} | "
                             + (_fmt(sides.get('fraction_of_pgbench'), '{:.3f}') if side == "sifc" else "") + " |")
    lines += ["", "Ratios at each scale (the serving targets of 2026-11-28):", "",
              "| ratio | " + " | ".join(f"{n:,}" for n in scales) + " |", "|---|" + "---|" * len(scales)]
    names = sorted({k for n in scales for k in s["per_scale"][n]["ratios"]})
    lines += [f"| {name} | " + " | ".join(_fmt(s["per_scale"][n]["ratios"].get(name), "{:.2f}") for n in scales)
              + " |" for name in names]
    lines += ["", "| target | value | verdict |", "|---|---|---|"]
    for t in s["targets"]:
        bound = f"≥ {t['minimum']}" if "minimum" in t else f"≤ {t['maximum']}"
        lines.append(f"| {t['case']}: {t['what']} {bound} | {t['value']:.3f} | {'met' if t['ok'] else 'MISSED'} |")
    lines += ["", "Loading each scale: one `sifc import parcels` per commune file, into the registry as the communes "
                  "before it left it (the first import of each commune; `ANALYZE` after each, untimed):", "",
              "| scale | communes | first commune s | median s | last commune s | all imports s |",
              "|---|---|---|---|---|---|"]
    for n in scales:
        x = result["loads"][str(n)]
        lines.append(f"| {n:,} | {x.get('communes', '–')} | {_fmt(x.get('first_s'))} | {_fmt(x.get('median_s'))} | "
                     f"{_fmt(x.get('last_s'))} | {_fmt(x.get('total_s'), '{:.0f}')} |" if x else
                     f"| {n:,} | – | – | – | – | – |")
    for n in scales:
        checks = result["checks"][str(n)]
        lines.append("")
        lines.append(f"Answers checked at {n:,} on a sample before the rounds: "
                     + ("all right." if not checks["problems"] else f"{len(checks['problems'])} problems: "
                        + "; ".join(checks["problems"][:5])))
        if checks.get("items"):
            lines.append("- items: parcels per bbox (database / sifc"
                         + (" / TiPg" if "tipg" in checks["items"][0] else "") + "): "
                         + ", ".join("/".join(str(r[k]) for k in ("expected", "sifc", "tipg") if k in r)
                                     for r in checks["items"]))
    lines += ["", "Inputs per scale: " + "; ".join(
        f"{n:,}: {i['bboxes']} bboxes of side {i['bbox_side_m']:.0f} m (median {i['bbox_parcels_median']} parcels), "
        f"{i['points']} points, {i['tiles']} z16 tiles" for n, i in ((int(k), v) for k, v in result["inputs"].items()))]
    env = result["environment"]
    lines += ["", f"Machine: {env['cpus']} CPUs, shared with other jobs (alternating rounds spread their load); "
              f"PostgreSQL {result['versions']['postgresql']}.",
              code_line(result["git"]), ""]
    return "\n".join(lines)


@contextlib.contextmanager
def _up(service: servers.Service | None) -> Iterator[None]:
    """``service`` running for the block (started and stopped around it); nothing when None.

    A service started for each load opens its connections during the first second of it (16 connects, a
    few tens of milliseconds), at every size alike.
    """
    if service is None:
        yield
        return
    service.start()
    try:
        yield
    finally:
        service.stop()


def prepare(server: Server, n: int, args) -> tuple[database.Loaded, inputs_module.Inputs]:
    """The database of one scale, loaded if needed, and its inputs (drawn once, cached)."""
    loaded = database.ensure_scale(server, parcels=n, per_commune=args.per_commune, seed=args.seed,
                                   data_dir=args.data_dir, rebuild=args.rebuild, log=log)
    inp = inputs_module.load_or_draw(args.data_dir / f"serve-inputs-{n}-pc{args.per_commune}-s{args.seed}.json",
                                     server.url(loaded.database), count=args.inputs, seed=args.seed,
                                     dataset=loaded.dataset, log=log, spread=True,
                                     sample_pct=min(100.0, max(1.0, 400.0 * args.inputs / n)))
    return loaded, inp


def main(args) -> int:
    scales = parse_scales(args.scales)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if set(cases) - set(CASES):
        raise SystemExit(f"unknown cases {set(cases) - set(CASES)} (known: {', '.join(CASES)})")
    wanted = _sides(args)
    if any(side.startswith("sifc@") for side in wanted) or getattr(args, "database_url", None):
        raise SystemExit("--scales compares our service at several sizes: not with sifc@REF or --database-url")
    load.ensure_tool("wrk", "wrk", log)
    if "pgbench" in wanted:
        load.ensure_tool("pgbench", "postgresql-client", log)
    if "tipg" in wanted:
        servers.ensure_tipg(log)
    server = Server.from_environment()
    prepared = {n: prepare(server, n, args) for n in scales}
    started = dt.datetime.now(dt.UTC)
    work = args.work_dir / f"serve-scales-{started:%Y%m%d-%H%M%S}"
    paths = {n: _paths(inp, args.tile_properties) for n, (_, inp) in prepared.items()}
    for n, by_case in paths.items():
        for case, sides in by_case.items():
            for side, lines in sides.items():
                (work / str(n)).mkdir(parents=True, exist_ok=True)
                (work / str(n) / f"{case}.{side}.paths").write_text("\n".join(lines) + "\n")
    urls = {n: (server.url(loaded.database, service=True), server.url(loaded.database))
            for n, (loaded, _) in prepared.items()}
    services: dict[str, servers.Service] = {}
    for n in scales:
        services[_label("sifc", n)] = servers.sifc(*urls[n], pool_size=args.pool_size, work=work / str(n))
        if "tipg" in wanted:
            tipg = servers.tipg(urls[n][0], pool_size=args.pool_size, work=work / str(n))
            # TiPg starts once per load here (below), and on a view it would compute the collection's spatial and
            # time extents by scanning every parcel at each start: metadata only, which items and tiles do not use.
            tipg.env.update(TIPG_DB_SPATIAL_EXTENT="false", TIPG_DB_DATETIME_EXTENT="false")
            services[_label("tipg", n)] = tipg
    results: list[load.Result] = []
    checks: dict[str, Any] = {}
    sql: dict[str, dict[str, Any]] = {}
    try:
        # Every service keeps the connections it opened (TiPg its whole pool, min = max): four of them at once
        # and pgbench would take more than the server's 100 beside other users, so each service runs only for
        # its own loads and checks, started before and stopped after.
        for n in scales:
            sifc, tipg = services[_label("sifc", n)], services.get(_label("tipg", n))
            with _up(sifc), _up(tipg):
                if "tiles" in cases and not tiles_available(sifc.base, prepared[n][1]):
                    log(f"the tile route does not answer at {n:,}: the tiles case is skipped")
                    cases.remove("tiles")
                bases = {"sifc": sifc.base, **({"tipg": tipg.base} if tipg else {})}
                checks[str(n)] = check_bodies(bases, paths[n], prepared[n][1], cases)
            for problem in checks[str(n)]["problems"]:
                log(f"CHECK at {n:,}: {problem}")
        scripts: dict[tuple[str, int], Path] = {}
        for n in scales:
            inp = prepared[n][1]
            variables = {"items": [dict(zip(("x0", "y0", "x1", "y1"), b, strict=True)) for b in inp.bboxes],
                         "at": [{"lon": lon, "lat": lat} for lon, lat in inp.points],
                         "tiles": [{"z": z, "x": x, "y": y} for z, x, y in inp.tiles]}
            for case in cases if "pgbench" in wanted else []:
                try:
                    found = capture(urls[n][0], [paths[n][case]["sifc"][0]], [variables[case][0]])[0]
                except SystemExit as error:
                    log(f"{case} at {n:,}: statement not captured ({error}); no pgbench for it")
                    continue
                constants = {k: v for k, v in found.params.items() if k not in variables[case][0]}
                sql.setdefault(str(n), {})[case] = {"statement": found.statement, "constants": constants}
                scripts[(case, n)] = load.write_pgbench_script(work / str(n) / "pgbench", case, found.statement,
                                                               constants, variables[case])
        # Per case: every side at every scale, the scales of one side next to each other.
        sides_of = {case: [_label(side, n) for side in wanted for n in scales
                           if (side == "pgbench" and (case, n) in scripts)
                           or (side != "pgbench" and side in paths[n][case])] for case in cases}

        def one(case: str, label: str, number: int, duration: int) -> load.Result:
            side, n = label.rsplit("/", 1)[0], int(label.rsplit("/", 1)[1])
            if side == "pgbench":
                result = load.pgbench(urls[n][0], scripts[(case, n)], case=case, number=number, duration=duration,
                                      connections=args.connections, threads=args.threads,
                                      log_dir=work / str(n) / "pgbench")
            else:
                with _up(services[label]):
                    result = wrk_side(services[label], work / str(n) / f"{case}.{side}.paths", case=case, side=side,
                                      number=number, duration=duration, args=args)
            result.side, result.scale = side, n
            return result

        results = alternate(sides_of, one, rounds=args.rounds, warmup=args.warmup, duration=args.duration)
    finally:
        for service in services.values():
            service.stop()
    with psycopg.connect(urls[scales[0]][1], autocommit=True, connect_timeout=10) as conn:
        versions = {"postgresql": conn.execute("SHOW server_version").fetchone()[0],
                    "postgis": conn.execute("SELECT postgis_lib_version()").fetchone()[0],
                    "tipg": servers.tipg_version() if "tipg" in wanted else None,
                    "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]}
    result: dict[str, Any] = {
        "started": f"{started:%Y-%m-%d %H:%M} UTC", "scales": scales, "per_commune": args.per_commune,
        "rounds": args.rounds, "duration_s": args.duration, "connections": args.connections,
        "threads": args.threads, "pool_size": args.pool_size, "cases": cases, "sides": wanted,
        "databases": {str(n): loaded.database for n, (loaded, _) in prepared.items()},
        "loads": {str(n): _loads(loaded) for n, (loaded, _) in prepared.items()},
        "inputs": {str(n): {"bboxes": len(inp.bboxes), "bbox_side_m": inp.bbox_side_m,
                            "bbox_parcels_median": statistics.median(inp.bbox_counts), "points": len(inp.points),
                            "tiles": len(inp.tiles)} for n, (_, inp) in prepared.items()},
        "versions": versions, "environment": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "git": _git(), "checks": checks, "sql": sql, "results": [asdict(r) for r in results]}
    result["summary"] = summarize_scales(results, scales)
    markdown = render_markdown(result)
    print(markdown)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"serve-scales-{'-'.join(map(str, scales))}-{started:%Y%m%d-%H%M%S}"
    (args.results_dir / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    (args.results_dir / f"{stem}.md").write_text(markdown)
    log(f"results: {args.results_dir / stem}.md / .json")
    if any(c["problems"] for c in checks.values()) or any(sum(r.errors.values()) for r in results
                                                          if r.side != "tipg"):
        return 1
    if args.enforce_targets and not all(t["ok"] for t in result["summary"]["targets"]):
        return 3
    return 0

