"""``make bench-registry``: what a first load costs the registry today, and what a partitioned one would.

A first load of a commune is far slower than ogr2ogr on the same file (the target was 2 × at 200,000
parcels), largely because its rows go into ``parcel_version``, which carries every index, a validity
CHECK and two generated columns. A registry partitioned by commune would fill a fresh partition, index
it once and attach it. Before building one, this measures its floor on the same rows, in one run,
alternating, beside the anchor (the figures and the decision: ADR 0006, bench/README.md):

- ``ogr2ogr``: the anchor, run exactly as ``bench/import_bench`` runs it;
- ``sifc``: ``sifc import parcels`` in this process, on a fresh database, with its parts timed —
  the reader thread's CPU (reading, checks and CSV encoding of every chunk), the file's overlap
  search (CPU), the registry's ``COPY`` as the writer thread waits for it, and the lookups of
  NICADs current elsewhere;
- ``copy-registry``: the very rows that import wrote (dumped from a first import, untimed), copied
  into ``parcel_version`` as the service role does it (triggers, indexes, CHECKs) and committed;
- ``copy-partition``: the same rows into a fresh table with the registry's columns, generated
  columns and CHECKs but no index; then the registry's ten indexes built once, a CHECK on the
  commune added, the table attached to a registry partitioned by commune (no re-scan, thanks to
  that CHECK), and one row per current parcel inserted into a national table of current keys
  (``parcel_id`` primary key, ``nicad`` unique): the mechanism that would keep one current NICAD
  and one current version per parcel nationally, which PostgreSQL 15's partitioned unique indexes
  cannot;
- ``copy-bare``: the same rows into a table with the same columns and nothing else (the floor).

Every load starts from a fresh copy of the template after a ``CHECKPOINT`` and commits. The
partitioned variant leaves out the owner guard and the foreign keys a real one would restate as
triggers: it is a floor, not a design. What it tells: whether the database side of a partitioned
first load, overlapped with the reader as today, could bring the whole import within 2 × ogr2ogr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.import_bench.databases import RUN, TEMPLATE, Server
from bench.import_bench.generate import generate
from bench.import_bench.profile import run_cli
from bench.import_bench.runner import Context, _checkpoint, _environment, _git, ensure_ogr2ogr, log, run_ogr2ogr
from bench.revision import code_line, write_results

BENCH = Path(__file__).resolve().parents[1]
SOURCE = "sifc_bench_registry_source"
METHODS = ("ogr2ogr", "sifc", "copy-registry", "copy-partition", "copy-bare")
ANCHOR = "ogr2ogr"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.import_bench registry", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parcels", type=int, default=200_000)
    parser.add_argument("--defect-rate", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per method, alternating")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"among {','.join(METHODS)}")
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data")
    parser.add_argument("--work-dir", type=Path, default=BENCH / "work")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    return parser.parse_args(argv)


# -- the import, in this process, with its parts timed ------------------------------------------------

class _Parts:
    """Times gathered from the streamed path's own functions while one import runs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, float] = {}

    def add(self, key: str, value: float) -> None:
        with self.lock:
            self.values[key] = self.values.get(key, 0.0) + value


_PARTS: list[_Parts] = []


