"""What a split's or a merge's NICAD lookup costs in a national registry: ``make bench-lookup``.

A child of a split or a merge may be given a NICAD only if no version, current or closed, ever held it
(``sifc.mutations.EVER_HELD``). The anchor is the same question asked as one condition over all versions
(``SELECT … WHERE nicad = :n LIMIT 1``), which no partial index answers. Both run in one invocation,
alternating, on a registry of ``--versions`` synthetic versions (a fifth closed; squares of 20 m with 16
vertices; 13-digit NICADs), written straight into ``parcel_version`` by the superuser with triggers off: the
question is the lookup, not the load. The NICADs looked up were never held (the usual case: a new
child's number), so neither statement can stop early.

Database: ``sifc_bench_lookup`` (a copy of ``sifc_bench_template``), kept between runs while it holds
``--versions`` versions (``--rebuild`` to load it again; about 11 minutes at 10,000,000).
Results: ``bench/results/lookup-<versions>-<date>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.import_bench.databases import TEMPLATE, Server
from bench.import_bench.runner import _git, log
from bench.revision import code_line, write_results
from sifc.mutations import EVER_HELD

DATABASE = "sifc_bench_lookup"
RESULTS = Path(__file__).resolve().parents[1] / "results"
CHUNK = 1_000_000
ANCHOR = "SELECT parcel_id FROM parcel_version WHERE nicad = :n LIMIT 1"
STATEMENTS = {"ever-held (sifc.mutations.EVER_HELD)": EVER_HELD,
              "one condition over all versions (the anchor)": ANCHOR}
LOAD = """
    INSERT INTO parcel_version (parcel_id, version, nicad, nicad_status, commune_code, geom, action, author,
                                valid_from, valid_to, closed_by)
    SELECT gen_random_uuid(), 1, lpad(i::text, 13, '0'), 'attribue', %(commune)s,
           ST_Multi(ST_Segmentize(ST_MakeEnvelope(%(x)s + (i %% 1000) * 25, %(y)s + (i / 1000 %% 4000) * 25,
                                                  %(x)s + 20 + (i %% 1000) * 25, %(y)s + 20 + (i / 1000 %% 4000) * 25,
                                                  32628), 5)),
           'api:create', 'bench', now() - interval '1 day',
           CASE WHEN i %% 5 = 0 THEN now() END, CASE WHEN i %% 5 = 0 THEN 'bench' END
    FROM generate_series(%(first)s, %(last)s) i"""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lookup_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000_000, help="versions in the registry")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each statement (alternating)")
    parser.add_argument("--rebuild", action="store_true", help="load the registry again")
    return parser.parse_args(argv)


def ensure_registry(server: Server, versions: int, *, rebuild: bool) -> None:
    """``sifc_bench_lookup`` with exactly ``versions`` synthetic versions, analysed."""
    if not rebuild and server.exists(DATABASE):
        with psycopg.connect(server.url(DATABASE)) as conn:
            if conn.execute("SELECT count(*) FROM parcel_version").fetchone()[0] == versions:
                return
    server.ensure_template(log=log)
    server.clone(TEMPLATE, DATABASE)
    with psycopg.connect(server.url(DATABASE), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no guard, no reference check: a synthetic load
        commune = conn.execute("SELECT code FROM commune ORDER BY code LIMIT 1").fetchone()
        if commune is None:
            raise SystemExit(f"{TEMPLATE} has no commune: load the territories (bench/import_bench)")
        for first in range(1, versions + 1, CHUNK):
            last = min(first + CHUNK - 1, versions)
            started = time.perf_counter()
            conn.execute(LOAD, {"commune": commune[0], "x": 260000, "y": 1500000, "first": first, "last": last})
            log(f"{last:,} / {versions:,} versions ({time.perf_counter() - started:.0f} s)")
        conn.execute("ANALYZE parcel_version")


def time_statement(conn: psycopg.Connection, statement: str, nicad: str) -> float:
    """Seconds for one execution of ``statement`` (server side, ``EXPLAIN ANALYZE``'s execution time)."""
    plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement.replace(":n", "%(n)s"), {"n": nicad}).fetchone()
    return float(plan[0][0]["Execution Time"]) / 1000


def main(argv: list[str]) -> int:
    args = parse(argv)
    server = Server.from_environment()
    ensure_registry(server, args.versions, rebuild=args.rebuild)
    runs: list[dict[str, Any]] = []
    with psycopg.connect(server.url(DATABASE), autocommit=True) as conn:
        size = conn.execute("SELECT pg_table_size('parcel_version')").fetchone()[0]
        for statement in STATEMENTS.values():  # one untimed run each: the OS cache warm for both
            time_statement(conn, statement, "9999999999999")
        for number in range(args.runs):
            order = list(STATEMENTS.items())
            for name, statement in order[number % 2:] + order[:number % 2]:
                seconds = time_statement(conn, statement, f"99999999{number:05d}")
                runs.append({"statement": name, "run": number + 1, "seconds": seconds})
                log(f"run {number + 1}: {name} {seconds * 1000:.2f} ms")
    medians = {name: statistics.median(r["seconds"] for r in runs if r["statement"] == name) for name in STATEMENTS}
    ours, anchor = medians.values()
    started = dt.datetime.now(dt.UTC)
    result = {"versions": args.versions, "table_bytes": size, "runs": runs, "medians_s": medians,
              "ratio": ours / anchor, "git": _git(), "date": started.isoformat()}
    lines = [f"# NICAD lookup of a split's child, {args.versions:,} versions ({size / 2**30:.2f} GiB of table)", "",
             code_line(result["git"]), "", "| statement | median ms | / anchor |", "|---|---|---|"]
    lines += [f"| {name} | {seconds * 1000:.3f} | {seconds / anchor:.5f} |" for name, seconds in medians.items()]
    lines += ["", f"{args.runs} runs each, alternating; server-side execution time (EXPLAIN ANALYZE).", ""]
    path = write_results(RESULTS, f"lookup-{args.versions}-{started:%Y%m%d-%H%M%S}", result, "\n".join(lines))
    print("\n".join(lines))
    log(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
