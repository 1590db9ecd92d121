"""How a node's replication is doing: its subscriptions, the slots it keeps for others, the poles' data age.

Read by ``sifc node status`` and by ``/health``. Each subscription is described from both ends when it
can be: here (``pg_subscription``, ``pg_stat_subscription``, ``pg_subscription_rel``,
``pg_stat_subscription_stats``) and at its publisher (the slot's ``wal_status``, the bytes not yet
confirmed, the walsender's replay lag). The statistics of errors reset after a crash of the subscriber
(ADR 0004, point 7), and PostgreSQL 15 keeps no error text in them: the last error is read from the
server's log when the caller is allowed to (the superuser), else only counted.

A subscription's ``state``: ``streaming``; ``syncing`` (initial copy under way); ``disabled``; ``lost``
(its slot was invalidated: only a re-synchronisation helps); ``failing`` (its worker stops on an error and
is retried); ``unreachable`` (the publisher does not answer); ``starting``. ``action`` is the command that
repairs it, when there is one.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from sifc.federation import node as nodes

PROBE_TIMEOUT_S = 3
LOG_TAIL_BYTES = 512 * 1024
# What a subscription's worker logs when its slot at the publisher was invalidated (PostgreSQL 15).
LOST_MARKS = ("invalidated", "can no longer get changes", "cannot read from logical replication slot",
              "requested WAL segment")


@dataclass
class SubscriptionStatus:
    """One subscription of this node, seen from here and, when reachable, from its publisher."""

    name: str
    peer: str
    enabled: bool
    publications: list[str]
    worker_pid: int | None
    tables: dict[str, int]
    received_lsn: str | None
    latest_end_lsn: str | None
    latest_end_time: datetime | None
    last_contact_s: float | None
    apply_error_count: int | None
    sync_error_count: int | None
    stats_reset: datetime | None
    publisher: str | None = None
    publisher_reachable: bool | None = None
    publisher_error: str | None = None
    slot: str | None = None
    slot_wal_status: str | None = None
    slot_active: bool | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    state: str = "starting"
    action: str | None = None


@dataclass
class SlotStatus:
    """A replication slot this node keeps for one of its subscribers."""

    name: str
    active: bool
    wal_status: str | None
    lag_bytes: int | None
    safe_wal_bytes: int | None


@dataclass
class NodeStatus:
    """A node's federation state (``sifc node status``)."""

    node_id: str
    role: str
    pole_code: str | None
    url: str | None
    personal: str
    legal_basis: str | None = None  # personal = 'national': the reference of the CDP formality
    publications: dict[str, list[str]] = field(default_factory=dict)
    subscriptions: list[SubscriptionStatus] = field(default_factory=list)
    slots: list[SlotStatus] = field(default_factory=list)
    data_age: dict[str, float | None] = field(default_factory=dict)
    pieces_stale: bool = False

    @property
    def healthy(self) -> bool:
        """Whether every subscription streams or is copying, and no slot here is lost."""
        return (all(s.state in ("streaming", "syncing") for s in self.subscriptions)
                and all(s.wal_status != "lost" for s in self.slots))

    def as_dict(self) -> dict[str, Any]:
        """Plain values (timestamps as ISO 8601 strings), for JSON."""
        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        result: dict[str, Any] = plain(asdict(self))
        result["healthy"] = self.healthy
        return result


def _exists(conn: Connection, table: str) -> bool:
    return conn.execute(text("SELECT to_regclass(quote_ident(:t)) IS NOT NULL"), {"t": table}).scalar() is True


def data_age(session: Session) -> dict[str, float | None]:
    """Seconds since each pole's last heartbeat reached this (national) node: pole node id -> age.

    ``None`` for a pole of the directory whose heartbeat never arrived; ``{}`` on a single node or a
    pole (only the national node reads other nodes' data), or before migration 0017.
    """
    conn = session.connection()
    if not _exists(conn, "sifc_node"):
        return {}
    role = conn.execute(text("SELECT role FROM sifc_node")).scalar()
    if role != "national":
        return {}
    heartbeat = _exists(conn, "federation_heartbeat")
    query = ("SELECT f.node_id, extract(epoch FROM now() - h.beat_at)::float8 FROM federation_node f "
             "LEFT JOIN federation_heartbeat h ON h.node_id = f.node_id WHERE f.role = 'pole' ORDER BY f.node_id"
             if heartbeat else
             "SELECT node_id, NULL::float8 FROM federation_node WHERE role = 'pole' ORDER BY node_id")
    return {str(node_id): (None if age is None else max(0.0, float(age)))
            for node_id, age in conn.execute(text(query)).all()}


