"""A federation through a schema migration and its outages: nothing lost, nothing doubled (ADR 0004).

One national node and two poles (Dakar: Bargny; Thiès: Mont-Rolland, Sandiara), made at revision 0016
and migrated to the head with ``sifc node migrate`` while Dakar writes parcels. The other tests go on
with that federation, each leaving it streaming again: a pole cut off and writing on its own, the
national node's server killed in the middle of a large transaction, a replication slot lost to
``max_slot_wal_keep_size`` and re-synchronised, a pole restored from its backup.

"The same data" is, per pole-owned table, the count and the md5 of the rows of the pole's communes in the
columns it publishes, at the pole and at the national node.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from sifc import provision
from sifc.db import make_engine, transaction
from sifc.federation import local_clusters, registry
from sifc.federation import node as node_ops
from sifc.parcels.service import ParcelInput, create
from tests.conftest import REPO
from tests.e2e.helpers import free_port
from tests.federation.clusters import SIFC, Node, NodeSpec, wait_until

NATIONAL = NodeSpec("national", 5456, reference=True)
DAKAR = NodeSpec("dakar", 5457)  # a pole's reference is copied from the national node
THIES = NodeSpec("thies", 5458)
CUT_PORT = 5459  # Thiès cut off: its server back on a port the national node does not know
POLES = {"dakar": ("DKR", "SN0104-bargny"), "thies": ("THS", "SN1303-mont-rolland")}
BEFORE_HEARTBEAT = "0016"
CONVERGE_S = 90

# Small squares (about 11 m a side, 33 m apart) on a grid inside a commune, each used once in the module.
SQUARES = text("""
WITH p AS (SELECT g, ST_X(ST_PointOnSurface(g)) AS x, ST_Y(ST_PointOnSurface(g)) AS y
           FROM (SELECT ST_Transform(geom, 4326) AS g FROM commune WHERE code = :code) c)
SELECT ST_AsGeoJSON(s.sq)::text FROM p, generate_series(0, 899) n,
  LATERAL (SELECT ST_MakeEnvelope(p.x + (n % 30 - 15) * 0.0003, p.y + (n / 30 - 15) * 0.0003,
                                  p.x + (n % 30 - 15) * 0.0003 + 0.0001,
                                  p.y + (n / 30 - 15) * 0.0003 + 0.0001, 4326) AS sq) s
WHERE ST_Within(s.sq, p.g) AND NOT EXISTS (
    SELECT 1 FROM parcel_version v WHERE v.valid_to IS NULL AND ST_Intersects(v.geom, ST_Transform(s.sq, ST_SRID(v.geom))))
ORDER BY n""")


class Squares:
    """Free places for new parcels, per commune, never given twice."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.left: dict[str, list[dict[str, Any]]] = {}
        self.lock = threading.Lock()

    def take(self, commune: str) -> dict[str, Any]:
        with self.lock:
            if commune not in self.left:
                self.left[commune] = [json.loads(row[0]) for row in self.node.sql(str(SQUARES), code=commune)]
            return self.left[commune].pop(0)


def write_parcels(url: str, squares: Squares, commune: str, count: int) -> int:
    """``count`` parcels written through the parcels service, one transaction each, on ``url``."""
    engine = make_engine(url, pool_size=1, application_name="federation-test-writer")
    try:
        for _ in range(count):
            with transaction(engine) as session:
                create(session, data=ParcelInput(geometry=squares.take(commune)), author="federation-test")
    finally:
        engine.dispose()
    return count


class Writer(threading.Thread):
    """Writes parcels at a pole until stopped (as its users would through the service)."""

    def __init__(self, url: str, squares: Squares, commune: str) -> None:
        super().__init__(name="federation-test-writer", daemon=True)
        self.url, self.squares, self.commune = url, squares, commune
        self.written = 0
        self.error: BaseException | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.written += write_parcels(self.url, self.squares, self.commune, 1)
                time.sleep(0.02)
        except BaseException as error:  # noqa: BLE001 - re-raised by stop() in the test's thread
            self.error = error

    def stop(self) -> int:
        self.stopping.set()
        self.join(60)
        if self.error is not None:
            raise self.error
        return self.written


