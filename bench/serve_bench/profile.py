"""``python -m bench.serve_bench profile``: where our service spends its time under the benchmark's load.

Starts our service as the benchmark does, drives one case with wrk (16 clients) and samples the
uvicorn process with py-spy (``--gil``: only samples where Python holds the GIL, i.e. the
interpreter's own work, not waits on the database or the socket). Writes the functions with the
most samples, own and inclusive, and the process's CPU time per request, to
``bench/results/serve-profile-<case>-<date>.md`` (the raw stacks in ``bench/work``, for flame graphs).
"""

from __future__ import annotations

import collections
import datetime as dt
import subprocess
import time
from pathlib import Path

from bench.import_bench.databases import Server
from bench.serve_bench import database, load, servers
from bench.serve_bench.inputs import load_or_draw
from bench.serve_bench.runner import _cpu_seconds, _paths, log

SKIPPED = ("typer/", "click/", "cli/__init__.py", "cli/serve.py", "uvicorn/main.py", "threading.py:10",
           "asyncio/runners.py", "uvicorn/_compat.py", "<module>", "uvicorn/server.py")


def py_spy() -> str:
    binary = servers.TIPG_VENV / "bin" / "py-spy"
    if not binary.exists():
        log(f"installing py-spy into {servers.TIPG_VENV}")
        subprocess.run([str(servers.TIPG_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "py-spy"], check=True)
    return str(binary)


def summarize(raw: Path, top: int) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    keep = [(f, n) for f, n in inclusive.most_common() if not any(s in f for s in SKIPPED)]
    return total, own.most_common(top), keep[:top]


def main(args) -> int:
    servers.ensure_tipg(log)
    spy = py_spy()
    server = Server.from_environment()
    loaded = database.ensure(server, parcels=args.parcels, seed=args.seed, data_dir=args.data_dir, log=log)
    inp = load_or_draw(args.data_dir / f"serve-inputs-{args.parcels}-s{args.seed}.json", server.url(database.DATABASE),
                       count=args.inputs, seed=args.seed, dataset=loaded.dataset, log=log)
    started = dt.datetime.now(dt.UTC)
    work = args.work_dir / f"serve-profile-{started:%Y%m%d-%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    paths = work / f"{args.case}.paths"
    paths.write_text("\n".join(_paths(inp, args.tile_properties)[args.case]["sifc"]) + "\n")
    ours = servers.sifc(server.url(database.DATABASE, service=True), server.url(database.DATABASE),
                        pool_size=args.pool_size, work=work)
    stem = f"serve-profile-{args.case}-{started:%Y%m%d-%H%M%S}"
    raw = work / f"{stem}.raw"  # about 1 MB: kept with the run's logs (bench/work), not in results
    args.results_dir.mkdir(parents=True, exist_ok=True)
    try:
        ours.start()
        load.wrk(ours.base, paths, case=args.case, side="sifc", number=0, duration=args.warmup,
                 connections=args.connections, threads=args.threads)
        cpu = _cpu_seconds(ours.pid)
        driver = subprocess.Popen(["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration + 4}s",
                                   "-s", str(load.HERE / "wrk.lua"), ours.base],
                                  env={"WRK_PATHS": str(paths), "PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE,
                                  text=True)
        time.sleep(2)
        subprocess.run([spy, "record", "-p", str(ours.pid), "-d", str(args.duration), "-r", "250", "--gil",
                        "--nonblocking", "-f", "raw", "-o", str(raw)], check=True, capture_output=True)
        out, _ = driver.communicate()
        after = _cpu_seconds(ours.pid)
    finally:
        ours.stop()
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    import json

    data = json.loads(line.removeprefix("WRK_JSON "))
    rate = data["requests"] / (data["duration_us"] / 1e6)
    cpu_ms = 1000 * (after - cpu) / data["requests"] if cpu is not None and after is not None else None
    total, own, inclusive = summarize(raw, args.top)
    seconds = args.duration
    lines = [f"# Profile of our service — case `{args.case}`, {loaded.parcels:,} parcels", "",
             f"{started:%Y-%m-%d %H:%M} UTC · wrk {args.connections} clients · {rate:.1f} req/s · p50 "
             f"{data['p50_us'] / 1000:.1f} ms · p99 {data['p99_us'] / 1000:.1f} ms · service CPU "
             + (f"{cpu_ms:.2f} ms per request" if cpu_ms is not None else "–"),
             f"py-spy --gil, 250 Hz for {seconds} s: {total} samples with the GIL held "
             f"({100 * total / (250 * seconds):.0f} % of the time); raw stacks: `{raw}`.", "",
             "| own % | function |", "|---|---|"]
    lines += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in own]
    lines += ["", "| inclusive % | function |", "|---|---|"]
    lines += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in inclusive]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    (args.results_dir / f"{stem}.md").write_text(markdown)
    log(f"profile: {args.results_dir / stem}.md")
    return 0
