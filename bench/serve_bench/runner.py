"""One benchmark run: both services up, bodies checked, then alternating timed rounds and the table.

Rounds alternate the sides of each case (sifc, TiPg, pgbench, then the next case) and rotate their
order from one round to the next, so that the load of a shared machine falls on every side alike;
medians of the rounds are compared.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.import_bench.databases import REPO, Server
from bench.serve_bench import database, load, servers
from bench.serve_bench import inputs as inputs_module
from bench.serve_bench.capture import capture

CASES = ("items", "at", "tiles")
# The targets: (case, numerator, denominator, minimum ratio).
TARGETS = [("items", "sifc", "tipg", 5.0), ("items", "sifc", "pgbench", 0.8), ("tiles", "sifc", "tipg", 1.2),
           ("at", "sifc", "pgbench", 0.15)]
MAX_AT_P99_MS = 20.0
# The attributes our parcel features carry, as TiPg's `properties` (same set on both sides).
ITEM_PROPERTIES = ("parcel_id,version,nicad,nicad_status,commune_code,section,local_number,area_m2,"
                   "declared_area_m2,land_use,tenure_regime,valid_from")
TILES_PATH = "/tiles/parcels/{z}/{x}/{y}.mvt"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _paths(inp: inputs_module.Inputs, tile_properties: str) -> dict[str, dict[str, list[str]]]:
    def bbox(b):
        return ",".join(repr(v) for v in b)
    return {
        "items": {"sifc": [f"/ogc/collections/parcels/items?bbox={bbox(b)}&limit=1000" for b in inp.bboxes],
                  "tipg": [f"/collections/public.parcel/items?bbox={bbox(b)}&limit=1000&properties={ITEM_PROPERTIES}"
                           for b in inp.bboxes]},
        "at": {"sifc": [f"/parcels/at?lon={lon!r}&lat={lat!r}" for lon, lat in inp.points]},
        "tiles": {"sifc": [TILES_PATH.format(z=z, x=x, y=y) for z, x, y in inp.tiles],
                  "tipg": [f"/collections/public.parcel/tiles/WebMercatorQuad/{z}/{x}/{y}?properties={tile_properties}"
                           for z, x, y in inp.tiles]},
    }


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def tiles_available(base: str, inp: inputs_module.Inputs) -> bool:
    z, x, y = inp.tiles[0]
    return _get(base + TILES_PATH.format(z=z, x=x, y=y))[0] in (200, 204)


def check_bodies(sifc_base: str, tipg_base: str, paths, inp: inputs_module.Inputs, cases: list[str],
                 sample: int = 10) -> dict[str, Any]:
    """Answers of both services on a sample of the inputs, against the database's own counts."""
    checks: dict[str, Any] = {}
    problems: list[str] = []
    if "items" in cases:
        rows = []
        for i in range(sample):
            s_status, s_body = _get(sifc_base + paths["items"]["sifc"][i])
            t_status, t_body = _get(tipg_base + paths["items"]["tipg"][i])
            ours, theirs = json.loads(s_body), json.loads(t_body)
            s_ids = {f["id"] for f in ours.get("features", [])}
            t_ids = {str(f["id"]) for f in theirs.get("features", [])}
            rows.append({"expected": inp.bbox_counts[i], "sifc": ours.get("numberReturned"),
                         "tipg": theirs.get("numberReturned"), "same_ids": s_ids == t_ids,
                         "status": [s_status, t_status]})
            # TiPg filters with the UTM rectangle enclosing the projected bbox (pyproj's transform_bounds),
            # we with the bbox itself projected: TiPg finds the same parcels and a few more along the edges.
            rows[-1]["tipg_has_ours"] = s_ids <= t_ids
            if not (s_status == t_status == 200 and ours.get("numberReturned") == inp.bbox_counts[i]
                    == len(s_ids) and s_ids <= t_ids and len(t_ids) <= 1.05 * len(s_ids)):
                problems.append(f"items {i}: {rows[-1]}")
        checks["items"] = rows
    if "at" in cases:
        rows = []
        for i in range(sample):
            status, body = _get(sifc_base + paths["at"]["sifc"][i])
            returned = json.loads(body).get("numberReturned")
            rows.append({"status": status, "numberReturned": returned})
            if status != 200 or returned != 1:
                problems.append(f"at {i}: {rows[-1]}")
        checks["at"] = rows
    if "tiles" in cases:
        import mapbox_vector_tile

        rows = []
        for i in range(sample):
            counts = {}
            for side, base in (("sifc", sifc_base), ("tipg", tipg_base)):
                status, body = _get(base + paths["tiles"][side][i])
                layers = mapbox_vector_tile.decode(body) if status == 200 and body else {}
                counts[side] = {"status": status, "bytes": len(body),
                                "features": sum(len(layer["features"]) for layer in layers.values()),
                                "properties": sorted({k for layer in layers.values() for f in layer["features"]
                                                      for k in f["properties"]})}
            rows.append(counts)
            if counts["sifc"]["status"] not in (200, 204) or counts["tipg"]["status"] not in (200, 204):
                problems.append(f"tiles {i}: {counts}")
        checks["tiles"] = rows
    checks["problems"] = problems
    return checks


