"""One schema migration applied across a federation, in the order logical replication needs (ADR 0004).

Logical replication copies rows, not schema: every node runs the same Alembic migrations itself. A
subscriber that lacks a column or a table its publisher sends stops on the first such row; a publication
that names a table a subscriber lacks does the same. So ``sifc node migrate``:

1. reads every node (role, node id, revision) and every migration still to apply, and refuses before
   changing anything when a node is unreachable or a removal skipped its first step (below);
2. pauses every enabled subscription of every node (``ALTER SUBSCRIPTION … DISABLE``, marked with a
   comment, so a run cut short resumes them the next time). Writes go on everywhere: a paused
   subscriber's replication slot keeps the publisher's WAL;
3. upgrades every node, for an additive change the subscribers of the pole tables first (the national
   node, then the poles), for a removal the publishers first (the poles, then the national node), and
   relaxes the new personal columns on the national node;
4. brings every node's publications up to the registry (a table of the new revision joins them, a new
   column joins their column lists);
5. resumes the paused subscriptions and refreshes every enabled one (``REFRESH PUBLICATION`` with
   ``copy_data``): a table new to a publication is copied once, then follows the changes.

Each migration module states its order: ``FEDERATION_ORDER = "additive"`` (the default) or
``"removal"``. A removal takes two releases (docs/federation.md): the first stops publishing what will
go (a table becomes node-local in the registry, a column leaves its column list) and is applied with
``sifc node migrate``; the second drops it, naming it in ``FEDERATION_REMOVES`` (``"table"`` or
``"table.column"``). A removal whose objects some node still publishes is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.pool import NullPool

from sifc import provision
from sifc.errors import DatabaseUnavailable, InvalidInput
from sifc.settings import Settings, normalize_database_url

ORDERS = ("additive", "removal")
# A paused subscription carries this comment until it is resumed (by this run or the next one).
PAUSED = "sifc: paused by sifc node migrate"
WORKER_STOP_TIMEOUT_S = 60.0
SYNC_TIMEOUT_S = 120.0

Report = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Member:
    """A node of the federation as the migration sees it, through its administrator's URL."""

    url: URL
    node_id: str
    role: str
    personal: str  # pole | national: whether its personal columns stay at the pole
    revision: str | None

    @property
    def where(self) -> str:
        """The node for messages: its id and server, never a password."""
        return f"{self.node_id} ({provision.describe(self.url)})"


@dataclass
class Outcome:
    """What a federation migration did."""

    target: str
    applied: list[str] = field(default_factory=list)  # revisions, oldest first
    order: str = "additive"
    upgraded: list[str] = field(default_factory=list)  # node ids, in the order they were upgraded
    paused: dict[str, list[str]] = field(default_factory=dict)  # node id -> subscriptions paused and resumed
    left_disabled: dict[str, list[str]] = field(default_factory=dict)  # disabled before the run: left so
    not_ready: dict[str, list[str]] = field(default_factory=dict)  # tables still copying when it ended


def read_federation_file(path: Path) -> list[str]:
    """The administrators' URLs of a federation file: one per line, ``#`` comments and blank lines ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InvalidInput("federation.migrate.file_unreadable", path=str(path), reason=error.strerror) from error
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def admin_url(value: str) -> URL:
    """An administrator's URL (``postgresql://…``) or libpq key/value string as a SQLAlchemy URL."""
    if "://" not in value:
        pairs = dict(part.split("=", 1) for part in value.split())
        value = URL.create("postgresql", username=pairs.get("user"), password=pairs.get("password"),
                           host=pairs.get("host"), port=int(pairs["port"]) if "port" in pairs else None,
                           database=pairs.get("dbname")).render_as_string(hide_password=False)
    return make_url(normalize_database_url(value))


def _engine(url: URL) -> Engine:
    # No pool (a node restarted under us leaves nothing stale); autocommit, since REFRESH PUBLICATION and
    # the subscription changes cannot run inside a transaction block.
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                         connect_args={"application_name": "sifc-node-migrate", "connect_timeout": 10})


def _read(url: URL) -> Member:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            try:
                node_id, role, personal = conn.execute(text(
                    "SELECT node_id, role, personal FROM sifc_node")).one()
            except ProgrammingError:  # before migration 0016: a single node, not a member of a federation
                node_id, role, personal = "local", "single", "pole"
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise DatabaseUnavailable("db.unreachable", target=provision.describe(url), reason=reason) from error
    finally:
        engine.dispose()
    return Member(url, str(node_id), str(role), str(personal), revision)


def members(urls: Iterable[str]) -> list[Member]:
    """Every node named, read; refused unless they make one federation (at most one national node)."""
    found = [_read(admin_url(url)) for url in dict.fromkeys(urls)]
    if not found:
        raise InvalidInput("federation.migrate.no_node")
    for member in found:
        if member.role not in ("pole", "national"):
            raise InvalidInput("federation.migrate.not_federated", node=member.where, role=member.role)
    ids = [member.node_id for member in found]
    twice = sorted({node_id for node_id in ids if ids.count(node_id) > 1})
    if twice:
        raise InvalidInput("federation.migrate.node_twice", node=", ".join(twice))
    if sum(member.role == "national" for member in found) > 1:
        raise InvalidInput("federation.migrate.two_nationals")
    return found