def _instrument() -> None:
    """Wrap the reader's loop (its thread's CPU), the writer's COPY and lookups (wall) and the overlap
    search (its thread's CPU). The functions keep their behaviour; only times are added."""
    from sifc.imports import stream

    if getattr(stream, "_registry_probe", False):
        return
    stream._registry_probe = True  # type: ignore[attr-defined]

    def thread_cpu(key, function):
        def timed(*args, **kwargs):
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                if _PARTS:
                    _PARTS[-1].add(key, time.thread_time() - started)
        return timed

    def wall(key_of, function):
        def timed(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return function(self, *args, **kwargs)
            finally:
                if _PARTS:
                    _PARTS[-1].add(key_of(*args), time.perf_counter() - started)
        return timed

    stream._Reader.run = thread_cpu("reader_cpu_s", stream._Reader.run)
    stream.overlapping_pairs = thread_cpu("overlaps_cpu_s", stream.overlapping_pairs)
    stream._Writer._copy = wall(lambda statement, data: "copy_registry_s" if statement is stream.VERSION_COPY
                                else "copy_stage_s", stream._Writer._copy)
    stream._Writer._taken = wall(lambda nicads: "nicads_taken_s", stream._Writer._taken)


def _import_in_process(server: Server, database: str, file: Path, work: Path) -> tuple[float, dict[str, float], dict]:
    os.environ.update({k: v for k, v in server.sifc_environment(database).items()
                       if k in ("SIFC_DATABASE_URL", "SIFC_ADMIN_DATABASE_URL")})
    _instrument()
    parts = _Parts()
    _PARTS.append(parts)
    report = work / "registry.report.json"
    started, cpu, process = time.perf_counter(), time.thread_time(), time.process_time()
    try:
        run_cli(["import", "parcels", str(file), "--report", str(report),
                 "--rejects", str(work / "registry_rejets.gpkg")])
    finally:
        wall = time.perf_counter() - started
        parts.values["main_thread_cpu_s"] = time.thread_time() - cpu
        parts.values["process_cpu_s"] = time.process_time() - process
        _PARTS.pop()
    data = json.loads(report.read_bytes())
    return wall, parts.values, data


# -- the rows, and the three copies ---------------------------------------------------------------------

def _capture(server: Server, file: Path, work: Path) -> tuple[bytes, bytes, str]:
    """The registry rows and the batch row a first import of ``file`` writes (an untimed import)."""
    from sifc.imports.stream import VERSION_COPY

    server.clone(TEMPLATE, SOURCE)
    try:
        _import_in_process(server, SOURCE, file, work)
        columns = VERSION_COPY.split("(", 1)[1].split(")", 1)[0]
        with psycopg.connect(server.url(SOURCE), connect_timeout=10) as conn:
            rows = _copy_out(conn, f"COPY (SELECT {columns} FROM parcel_version ORDER BY parcel_id) TO STDOUT "
                                   "(FORMAT csv)")
            batch = _copy_out(conn, "COPY import_batch TO STDOUT (FORMAT csv)")
        return rows, batch, columns
    finally:
        server.drop(SOURCE)


def _copy_out(conn: psycopg.Connection, statement: str) -> bytes:
    with conn.cursor().copy(statement) as copy:
        return b"".join(bytes(block) for block in copy)


def _copy(conn: psycopg.Connection, statement: str, data: bytes) -> None:
    with conn.cursor().copy(statement) as copy:
        copy.write(data)


def _registry_indexes(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'parcel_version' "
        "ORDER BY indexname")]


def copy_registry(server: Server, rows: bytes, batch: bytes, columns: str) -> float:
    with server.admin(RUN) as conn:
        _copy(conn, "COPY import_batch FROM STDIN (FORMAT csv)", batch)
    _checkpoint(server)
    with psycopg.connect(server.url(RUN, service=True), connect_timeout=10) as conn:
        started = time.perf_counter()
        with conn.transaction():
            _copy(conn, f"COPY parcel_version ({columns}) FROM STDIN (FORMAT csv)", rows)
        return time.perf_counter() - started


