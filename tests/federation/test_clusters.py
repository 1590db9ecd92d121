"""The federation tests' clusters: made for logical replication, provisioned, and dropped after."""

from __future__ import annotations

from sifc.federation import local_clusters
from tests.federation.clusters import NodeSpec, federation


def test_a_node_is_a_provisioned_cluster_for_logical_replication_dropped_at_the_end(tmp_path):
    with federation(tmp_path, NodeSpec("solo", 5455)) as nodes:
        node = nodes["solo"]
        assert node.scalar("SHOW wal_level") == "logical"
        assert node.scalar("SHOW max_slot_wal_keep_size") == "64MB"
        assert node.scalar("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
        assert node.scalar("SELECT version_num FROM alembic_version")
        assert node.scalar("SELECT rolcanlogin AND NOT rolsuper FROM pg_roles WHERE rolname = 'sifc_app'")
        assert node.scalar("SELECT count(*) FROM commune") == 0  # no reference unless asked
        name = node.cluster.name
        assert name in local_clusters.listed()
    assert name not in local_clusters.listed()


def test_a_leftover_of_a_crashed_run_is_dropped_before_the_cluster_is_made(tmp_path):
    spec = NodeSpec("leftover", 5455)
    leftover = local_clusters.create(f"{local_clusters.PREFIX}t5455_other", 5455, start=False)
    with federation(tmp_path, spec) as nodes:
        assert leftover.name not in local_clusters.listed()
        assert nodes["leftover"].scalar("SELECT 1") == 1
