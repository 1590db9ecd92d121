"""The load generators: ``wrk`` against an HTTP service, ``pgbench`` against the database.

Both run 16 clients (``-c 16``) on 2 threads (``-t 2`` / ``-j 2``) for the same duration. wrk picks
a random path of a list per request (``wrk.lua``); pgbench picks a random input of the same list
per transaction (one script: a random index, the input's variables found by nested ``\\if``) and
sends the endpoint's own statement with them bound (``-M prepared``, as psycopg does after five
executions of the same statement on a connection).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass
class Result:
    """One timed load: a side (sifc, tipg, pgbench) on one case in one round."""

    case: str
    side: str
    round: int
    rate: float  # requests (or transactions) per second
    p50_ms: float | None
    p99_ms: float | None
    requests: int
    errors: dict[str, int]
    mean_ms: float | None = None
    bytes_per_request: float | None = None
    cpu_ms_per_request: float | None = None  # the service process's CPU time (user + system) per request
    scale: int | None = None  # the parcels of the database served (--scales)


def ensure_tool(command: str, package: str, log=print) -> str:
    found = shutil.which(command)
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise SystemExit(f"{command} is missing: install it (Debian: apt-get install {package}) and run again")
    log(f"installing {package} ({command})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
    return shutil.which(command) or command


def wrk(base: str, paths_file: Path, *, case: str, side: str, number: int, duration: int, connections: int,
        threads: int, timeout_s: int = 10) -> Result:
    """``wrk`` for ``duration`` seconds over the paths of ``paths_file``."""
    command = [ensure_tool("wrk", "wrk"), f"-t{threads}", f"-c{connections}", f"-d{duration}s",
               f"--timeout={timeout_s}s", "-s", str(HERE / "wrk.lua"), base]
    done = subprocess.run(command, env=dict(os.environ, WRK_PATHS=str(paths_file)), capture_output=True, text=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    seconds = data["duration_us"] / 1e6
    errors = {k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    return Result(case, side, number, data["requests"] / seconds, data["p50_us"] / 1000, data["p99_us"] / 1000,
                  data["requests"], errors, data["mean_us"] / 1000,
                  data["bytes"] / data["requests"] if data["requests"] else None)


def _psycopg_type(value: Any) -> str:
    """The type psycopg gives a Python number it binds (int: the smallest integer type that holds it)."""
    if isinstance(value, float):
        return "float8"
    if isinstance(value, int) and not isinstance(value, bool):
        return "int2" if -2**15 <= value < 2**15 else "int4" if -2**31 <= value < 2**31 else "int8"
    raise SystemExit(f"pgbench variables must be numbers, not {value!r}")


def pgbench_sql(statement: str, params: dict[str, Any]) -> str:
    """psycopg's ``%(name)s`` placeholders as pgbench's ``:name`` variables, typed as psycopg binds them.

    psycopg sends each parameter with its type; pgbench sends them untyped, which PostgreSQL cannot
    always resolve (``ST_TileEnvelope(:z, :x, :y)``): the cast restores the same parameter types.
    """
    def typed(match: re.Match[str]) -> str:
        return f"CAST(:{match.group(1)} AS {_psycopg_type(params[match.group(1)])})"

    converted = re.sub(r"%\((\w+)\)s", typed, statement).replace("%%", "%")
    # pgbench reads any ``:word`` as a variable, even inside a string ('HH24:MI:SS'): the same
    # constant written as an escape string without a colon.
    converted = re.sub(r"(?<![\w'])'((?:[^']|'')*:(?:[^']|'')*)'",
                       lambda m: "E'" + m.group(1).replace("\\", "\\\\").replace(":", "\\x3a") + "'", converted)
    return converted.strip().rstrip(";") + ";\n"


def _value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SystemExit(f"pgbench variables must be numbers, not {value!r}")
    return repr(value)


def write_pgbench_script(directory: Path, name: str, statement: str, constants: dict[str, Any],
                         inputs: list[dict[str, Any]]) -> Path:
    """One script: draw an input index, find its variables by bisection (nested ``\\if``), send the statement.

    A single script keeps one prepared statement per client, as the service's connections have;
    the bisection costs about log2(N) comparisons in pgbench per transaction.
    """
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"\\set {k} {_value(v)}\n" for k, v in constants.items()]
    lines.append(f"\\set r random(0, {len(inputs) - 1})\n")

    def emit(lo: int, hi: int) -> None:
        if hi - lo == 1:
            lines.extend(f"\\set {k} {_value(v)}\n" for k, v in inputs[lo].items())
            return
        mid = (lo + hi) // 2
        lines.append(f"\\if :r < {mid}\n")
        emit(lo, mid)
        lines.append("\\else\n")
        emit(mid, hi)
        lines.append("\\endif\n")

    emit(0, len(inputs))
    lines.append(pgbench_sql(statement, {**constants, **inputs[0]}))
    path = directory / f"{name}.sql"
    path.write_text("".join(lines))
    return path


def pgbench(url: str, script: Path, *, case: str, number: int, duration: int, connections: int,
            threads: int, log_dir: Path, sampling: float = 0.1) -> Result:
    """``pgbench -n -M prepared`` for ``duration`` seconds; latencies from a sampled transaction log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    prefix = log_dir / f"pgbench_{case}_{number}"
    for old in log_dir.glob(f"{prefix.name}.*"):
        old.unlink()
    command = [ensure_tool("pgbench", "postgresql-client"), "-n", "-M", "prepared", "-c", str(connections),
               "-j", str(threads), "-T", str(duration), "-l", f"--log-prefix={prefix}",
               f"--sampling-rate={sampling}"]
    command += ["-f", str(script)]
    done = subprocess.run(command + [url], capture_output=True, text=True, cwd=log_dir)
    if done.returncode != 0:
        raise SystemExit(f"pgbench failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")
    tps = float(re.search(r"tps = ([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    processed = int(re.search(r"number of transactions actually processed: (\d+)", done.stdout).group(1))  # type: ignore[union-attr]
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    latencies = []
    for path in log_dir.glob(f"{prefix.name}.*"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                latencies.append(int(parts[2]) / 1000)  # µs → ms
        path.unlink()
    latencies.sort()

    def pct(p: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else None

    errors = {"failed": int(failed.group(1))} if failed and int(failed.group(1)) else {}
    return Result(case, "pgbench", number, tps, pct(50), pct(99), processed, errors,
                  statistics.fmean(latencies) if latencies else None)