def copy_partition(server: Server, rows: bytes, batch: bytes, columns: str) -> float:
    like = "LIKE parcel_version INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS"
    with server.admin(RUN) as conn:
        _copy(conn, "COPY import_batch FROM STDIN (FORMAT csv)", batch)
        conn.execute(f"CREATE TABLE probe_registry ({like}) PARTITION BY LIST (commune_code)")
        conn.execute("CREATE TABLE probe_current (parcel_id uuid PRIMARY KEY, nicad text UNIQUE, "
                     "commune_code text NOT NULL)")
        indexes = _registry_indexes(conn)
    _checkpoint(server)
    with psycopg.connect(server.url(RUN), connect_timeout=10) as conn:
        started = time.perf_counter()
        with conn.transaction():
            conn.execute(f"CREATE TABLE probe_part ({like})")
            _copy(conn, f"COPY probe_part ({columns}) FROM STDIN (FORMAT csv)", rows)
            for number, definition in enumerate(indexes):
                head, tail = definition.split(" ON ", 1)
                name = f"probe_part_{number}"
                conn.execute(head.rsplit(" ", 1)[0] + f" {name} ON "
                             + tail.replace("public.parcel_version", "public.probe_part", 1))
            communes = [r[0] for r in conn.execute("SELECT DISTINCT commune_code FROM probe_part")]
            listed = sql.SQL(", ").join(sql.Literal(c) for c in communes)
            conn.execute(sql.SQL("ALTER TABLE probe_part ADD CONSTRAINT probe_part_commune "
                                 "CHECK (commune_code IN ({}))").format(listed))
            conn.execute(sql.SQL("ALTER TABLE probe_registry ATTACH PARTITION probe_part FOR VALUES IN ({})")
                         .format(listed))
            conn.execute("INSERT INTO probe_current (parcel_id, nicad, commune_code) "
                         "SELECT parcel_id, nicad, commune_code FROM probe_part WHERE valid_to IS NULL")
        return time.perf_counter() - started


def copy_bare(server: Server, rows: bytes, batch: bytes, columns: str) -> float:
    with server.admin(RUN) as conn:
        conn.execute("CREATE TABLE probe_bare (LIKE parcel_version INCLUDING DEFAULTS)")  # columns, defaults, NOT NULL
    _checkpoint(server)
    with psycopg.connect(server.url(RUN), connect_timeout=10) as conn:
        started = time.perf_counter()
        with conn.transaction():
            _copy(conn, f"COPY probe_bare ({columns}) FROM STDIN (FORMAT csv)", rows)
        return time.perf_counter() - started


COPIES = {"copy-registry": copy_registry, "copy-partition": copy_partition, "copy-bare": copy_bare}


# -- the run ----------------------------------------------------------------------------------------------

def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[dict[str, Any]], methods: list[str]) -> dict[str, Any]:
    medians = {m: _median([r["seconds"] for r in runs if r["method"] == m]) for m in methods}
    parts: dict[str, float] = {}
    sifc_runs = [r for r in runs if r["method"] == "sifc"]
    for key in sorted({k for r in sifc_runs for k in r.get("parts", {})}):
        parts[key] = _median([r["parts"].get(key, 0.0) for r in sifc_runs])
    anchor = medians.get(ANCHOR)
    ratios = {f"{m}/{ANCHOR}": v / anchor for m, v in medians.items() if v is not None and anchor and m != ANCHOR}
    estimate = None
    if medians.get("sifc") and medians.get("copy-registry") and medians.get("copy-partition"):
        # The import with its registry COPY replaced by the partitioned load, no better than its reader.
        replaced = medians["sifc"] - medians["copy-registry"] + medians["copy-partition"]
        estimate = {"seconds": max(replaced, parts.get("reader_cpu_s", 0.0)),
                    "replaced_s": replaced, "reader_cpu_s": parts.get("reader_cpu_s")}
        if anchor:
            estimate["ratio"] = estimate["seconds"] / anchor
    return {"medians": medians, "ratios": ratios, "sifc_parts": parts, "partitioned_estimate": estimate}


