"""Wall time and peak memory of a command run as a child process."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Measurement:
    """One timed run of one command."""

    wall_s: float
    max_rss_mib: float
    user_s: float
    sys_s: float
    returncode: int
    stdout: str
    stderr: str


def measure(command: list[str], *, env: dict[str, str] | None, cwd: Path, logs: Path) -> Measurement:
    """Run ``command``; wall clock from spawn to exit, peak RSS from ``wait4``'s rusage.

    ``wait4`` reports the child's own resource usage (``ru_maxrss`` in KiB on Linux), the
    exact peak resident set of that process; PostgreSQL's backend memory is not included.
    Output goes to files under ``logs`` (a pipe could fill and stall the child).
    """
    logs.parent.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs.with_suffix(".out"), logs.with_suffix(".err")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen so it never waits again
    return Measurement(wall_s=wall, max_rss_mib=usage.ru_maxrss / 1024, user_s=usage.ru_utime,
                       sys_s=usage.ru_stime, returncode=child.returncode,
                       stdout=out_path.read_text(errors="replace")[-4000:],
                       stderr=err_path.read_text(errors="replace")[-4000:])
