"""Fixtures of the federation tier: nodes on throwaway PostgreSQL 15 clusters (tests/federation/clusters.py).

Every module here is marked ``federation`` by its directory (tests/conftest.py): a CI stage of its own,
three clusters at most at a time, always dropped at the end.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.federation.clusters import Node, NodeSpec, drop_nodes, make_nodes

LOCK_FILE = Path(os.environ.get("SIFC_FEDERATION_LOCK", "/tmp/sifc-federation-tests.lock"))


@pytest.fixture(scope="session", autouse=True)
def _one_federation_run_at_a_time() -> Iterator[None]:
    """Two test sessions on one machine wait for each other here: their clusters share the ports 5451-5467, and
    a run drops any cluster it finds on its ports (a crashed run's leftovers), which would be the other's."""
    with LOCK_FILE.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def make_federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., dict[str, Node]]]:
    """Make nodes for the module: ``make_federation(NodeSpec(...), ...)``; all dropped when it ends."""
    made: list[Node] = []

    def _make(*specs: NodeSpec) -> dict[str, Node]:
        nodes = make_nodes(Path(tmp_path_factory.mktemp("federation")), *specs)
        made.extend(nodes.values())
        return nodes

    yield _make
    drop_nodes(made)