def render(result: dict[str, Any]) -> str:
    s = result["summary"]
    anchor = s["medians"].get(ANCHOR)
    lines = [f"# The registry's share of a first load, {result['parcels']:,} parcels", "",
             f"{result['started']} · {result['runs_per_method']} alternating runs per method · "
             f"{result['rows']:,} registry rows · {result['code']}", "",
             "| method | median s | / ogr2ogr |", "|---|---|---|"]
    for method in result["methods"]:
        value = s["medians"].get(method)
        ratio = value / anchor if value is not None and anchor else None
        lines.append(f"| {method} | {value:.2f} | {ratio:.2f} |" if ratio is not None
                     else f"| {method} | {value if value is None else f'{value:.2f}'} | – |")
    if s["sifc_parts"]:
        lines += ["", "sifc's parts (medians, s): " + ", ".join(f"{k} {v:.2f}" for k, v in s["sifc_parts"].items())]
    e = s["partitioned_estimate"]
    if e:
        lines += ["", f"Partitioned estimate: sifc − copy-registry + copy-partition = {e['replaced_s']:.2f} s, "
                      f"bounded below by the reader's CPU {e['reader_cpu_s'] or 0:.2f} s → {e['seconds']:.2f} s"
                      + (f" = **{e['ratio']:.2f} × ogr2ogr**" if e.get("ratio") else "")]
    lines += ["", f"Server: {result['environment']['versions'].get('postgresql', '?')}; "
                  f"shared_buffers {result['settings'].get('shared_buffers')}, "
                  f"max_wal_size {result['settings'].get('max_wal_size')}, "
                  f"max_parallel_maintenance_workers {result['settings'].get('max_parallel_maintenance_workers')}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    args = parse(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods: {', '.join(sorted(unknown))} (known: {', '.join(METHODS)})")
    server = Server.from_environment()
    ensure_ogr2ogr()
    server.ensure_template(log=log)
    server.ensure_plain()
    dataset = generate(args.data_dir, parcels=args.parcels, defect_rate=args.defect_rate, seed=args.seed,
                       admin_url=server.url(TEMPLATE), log=log)
    started = dt.datetime.now(dt.UTC)
    work = args.work_dir / f"registry-{started:%Y%m%d-%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    truth = json.loads(dataset.truth_json.read_text())
    ctx = Context(server, dataset, truth, work, False)
    log("capturing the rows of a first import (untimed)")
    rows, batch, columns = _capture(server, dataset.file, work)
    count = rows.count(b"\n")
    runs: list[dict[str, Any]] = []
    for number in range(1, args.runs + 1):
        shift = (number - 1) % len(methods)
        for method in methods[shift:] + methods[:shift]:
            record: dict[str, Any] = {"method": method, "run": number}
            if method == "ogr2ogr":
                run = run_ogr2ogr(ctx, number)
                record["seconds"] = run.wall_s
                if run.returncode:
                    raise SystemExit(f"ogr2ogr failed: {run.error}")
            else:
                server.clone(TEMPLATE, RUN)
                try:
                    if method == "sifc":
                        _checkpoint(server)
                        record["seconds"], record["parts"], report = _import_in_process(server, RUN, dataset.file,
                                                                                       work)
                        record["accepted"] = report.get("accepted")
                    else:
                        record["seconds"] = COPIES[method](server, rows, batch, columns)
                finally:
                    server.drop(RUN)
            runs.append(record)
            extra = (" [" + ", ".join(f"{k} {v:.2f}" for k, v in record["parts"].items()) + "]"
                     if record.get("parts") else "")
            log(f"run {number} {method:<15} {record['seconds']:7.2f} s{extra}")
    with server.admin() as conn:
        settings = {name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]
                    for name in ("shared_buffers", "max_wal_size", "max_parallel_maintenance_workers",
                                 "maintenance_work_mem", "synchronous_commit")}
    result = {"started": f"{started:%Y-%m-%d %H:%M} UTC", "parcels": dataset.parcels, "rows": count,
              "file": dataset.file.name, "runs_per_method": args.runs, "methods": methods, "code": code_line(_git()),
              "environment": _environment(server), "settings": settings, "load_average": os.getloadavg(),
              "runs": runs, "summary": summarize(runs, methods)}
    markdown = render(result)
    print(markdown)
    written = write_results(args.results_dir, f"registry-{dataset.parcels}-{started:%Y%m%d-%H%M%S}", result, markdown)
    log(f"written {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
