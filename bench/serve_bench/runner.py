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
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg

from bench.import_bench.databases import REPO, Server
from bench.revision import code_line, materialise, migration_differences
from bench.serve_bench import database, load, servers
from bench.serve_bench import inputs as inputs_module
from bench.serve_bench.capture import capture

CASES = ("items", "at", "tiles")
SIDES = ("sifc", "tipg", "pgbench")  # and sifc@REF: our service at git revision REF; sifc-wN: with N workers
# The targets: (case, numerator, denominator, minimum ratio); the point's p99 bound is below.
TARGETS = [("items", "sifc", "tipg", 5.0), ("items", "sifc", "pgbench", 0.8), ("tiles", "sifc", "tipg", 1.2),
           ("at", "sifc", "pgbench", 0.4)]
# The point's p99: at most this, or twice pgbench's p99 in the same run when that is more.
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


def check_bodies(bases: dict[str, str], paths, inp: inputs_module.Inputs, cases: list[str],
                 sample: int = 10, key: str = "id") -> dict[str, Any]:
    """Answers of every service on a sample of the inputs, against the database's own counts.

    ``bases`` maps sides to base URLs: ``sifc`` (required), ``tipg`` and other revisions of ours
    (``sifc@REF``), which must give the same parcels as ``sifc`` (the same tiles' features too).
    ``key``: what identifies a parcel across sides, ``id`` (one database) or a property such as
    ``nicad`` (two databases that imported the same file: the parcel ids differ).
    """
    checks: dict[str, Any] = {}
    problems: list[str] = []
    revisions = [side for side in bases if _variant(side)]

    def feature_ids(side: str, case: str, i: int) -> tuple[int, dict[str, Any], set[str]]:
        listed = "sifc" if side in revisions else side
        status, body = _get(bases[side] + paths[case][listed][i])
        document = json.loads(body) if body else {}
        return status, document, {str(f["id"] if key == "id" else f["properties"][key])
                                  for f in document.get("features", [])}

    if "items" in cases:
        rows = []
        for i in range(sample):
            s_status, ours, s_ids = feature_ids("sifc", "items", i)
            row: dict[str, Any] = {"expected": inp.bbox_counts[i], "sifc": ours.get("numberReturned"),
                                   "status": {"sifc": s_status}}
            if not (s_status == 200 and ours.get("numberReturned") == inp.bbox_counts[i] == len(s_ids)):
                problems.append(f"items {i}: sifc {row}")
            if "tipg" in bases:
                t_status, theirs, t_ids = feature_ids("tipg", "items", i)
                # TiPg filters with the UTM rectangle enclosing the projected bbox (pyproj's transform_bounds),
                # we with the bbox itself projected: TiPg finds the same parcels and a few more along the edges.
                row.update(tipg=theirs.get("numberReturned"), same_ids=s_ids == t_ids, tipg_has_ours=s_ids <= t_ids)
                row["status"]["tipg"] = t_status
                if not (t_status == 200 and s_ids <= t_ids and len(t_ids) <= 1.05 * len(s_ids)):
                    problems.append(f"items {i}: tipg {row}")
            for side in revisions:
                r_status, _, r_ids = feature_ids(side, "items", i)
                row[side] = len(r_ids)
                row["status"][side] = r_status
                if r_status != 200 or r_ids != s_ids:
                    problems.append(f"items {i}: {side} answers other parcels than sifc ({len(r_ids)}/{len(s_ids)})")
            rows.append(row)
        checks["items"] = rows
    if "at" in cases:
        rows = []
        for i in range(sample):
            status, body, ids = feature_ids("sifc", "at", i)
            row = {"status": status, "numberReturned": body.get("numberReturned")}
            if status != 200 or row["numberReturned"] != 1:
                problems.append(f"at {i}: {row}")
            for side in revisions:
                r_status, _, r_ids = feature_ids(side, "at", i)
                row[side] = {"status": r_status, "same": r_ids == ids}
                if r_status != 200 or r_ids != ids:
                    problems.append(f"at {i}: {side} answers {r_status} {sorted(r_ids)}, sifc {sorted(ids)}")
            rows.append(row)
        checks["at"] = rows
    if "tiles" in cases:
        import mapbox_vector_tile

        rows = []
        for i in range(sample):
            counts = {}
            for side, base in bases.items():
                listed = "sifc" if side in revisions else side
                status, body = _get(base + paths["tiles"][listed][i])
                layers = mapbox_vector_tile.decode(body) if status == 200 and body else {}
                counts[side] = {"status": status, "bytes": len(body),
                                "features": sum(len(layer["features"]) for layer in layers.values()),
                                "properties": sorted({k for layer in layers.values() for f in layer["features"]
                                                      for k in f["properties"]})}
            rows.append(counts)
            if any(c["status"] not in (200, 204) for c in counts.values()):
                problems.append(f"tiles {i}: {counts}")
            for side in revisions:
                if (counts[side]["features"], counts[side]["properties"]) != (counts["sifc"]["features"],
                                                                              counts["sifc"]["properties"]):
                    problems.append(f"tiles {i}: {side} {counts[side]}, sifc {counts['sifc']}")
        checks["tiles"] = rows
    checks["problems"] = problems
    return checks