def _published(pole: Node) -> dict[str, tuple[list[str], str]]:
    """Per pole-owned table: the columns the pole publishes and the row filter's column."""
    with pole.engine.connect() as conn:
        return {entry.table: (registry.published_columns(conn, entry, "pole"), entry.commune_column or "node_id")
                for entry in registry.owned_by("pole")
                if conn.execute(text("SELECT to_regclass(quote_ident(:t))"), {"t": entry.table}).scalar()}


def fingerprints(node: Node, pole: Node, columns: dict[str, tuple[list[str], str]]) -> dict[str, tuple[int, str]]:
    """Count and md5 of the pole's rows in each table, as ``node`` holds them."""
    communes = [row[0] for row in pole.sql("SELECT code FROM commune WHERE sifc_owns(code)")]
    found = {}
    for table, (names, key) in columns.items():
        values = communes if key != "node_id" else [pole.node_id]
        listed = ", ".join(f'"{name}"' for name in names)
        found[table] = tuple(node.sql(f"""
            SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')
            FROM (SELECT {listed} FROM {table} WHERE {key} = ANY(:values)) t""", values=values)[0])
    return found


def assert_same_data(national: Node, *poles: Node, timeout: float = CONVERGE_S) -> dict[str, dict[str, tuple]]:
    """Wait until the national node holds exactly each pole's rows; return the fingerprints."""
    found = {}
    for pole in poles:
        columns = _published(pole)
        wait_until(lambda pole=pole, columns=columns: (fingerprints(national, pole, columns)
                                                       == fingerprints(pole, pole, columns)),
                   timeout=timeout, what=f"the national node to hold exactly {pole.node_id}'s rows")
        found[pole.node_id] = fingerprints(pole, pole, columns)
    return found


def subscription_streams(node: Node, name: str) -> bool:
    return bool(node.scalar("SELECT pid IS NOT NULL FROM pg_stat_subscription WHERE subname = :n "
                            "AND relid IS NULL", n=name))


class Federation:
    """The module's three nodes, an owner's engine on each (transactions, as the node commands use)."""

    def __init__(self, nodes: dict[str, Node]) -> None:
        self.nodes = nodes
        self.national, self.dakar, self.thies = nodes["national"], nodes["dakar"], nodes["thies"]
        self.squares = Squares(self.national)
        self._engines: dict[str, Engine] = {}

    def owner(self, node: Node) -> Engine:
        if node.node_id not in self._engines:
            self._engines[node.node_id] = create_engine(node.cluster.admin_url, poolclass=NullPool)
        return self._engines[node.node_id]

    def write(self, pole: Node, count: int, *, url: str | None = None) -> int:
        return write_parcels(url or pole.cluster.service_url, self.squares, POLES[pole.node_id][1], count)

    def forget(self, node: Node) -> None:
        """Close every connection this test holds to ``node``."""
        engine = self._engines.pop(node.node_id, None)
        if engine is not None:
            engine.dispose()
        node.close()

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()


@pytest.fixture(scope="module")
def fed(make_federation) -> Iterator[Federation]:
    """The federation at revision 0016, initialised and subscribed (the first test migrates it)."""
    federation = Federation(make_federation(NATIONAL, DAKAR, THIES))
    try:
        for node in federation.nodes.values():
            command.downgrade(provision.alembic_config(node.settings()), BEFORE_HEARTBEAT)
        national = federation.national
        node_ops.init(federation.owner(national), role="national", node_id="national", url="http://127.0.0.1:8456",
                      replication_login=True)
        for pole in (federation.dakar, federation.thies):  # as docs/federation.md sets a federation up
            node_ops.subscribe(federation.owner(pole), national.replication_conninfo, node_id=pole.node_id)
            node_ops.init(federation.owner(pole), role="pole", node_id=pole.node_id, pole=POLES[pole.node_id][0],
                          url=f"http://127.0.0.1:{pole.port + 3000}", replication_login=True)
            node_ops.subscribe(federation.owner(national), pole.replication_conninfo)
        yield federation
    finally:
        federation.close()


# A large transaction at a pole: audit rows of Bargny (published, inserts only), written at once.
BULK_AUDIT = """
INSERT INTO write_audit (actor_kind, actor, role, operation, object_kind, object_id, commune_code)
SELECT 'cli', 'federation-test', 'administrateur', 'test.bulk', 'parcel', g::text, 'SN0104-bargny'
FROM generate_series(1, :rows) g"""