def _privileged(conn: Connection) -> bool:
    return bool(conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar())


def _subscriptions(conn: Connection, privileged: bool) -> list[SubscriptionStatus]:
    rows = conn.execute(text("""
        SELECT s.subname, s.subenabled, s.subpublications, s.subslotname,
               w.pid, w.received_lsn::text AS received_lsn, w.latest_end_lsn::text AS latest_end_lsn,
               w.latest_end_time, extract(epoch FROM now() - w.last_msg_receipt_time)::float8 AS last_contact,
               st.apply_error_count, st.sync_error_count, st.stats_reset
        FROM pg_subscription s
        JOIN pg_database d ON d.oid = s.subdbid AND d.datname = current_database()
        LEFT JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL
        LEFT JOIN pg_stat_subscription_stats st ON st.subid = s.oid
        ORDER BY s.subname""")).mappings().all()
    found = []
    for row in rows:
        name = str(row["subname"])
        peer = "national" if name == nodes.NATIONAL_SUBSCRIPTION else name.removeprefix("sifc_from_").replace("_", "-")
        found.append(SubscriptionStatus(
            name=name, peer=peer, enabled=bool(row["subenabled"]), publications=list(row["subpublications"]),
            worker_pid=row["pid"], tables=nodes.sync_states(conn, name), received_lsn=row["received_lsn"],
            latest_end_lsn=row["latest_end_lsn"], latest_end_time=row["latest_end_time"],
            last_contact_s=row["last_contact"], apply_error_count=row["apply_error_count"],
            sync_error_count=row["sync_error_count"], stats_reset=row["stats_reset"],
            slot=row["subslotname"]))
    if privileged:
        conninfos: dict[str, str] = dict(conn.execute(text("""
            SELECT s.subname, s.subconninfo FROM pg_subscription s
            JOIN pg_database d ON d.oid = s.subdbid AND d.datname = current_database()""")).all())
        for status in found:
            status.publisher = nodes.describe_conninfo(conninfos.get(status.name, ""))
    return found


def _probe(conn: Connection, status: SubscriptionStatus) -> None:
    """Read the subscription's slot at its publisher: wal_status, unconfirmed bytes, replay lag."""
    import psycopg

    conninfo = conn.execute(text("SELECT subconninfo FROM pg_subscription WHERE subname = :n"),
                            {"n": status.name}).scalar()
    if not conninfo or not status.slot:
        return
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=PROBE_TIMEOUT_S,
                             application_name="sifc-node-status") as peer:
            row = peer.execute("""
                SELECT s.wal_status, s.active,
                       pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,
                       (SELECT extract(epoch FROM r.replay_lag)::float8 FROM pg_stat_replication r
                        WHERE r.pid = s.active_pid)
                FROM pg_replication_slots s WHERE s.slot_name = %s""", (status.slot,)).fetchone()
    except psycopg.Error as error:
        status.publisher_reachable = False
        status.publisher_error = (str(error).strip().splitlines() or ["?"])[0][:300]  # the failure, not its hint
        return
    status.publisher_reachable = True
    if row is None:
        status.slot_wal_status = "missing"
        return
    status.slot_wal_status, status.slot_active = row[0], bool(row[1])
    status.lag_bytes = None if row[2] is None else max(0, int(row[2]))
    if status.lag_bytes == 0:
        status.lag_seconds = 0.0
    elif row[3] is not None:
        status.lag_seconds = float(row[3])
    elif status.latest_end_time is not None:
        status.lag_seconds = status.last_contact_s


_WORKER = re.compile(r"\[(\d+)\] .*logical replication (?:apply|table synchronization) worker "
                     r"for subscription \"([^\"]+)\"")
_ERROR = re.compile(r"^(\S+ \S+)(?: \S+)? \[(\d+)\] (?:\S+ )?ERROR:\s+(.*)$")


def _log_errors(conn: Connection) -> dict[str, tuple[str, str]]:
    """The last error of each subscription's workers in the server's log: name -> (time, message).

    The log is found through ``pg_current_logfile()`` (logging collector) or, on Debian's clusters,
    ``/var/log/postgresql/postgresql-<version>-<cluster>.log``; read by the server (superuser only).
    """
    paths = [conn.execute(text("SELECT pg_current_logfile()")).scalar()]
    cluster = conn.execute(text("SELECT current_setting('cluster_name')")).scalar() or ""
    if "/" in cluster:
        version, name = cluster.split("/", 1)
        paths.append(f"/var/log/postgresql/postgresql-{version}-{name}.log")
    for path in paths:
        if not path:
            continue
        size = conn.execute(text("SELECT (pg_stat_file(:p, true)).size"), {"p": path}).scalar()
        if not size:
            continue
        offset = max(0, int(size) - LOG_TAIL_BYTES)
        content = conn.execute(text("SELECT pg_read_file(:p, :o, :n, true)"),
                               {"p": path, "o": offset, "n": LOG_TAIL_BYTES}).scalar() or ""
        return worker_errors(content)
    return {}


