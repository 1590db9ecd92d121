"""The federation benchmark: an import's replication lag to the national node, and serving there.

1. The federation of ``sifc node demo`` (``sifc.federation.demo.up``: national node, Dakar and Thiès poles,
   each initialised and subscribed in the demo's order) on clusters ``sifc_bench_*`` (ports 5471-5473),
   and a single node ``sifc_bench_single`` (5474), all made by ``sifc.federation.local_clusters``.
2. Dakar imports a Bargny set once (``sifc import parcels`` at the pole), applied at the national node.
3. Lag, ``--runs`` times: Thiès imports ``--parcels`` generated parcels (``bench/import_bench``'s
   generator) into a commune not used before (the last run in Sandiara). ``T_imp``: the import process,
   spawn to exit. Right after its exit the pole's ``pg_current_wal_lsn()`` is read; ``T_lag``: from that
   exit to the moment the national node's subscription has confirmed that LSN (``pg_stat_subscription
   .latest_end_lsn``) and holds as many current parcel versions of the commune as the pole.
4. Serving: the single node imports the same files (plain ``sifc import``); ``bench/serve_bench``'s cases
   (items, point, tiles) against ``sifc serve`` at the national node and at the single node, alternating
   round by round; ratios of medians national / single.
5. The clusters are dropped at the end, whatever happened (``--keep`` leaves them).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.import_bench.generate import Dataset, generate
from bench.serve_bench import inputs as inputs_module
from bench.serve_bench import load, servers
from bench.serve_bench.runner import _git, _median, _paths, alternate, check_bodies, tiles_available, wrk_side
from sifc.federation import demo, local_clusters
from sifc.federation.local_clusters import LocalCluster

PORTS = (5471, 5472, 5473)
SINGLE = LocalCluster(f"{local_clusters.PREFIX}bench_single", 5474)
LABEL = "bench"
LAST_COMMUNE = "SN1301-sandiara"
DAKAR_COMMUNE = "SN0104-bargny"
MIN_FREE_GB = 8.0


def log(message: str) -> None:
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def nodes(directory: Path) -> list[demo.DemoNode]:
    """The demo's three nodes on the benchmark's ports and cluster names."""
    return demo.members(directory, ports=PORTS, label=LABEL)


def drop_clusters() -> list[str]:
    """Drop the benchmark's four clusters (those present); their names."""
    dropped = demo.down(nodes(Path("/nonexistent")))
    if SINGLE.name in local_clusters.listed():
        local_clusters.drop(SINGLE.name)
        dropped.append(SINGLE.name)
    return dropped


def _url(cluster: LocalCluster, *, service: bool = False) -> str:
    """A libpq URL (psycopg, wrk's checks) of the cluster's database."""
    return (cluster.service_url if service else cluster.admin_url).replace("+psycopg", "")


def _scalar(cluster: LocalCluster, statement: str, params: dict[str, Any] | None = None) -> Any:
    with psycopg.connect(_url(cluster), autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(statement, params or {}).fetchone()
    return row[0] if row else None


CURRENT = "SELECT count(*) FROM parcel_version WHERE commune_code = %(c)s AND valid_to IS NULL"


@dataclass
class Imported:
    """One ``sifc import parcels`` at a node."""

    node: str
    commune: str
    parcels: int
    seconds: float
    timings: dict[str, float]
    lsn: str | None = None


def sifc_import(cluster: LocalCluster, dataset: Dataset, commune: str, *, env: dict[str, str], work: Path,
                node: str) -> Imported:
    """``sifc import parcels FILE`` bound to the cluster (the node's environment), timed from spawn to exit."""
    report = work / f"import-{node}-{commune}.json"
    started = time.perf_counter()
    process = local_clusters.sifc_command(cluster, "import", "parcels", str(dataset.shapefile), "--report", str(report),
                                          "--rejects", str(work / f"rejects-{node}-{commune}.gpkg"), env=env)
    local_clusters.wait_all([process], timeout=3600)
    seconds = time.perf_counter() - started
    lsn = _scalar(cluster, "SELECT pg_current_wal_lsn()::text")
    found = _scalar(cluster, CURRENT, {"c": commune})
    if found != dataset.parcels:
        raise SystemExit(f"{node}: {found} current parcels in {commune} after the import, {dataset.parcels} expected")
    timings = json.loads(report.read_text()).get("timings") or {} if report.exists() else {}
    return Imported(node, commune, dataset.parcels, seconds, timings, lsn)


def wait_applied(national: LocalCluster, subscription: str, lsn: str, commune: str, expected: int, *,
                 timeout: float) -> float:
    """Seconds until the national node has confirmed ``lsn`` on ``subscription`` and holds ``expected``
    current parcel versions of ``commune``."""
    started = time.perf_counter()
    with psycopg.connect(_url(national), autocommit=True, connect_timeout=10) as conn:
        while True:
            confirmed = conn.execute("""
                SELECT latest_end_lsn >= %(lsn)s::pg_lsn FROM pg_stat_subscription
                WHERE subname = %(s)s AND relid IS NULL""", {"lsn": lsn, "s": subscription}).fetchone()
            if confirmed and confirmed[0] and conn.execute(CURRENT, {"c": commune}).fetchone()[0] == expected:
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"the national node has not applied {commune} within {timeout:.0f} s")
            time.sleep(0.1)


