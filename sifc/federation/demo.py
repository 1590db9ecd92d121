"""A federation on one machine: the national node and two poles, each on its own PostgreSQL 15 cluster.

``sifc node demo`` makes three clusters on loopback ports 5461-5463 (``local_clusters``), provisions them,
loads the territorial reference at the national node and initialises it; each pole (Dakar, DKR: Bargny;
Thiès, THS: Mont-Rolland, Sandiara) takes the reference from there, then becomes a pole; the national
node subscribes to each pole. Each node has its own key file (its seal keys), node id and environment file
(``<dir>/<node>.env``, the ``SIFC_*`` variables that bind a command to it); two files of synthetic parcels
to import at Thiès are written beside them (``sandiara.gpkg``, ``mont-rolland.gpkg``); then the command says
how to serve each node and walk through the demo. ``cut`` and ``restore`` cut and restore the link between
a pole and the national node: both subscriptions are pointed at a loopback port where nothing listens, as
when the network between them is down, while every node and its service go on (the pole keeps writing for
its users; the national node serves what it has, and says how old it is). ``sifc node demo --down`` drops
the three clusters. For trying the federation, never for data: the clusters trust every loopback
connection.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, String, create_engine, literal, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from sifc.federation import local_clusters, node
from sifc.federation.local_clusters import LocalCluster
from sifc.settings import Settings

DEFAULT_DIR = Path.home() / ".local" / "share" / "sifc" / "federation-demo"
SAMPLES = {"sandiara.gpkg": "SN1301-sandiara", "mont-rolland.gpkg": "SN1303-mont-rolland"}  # Thiès's, to import
CUT_PORT = 1  # a loopback port where nothing listens: a cut link's subscriptions point there


@dataclass(frozen=True)
class DemoNode:
    """One node of the demonstration."""

    node_id: str
    role: str
    pole: str | None
    port: int
    http_port: int
    key_file: Path
    label: str = "demo"  # clusters are named sifc_<label>_<node id>

    @property
    def cluster(self) -> LocalCluster:
        """The node's cluster."""
        return LocalCluster(f"{local_clusters.PREFIX}{self.label}_{self.node_id}", self.port)

    @property
    def url(self) -> str:
        """Where ``sifc serve`` answers for this node."""
        return f"http://127.0.0.1:{self.http_port}"

    def env(self) -> dict[str, str]:
        """The node's ``SIFC_*`` environment."""
        return {**self.cluster.env(), "SIFC_KEY_FILE": str(self.key_file), "SIFC_NODE_ID": self.node_id,
                "SIFC_PUBLIC_URL": self.url}

    def settings(self) -> Settings:
        """Settings bound to the node (its database, keys and id)."""
        return Settings(database_url=self.cluster.service_url, admin_database_url=self.cluster.admin_url,
                        key_file=self.key_file, node_id=self.node_id, public_url=self.url)

    @property
    def env_file(self) -> Path:
        """``<dir>/<node id>.env``: the node's environment, for ``. FILE`` in a shell."""
        return self.key_file.parent.parent / f"{self.node_id}.env"


def members(directory: Path = DEFAULT_DIR, *, ports: tuple[int, int, int] = (5461, 5462, 5463),
            label: str = "demo") -> list[DemoNode]:
    """The three nodes: national (5461, http 8461), Dakar (5462, 8462), Thiès (5463, 8463).

    ``ports`` and ``label`` let another user (the federation benchmark) make the same federation on
    clusters of its own.
    """
    if not re.fullmatch(r"[a-z][a-z0-9]{0,19}", label):
        from sifc.errors import InvalidInput

        raise InvalidInput("cli.node.demo_bad_label", label=label[:40])
    return [DemoNode(node_id, role, pole, port, port + 3000, directory / node_id / "signing-keys.json", label)
            for (node_id, role, pole), port in zip((("national", "national", None), ("dakar", "pole", "DKR"),
                                                    ("thies", "pole", "THS")), ports, strict=True)]