def _variant(side: str) -> bool:
    """Whether ``side`` is our service in another form: a revision (``sifc@REF``) or more workers (``sifc-wN``)."""
    return side.startswith(("sifc@", "sifc-w"))


def _cpu_seconds(pid: int | None) -> float | None:
    """User and system CPU seconds of process ``pid`` and its live descendants (``sifc serve --workers N``)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return own + sum(_cpu_seconds(child) or 0.0 for child in children)


def _median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def _paired(runs: list[load.Result], others: list[load.Result]) -> float | None:
    """Median of the round-by-round ratios of the rates (both sides ran in the same round, one after the other)."""
    theirs = {r.round: r.rate for r in others}
    return _median([r.rate / theirs[r.round] for r in runs if theirs.get(r.round)])


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
    # Another revision of ours: ratios of medians, working tree over revision (requests/s: above 1 is faster;
    # latencies: below 1 is faster).
    summary["revisions"] = {}
    for case, sides in summary["sides"].items():
        for side, other in sides.items():
            if not side.startswith("sifc@") or "sifc" not in sides:
                continue
            ours = sides["sifc"]
            summary["revisions"].setdefault(side, {})[case] = {
                **{key: ours[key] / other[key] if ours[key] is not None and other[key] else None
                   for key in ("rate", "p50_ms", "p99_ms", "cpu_ms_per_request")},
                "rate_paired": _paired(table[case]["sifc"], table[case][side])}
            if other["rate"]:
                summary["ratios"][f"{case}: sifc/{side}"] = ours["rate"] / other["rate"]
    points = summary["sides"].get("at", {})
    anchor = points.get("pgbench")
    bound = max(MAX_AT_P99_MS, 2 * anchor["p99_ms"]) if anchor and anchor["p99_ms"] is not None else MAX_AT_P99_MS
    for side in ["sifc", *(s for s in points if s.startswith("sifc-w"))]:
        at = points.get(side)
        if side != "sifc" and at and anchor and anchor["rate"]:  # more workers: the same targets, reported
            value = at["rate"] / anchor["rate"]
            summary["ratios"][f"at: {side}/pgbench"] = value
            summary["targets"].append({"case": "at", "ratio": f"{side}/pgbench", "value": value,
                                       "minimum": 0.4, "ok": value >= 0.4})
        if at and at["p99_ms"] is not None:
            summary["targets"].append({"case": "at", "ratio": f"{side} p99 (ms)", "value": at["p99_ms"],
                                       "maximum": round(bound, 2), "ok": at["p99_ms"] <= bound})
    return summary


def _fmt(value: float | None, pattern: str = "{:.1f}") -> str:
    return "–" if value is None else pattern.format(value)


def render_markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = [f"# Serving benchmark — {result['parcels']:,} parcels", "",
             f"{result['started']} · {result['rounds']} alternating rounds of {result['duration_s']} s per side · "
             f"{result['connections']} clients, {result['threads']} client threads · 1 uvicorn worker each "
             f"(sifc-wN: N) · "
             f"database pool {result['pool_size']} each"
             + (f" · TiPg {result['versions']['tipg']}" if result["versions"].get("tipg") else ""), "",
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
    for side, by_case in s.get("revisions", {}).items():
        revision = result["revisions"][side]
        lines += ["", f"`{side}`: our service at {revision['commit'][:10]} (`{revision['tree']}`), same database, "
                      "in the same rounds. Ratios of medians, working tree / revision (req/s above 1: the working "
                      "tree is faster; latencies and CPU below 1: the working tree is faster):", "",
                  "| case | req/s | req/s, median of the rounds' ratios | p50 | p99 | server CPU/req |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {case} | {_fmt(r['rate'], '{:.3f}')} | {_fmt(r['rate_paired'], '{:.3f}')} | "
                  f"{_fmt(r['p50_ms'], '{:.3f}')} | {_fmt(r['p99_ms'], '{:.3f}')} | "
                  f"{_fmt(r['cpu_ms_per_request'], '{:.3f}')} |" for case, r in by_case.items()]
        lines += ["", "Migration files differing from the working tree's: "
                  + (", ".join(revision["migrations_differing"]) or "none") + "."]
    checks = result["checks"]
    lines += ["", "Answers checked on a sample before the rounds: "
              + ("all right." if not checks["problems"] else f"{len(checks['problems'])} problems: "
                 + "; ".join(checks["problems"][:5]))]
    if checks.get("items") and "tipg" in checks["items"][0]:
        lines.append("- items: parcels per bbox (database / sifc / TiPg): "
                     + ", ".join(f"{r['expected']}/{r['sifc']}/{r['tipg']}" for r in checks["items"])
                     + "; every parcel we return is in TiPg's answer: "
                     + str(all(r["tipg_has_ours"] for r in checks["items"])))
    elif checks.get("items"):
        lines.append("- items: parcels per bbox (database / sifc): "
                     + ", ".join(f"{r['expected']}/{r['sifc']}" for r in checks["items"]))
    if checks.get("tiles"):
        lines.append("- tiles: features per tile (" + " / ".join(checks["tiles"][0]) + "): "
                     + ", ".join("/".join(str(c["features"]) for c in r.values()) for r in checks["tiles"])
                     + "; attributes " + ", ".join(f"{side} {c['properties']}"
                                                   for side, c in checks["tiles"][0].items()))
    for side in result.get("revisions", {}):
        lines.append(f"- {side}: the same parcels as sifc for every bbox and point, the same features per tile"
                     + (": yes." if not any(side in p for p in checks["problems"]) else ": NO (see above)."))
    if result["sql"]:
        lines += ["", "pgbench replays the statement the endpoint sends (captured from the app, bound variables, "
                      "`-M prepared`):", ""]
    for case, sql in result["sql"].items():
        lines += [f"- {case}: `{' '.join(sql['statement'].split())[:300]}…` — the request sends "
                  f"{len(sql['all_statements'])} statements through cursors: "
                  + ", ".join(f"`{' '.join(x.split())[:40]}`" for x in sql["all_statements"])]
    env = result["environment"]
    lines += ["", f"Machine: {env['cpus']} CPUs, shared with other jobs (alternating rounds spread their load); "
              f"PostgreSQL {result['versions']['postgresql']}.",
              code_line(result["git"]), ""]
    return "\n".join(lines)


def _git(tree: Path | None = None) -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tree or REPO, capture_output=True, text=True).stdout.rstrip("\n")
    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted": [line[3:] for line in git("status", "--porcelain", "--", "sifc", "api", "migrations")
                            .splitlines()]}


def _sides(args) -> list[str]:
    """The sides asked for (``--servers``), with ``sifc@REF`` of ``--against`` added; ``sifc`` is always one."""
    sides = [s.strip() for s in (args.servers or ",".join(SIDES)).split(",") if s.strip()]
    if args.against and f"sifc@{args.against}" not in sides:
        if not args.servers:  # --against alone: our service against the revision, nothing else
            sides = ["sifc"]
        sides.append(f"sifc@{args.against}")
    if getattr(args, "sifc_workers", 1) > 1:  # the same service with N workers, beside the one with one
        sides.insert(sides.index("sifc") + 1 if "sifc" in sides else 0, f"sifc-w{args.sifc_workers}")
    unknown = {s for s in sides if not _variant(s)} - set(SIDES)
    if unknown or "sifc" not in sides:
        raise SystemExit(f"--servers: {', '.join(sorted(unknown)) or 'sifc missing'} "
                         f"(known: {', '.join(SIDES)}, sifc@REF; sifc is required)")
    return sides


def wrk_side(service: servers.Service, paths_file: Path, *, case: str, side: str, number: int, duration: int,
             args) -> load.Result:
    """One timed wrk load against one service, with the service process's CPU time per request."""
    cpu = _cpu_seconds(service.pid)
    result = load.wrk(service.base, paths_file, case=case, side=side, number=number, duration=duration,
                      connections=args.connections, threads=args.threads)
    after = _cpu_seconds(service.pid)
    if cpu is not None and after is not None and result.requests:
        result.cpu_ms_per_request = 1000 * (after - cpu) / result.requests
    return result