def thies_communes(national: LocalCluster) -> list[str]:
    """Candidate communes of the Thiès pole for the runs, largest first, Sandiara kept for the last run."""
    with psycopg.connect(_url(national), autocommit=True, connect_timeout=10) as conn:
        codes = [r[0] for r in conn.execute("""
            SELECT c.code FROM commune c JOIN region r ON r.code = c.region_code
            WHERE r.pole_code = 'THS' AND c.code <> %(last)s ORDER BY ST_Area(c.geom) DESC""",
                                            {"last": LAST_COMMUNE}).fetchall()]
    return codes


def datasets_for_runs(args, thies: LocalCluster, national: LocalCluster) -> list[tuple[str, Dataset]]:
    """One generated file per run, each in a commune of its own (the last in Sandiara).

    Each file has a seed of its own (``--seed`` + its place): NICADs are drawn from the seed, and two communes
    of one department would otherwise share them (the national node holds every commune's NICADs).
    """
    chosen: list[tuple[str, Dataset]] = []
    candidates = iter(thies_communes(national))
    wanted = args.runs - 1
    while len(chosen) < wanted:
        code = next(candidates, None)
        if code is None:
            raise SystemExit(f"no Thiès commune left with room for {args.parcels} parcels")
        try:
            chosen.append((code, generate(args.data_dir, parcels=args.parcels, defect_rate=0.0,
                                          seed=args.seed + 1 + len(chosen),
                                          admin_url=thies.conninfo, commune=code, log=log)))
        except SystemExit as error:
            log(f"{code}: {error}")
    last = generate(args.data_dir, parcels=args.parcels, defect_rate=0.0, seed=args.seed + args.runs,
                    admin_url=thies.conninfo, commune=LAST_COMMUNE, log=log)
    return [*chosen, (LAST_COMMUNE, last)]


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def summarize_serving(results: list[load.Result]) -> dict[str, Any]:
    """Per case and side: medians of the rounds; national / single ratios of the medians."""
    table: dict[str, dict[str, list[load.Result]]] = {}
    for r in results:
        table.setdefault(r.case, {}).setdefault(r.side, []).append(r)
    summary: dict[str, Any] = {}
    for case, sides in table.items():
        medians = {side: {"rate": _median([r.rate for r in runs]), "p50_ms": _median([r.p50_ms for r in runs]),
                          "p99_ms": _median([r.p99_ms for r in runs]),
                          "cpu_ms_per_request": _median([r.cpu_ms_per_request for r in runs]),
                          "rates": [round(r.rate, 1) for r in runs],
                          "errors": sum(sum(r.errors.values()) for r in runs)} for side, runs in sides.items()}
        single_by_round = {r.round: r.rate for r in sides.get("single", [])}
        paired = _median([r.rate / single_by_round[r.round] for r in sides.get("national", [])
                          if single_by_round.get(r.round)])
        national, single = medians.get("national", {}), medians.get("single", {})
        summary[case] = {"sides": medians, "paired_rate": paired,
                         "ratios": {key: _ratio(national.get(key), single.get(key))
                                    for key in ("rate", "p50_ms", "p99_ms", "cpu_ms_per_request")}}
    return summary


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "–" if value is None else pattern.format(value)