def _scripts(settings: Settings) -> ScriptDirectory:
    return ScriptDirectory.from_config(provision.alembic_config(settings))


def _resolve(scripts: ScriptDirectory, target: str) -> str:
    try:
        found = scripts.get_revision(target)
    except CommandError:
        found = None
    if found is None:
        raise InvalidInput("federation.migrate.unknown_revision", revision=target)
    return str(found.revision)


def pending(scripts: ScriptDirectory, nodes: Sequence[Member], target: str) -> list[Script]:
    """The migrations some node still lacks on the way to ``target``, oldest first."""
    head = _resolve(scripts, target)
    order = list(reversed(list(scripts.iterate_revisions(head, "base"))))
    position = {script.revision: i for i, script in enumerate(order)}
    needed: set[str] = set()
    for member in nodes:
        if member.revision is not None and member.revision not in position:
            raise InvalidInput("federation.migrate.ahead", node=member.where, revision=member.revision,
                               target=head)
        start = -1 if member.revision is None else position[member.revision]
        needed.update(script.revision for script in order[start + 1:])
    return [script for script in order if script.revision in needed]


def order_of(script: Script) -> str:
    """A migration's federation order (module attribute ``FEDERATION_ORDER``, additive by default)."""
    declared = getattr(script.module, "FEDERATION_ORDER", "additive")
    if declared not in ORDERS:
        raise InvalidInput("federation.migrate.unknown_order", revision=script.revision, order=str(declared))
    return str(declared)


def _published(conn: Connection) -> set[str]:
    """``table`` and ``table.column`` for everything some publication of this node carries."""
    carried: set[str] = set()
    for table, columns in conn.execute(text(
            "SELECT tablename::text, attnames::text[] FROM pg_publication_tables WHERE schemaname = 'public'")):
        carried.add(table)
        carried.update(f"{table}.{column}" for column in columns or ())
    return carried


def check_removals(scripts: Sequence[Script], nodes: Sequence[Member]) -> None:
    """Refuse a removal that skipped its first release: undeclared, or still published by some node."""
    removals = [script for script in scripts if order_of(script) == "removal"]
    if not removals:
        return
    carried: dict[str, set[str]] = {}
    for member in nodes:
        engine = _engine(member.url)
        try:
            with engine.connect() as conn:
                carried[member.node_id] = _published(conn)
        finally:
            engine.dispose()
    for script in removals:
        removes = getattr(script.module, "FEDERATION_REMOVES", None)
        if not removes or isinstance(removes, str):
            raise InvalidInput("federation.migrate.removal_undeclared", revision=script.revision)
        for name in removes:
            holders = sorted(node_id for node_id, published in carried.items() if name in published)
            if holders:
                raise InvalidInput("federation.migrate.removal_still_published", revision=script.revision,
                                   name=name, nodes=", ".join(holders))


def _subscriptions(conn: Connection) -> list[tuple[str, bool, str | None]]:
    """(name, enabled, comment) of this database's subscriptions."""
    return [(str(name), bool(enabled), comment) for name, enabled, comment in conn.execute(text("""
        SELECT s.subname, s.subenabled, obj_description(s.oid, 'pg_subscription')
        FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
        WHERE d.datname = current_database() ORDER BY s.subname"""))]


def pause(member: Member) -> tuple[list[str], list[str]]:
    """Disable every enabled subscription of the node, marked; wait for their workers to stop.

    Returns (paused now or by an earlier run cut short, disabled by someone else: left alone).
    """
    engine = _engine(member.url)
    try:
        with engine.connect() as conn:
            prep = conn.dialect.identifier_preparer
            paused, foreign = [], []
            for name, enabled, comment in _subscriptions(conn):
                if enabled:  # the mark first: a run cut short between the two still resumes it
                    conn.execute(text(f"COMMENT ON SUBSCRIPTION {prep.quote(name)} IS '{PAUSED}'"))
                    conn.execute(text(f"ALTER SUBSCRIPTION {prep.quote(name)} DISABLE"))
                    paused.append(name)
                elif comment == PAUSED:
                    paused.append(name)
                else:
                    foreign.append(name)
            deadline = time.monotonic() + WORKER_STOP_TIMEOUT_S
            while conn.execute(text("""
                    SELECT count(*) FROM pg_stat_subscription st JOIN pg_subscription s ON s.oid = st.subid
                    WHERE s.subname = ANY(:names) AND st.pid IS NOT NULL
                      AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"""),
                    {"names": paused}).scalar_one():
                if time.monotonic() > deadline:
                    raise DatabaseUnavailable("federation.migrate.workers_running", node=member.where,
                                              seconds=int(WORKER_STOP_TIMEOUT_S))
                time.sleep(0.2)
            return paused, foreign
    finally:
        engine.dispose()