def alternate(sides_of: dict[str, list[str]], one: Callable[[str, str, int, int], load.Result], *, rounds: int,
              warmup: int, duration: int) -> list[load.Result]:
    """The warm-up (``warmup`` s per case and side, untimed), then ``rounds`` rounds: every case, every side
    for ``duration`` seconds, the sides' order rotating from round to round. ``one(case, side, round, seconds)``."""
    results: list[load.Result] = []
    log(f"warm-up: {warmup} s per side and case")
    for case, sides in sides_of.items():
        for side in sides:
            one(case, side, 0, warmup)
    for number in range(1, rounds + 1):
        for case, order in sides_of.items():
            shift = (number - 1) % len(order)
            for side in order[shift:] + order[:shift]:
                result = one(case, side, number, duration)
                results.append(result)
                log(f"round {number} {case:<5} {side:<14} {result.rate:8.1f}/s  p50 {_fmt(result.p50_ms, '{:.2f}')}"
                    f" ms  p99 {_fmt(result.p99_ms, '{:.2f}')} ms" + (f"  errors {result.errors}"
                                                                     if result.errors else ""))
    return results


def main(args) -> int:
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if set(cases) - set(CASES):
        raise SystemExit(f"unknown cases {set(cases) - set(CASES)} (known: {', '.join(CASES)})")
    wanted = _sides(args)
    load.ensure_tool("wrk", "wrk", log)
    if "pgbench" in wanted:
        load.ensure_tool("pgbench", "postgresql-client", log)
    if "tipg" in wanted:
        servers.ensure_tipg(log)
    revisions = {side: materialise(side.removeprefix("sifc@"), args.work_dir, log=log)
                 for side in wanted if side.startswith("sifc@")}
    server = Server.from_environment()
    if getattr(args, "database_url", None):  # an existing database, as it is: nothing loaded, nothing checked
        service_url = admin_url = args.database_url
        loaded = database.existing(admin_url)
    else:
        loaded = database.ensure(server, parcels=args.parcels, seed=args.seed, data_dir=args.data_dir,
                                 rebuild=args.rebuild, log=log)
        service_url = server.url(database.DATABASE, service=True)
        admin_url = server.url(database.DATABASE)
    inputs_file = f"serve-inputs-{loaded.parcels}-s{args.seed}.json"
    inp = inputs_module.load_or_draw(args.data_dir / inputs_file, admin_url,
                                     count=args.inputs, seed=args.seed, dataset=loaded.dataset, log=log)
    started = dt.datetime.now(dt.UTC)
    work = args.work_dir / f"serve-{started:%Y%m%d-%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    paths = _paths(inp, args.tile_properties)
    for case, sides in paths.items():
        for side, lines in sides.items():
            (work / f"{case}.{side}.paths").write_text("\n".join(lines) + "\n")

    # Our service, TiPg, and our service as other revisions have it (their worktrees), all on the same database.
    services = {"sifc": servers.sifc(service_url, admin_url, pool_size=args.pool_size, work=work)}
    if "tipg" in wanted:
        services["tipg"] = servers.tipg(service_url, pool_size=args.pool_size, work=work)
    for side, revision in revisions.items():
        services[side] = servers.sifc(service_url, admin_url, pool_size=args.pool_size, work=work, revision=revision)
    for side in (s for s in wanted if s.startswith("sifc-w")):
        # The same connections in all as the one-process side (and pgbench): the pool divided among the workers.
        workers = int(side.removeprefix("sifc-w"))
        services[side] = servers.sifc(service_url, admin_url, pool_size=-(-args.pool_size // workers), work=work,
                                      name=side, workers=workers)
    results: list[load.Result] = []
    try:
        for service in services.values():
            service.start()
        for side, service in services.items():
            if side != "tipg" and "tiles" in cases and not tiles_available(service.base, inp):
                log(f"the tile route of {side} does not answer: the tiles case is skipped")
                cases.remove("tiles")
        checks = check_bodies({side: service.base for side, service in services.items()}, paths, inp, cases)
        for problem in checks["problems"]:
            log(f"CHECK: {problem}")
        # The statements pgbench replays, captured from the app on the same inputs.
        sql: dict[str, Any] = {}
        scripts: dict[str, Path] = {}
        variables = {"items": [dict(zip(("x0", "y0", "x1", "y1"), b, strict=True)) for b in inp.bboxes],
                     "at": [{"lon": lon, "lat": lat} for lon, lat in inp.points],
                     "tiles": [{"z": z, "x": x, "y": y} for z, x, y in inp.tiles]}
        for case in cases if "pgbench" in wanted else []:
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
        sides_of = {case: [s for s in wanted if s in services and (_variant(s) or s in paths[case])]
                    + (["pgbench"] if case in scripts else []) for case in cases}

        def one(case: str, side: str, number: int, duration: int) -> load.Result:
            if side == "pgbench":
                return load.pgbench(service_url, scripts[case], case=case, number=number, duration=duration,
                                    connections=args.connections, threads=args.threads, log_dir=work / "pgbench")
            listed = "sifc" if _variant(side) else side
            return wrk_side(services[side], work / f"{case}.{listed}.paths", case=case, side=side, number=number,
                            duration=duration, args=args)

        results = alternate({case: sides_of[case] for case in cases}, one, rounds=args.rounds,
                            warmup=args.warmup, duration=args.duration)
    finally:
        for service in services.values():
            service.stop()
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        versions = {"postgresql": conn.execute("SHOW server_version").fetchone()[0],
                    "postgis": conn.execute("SELECT postgis_lib_version()").fetchone()[0],
                    "tipg": servers.tipg_version() if "tipg" in services else None,
                    "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]}
    result = {"started": f"{started:%Y-%m-%d %H:%M} UTC", "parcels": loaded.parcels, "rounds": args.rounds,
              "duration_s": args.duration, "connections": args.connections, "threads": args.threads,
              "pool_size": args.pool_size, "cases": cases, "inputs": {"bboxes": len(inp.bboxes),
              "bbox_side_m": inp.bbox_side_m, "bbox_parcels_median": statistics.median(inp.bbox_counts),
              "points": len(inp.points), "tiles": len(inp.tiles), "tile_properties": args.tile_properties},
              "versions": versions, "environment": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "git": _git(), "checks": checks, "sql": sql, "sides": wanted,
              "revisions": {side: {"ref": r.ref, "commit": r.commit, "tree": str(r.tree), "cli_module": r.cli_module,
                                   "migrations_differing": migration_differences(r)} for side, r in revisions.items()},
              "results": [asdict(r) for r in results]}
    result["summary"] = summarize(results)
    markdown = render_markdown(result)
    print(markdown)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"serve-{loaded.parcels}-{started:%Y%m%d-%H%M%S}"
    (args.results_dir / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    (args.results_dir / f"{stem}.md").write_text(markdown)
    log(f"results: {args.results_dir / stem}.md / .json")
    # Errors of our services or pgbench fail the run; TiPg's (timeouts under load) are only reported.
    if checks["problems"] or any(sum(r.errors.values()) for r in results if r.side != "tipg"):
        return 1
    if args.enforce_targets and not all(t["ok"] for t in result["summary"]["targets"]):
        return 3
    return 0