def test_a_migration_reaches_every_node_while_a_pole_writes(fed, tmp_path):
    national, dakar, thies = fed.national, fed.dakar, fed.thies
    assert {node.scalar("SELECT version_num FROM alembic_version") for node in fed.nodes.values()} == {"0016"}
    writer = Writer(dakar.cluster.service_url, fed.squares, POLES["dakar"][1])
    writer.start()
    try:
        wait_until(lambda: writer.written >= 3, timeout=30, what="the writer's first parcels")
        # The poles from a federation file, the national node as an option.
        federation_file = tmp_path / "federation.txt"
        federation_file.write_text(f"# the poles\n{dakar.cluster.admin_url}\n\n{thies.cluster.admin_url}  # Thiès\n")
        done = national.run("node", "migrate", "--node", national.cluster.admin_url,
                            "--federation", str(federation_file))
    finally:
        written = writer.stop()
    head = provision.alembic_config(national.settings())
    assert done.stdout.strip().endswith(f"{_head(head)}."), done.stdout
    assert {node.scalar("SELECT version_num FROM alembic_version") for node in fed.nodes.values()} == {_head(head)}
    assert written > 3
    # The new table joined the poles' publications and the national node's subscriptions; no pause is left.
    for pole in (dakar, thies):
        assert pole.scalar("SELECT count(*) FROM pg_publication_tables WHERE pubname = 'sifc_pole' "
                           "AND tablename = 'federation_heartbeat'") == 1
    assert not national.scalar("SELECT count(*) FROM pg_subscription WHERE NOT subenabled")
    # Dakar beats by hand, Thiès from its service (at once when it starts, then every 10 s).
    assert "dakar" in dakar.run("node", "beat").stdout
    with _serving(thies, tmp_path / "thies-serve.log"):
        wait_until(lambda: national.scalar("SELECT count(*) FROM federation_heartbeat") == 2, timeout=CONVERGE_S,
                   what="both poles' heartbeats at the national node")
    refused = national.run("node", "beat", check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    ages = _data_age(national)
    assert set(ages) == {"dakar", "thies"} and all(age is not None and age < 60 for age in ages.values()), ages
    found = assert_same_data(national, dakar, thies)
    assert found["dakar"]["parcel_version"][0] >= written


@contextmanager
def _serving(node: Node, log: Path) -> Iterator[None]:
    """``sifc serve`` on the node (no import worker) for the block."""
    with log.open("wb") as handle:
        process = subprocess.Popen([*SIFC, "serve", "--port", str(free_port()), "--import-workers", "0"], cwd=REPO,
                                   env=node.env(), stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        process.wait(30)


def _head(config: Any) -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(config).get_current_head())


def _data_age(node: Node) -> dict[str, float | None]:
    from sqlalchemy.orm import Session

    from sifc.federation.status import data_age

    with node.engine.connect() as conn:
        return data_age(Session(bind=conn))


def _cut_port(node: Node, port: int) -> None:
    subprocess.run(["pg_conftool", local_clusters.VERSION, node.cluster.name, "set", "port", str(port)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)


def test_b_a_pole_cut_off_writes_on_its_own_and_the_national_node_catches_up(fed):
    national, dakar, thies = fed.national, fed.dakar, fed.thies
    before = assert_same_data(national, dakar, thies)
    thies.stop()
    try:
        fed.write(dakar, 4)  # Dakar and the national node go on
        assert_same_data(national, dakar)
        # Thiès back for its own users, on a port the national node does not know: still cut off.
        cut = dataclasses.replace(thies.cluster, port=CUT_PORT)
        _cut_port(thies, CUT_PORT)
        local_clusters.start_cluster(cut)
        fed.write(thies, 5, url=cut.service_url)
        time.sleep(1)
        assert (national.scalar("SELECT count(*) FROM parcel_version WHERE commune_code = :c", c=POLES["thies"][1])
                == before["thies"]["parcel_version"][0])
        local_clusters.stop_cluster(cut)
    finally:
        _cut_port(thies, THIES.port)
        thies.start()
    after = assert_same_data(national, dakar, thies)
    assert after["thies"]["parcel_version"][0] == before["thies"]["parcel_version"][0] + 5
    assert after["dakar"]["parcel_version"][0] == before["dakar"]["parcel_version"][0] + 4


def _postmaster(node: Node) -> int:
    data = Path(f"/var/lib/postgresql/{local_clusters.VERSION}/{node.cluster.name}/postmaster.pid")
    return int(data.read_text().split()[0])


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_c_the_national_server_killed_mid_transaction_applies_it_exactly_once(fed):
    national, dakar = fed.national, fed.dakar
    before = assert_same_data(national, dakar)
    rows = 100_000
    started = national.scalar("SELECT pg_current_wal_lsn()::text")
    dakar.sql(BULK_AUDIT, rows=rows)
    # Killed once the national node has written 2 MB of the transaction's rows, not yet committed there.
    def applying() -> int | None:  # the national node's count of Bargny's audit rows, once it writes them
        written, count = national.sql(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:lsn AS pg_lsn)) > 2000000, "
            "(SELECT count(*) FROM write_audit WHERE commune_code = 'SN0104-bargny')", lsn=started)[0]
        return count if written else None

    seen = wait_until(applying, timeout=30, interval=0.01, what="the national node applying the transaction")
    postmaster = _postmaster(national)
    children = _children(postmaster)
    national.close()
    os.kill(postmaster, signal.SIGKILL)
    assert seen == before["dakar"]["write_audit"][0], "applied before the kill: nothing was cut"
    wait_until(lambda: not any(_alive(pid) for pid in [postmaster, *children]), timeout=30,
               what="the killed server's processes to end")
    national.start()
    after = assert_same_data(national, dakar)
    assert after["dakar"]["write_audit"][0] == before["dakar"]["write_audit"][0] + rows