def _cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def summarize(results: list[load.Result]) -> dict[str, Any]:
    table: dict[str, dict[str, Any]] = {}
    for r in results:
        table.setdefault(r.case, {}).setdefault(r.side, []).append(r)
    summary: dict[str, Any] = {"sides": {}, "ratios": {}, "targets": []}
    for case, sides in table.items():
        summary["sides"][case] = {side: {
            "rate": _median([r.rate for r in runs]), "p50_ms": _median([r.p50_ms for r in runs]),
            "p99_ms": _median([r.p99_ms for r in runs]), "rates": [round(r.rate, 1) for r in runs],
            "errors": sum(sum(r.errors.values()) for r in runs), "requests": sum(r.requests for r in runs),
            "cpu_ms_per_request": _median([r.cpu_ms_per_request for r in runs]),
            "bytes_per_request": _median([r.bytes_per_request for r in runs])} for side, runs in sides.items()}
    for case, num, den, minimum in TARGETS:
        sides = summary["sides"].get(case, {})
        if num in sides and den in sides and sides[den]["rate"]:
            value = sides[num]["rate"] / sides[den]["rate"]
            summary["ratios"][f"{case}: {num}/{den}"] = value
            summary["targets"].append({"case": case, "ratio": f"{num}/{den}", "value": value, "minimum": minimum,
                                       "ok": value >= minimum})
    for case, sides in summary["sides"].items():
        if "sifc-base" in sides and sides["sifc-base"]["rate"]:
            summary["ratios"][f"{case}: sifc/sifc-base"] = sides["sifc"]["rate"] / sides["sifc-base"]["rate"]
    at = summary["sides"].get("at", {}).get("sifc")
    if at and at["p99_ms"] is not None:
        summary["targets"].append({"case": "at", "ratio": "p99 (ms)", "value": at["p99_ms"],
                                   "maximum": MAX_AT_P99_MS, "ok": at["p99_ms"] <= MAX_AT_P99_MS})
    return summary


def _fmt(value: float | None, pattern: str = "{:.1f}") -> str:
    return "–" if value is None else pattern.format(value)


