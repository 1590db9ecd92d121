"""Throwaway PostgreSQL 15 clusters on this machine, for the federation's demo and its tests.

A federation needs several PostgreSQL servers; on one machine that is several clusters of Debian's
``postgresql-common`` (``pg_createcluster``), one per node, each on its own loopback port. Each is made
for logical replication (``wal_level = logical``), with ``max_slot_wal_keep_size`` bounding the WAL a
stopped subscriber may hold back (ADR 0004, point 6), small buffers, and ``fsync`` left on so a killed
server recovers as a real one would. Loopback connections are trusted: these clusters are for the demo
and the tests, never for data that matters, and listen on 127.0.0.1 only.

Every cluster made here is named with ``PREFIX``; nothing here touches a cluster without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sifc.errors import DatabaseUnavailable

PREFIX = "sifc_"
VERSION = "15"
HOST = "127.0.0.1"
SERVICE_ROLE = "sifc_app"
SERVICE_PASSWORD = "sifc_app"  # trusted loopback clusters only: the password is never checked
SETTINGS = {
    "wal_level": "logical",
    "max_slot_wal_keep_size": "64MB",
    "shared_buffers": "32MB",
    "fsync": "on",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "max_logical_replication_workers": "8",
    "wal_sender_timeout": "10s",
    "wal_receiver_timeout": "10s",
    "listen_addresses": "localhost",
}


@dataclass(frozen=True)
class LocalCluster:
    """One local cluster and the SIFC database in it."""

    name: str
    port: int
    database: str = "sifc"
    settings: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def admin_url(self) -> str:
        """The superuser's URL (migrations, provisioning, node operations)."""
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{self.database}"

    @property
    def service_url(self) -> str:
        """The service role's URL (``sifc serve``, the import worker, the CLI's ordinary commands)."""
        return f"postgresql+psycopg://{SERVICE_ROLE}:{SERVICE_PASSWORD}@{HOST}:{self.port}/{self.database}"

    @property
    def conninfo(self) -> str:
        """A libpq connection string to the database, as a subscription on another node names it."""
        return f"host={HOST} port={self.port} dbname={self.database} user=postgres"

    @property
    def replication_conninfo(self) -> str:
        """The same as the role ``sifc_replication`` (``sifc node init`` made it; LOGIN with ``replication_login``).

        What a peer's subscription names: it reads the published columns only. No password: loopback is trusted.
        """
        return f"host={HOST} port={self.port} dbname={self.database} user=sifc_replication"

    def env(self) -> dict[str, str]:
        """The ``SIFC_*`` variables that bind a command or a server to this cluster's database."""
        return {"SIFC_DATABASE_URL": self.service_url, "SIFC_ADMIN_DATABASE_URL": self.admin_url}

    @property
    def log_file(self) -> Path:
        """The server's log (postgresql-common's default place)."""
        return Path(f"/var/log/postgresql/postgresql-{VERSION}-{self.name}.log")


def _require_tools() -> None:
    if shutil.which("pg_createcluster") is None:
        raise DatabaseUnavailable("db.tool_failed", tool="pg_createcluster",
                                  reason="postgresql-common absent (Debian, Ubuntu)")


def _run(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        raise DatabaseUnavailable("db.tool_failed", tool=args[0],
                                  reason=lines[-1] if lines else f"code {done.returncode}")
    return done


def listed() -> dict[str, tuple[int, str]]:
    """The PostgreSQL 15 clusters of this machine: name -> (port, status)."""
    if shutil.which("pg_lsclusters") is None:
        return {}
    found: dict[str, tuple[int, str]] = {}
    for line in _run(["pg_lsclusters", "--no-header"]).stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == VERSION:
            found[parts[1]] = (int(parts[2]), parts[3])
    return found


def drop(name: str) -> None:
    """Stop and drop cluster ``name`` if it exists (one of ours: named with ``PREFIX``)."""
    if not name.startswith(PREFIX):
        raise ValueError(f"not a SIFC throwaway cluster: {name!r}")
    if name in listed():
        _run(["pg_dropcluster", "--stop", VERSION, name])


def create(name: str, port: int, *, database: str = "sifc", settings: dict[str, str] | None = None,
           start: bool = True) -> LocalCluster:
    """Create (and start) cluster ``name`` on ``port``, first dropping a leftover of the same name.

    A leftover holding the port under another name of ours is dropped too (an earlier run that crashed
    with another naming); a foreign cluster on the port is refused, never touched.
    """
    if not name.startswith(PREFIX):
        raise ValueError(f"a throwaway cluster's name starts with {PREFIX!r}: {name!r}")
    _require_tools()
    for other, (other_port, _) in listed().items():
        if other == name or other_port == port:
            if not other.startswith(PREFIX):
                raise DatabaseUnavailable("db.tool_failed", tool="pg_createcluster",
                                          reason=f"port {port} taken by cluster {other}")
            drop(other)
    options = {**SETTINGS, **(settings or {})}
    args = ["pg_createcluster", VERSION, name, "-p", str(port), "--start-conf=manual"]
    for key, value in options.items():
        args += ["-o", f"{key}={value}"]
    _run([*args, "--", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"])
    cluster = LocalCluster(name, port, database, options)
    if start:
        start_cluster(cluster)
    return cluster


def start_cluster(cluster: LocalCluster, *, timeout: float = 60) -> None:
    """Start the cluster's server (if stopped) and wait until it accepts connections."""
    if not listed().get(cluster.name, (0, ""))[1].startswith("online"):  # a standby is "online,recovery"
        _run(["pg_ctlcluster", VERSION, cluster.name, "start"])
    deadline = time.monotonic() + timeout
    while _run(["pg_isready", "-q", "-h", HOST, "-p", str(cluster.port)], check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise DatabaseUnavailable("db.tool_failed", tool="pg_ctlcluster",
                                      reason=f"{cluster.name} did not start within {timeout:.0f} s")
        time.sleep(0.1)


def stop_cluster(cluster: LocalCluster, *, mode: str = "fast") -> None:
    """Stop the cluster's server: ``fast`` (clean), ``immediate`` (as a crash: recovery at the next start)."""
    if listed().get(cluster.name, (0, ""))[1].startswith("online"):
        _run(["pg_ctlcluster", VERSION, cluster.name, "stop", "-m", mode])


def sifc_command(cluster: LocalCluster, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 600) -> subprocess.Popen[str]:
    """Start ``sifc ARGS`` bound to the cluster's database (a process, so several run at once)."""
    environment = {**os.environ, **cluster.env(), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "cli", *args], env=environment, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parents[2])


def wait_all(processes: list[subprocess.Popen[str]], *, timeout: float = 600) -> None:
    """Wait for every process; raise with the first failure's last line of error."""
    failures = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=timeout)
        if process.returncode != 0:
            lines = [line for line in (stderr or stdout).strip().splitlines() if line.strip()]
            failures.append(lines[-1] if lines else f"code {process.returncode}")
    if failures:
        raise DatabaseUnavailable("db.tool_failed", tool="sifc", reason="; ".join(failures))


def provision_all(clusters: list[LocalCluster], *, reference: list[LocalCluster] | None = None,
                  env: dict[LocalCluster, dict[str, str]] | None = None) -> None:
    """``sifc db provision`` on every cluster at once, then ``sifc territories load`` on ``reference``."""
    env = env or {}
    wait_all([sifc_command(c, "db", "provision", env=env.get(c)) for c in clusters])
    wait_all([sifc_command(c, "territories", "load", env=env.get(c)) for c in reference or []])
