"""Federation tests' nodes: one throwaway PostgreSQL 15 cluster per node (sifc.federation.local_clusters).

``federation(tmp_path, NodeSpec(...), ...)`` makes the clusters (dropping leftovers of a crashed run
first), provisions each with ``sifc db provision`` (all at once), loads the territorial reference where
asked, and drops every cluster when the block ends, on failure too. Each node has its own key file and
node id, which its commands and servers receive in their environment (``Node.env``).

Ports: 5451-5459 belong to the federation tests (5461-5463 to ``sifc node demo``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from sifc.federation import local_clusters
from sifc.federation.local_clusters import LocalCluster
from sifc.settings import Settings
from tests.conftest import REPO

PORTS = range(5451, 5460)
REPLICA_PORTS = range(5465, 5468)  # test_read_replica.py: a primary and its streaming replica
SIFC = [sys.executable, "-m", "cli"]


@dataclass(frozen=True)
class NodeSpec:
    """A node to make: its id (also the cluster's name), port, and whether it loads the reference."""

    node_id: str
    port: int
    reference: bool = False


@dataclass
class Node:
    """A running node of a test federation: its cluster, its environment, SQL and CLI on it."""

    node_id: str
    cluster: LocalCluster
    key_file: Path
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return self.cluster.port

    @property
    def conninfo(self) -> str:
        """libpq connection string (for ``sifc node subscribe --to``)."""
        return self.cluster.conninfo

    @property
    def replication_conninfo(self) -> str:
        """As ``sifc_replication``, the role a peer's subscription connects as (LOGIN: ``--replication-login``)."""
        return self.cluster.replication_conninfo

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a command or server bound to this node (database URLs, key file, node id)."""
        return {**os.environ, **self.cluster.env(), "SIFC_ENVIRONMENT": "test",
                "SIFC_KEY_FILE": str(self.key_file), "SIFC_NODE_ID": self.node_id, **extra}

    def settings(self, **update: Any) -> Settings:
        """Settings bound to this node's database (as the service's role; admin URL for the owner)."""
        return Settings(environment="test", database_url=self.cluster.service_url,
                        admin_database_url=self.cluster.admin_url, key_file=self.key_file, **update)

    @property
    def engine(self) -> Engine:
        """The superuser's engine on the node's database (no pool: a stopped node leaves nothing open)."""
        if self._engine is None:
            self._engine = create_engine(self.cluster.admin_url, poolclass=NullPool,
                                         isolation_level="AUTOCOMMIT")
        return self._engine

    def sql(self, statement: str, **params: Any) -> list[Any]:
        """Rows of ``statement`` run as the superuser, autocommitted."""
        with self.engine.connect() as conn:
            result = conn.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []

    def scalar(self, statement: str, **params: Any) -> Any:
        """The first column of the first row of ``statement``."""
        rows = self.sql(statement, **params)
        return rows[0][0] if rows else None

    def run(self, *args: str, timeout: float = 300, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``sifc ARGS`` on this node; with ``check``, a failure raises with its output."""
        done = subprocess.run([*SIFC, *args], cwd=REPO, env={**self.env(), **(env or {})},
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"sifc {' '.join(args)} on {self.node_id} exited {done.returncode}:\n"
                                 f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def stop(self, mode: str = "fast") -> None:
        """Stop the node's server (``immediate``: as a crash)."""
        local_clusters.stop_cluster(self.cluster, mode=mode)

    def start(self) -> None:
        """Start the node's server and wait for it."""
        local_clusters.start_cluster(self.cluster)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def cluster_name(spec: NodeSpec) -> str:
    """The cluster of a test node, ``sifc_t<port>_<node id>``: named by its port, so two test runs on
    different ports never take each other's clusters for leftovers."""
    return f"{local_clusters.PREFIX}t{spec.port}_{spec.node_id}"


def make_nodes(tmp_path: Path, *specs: NodeSpec) -> dict[str, Node]:
    """Create, start and provision one cluster per spec (leftovers of a crashed run dropped first)."""
    for spec in specs:
        if spec.port not in PORTS and spec.port not in REPLICA_PORTS:
            raise ValueError(f"federation tests use ports {PORTS.start}-{PORTS.stop - 1}, not {spec.port}")
    nodes: dict[str, Node] = {}
    try:
        for spec in specs:
            cluster = local_clusters.create(cluster_name(spec), spec.port)
            keys = tmp_path / f"keys-{spec.node_id}"
            keys.mkdir(parents=True, exist_ok=True)
            nodes[spec.node_id] = Node(spec.node_id, cluster, keys / "signing-keys.json")
        local_clusters.provision_all(
            [nodes[s.node_id].cluster for s in specs],
            reference=[nodes[s.node_id].cluster for s in specs if s.reference],
            env={nodes[s.node_id].cluster: _node_env(nodes[s.node_id]) for s in specs})
    except BaseException:
        drop_nodes(nodes.values())
        raise
    return nodes


def streaming_replica(primary: Node, port: int) -> Node:
    """A physical streaming replica of ``primary`` on ``port`` (``pg_basebackup -R``), started and in recovery.

    The cluster is made as any other (configuration under /etc, on ``port``), then its data directory is
    replaced by a base backup of the primary's, which carries the roles, the database and the standby's
    settings (``standby.signal``, ``primary_conninfo``). Drop it with :func:`drop_nodes`.
    """
    if port not in REPLICA_PORTS:
        raise ValueError(f"streaming replicas use ports {REPLICA_PORTS.start}-{REPLICA_PORTS.stop - 1}, not {port}")
    node_id = f"{primary.node_id}_replica"
    cluster = local_clusters.create(cluster_name(NodeSpec(node_id, port)), port, settings=primary.cluster.settings,
                                    start=False)
    replica = Node(node_id, cluster, primary.key_file)
    try:
        data = Path(f"/var/lib/postgresql/{local_clusters.VERSION}/{cluster.name}")
        for entry in data.iterdir():  # the directory itself stays, owned by postgres with its mode
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, "pg_basebackup", "-h", local_clusters.HOST,
                        "-p", str(primary.port), "-U", "postgres", "-D", str(data), "-R", "-X", "stream",
                        "-c", "fast"], check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=300)
        local_clusters.start_cluster(cluster)
    except BaseException:
        drop_nodes([replica])
        raise
    return replica


def _node_env(node: Node) -> dict[str, str]:
    return {"SIFC_ENVIRONMENT": "test", "SIFC_KEY_FILE": str(node.key_file), "SIFC_NODE_ID": node.node_id}


def drop_nodes(nodes: Any) -> None:
    """Drop every node's cluster (each attempted even if another fails)."""
    errors = []
    for node in list(nodes):
        node.close()
        try:
            local_clusters.drop(node.cluster.name)
        except Exception as error:  # noqa: BLE001 - every cluster must be attempted
            errors.append(f"{node.cluster.name}: {error}")
    if errors:
        raise RuntimeError("clusters not dropped: " + "; ".join(errors))


@contextmanager
def federation(tmp_path: Path, *specs: NodeSpec) -> Iterator[dict[str, Node]]:
    """Nodes for the block (node id -> Node), dropped at its end whatever happens."""
    nodes = make_nodes(tmp_path, *specs)
    try:
        yield nodes
    finally:
        drop_nodes(nodes.values())


def wait_until(predicate: Callable[[], Any], *, timeout: float = 60, interval: float = 0.25,
               what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something true; return it, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