def render_markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = [f"# Serving benchmark — {result['parcels']:,} parcels", "",
             f"{result['started']} · {result['rounds']} alternating rounds of {result['duration_s']} s per side · "
             f"{result['connections']} clients, {result['threads']} client threads · 1 uvicorn worker each · "
             f"database pool {result['pool_size']} each · TiPg {result['versions'].get('tipg')}", "",
             "| case | side | req/s (median) | rounds | p50 ms | p99 ms | errors | server CPU ms/req | bytes/req |",
             "|---|---|---|---|---|---|---|---|---|"]
    for case, sides in s["sides"].items():
        for side, m in sides.items():
            lines.append(f"| {case} | {side} | {_fmt(m['rate'])} | {', '.join(map(str, m['rates']))} | "
                         f"{_fmt(m['p50_ms'], '{:.2f}')} | {_fmt(m['p99_ms'], '{:.2f}')} | {m['errors']} | "
                         f"{_fmt(m['cpu_ms_per_request'], '{:.2f}')} | {_fmt(m['bytes_per_request'], '{:.0f}')} |")
    lines += ["", "| target | value | verdict |", "|---|---|---|"]
    for t in s["targets"]:
        bound = f"≥ {t['minimum']}" if "minimum" in t else f"≤ {t['maximum']}"
        lines.append(f"| {t['case']}: {t['ratio']} {bound} | {t['value']:.2f} | {'met' if t['ok'] else 'MISSED'} |")
    gains = {k: v for k, v in s["ratios"].items() if "sifc-base" in k}
    if gains:
        lines += ["", f"`sifc-base`: our service from `{result.get('baseline_tree')}` "
                      f"({result.get('baseline_commit', '')[:10]}), in the same rounds.", "",
                  "| gain | ratio of medians |", "|---|---|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in gains.items()]
    checks = result["checks"]
    lines += ["", "Answers checked on a sample before the rounds: "
              + ("all right." if not checks["problems"] else f"{len(checks['problems'])} problems: "
                 + "; ".join(checks["problems"][:5]))]
    if checks.get("items"):
        lines.append("- items: parcels per bbox (database / sifc / TiPg): "
                     + ", ".join(f"{r['expected']}/{r['sifc']}/{r['tipg']}" for r in checks["items"])
                     + "; every parcel we return is in TiPg's answer: "
                     + str(all(r["tipg_has_ours"] for r in checks["items"])))
    if checks.get("tiles"):
        lines.append("- tiles: features per tile (sifc / TiPg): "
                     + ", ".join(f"{r['sifc']['features']}/{r['tipg']['features']}" for r in checks["tiles"])
                     + f"; attributes sifc {checks['tiles'][0]['sifc']['properties']}, "
                       f"TiPg {checks['tiles'][0]['tipg']['properties']}")
    lines += ["", "pgbench replays the statement the endpoint sends (captured from the app, bound variables, "
                  "`-M prepared`):", ""]
    for case, sql in result["sql"].items():
        lines += [f"- {case}: `{' '.join(sql['statement'].split())[:300]}…` — the request sends "
                  f"{len(sql['all_statements'])} statements through cursors: "
                  + ", ".join(f"`{' '.join(x.split())[:40]}`" for x in sql["all_statements"])]
    env = result["environment"]
    lines += ["", f"Machine: {env['cpus']} CPUs, shared with other jobs (alternating rounds spread their load); "
              f"PostgreSQL {result['versions']['postgresql']}.",
              f"Code: {result['git']['commit'][:10]}" + (
                  f" + uncommitted changes in {', '.join(result['git']['uncommitted'])}"
                  if result["git"]["uncommitted"] else ""), ""]
    return "\n".join(lines)


def _git(tree: Path | None = None) -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tree or REPO, capture_output=True, text=True).stdout.rstrip("\n")
    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted": [line[3:] for line in git("status", "--porcelain", "--", "sifc", "api", "migrations")
                            .splitlines()]}