def render_markdown(result: dict[str, Any]) -> str:
    lag = result["lag"]
    lines = [f"# Federation benchmark — {result['parcels']:,} parcels per import at Thiès", "",
             f"{result['started']} · commit {result['git']['commit'][:7]}"
             + (" (uncommitted: " + ", ".join(result["git"]["uncommitted"]) + ")" if result["git"]["uncommitted"]
                else "") + f" · {result['environment']['cpus']} CPUs · load average at start "
             f"{result['load']['start']}, at end {result['load']['end']}", "",
             "## Replication lag of an import at the Thiès pole", "",
             "| run | commune | T_imp s (import, spawn to exit) | T_lag s (exit to applied at national) "
             "| T_lag / T_imp |", "|---|---|---|---|---|"]
    for i, run in enumerate(lag["runs"], 1):
        lines.append(f"| {i} | {run['commune']} | {run['t_imp']:.2f} | {run['t_lag']:.2f} | {run['ratio']:.2f} |")
    lines += ["", f"Medians: T_imp {lag['median_t_imp']:.2f} s, T_lag {lag['median_t_lag']:.2f} s, "
                  f"**T_lag / T_imp {lag['median_ratio']:.2f}** (median of the runs' ratios)."]
    serving = result.get("serving")
    if serving:
        lines += ["", "## Serving: national node against a single node with the same parcels", "",
                  f"{serving['rounds']} alternating rounds of {serving['duration_s']} s per side, "
                  f"{serving['connections']} clients; national: {serving['national_parcels']:,} parcels "
                  f"(replicated), single: {serving['single_parcels']:,} (sifc import). Above 1 for req/s, "
                  "below 1 for latencies and CPU: the national node is faster.", "",
                  "| case | national req/s | single req/s | req/s national/single (paired) | p50 ratio | p99 ratio "
                  "| CPU/req ratio | errors |", "|---|---|---|---|---|---|---|---|"]
        for case, row in serving["summary"].items():
            n, s, r = row["sides"].get("national", {}), row["sides"].get("single", {}), row["ratios"]
            lines.append(f"| {case} | {_fmt(n.get('rate'), '{:.1f}')} | {_fmt(s.get('rate'), '{:.1f}')} | "
                         f"{_fmt(r['rate'], '{:.3f}')} ({_fmt(row['paired_rate'], '{:.3f}')}) | "
                         f"{_fmt(r['p50_ms'], '{:.3f}')} | {_fmt(r['p99_ms'], '{:.3f}')} | "
                         f"{_fmt(r['cpu_ms_per_request'], '{:.3f}')} | {n.get('errors', 0)} / {s.get('errors', 0)} |")
        if serving["checks"]["problems"]:
            lines += ["", "Check problems: " + "; ".join(serving["checks"]["problems"][:5])]
    return "\n".join(lines) + "\n"


def serve(args, national: demo.DemoNode, files: list[tuple[str, Dataset]], work: Path) -> dict[str, Any]:
    """The single node loaded with the same files, then the serving cases against both, alternating."""
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    load.ensure_tool("wrk", "wrk", log)
    single_env = {"SIFC_KEY_FILE": str(work / "single-keys" / "signing-keys.json"), "SIFC_NODE_ID": "single"}
    single_imports = []
    for commune, dataset in files:
        single_imports.append(asdict(sifc_import(SINGLE, dataset, commune, env=single_env, work=work, node="single")))
        log(f"single: {commune} imported in {single_imports[-1]['seconds']:.1f} s")
    for cluster in (national.cluster, SINGLE):
        with psycopg.connect(_url(cluster), autocommit=True, connect_timeout=10) as conn:
            conn.execute("VACUUM (ANALYZE) parcel_version")
    counts = {name: _scalar(c, "SELECT count(*) FROM parcel") for name, c in (("national", national.cluster),
                                                                              ("single", SINGLE))}
    if counts["national"] != counts["single"]:
        raise SystemExit(f"current parcels differ: {counts}")
    inp = inputs_module.draw(_url(SINGLE), count=args.inputs, seed=args.seed, log=log, commune=LAST_COMMUNE,
                             sample_pct=5)
    paths = _paths(inp, "")
    for case in cases:
        (work / f"{case}.sifc.paths").write_text("\n".join(paths[case]["sifc"]) + "\n")
    services = {
        "national": servers.sifc(national.cluster.service_url, national.cluster.admin_url, pool_size=args.pool_size,
                                 work=work, name="national", env={"SIFC_NODE_ID": national.node_id}),
        "single": servers.sifc(SINGLE.service_url, SINGLE.admin_url, pool_size=args.pool_size, work=work,
                               name="single", env={"SIFC_NODE_ID": "single"})}
    try:
        for service in services.values():
            service.start()
        if "tiles" in cases and not all(tiles_available(s.base, inp) for s in services.values()):
            log("a tile route does not answer: the tiles case is skipped")
            cases.remove("tiles")
        # check_bodies compares every "sifc@…" side with "sifc": the single node must answer the national's parcels
        # (the same NICADs; the ids were drawn by each node's import).
        checks = check_bodies({"sifc": services["national"].base, "sifc@single": services["single"].base}, paths,
                              inp, cases, key="nicad")
        for problem in checks["problems"]:
            log(f"CHECK: {problem}")

        def one(case: str, side: str, number: int, duration: int) -> load.Result:
            return wrk_side(services[side], work / f"{case}.sifc.paths", case=case, side=side, number=number,
                            duration=duration, args=args)

        results = alternate({case: ["national", "single"] for case in cases}, one, rounds=args.rounds,
                            warmup=args.warmup, duration=args.duration)
    finally:
        for service in services.values():
            service.stop()
    return {"rounds": args.rounds, "duration_s": args.duration, "connections": args.connections,
            "threads": args.threads, "pool_size": args.pool_size, "cases": cases,
            "national_parcels": counts["national"], "single_parcels": counts["single"],
            "single_imports": single_imports, "inputs": {"bboxes": len(inp.bboxes), "bbox_commune": LAST_COMMUNE,
                                                         "bbox_parcels_median": statistics.median(inp.bbox_counts),
                                                         "points": len(inp.points), "tiles": len(inp.tiles)},
            "checks": checks, "results": [asdict(r) for r in results], "summary": summarize_serving(results)}