def worker_errors(log: str) -> dict[str, tuple[str, str]]:
    """The last ERROR line of each subscription's workers in a server log: name -> (time, message).

    A worker's error does not name its subscription: its process id does, from the line where the
    worker said it started.
    """
    owners: dict[str, str] = {}
    errors: dict[str, tuple[str, str]] = {}
    for line in log.splitlines():
        started = _WORKER.search(line)
        if started:
            owners[started.group(1)] = started.group(2)
            continue
        error = _ERROR.match(line)
        if error and error.group(2) in owners:
            errors[owners[error.group(2)]] = (error.group(1), error.group(3)[:500])
    return errors


def _judge(status: SubscriptionStatus) -> None:
    """Set the subscription's ``state`` and the repairing ``action``."""
    error = (status.last_error or "") + " " + (status.publisher_error or "")
    waiting = sum(n for s, n in status.tables.items() if s not in nodes.SYNCED)
    if status.slot_wal_status == "lost" or (status.worker_pid is None and any(m in error for m in LOST_MARKS)):
        status.state, status.action = "lost", f"sifc node resync {status.peer}"
    elif not status.enabled:
        status.state, status.action = "disabled", f"sifc node resume {status.peer}"
    elif status.publisher_reachable is False:
        status.state = "unreachable"
    elif status.slot_wal_status == "missing":
        status.state, status.action = "lost", f"sifc node resync {status.peer}"
    elif waiting:
        status.state = "syncing"
    elif status.worker_pid is None:
        status.state = "failing" if (status.apply_error_count or status.sync_error_count) else "starting"
        if status.state == "failing":
            status.action = f"sifc node resync {status.peer}"
    else:
        status.state = "streaming"


def node_status(session: Session, *, probe: bool = True) -> NodeStatus:
    """The node's federation state; ``probe``: also ask each publisher about its slot (superuser only).

    Without the superuser's rights (the service role), the publishers are not asked and no log is
    read: the state comes from this node's views alone.
    """
    conn = session.connection()
    me = nodes.current(conn)
    privileged = _privileged(conn)
    status = NodeStatus(me.node_id, me.role, me.pole_code, me.url, me.personal, me.legal_basis)
    for pubname, table in conn.execute(text(
            "SELECT pubname, tablename FROM pg_publication_tables ORDER BY pubname, tablename")).all():
        status.publications.setdefault(str(pubname), []).append(str(table))
    status.subscriptions = _subscriptions(conn, privileged)
    errors = _log_errors(conn) if privileged and status.subscriptions else {}
    for subscription in status.subscriptions:
        if subscription.name in errors:
            subscription.last_error_at, subscription.last_error = errors[subscription.name]
        if probe and privileged:
            _probe(conn, subscription)
        _judge(subscription)
    status.slots = [SlotStatus(str(r[0]), bool(r[1]), r[2], None if r[3] is None else int(r[3]),
                               None if r[4] is None else int(r[4]))
                    for r in conn.execute(text("""
        SELECT slot_name, active, wal_status,
               pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, safe_wal_size
        FROM pg_replication_slots
        WHERE database = current_database() AND slot_name LIKE 'sifc\\_to\\_%'
        ORDER BY slot_name""")).all()]
    status.data_age = data_age(session)
    status.pieces_stale = pieces_stale(conn)
    return status


def pieces_stale(conn: Connection) -> bool:
    """Whether ``territory_piece`` no longer matches the reference (a pole after the national node changed limits).

    Compared per level: the codes with a boundary, and the area they cover (to the square metre).
    """
    return bool(conn.execute(text("""
        WITH shapes AS (
            SELECT 'region' AS level, code, ST_Area(geom) AS area FROM region WHERE geom IS NOT NULL
            UNION ALL SELECT 'commune', code, ST_Area(geom) FROM commune WHERE geom IS NOT NULL),
        pieces AS (SELECT level, code, sum(ST_Area(geom)) AS area FROM territory_piece GROUP BY level, code)
        SELECT EXISTS (SELECT 1 FROM shapes s FULL JOIN pieces p ON p.level = s.level AND p.code = s.code
                       WHERE s.code IS NULL OR p.code IS NULL OR abs(s.area - p.area) > 1)""")).scalar())