def _slot_lost(pole: Node) -> bool:
    pole.sql(BULK_AUDIT, rows=2000)
    pole.sql("SELECT pg_switch_wal()")
    pole.sql("CHECKPOINT")
    return pole.scalar("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'sifc_to_national'") == "lost"


def test_d_a_slot_lost_to_max_slot_wal_keep_size_is_reported_and_resynced(fed):
    national, dakar = fed.national, fed.dakar
    assert_same_data(national, dakar)
    dakar.sql("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
    dakar.sql("SELECT pg_reload_conf()")
    try:
        national.sql("ALTER SUBSCRIPTION sifc_from_dakar DISABLE")
        fed.write(dakar, 3)
        wait_until(lambda: _slot_lost(dakar), timeout=60, interval=0.1, what="Dakar's slot to be lost")
        status = national.run("node", "status", check=False)
        assert "lost" in status.stdout + status.stderr
        assert "sifc node resync dakar" in status.stdout + status.stderr
        national.run("node", "resync", "dakar")
    finally:
        dakar.sql("ALTER SYSTEM RESET max_slot_wal_keep_size")
        dakar.sql("SELECT pg_reload_conf()")
    assert_same_data(national, dakar)
    assert subscription_streams(national, "sifc_from_dakar")


def test_e_a_pole_restored_from_its_backup_rejoins_without_doubles(fed, tmp_path):
    national, dakar = fed.national, fed.dakar
    backup = tmp_path / "dakar.dump"
    dakar.run("db", "backup", str(backup))
    kept = assert_same_data(national, dakar)["dakar"]
    fed.write(dakar, 3)  # after the backup: lost with the pole's database
    assert_same_data(national, dakar)
    # The pole's database is lost (the national node's slot with it), then restored from the backup.
    node_ops.set_enabled(fed.owner(national), ["sifc_from_dakar"], False)
    node_ops.drop_subscription(fed.owner(dakar), "sifc_from_national")
    fed.forget(dakar)
    with create_engine(dakar.cluster.admin_url.rsplit("/", 1)[0] + "/postgres", poolclass=NullPool,
                       isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'DROP DATABASE "{dakar.cluster.database}" WITH (FORCE)'))
    dakar.run("db", "restore", str(backup))
    dakar.sql("ALTER SUBSCRIPTION sifc_from_national ENABLE")  # restored disabled, without its progress
    national.run("node", "resync", "dakar")
    restored = assert_same_data(national, dakar)["dakar"]
    assert restored == kept
    assert subscription_streams(national, "sifc_from_dakar")
    assert subscription_streams(dakar, "sifc_from_national")