def upgrade(member: Member, settings: Settings, target: str, service_role: str, *, relax: bool) -> None:
    """``alembic upgrade`` on the node (as its administrator); with ``relax``, its personal columns relaxed.

    The migrations grant the service's role by name: ``service_role``, the same on every node. ``relax``:
    the national node of a federation where some node keeps personal data at the pole, whose publications
    send NULL for those columns (a new table's included).
    """
    from sifc.federation import registry

    url = member.url.render_as_string(hide_password=False)
    service = member.url.set(username=service_role, password=None).render_as_string(hide_password=False)
    provision.migrate(settings.model_copy(update={"admin_database_url": url, "database_url": service}), target)
    if relax:
        engine = create_engine(member.url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                registry.relax_personal(conn)
        finally:
            engine.dispose()


def republish(member: Member) -> None:
    """Bring the node's publications up to the registry for the tables its schema now has."""
    from sifc.federation import node

    engine = create_engine(member.url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            node.publish(conn, node.current(conn))
    finally:
        engine.dispose()


def resume(member: Member) -> tuple[list[str], list[str]]:
    """Enable the subscriptions paused by a migration, then refresh every enabled one (``copy_data``).

    Returns (resumed, tables still being copied after ``SYNC_TIMEOUT_S`` seconds).
    """
    engine = _engine(member.url)
    try:
        with engine.connect() as conn:
            prep = conn.dialect.identifier_preparer
            resumed = []
            for name, _enabled, comment in _subscriptions(conn):
                if comment == PAUSED:
                    conn.execute(text(f"ALTER SUBSCRIPTION {prep.quote(name)} ENABLE"))
                    conn.execute(text(f"COMMENT ON SUBSCRIPTION {prep.quote(name)} IS NULL"))
                    resumed.append(name)
            for name, enabled, _ in _subscriptions(conn):
                if not enabled:
                    continue
                try:
                    conn.execute(text(
                        f"ALTER SUBSCRIPTION {prep.quote(name)} REFRESH PUBLICATION WITH (copy_data = true)"))
                except DBAPIError as error:  # the publisher unreachable: run again once it is back
                    reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
                    raise DatabaseUnavailable("federation.migrate.refresh_failed", node=member.where,
                                              subscription=name, reason=reason) from error
            deadline = time.monotonic() + SYNC_TIMEOUT_S
            while True:
                copying = [str(table) for (table,) in conn.execute(text("""
                    SELECT r.srrelid::regclass::text FROM pg_subscription_rel r
                    JOIN pg_subscription s ON s.oid = r.srsubid
                    WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND s.subenabled AND r.srsubstate <> 'r' ORDER BY 1"""))]
                if not copying or time.monotonic() > deadline:
                    return resumed, copying
                time.sleep(0.25)
    finally:
        engine.dispose()


def migrate_federation(urls: Iterable[str], settings: Settings, *, target: str = "head",
                       report: Report | None = None) -> Outcome:
    """Apply the migrations up to ``target`` on every node of ``urls`` (administrators' URLs), in order.

    ``settings``: the local configuration, for the migrations' directory and the service role's name.
    ``report(key, params)`` hears each step as it happens (a message key of the catalogues).
    """
    say = report or (lambda _key, _params: None)
    nodes = members(urls)
    scripts = _scripts(settings)
    todo = pending(scripts, nodes, target)
    outcome = Outcome(target=_resolve(scripts, target))
    outcome.applied = [script.revision for script in todo]
    orders = {order_of(script) for script in todo}
    check_removals(todo, nodes)
    outcome.order = "removal" if "removal" in orders else "additive"
    first = "pole" if outcome.order == "removal" else "national"
    sequence = sorted(nodes, key=lambda member: (member.role != first, member.node_id))
    say("federation.migrate.plan", {"revisions": ", ".join(outcome.applied) or "—", "order": outcome.order,
                                    "nodes": ", ".join(member.node_id for member in sequence)})
    for member in sequence:
        paused, foreign = pause(member)
        outcome.paused[member.node_id] = paused
        if foreign:
            outcome.left_disabled[member.node_id] = foreign
        say("federation.migrate.paused", {"node": member.node_id, "count": len(paused)})
    service_role = settings.db_url.username or "sifc_app"
    personal_at_poles = any(member.personal == "pole" for member in nodes)
    for member in sequence:
        upgrade(member, settings, target, service_role, relax=member.role == "national" and personal_at_poles)
        outcome.upgraded.append(member.node_id)
        say("federation.migrate.upgraded", {"node": member.node_id, "revision": outcome.target})
    for member in sequence:
        republish(member)
    say("federation.migrate.republished", {"count": len(sequence)})
    for member in sequence:
        resumed, copying = resume(member)
        if copying:
            outcome.not_ready[member.node_id] = copying
        say("federation.migrate.resumed", {"node": member.node_id, "count": len(resumed)})
    return outcome
