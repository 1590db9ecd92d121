"""Wall time and peak memory of a command run as a child process."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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


def measure(command: list[str], *, env: dict[str, str] | None, cwd: Path, logs: Path,
            on_spawn: Callable[[int], None] | None = None) -> Measurement:
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
        if on_spawn is not None:
            on_spawn(child.pid)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen so it never waits again
    return Measurement(wall_s=wall, max_rss_mib=usage.ru_maxrss / 1024, user_s=usage.ru_utime,
                       sys_s=usage.ru_stime, returncode=child.returncode,
                       stdout=out_path.read_text(errors="replace")[-4000:],
                       stderr=err_path.read_text(errors="replace")[-4000:])


PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc/<pid>/stat (the parent is the 4th field, after the command's ')')."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        children.setdefault(parent, []).append(int(entry.name))
    return children


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children, found, stack = _children(), [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def rss_bytes(pid: int) -> int:
    """Resident set of one process (``/proc/<pid>/statm``), 0 once it has ended."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def pss_bytes(pid: int) -> int | None:
    """Proportional set of one process (``/proc/<pid>/smaps_rollup``): shared pages divided among their users.

    A backend's RSS counts every page of ``shared_buffers`` it touched, pages other backends count
    too; its PSS charges each such page once across all of them. None when unreadable (another user).
    """
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        return None
    return None


BACKENDS_QUERY = """
    SELECT pid FROM pg_stat_activity
    WHERE datname = %s AND backend_type IN ('client backend', 'parallel worker') AND pid <> pg_backend_pid()
"""


@dataclass
class Sampler:
    """Samples, every ``period`` seconds while a command runs, the memory of its whole process tree and
    of the PostgreSQL backends serving ``database`` (found in ``pg_stat_activity`` through ``admin_url``,
    a connection to another database, so the sampler's own backend is never among them).

    The backends' /proc entries are read directly: the server must run on this machine, readable by
    this user (root, or the postgres user), else their figures stay empty. Peaks are of the sums at
    one instant; a peak shorter than the period can be missed (``wait4`` still gives the exact peak of
    the largest single process).
    """

    admin_url: str | None = None
    database: str | None = None
    period: float = 0.2
    samples: int = 0
    tree_rss_peak: int = 0
    tree_processes_peak: int = 0
    backends_rss_peak: int = 0
    backends_pss_peak: int | None = None
    backends_peak: int = 0
    total_rss_peak: int = 0  # the tree and the backends together, at one instant
    database_bytes: int | None = None  # given: pg_database_size is sampled too, from this starting size
    database_bytes_peak: int = 0
    timeline: list[tuple[float, int, int, int | None]] = field(default_factory=list)  # (s, tree, backends rss, pss)
    error: str | None = None

    def run(self, pid: int, stop: threading.Event) -> None:
        conn = None
        if self.admin_url and self.database:
            try:
                import psycopg

                conn = psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)
            except Exception as exc:  # the process tree is still sampled
                self.error = f"backends not sampled: {exc}".splitlines()[0]
        started = time.perf_counter()
        try:
            while not stop.is_set():
                self.sample(pid, conn, time.perf_counter() - started)
                stop.wait(self.period)
        finally:
            if conn is not None:
                conn.close()

    def sample(self, pid: int, conn, elapsed: float) -> None:
        processes = tree(pid)
        tree_rss = sum(rss_bytes(p) for p in processes)
        backends_rss, backends_pss, backends = 0, None, []
        if conn is not None:
            try:
                backends = [row[0] for row in conn.execute(BACKENDS_QUERY, (self.database,)).fetchall()]
            except Exception as exc:  # keep sampling the tree
                self.error = f"pg_stat_activity: {exc}".splitlines()[0]
            backends_rss = sum(rss_bytes(p) for p in backends)
            pss = [pss_bytes(p) for p in backends]
            if backends and all(p is not None for p in pss):
                backends_pss = sum(p for p in pss if p is not None)
        self.samples += 1
        self.tree_rss_peak = max(self.tree_rss_peak, tree_rss)
        self.tree_processes_peak = max(self.tree_processes_peak, len(processes))
        self.backends_rss_peak = max(self.backends_rss_peak, backends_rss)
        if backends_pss is not None:
            self.backends_pss_peak = max(self.backends_pss_peak or 0, backends_pss)
        self.backends_peak = max(self.backends_peak, len(backends))
        self.total_rss_peak = max(self.total_rss_peak, tree_rss + backends_rss)
        self.timeline.append((round(elapsed, 2), tree_rss, backends_rss, backends_pss))
        if conn is not None and self.database_bytes is not None:
            try:
                size = conn.execute("SELECT pg_database_size(%s)", (self.database,)).fetchone()[0]
                self.database_bytes_peak = max(self.database_bytes_peak, int(size))
            except Exception:  # dropped meanwhile
                pass

    def as_dict(self) -> dict[str, Any]:
        def mib(value: int | None) -> float | None:
            return None if value is None else round(value / MIB, 1)

        return {"period_s": self.period, "samples": self.samples, "tree_rss_peak_mib": mib(self.tree_rss_peak),
                "tree_processes_peak": self.tree_processes_peak, "database": self.database,
                "backends_rss_peak_mib": mib(self.backends_rss_peak),
                "backends_pss_peak_mib": mib(self.backends_pss_peak), "backends_peak": self.backends_peak,
                "tree_and_backends_rss_peak_mib": mib(self.total_rss_peak), "error": self.error,
                # at most about 500 points: (seconds, tree RSS, backends RSS, backends PSS) in MiB
                "timeline_mib": [(t, mib(tree_rss), mib(rss), mib(pss))
                                 for t, tree_rss, rss, pss in self.timeline[::max(1, len(self.timeline) // 500)]]}


def measure_sampled(command: list[str], *, env: dict[str, str] | None, cwd: Path, logs: Path,
                    sampler: Sampler) -> Measurement:
    """``measure`` with ``sampler`` running beside the child from its spawn to its exit."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def started(pid: int) -> None:
        thread = threading.Thread(target=sampler.run, args=(pid, stop), daemon=True)
        thread.start()
        threads.append(thread)

    try:
        return measure(command, env=env, cwd=cwd, logs=logs, on_spawn=started)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