def main(args) -> int:
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if set(cases) - set(CASES):
        raise SystemExit(f"unknown cases {set(cases) - set(CASES)} (known: {', '.join(CASES)})")
    load.ensure_tool("wrk", "wrk", log)
    load.ensure_tool("pgbench", "postgresql-client", log)
    servers.ensure_tipg(log)
    server = Server.from_environment()
    loaded = database.ensure(server, parcels=args.parcels, seed=args.seed, data_dir=args.data_dir,
                             rebuild=args.rebuild, log=log)
    service_url = server.url(database.DATABASE, service=True)
    admin_url = server.url(database.DATABASE)
    inp = inputs_module.load_or_draw(args.data_dir / f"serve-inputs-{args.parcels}-s{args.seed}.json", admin_url,
                                     count=args.inputs, seed=args.seed, dataset=loaded.dataset, log=log)
    started = dt.datetime.now(dt.UTC)
    work = args.work_dir / f"serve-{started:%Y%m%d-%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    paths = _paths(inp, args.tile_properties)
    for case, sides in paths.items():
        for side, lines in sides.items():
            (work / f"{case}.{side}.paths").write_text("\n".join(lines) + "\n")

    ours = servers.sifc(service_url, admin_url, pool_size=args.pool_size, work=work, extra_env={})
    theirs = servers.tipg(service_url, pool_size=args.pool_size, work=work)
    # Our service as another source tree has it (an older commit's worktree), side by side in the same rounds.
    base = None
    if args.baseline_tree:
        base = servers.sifc(service_url, admin_url, pool_size=args.pool_size, work=work,
                            extra_env={"PYTHONPATH": str(args.baseline_tree.resolve())})
        base.name, base.log = "sifc-base", work / "sifc-base.log"
    results: list[load.Result] = []
    try:
        ours.start()
        theirs.start()
        if base is not None:
            base.start()
        if "tiles" in cases and not tiles_available(ours.base, inp):
            log("our tile route does not answer yet: the tiles case is skipped")
            cases.remove("tiles")
        checks = check_bodies(ours.base, theirs.base, paths, inp, cases)
        for problem in checks["problems"]:
            log(f"CHECK: {problem}")
        # The statements pgbench replays, captured from the app on the same inputs.
        sql: dict[str, Any] = {}
        scripts: dict[str, Path] = {}
        variables = {"items": [dict(zip(("x0", "y0", "x1", "y1"), b, strict=True)) for b in inp.bboxes],
                     "at": [{"lon": lon, "lat": lat} for lon, lat in inp.points],
                     "tiles": [{"z": z, "x": x, "y": y} for z, x, y in inp.tiles]}
        for case in cases:
            try:
                found = capture(service_url, [paths[case]["sifc"][0]], [variables[case][0]])[0]
            except SystemExit as error:
                log(f"{case}: statement not captured ({error}); no pgbench for it")
                continue
            varying = set(variables[case][0])
            constants = {k: v for k, v in found.params.items() if k not in varying}
            sql[case] = {"statement": found.statement, "constants": constants, "all_statements": found.all_statements}
            scripts[case] = load.write_pgbench_script(work / "pgbench", case, found.statement, constants,
                                                      variables[case])
        sides_of = {case: [s for s in ("sifc", "tipg") if s in paths[case]] + (["pgbench"] if case in scripts else [])
                    + (["sifc-base"] if base is not None else []) for case in cases}
        services = {"sifc": ours, "tipg": theirs, **({"sifc-base": base} if base is not None else {})}

        def one(case: str, side: str, number: int, duration: int) -> load.Result:
            if side == "pgbench":
                return load.pgbench(service_url, scripts[case], case=case, number=number, duration=duration,
                                    connections=args.connections, threads=args.threads, log_dir=work / "pgbench")
            service = services[side]
            cpu = _cpu_seconds(service.pid)
            listed = "sifc" if side == "sifc-base" else side
            result = load.wrk(service.base, work / f"{case}.{listed}.paths", case=case, side=side, number=number,
                              duration=duration, connections=args.connections, threads=args.threads)
            after = _cpu_seconds(service.pid)
            if cpu is not None and after is not None and result.requests:
                result.cpu_ms_per_request = 1000 * (after - cpu) / result.requests
            return result

        log(f"warm-up: {args.warmup} s per side and case")
        for case in cases:
            for side in sides_of[case]:
                one(case, side, 0, args.warmup)
        for number in range(1, args.rounds + 1):
            for case in cases:
                order = sides_of[case]
                shift = (number - 1) % len(order)
                for side in order[shift:] + order[:shift]:
                    result = one(case, side, number, args.duration)
                    results.append(result)
                    log(f"round {number} {case:<5} {side:<7} {result.rate:8.1f}/s  p50 {_fmt(result.p50_ms, '{:.2f}')}"
                        f" ms  p99 {_fmt(result.p99_ms, '{:.2f}')} ms" + (f"  errors {result.errors}"
                                                                         if result.errors else ""))
    finally:
        ours.stop()
        theirs.stop()
        if base is not None:
            base.stop()
    with server.admin(database.DATABASE) as conn:
        versions = {"postgresql": conn.execute("SHOW server_version").fetchone()[0],
                    "postgis": conn.execute("SELECT postgis_lib_version()").fetchone()[0],
                    "tipg": servers.tipg_version(),
                    "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]}
    result = {"started": f"{started:%Y-%m-%d %H:%M} UTC", "parcels": loaded.parcels, "rounds": args.rounds,
              "duration_s": args.duration, "connections": args.connections, "threads": args.threads,
              "pool_size": args.pool_size, "cases": cases, "inputs": {"bboxes": len(inp.bboxes),
              "bbox_side_m": inp.bbox_side_m, "bbox_parcels_median": statistics.median(inp.bbox_counts),
              "points": len(inp.points), "tiles": len(inp.tiles), "tile_properties": args.tile_properties},
              "versions": versions, "environment": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "git": _git(), "checks": checks, "sql": sql, "baseline_tree": str(args.baseline_tree or ""),
              "baseline_commit": _git(args.baseline_tree)["commit"] if args.baseline_tree else "",
              "results": [asdict(r) for r in results]}
    result["summary"] = summarize(results)
    markdown = render_markdown(result)
    print(markdown)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"serve-{loaded.parcels}-{started:%Y%m%d-%H%M%S}"
    (args.results_dir / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    (args.results_dir / f"{stem}.md").write_text(markdown)
    log(f"results: {args.results_dir / stem}.md / .json")
    # Errors of our service or pgbench fail the run; TiPg's (timeouts under load) are only reported.
    if checks["problems"] or any(sum(r.errors.values()) for r in results if r.side != "tipg"):
        return 1
    if args.enforce_targets and not all(t["ok"] for t in result["summary"]["targets"]):
        return 3
    return 0