def _loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main(args) -> int:
    free_gb = shutil.disk_usage("/var/lib/postgresql").free / 1e9
    if free_gb < MIN_FREE_GB:
        raise SystemExit(f"{free_gb:.1f} GB free under /var/lib/postgresql, {MIN_FREE_GB:.0f} GB wanted")
    started = dt.datetime.now(dt.UTC)
    work = (args.work_dir / f"federation-{started:%Y%m%d-%H%M%S}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    load_start = _loadavg()
    log(f"{free_gb:.0f} GB free; load average {load_start}; work directory {work}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the clusters are dropped below on SIGTERM too
    members = nodes(work / "keys")
    national, dakar, thies = members
    settings = {"max_slot_wal_keep_size": args.slot_keep}
    try:
        demo.up(work / "keys", nodes=members, settings=settings, progress=log)
        local_clusters.create(SINGLE.name, SINGLE.port, settings=settings)
        local_clusters.provision_all([SINGLE], reference=[SINGLE])
        log(f"single node {SINGLE.name} provisioned, reference loaded")

        bargny = generate(args.data_dir, parcels=args.dakar_parcels, defect_rate=0.0, seed=args.seed,
                          admin_url=dakar.cluster.conninfo, commune=DAKAR_COMMUNE, log=log)
        done = sifc_import(dakar.cluster, bargny, DAKAR_COMMUNE, env=dakar.env(), work=work, node="dakar")
        wait_applied(national.cluster, "sifc_from_dakar", done.lsn or "0/0", DAKAR_COMMUNE, bargny.parcels,
                     timeout=args.lag_timeout)
        log(f"dakar: {bargny.parcels:,} parcels in {DAKAR_COMMUNE} imported and applied at the national node")

        files = datasets_for_runs(args, thies.cluster, national.cluster)
        runs = []
        for commune, dataset in files:
            imported = sifc_import(thies.cluster, dataset, commune, env=thies.env(), work=work, node="thies")
            t_lag = wait_applied(national.cluster, "sifc_from_thies", imported.lsn or "0/0", commune,
                                 dataset.parcels, timeout=args.lag_timeout)
            slot = _scalar(thies.cluster, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = %(s)s",
                           {"s": "sifc_to_national"})
            runs.append({"commune": commune, "t_imp": imported.seconds, "t_lag": t_lag,
                         "ratio": t_lag / imported.seconds, "lsn": imported.lsn, "timings": imported.timings,
                         "slot_wal_status": slot})
            log(f"thies: {commune}: T_imp {imported.seconds:.2f} s, T_lag {t_lag:.2f} s, "
                f"ratio {t_lag / imported.seconds:.2f} (slot {slot})")
        lag = {"runs": runs, "median_t_imp": statistics.median(r["t_imp"] for r in runs),
               "median_t_lag": statistics.median(r["t_lag"] for r in runs),
               "median_ratio": statistics.median(r["ratio"] for r in runs)}
        serving = None if args.no_serve else serve(args, national, [(DAKAR_COMMUNE, bargny), *files], work)
        versions = {"postgresql": _scalar(national.cluster, "SHOW server_version"),
                    "postgis": _scalar(national.cluster, "SELECT postgis_lib_version()")}
    finally:
        if args.keep:
            log("clusters kept (--keep): python -m bench.federation_bench --down drops them")
        else:
            log("dropped: " + ", ".join(drop_clusters()))
    result = {"started": f"{started:%Y-%m-%d %H:%M} UTC", "parcels": args.parcels, "dakar_parcels": args.dakar_parcels,
              "runs": args.runs, "seed": args.seed, "cluster_settings": {**local_clusters.SETTINGS, **settings},
              "load": {"start": load_start, "end": _loadavg()}, "versions": versions,
              "environment": {"cpus": os.cpu_count(), "platform": platform.platform()}, "git": _git(),
              "command": " ".join(sys.argv), "lag": lag, "serving": serving}
    markdown = render_markdown(result)
    print(markdown)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"federation-{args.parcels}-{started:%Y%m%d-%H%M%S}"
    (args.results_dir / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    (args.results_dir / f"{stem}.md").write_text(markdown)
    log(f"results: {args.results_dir / stem}.md / .json")
    if serving and (serving["checks"]["problems"] or any(r["errors"] for r in serving["results"])):
        return 1
    return 0