def up(directory: Path = DEFAULT_DIR, *, progress: Callable[[str], None] = lambda _: None,
       nodes: list[DemoNode] | None = None, settings: dict[str, str] | None = None) -> list[DemoNode]:
    """Make, provision, initialise and link the three nodes (any earlier demo's clusters dropped first).

    ``nodes`` (default ``members(directory)``) and ``settings`` (server settings over
    ``local_clusters.SETTINGS``) are for other users of the same federation, such as the benchmark.
    """
    from sifc.keyring import seal_public_keys

    nodes = nodes or members(directory)
    for member in nodes:
        member.key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        local_clusters.create(member.cluster.name, member.port, settings=settings)
    progress("clusters")
    clusters = [m.cluster for m in nodes]
    env = {m.cluster: {"SIFC_KEY_FILE": str(m.key_file), "SIFC_NODE_ID": m.node_id} for m in nodes}
    national, poles = nodes[0], nodes[1:]
    local_clusters.provision_all(clusters, reference=[national.cluster], env=env)
    progress("sifc db provision, sifc territories load (national)")
    engines = {m.node_id: create_engine(m.cluster.admin_url, poolclass=NullPool) for m in nodes}

    def init(member: DemoNode) -> None:
        # Peers connect as sifc_replication (the published columns only): LOGIN, no password (loopback trust).
        node.init(engines[member.node_id], role=member.role, node_id=member.node_id, url=member.url,
                  pole=member.pole, seal_keys=seal_public_keys(member.settings()), replication_login=True)

    try:
        init(national)
        progress(f"sifc node init --role national ({national.node_id})")
        for member in poles:  # the reference first, from the national node; then the pole knows its communes
            node.subscribe(engines[member.node_id], national.cluster.replication_conninfo, node_id=member.node_id)
            init(member)
            progress(f"{member.node_id}: sifc node subscribe (national), sifc node init --pole {member.pole}")
        for member in poles:
            node.subscribe(engines[national.node_id], member.cluster.replication_conninfo)
        progress("national: sifc node subscribe (" + ", ".join(m.node_id for m in poles) + ")")
        for member in nodes:
            member.env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in member.env().items()))
        write_samples(engines[national.node_id], nodes[0].env_file.parent)
        progress(", ".join(m.env_file.name for m in nodes) + ", " + ", ".join(SAMPLES))
    finally:
        for engine in engines.values():
            engine.dispose()
    return nodes


def write_samples(engine: Engine, directory: Path) -> dict[str, int]:
    """Thiès's two pilot communes' parcels of ``sifc demo load``, a GeoPackage each: file name -> parcels.

    Written in ``directory``, from the reference at ``engine``.
    """
    from sifc.demo import write_parcels

    with engine.connect() as conn:
        session = Session(bind=conn)
        return {name: write_parcels(session, code, directory / name) for name, code in SAMPLES.items()}


def _peer(name: str, nodes: list[DemoNode]) -> tuple[DemoNode, DemoNode]:
    """The national node and pole ``name`` of ``nodes``."""
    national, poles = nodes[0], {m.node_id: m for m in nodes[1:]}
    if name not in poles:
        from sifc.errors import InvalidInput

        raise InvalidInput("cli.node.demo_not_a_pole", node=name, poles=", ".join(poles))
    return national, poles[name]


def _point(member: DemoNode, subscription: str, conninfo: str) -> None:
    engine = create_engine(member.cluster.admin_url, poolclass=NullPool)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            name = conn.dialect.identifier_preparer.quote(subscription)
            value = literal(conninfo, String()).compile(conn, compile_kwargs={"literal_binds": True})
            conn.execute(text(f"ALTER SUBSCRIPTION {name} CONNECTION {value}"))
    finally:
        engine.dispose()


def cut(name: str, nodes: list[DemoNode] | None = None) -> None:
    """Cut the link between pole ``name`` and the national node (``restore`` puts it back).

    Each one's subscription to the other points at a port where nothing listens.
    """
    national, pole = _peer(name, nodes or members())
    closed = f"host={local_clusters.HOST} port={CUT_PORT} dbname=sifc user=postgres connect_timeout=3"
    _point(national, node.subscription_name(pole.node_id), closed)
    _point(pole, node.NATIONAL_SUBSCRIPTION, closed)


def restore(name: str, nodes: list[DemoNode] | None = None) -> None:
    """Restore the link between pole ``name`` and the national node (each subscription to its peer again)."""
    national, pole = _peer(name, nodes or members())
    _point(national, node.subscription_name(pole.node_id), pole.cluster.replication_conninfo)
    _point(pole, node.NATIONAL_SUBSCRIPTION, national.cluster.replication_conninfo)


def down(nodes: list[DemoNode] | None = None) -> list[str]:
    """Drop the demonstration's clusters (or those of ``nodes``); the names dropped."""
    present = local_clusters.listed()
    dropped = []
    for member in nodes or members():
        if member.cluster.name in present:
            local_clusters.drop(member.cluster.name)
            dropped.append(member.cluster.name)
    return dropped
