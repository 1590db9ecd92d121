"""A node's part in the federation: its identity, its publications, its subscriptions (ADR 0004).

Everything here runs as the database's owner (``SIFC_ADMIN_DATABASE_URL``): publications and
subscriptions are the superuser's. Functions take an ``Engine`` rather than a session, because a
subscription that creates its replication slot cannot be made inside a transaction block, while the
other steps (the node's row, a re-synchronisation's deletions) must each be one transaction.

- A **pole** publishes its registry in ``sifc_pole`` (the registry's pole tables, ``insert, update,
  delete`` — never ``truncate``, which PostgreSQL publishes regardless of row filters —, each with its
  column list and the row filter ``commune_code IN (<the pole's communes>)``) and its audits in
  ``sifc_pole_audit`` (inserts only, same filter). It subscribes to the national reference
  (``sifc_from_national``) and rebuilds its ``territory_piece`` locally after the copy.
- The **national** node publishes the reference and the directory of nodes in ``sifc_national`` and
  subscribes to every pole (``sifc_from_<node id>``).

Subscriptions are made with ``streaming = on`` (a large import is applied as it arrives, not spilled
to disk at the subscriber first) and ``disable_on_error = false``: with ``true``, PostgreSQL 15 also
disables a subscription whose publisher merely restarted ("could not send end-of-streaming message",
tried on 2026-12-05), so every pole outage would need a hand to re-enable it. A failing subscription
instead retries every few seconds and ``sifc node status`` shows it failing, with its last error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from sifc.errors import SifcError
from sifc.federation import registry

POLE_PUBLICATION = "sifc_pole"
AUDIT_PUBLICATION = "sifc_pole_audit"
NATIONAL_PUBLICATION = "sifc_national"
NATIONAL_SUBSCRIPTION = "sifc_from_national"
PUBLISH = "insert, update, delete"
ROLES = ("national", "pole")
SYNCED = ("r", "s")  # pg_subscription_rel: ready, or synchronised and handed to the apply worker
CONNECT_TIMEOUT_S = 5
# The role a peer's subscription connects as: it reads the published columns and, for `sifc node
# subscribe`, these (what `peer_node` and `_schema_version` select), nothing else.
REPLICATION_ROLE = "sifc_replication"
PEER_READS: dict[str, tuple[str, ...]] = {
    "sifc_node": ("node_id", "role", "pole_code", "url", "personal", "seal_keys"),
    "alembic_version": ("version_num",),
}


class FederationError(SifcError):
    """A node operation refused: wrong role, unknown pole, an unreachable or unfit peer."""

    status = 409
    key = "federation.refused"


@dataclass(frozen=True)
class NodeInfo:
    """A node as its ``sifc_node`` row describes it."""

    node_id: str
    role: str
    pole_code: str | None
    url: str | None
    personal: str
    seal_keys: list[dict[str, Any]] = field(default_factory=list)
    legal_basis: str | None = None  # under personal = 'national': the reference of the CDP formality

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for JSON)."""
        return {"node_id": self.node_id, "role": self.role, "pole_code": self.pole_code, "url": self.url,
                "personal": self.personal, "legal_basis": self.legal_basis, "seal_keys": self.seal_keys}


@dataclass(frozen=True)
class Subscribed:
    """A subscription made (or remade): its name, its publisher and the tables it copied."""

    name: str
    publisher: str
    tables: int
    synced: bool


def subscription_name(node_id: str) -> str:
    """The national node's subscription to pole ``node_id``: ``sifc_from_<id>`` (dashes as underscores)."""
    return "sifc_from_" + node_id.replace("-", "_")


def slot_name(subscriber_id: str) -> str:
    """The replication slot at a publisher for subscriber ``subscriber_id``: ``sifc_to_<id>``.

    Named after the subscriber, so the national node, which every pole subscribes to, holds one slot
    per pole.
    """
    return "sifc_to_" + subscriber_id.replace("-", "_")


def current(conn: Connection) -> NodeInfo:
    """The node's own row of ``sifc_node``."""
    row = conn.execute(text(
        "SELECT node_id, role, pole_code, url, personal, seal_keys, legal_basis FROM sifc_node")).one_or_none()
    if row is None:
        raise FederationError("federation.no_node_row")
    return NodeInfo(row.node_id, row.role, row.pole_code, row.url, row.personal, list(row.seal_keys or []),
                    row.legal_basis)


def pole_communes(conn: Connection, pole_code: str) -> list[str]:
    """The codes of the communes of pole ``pole_code`` (its regions' communes), in order."""
    return list(conn.execute(text("""
        SELECT c.code FROM commune c JOIN region r ON r.code = c.region_code
        WHERE r.pole_code = :pole ORDER BY c.code"""), {"pole": pole_code}).scalars())


def _exists(conn: Connection, table: str) -> bool:
    return conn.execute(text("SELECT to_regclass(quote_ident(:t)) IS NOT NULL"), {"t": table}).scalar() is True


def _run(conn: Connection, statement: sql.Composable) -> None:
    """Execute a statement composed with ``psycopg.sql`` on ``conn``, in its transaction.

    Publication statements take no bound parameters (utility statements are not prepared), so their
    names are written as ``sql.Identifier`` and their values (commune codes, a node id, the operations
    published) as ``sql.Literal``, quoted by psycopg for this very connection.
    """
    raw: Any = conn.connection.dbapi_connection
    conn.exec_driver_sql(statement.as_string(raw))


def _table_clause(entry: registry.Replicated, columns: Sequence[str],
                  row_filter: sql.Composable | None) -> sql.Composable:
    listed = sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    clause = sql.SQL("TABLE {table} ({columns})").format(table=sql.Identifier(entry.table), columns=listed)
    if row_filter is None:
        return clause
    return sql.SQL("{clause} WHERE ({row_filter})").format(clause=clause, row_filter=row_filter)


def _set_publication(conn: Connection, name: str, clauses: list[sql.Composable], publish: str) -> None:
    """Create publication ``name`` with ``clauses`` or make an existing one list exactly them."""
    publication = sql.Identifier(name)
    if not clauses:
        _run(conn, sql.SQL("DROP PUBLICATION IF EXISTS {name}").format(name=publication))
        return
    tables = sql.SQL(", ").join(clauses)
    exists = conn.execute(text("SELECT 1 FROM pg_publication WHERE pubname = :n"), {"n": name}).scalar()
    if exists:
        _run(conn, sql.SQL("ALTER PUBLICATION {name} SET {tables}").format(name=publication, tables=tables))
        _run(conn, sql.SQL("ALTER PUBLICATION {name} SET (publish = {publish})").format(
            name=publication, publish=sql.Literal(publish)))
    else:
        _run(conn, sql.SQL("CREATE PUBLICATION {name} FOR {tables} WITH (publish = {publish})").format(
            name=publication, tables=tables, publish=sql.Literal(publish)))


def _drop_publication(conn: Connection, name: str) -> None:
    _run(conn, sql.SQL("DROP PUBLICATION IF EXISTS {name}").format(name=sql.Identifier(name)))


def publish(conn: Connection, node: NodeInfo) -> dict[str, list[str]]:
    """(Re)build this node's publications from the registry; the tables each lists.

    Only the registry's tables that exist are listed (a table of a later migration joins at the next
    ``sifc node init`` or ``sifc node migrate``). A pole's row filter names its communes as the
    reference holds them now: after a change of the pole's composition, run ``sifc node init`` again.
    The replication role's privileges are remade in the same transaction (``grant_replication``).
    """
    listed: dict[str, list[str]] = {}
    readable: dict[str, list[str]] = {}  # table -> the columns published (and readable by the replication role)
    if node.role == "pole":
        assert node.pole_code is not None
        communes = pole_communes(conn, node.pole_code)
        if not communes:
            raise FederationError("federation.pole_without_communes", pole=node.pole_code)
        in_pole = sql.SQL(", ").join(sql.Literal(commune) for commune in communes)
        own_row = sql.SQL("node_id = {node_id}").format(node_id=sql.Literal(node.node_id))
        registry_clauses: list[sql.Composable] = []
        audit_clauses: list[sql.Composable] = []
        for entry in registry.owned_by("pole"):
            if not _exists(conn, entry.table):
                continue
            row_filter = (sql.SQL("{column} IN ({communes})").format(
                column=sql.Identifier(entry.commune_column), communes=in_pole) if entry.commune_column
                else own_row)
            readable[entry.table] = registry.published_columns(conn, entry, node.personal)
            clause = _table_clause(entry, readable[entry.table], row_filter)
            if entry.publish == "insert":
                audit_clauses.append(clause)
                listed.setdefault(AUDIT_PUBLICATION, []).append(entry.table)
            else:
                registry_clauses.append(clause)
                listed.setdefault(POLE_PUBLICATION, []).append(entry.table)
        _set_publication(conn, POLE_PUBLICATION, registry_clauses, PUBLISH)
        _set_publication(conn, AUDIT_PUBLICATION, audit_clauses, "insert")
        _drop_publication(conn, NATIONAL_PUBLICATION)
    else:
        clauses: list[sql.Composable] = []
        for entry in registry.owned_by("national"):
            if _exists(conn, entry.table):
                readable[entry.table] = registry.published_columns(conn, entry, node.personal)
                clauses.append(_table_clause(entry, readable[entry.table], None))
                listed.setdefault(NATIONAL_PUBLICATION, []).append(entry.table)
        _set_publication(conn, NATIONAL_PUBLICATION, clauses, PUBLISH)
        for name in (POLE_PUBLICATION, AUDIT_PUBLICATION):
            _drop_publication(conn, name)
    grant_replication(conn, readable)
    return listed


# The replication role --------------------------------------------------------------------------


def _role_state(conn: Connection) -> Any:
    return conn.execute(text("""
        SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication, rolinherit, rolcanlogin
        FROM pg_roles WHERE rolname = :r"""), {"r": REPLICATION_ROLE}).one_or_none()


def ensure_replication_role(conn: Connection) -> None:
    """Create ``sifc_replication`` (NOLOGIN REPLICATION) if absent; give it back its attributes if changed.

    Roles belong to the whole PostgreSQL server: another database of the same server may create it at
    the same moment (the duplicate is ignored), and its attributes are altered only when they differ,
    so two databases initialised at once do not update the same catalogue row. Whether it may log in
    (``LOGIN``, a password) is the operator's: ``set_replication_login``, or ALTER ROLE by hand, kept here.
    Any role it was made a member of is taken back: it holds nothing but its own grants.
    """
    role = sql.Identifier(REPLICATION_ROLE)
    if _role_state(conn) is None:
        _run(conn, sql.SQL(
            "DO $$ BEGIN CREATE ROLE {role} NOLOGIN REPLICATION; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$").format(role=role))
    state = _role_state(conn)
    if (state.rolsuper, state.rolcreatedb, state.rolcreaterole, state.rolbypassrls, state.rolreplication,
            state.rolinherit) != (False, False, False, False, True, False):
        _run(conn, sql.SQL("ALTER ROLE {role} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS REPLICATION "
                           "NOINHERIT").format(role=role))
    for granted in conn.execute(text("""
            SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
            JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = :r ORDER BY 1"""),
            {"r": REPLICATION_ROLE}).scalars():
        _run(conn, sql.SQL("REVOKE {granted} FROM {role}").format(granted=sql.Identifier(granted), role=role))


def grant_replication(conn: Connection, published: dict[str, list[str]]) -> None:
    """Let ``sifc_replication`` read exactly ``published`` (table -> columns) and what a peer reads.

    Column-level SELECT on each published column (the publications' own lists: under ``personal =
    'pole'`` no personal column), which is what a subscription's initial copy reads (``COPY (SELECT
    <columns> FROM ONLY t WHERE <row filter>)``, run at the publisher as the connecting role) — the
    changes streamed afterwards are decoded from the WAL, without privilege checks —, and what
    ``sifc node subscribe`` reads at its peer (``PEER_READS``). Everything it held before on tables,
    sequences, views and functions of this database is revoked first, in the same transaction: a table
    or a column that left the publications (a policy back to ``pole``) is no longer readable.
    """
    ensure_replication_role(conn)
    role = sql.Identifier(REPLICATION_ROLE)
    held = conn.execute(text("""
        SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE EXISTS (SELECT 1 FROM aclexplode(c.relacl) x WHERE x.grantee = to_regrole(:r))
           OR EXISTS (SELECT 1 FROM pg_attribute a, aclexplode(a.attacl) x
                      WHERE a.attrelid = c.oid AND x.grantee = to_regrole(:r))"""), {"r": REPLICATION_ROLE}).all()
    for schema, table in held:  # revoking a table's privileges revokes its columns' too
        _run(conn, sql.SQL("REVOKE ALL ON TABLE {table} FROM {role}").format(
            table=sql.Identifier(schema, table), role=role))
    functions = conn.execute(text("""
        SELECT p.oid::regprocedure::text FROM pg_proc p
        WHERE EXISTS (SELECT 1 FROM aclexplode(p.proacl) x WHERE x.grantee = to_regrole(:r))"""),
        {"r": REPLICATION_ROLE}).scalars()
    for function in functions:
        _run(conn, sql.SQL("REVOKE ALL ON FUNCTION {function} FROM {role}").format(
            function=sql.SQL(function), role=role))
    _run(conn, sql.SQL("GRANT USAGE ON SCHEMA public TO {role}").format(role=role))
    readable = {**published, **{table: list(columns) for table, columns in PEER_READS.items()}}
    for table, columns in readable.items():
        if not columns or not _exists(conn, table):
            continue
        _run(conn, sql.SQL("GRANT SELECT ({columns}) ON TABLE {table} TO {role}").format(
            columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns), table=sql.Identifier(table),
            role=role))


def set_replication_login(conn: Connection, *, password: str | None) -> None:
    """Let ``sifc_replication`` log in: with ``password`` (stored SCRAM-hashed), or as ``pg_hba.conf`` allows.

    The password is hashed here (libpq), so the statement the server sees, and may log, holds no clear
    text. Without a password the role logs in only where ``pg_hba.conf`` trusts it (the demo's and the
    tests' loopback clusters), never with a password of an earlier run removed.
    """
    role = sql.Identifier(REPLICATION_ROLE)
    if password is None:
        _run(conn, sql.SQL("ALTER ROLE {role} LOGIN").format(role=role))
        return
    raw: Any = conn.connection.dbapi_connection
    hashed = raw.pgconn.encrypt_password(password.encode(), REPLICATION_ROLE.encode(), b"scram-sha-256")
    _run(conn, sql.SQL("ALTER ROLE {role} LOGIN PASSWORD {hashed}").format(
        role=role, hashed=sql.Literal(hashed.decode())))


def replication_can_login(conn: Connection) -> bool:
    """Whether ``sifc_replication`` exists and may log in."""
    state = _role_state(conn)
    return bool(state is not None and state.rolcanlogin)


def refresh_publications(conn: Connection) -> dict[str, list[str]]:
    """Bring this node's publications up to the registry and its schema (after a migration); {} if single."""
    node = current(conn)
    return publish(conn, node) if node.role in ROLES else {}


def _upsert_directory(conn: Connection, *, node_id: str, role: str, pole_code: str | None, url: str,
                      seal_keys: list[dict[str, Any]]) -> None:
    conn.execute(text("""
        INSERT INTO federation_node (node_id, role, pole_code, url, seal_keys, updated_at)
        VALUES (:node_id, :role, :pole, :url, CAST(:keys AS jsonb), now())
        ON CONFLICT (node_id) DO UPDATE SET role = EXCLUDED.role, pole_code = EXCLUDED.pole_code,
            url = EXCLUDED.url, seal_keys = EXCLUDED.seal_keys, updated_at = now()"""),
        {"node_id": node_id, "role": role, "pole": pole_code, "url": url, "keys": _json(seal_keys)})


def _json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def init(engine: Engine, *, role: str, node_id: str, url: str, pole: str | None = None,
         personal_policy: str = "pole", legal_basis: str | None = None,
         seal_keys: list[dict[str, Any]] | None = None, replication_login: bool = False,
         replication_password: str | None = None) -> tuple[NodeInfo, dict[str, list[str]]]:
    """Make this node a pole or the national node: its row, its publications; return both.

    Idempotent: run again, it rewrites the row and rebuilds the publications (a new seal key, a
    changed URL, a pole's new commune). A node's role and id cannot change once it replicates: its
    subscriptions and its peers' slots are named after it. ``personal_policy`` says where the
    registry's personal columns live (``pole``: left out of the pole's publications; ``national``:
    published), not who may read them, which the services decide from their reader.

    Sending personal data to the national node is a processing of its own under loi n° 2008-12 du
    25 janvier 2008 and décret n° 2008-721 du 30 juin 2008: ``national`` requires ``legal_basis``, the
    reference of the formality accomplished with the Commission de protection des données personnelles
    (receipt of the declaration, authorisation or opinion), kept in ``sifc_node.legal_basis`` (whose
    CHECK refuses the policy without it); ``pole`` takes none.

    The role peers connect as, ``sifc_replication``, reads the published columns only
    (``grant_replication``). It is made NOLOGIN; ``replication_password`` makes it LOGIN with that
    password, ``replication_login`` LOGIN without one (``pg_hba.conf`` decides: the test and demo
    clusters). Neither given, a role that already logs in is left as it is.
    """
    if role not in ROLES:
        raise FederationError("federation.bad_role", role=role)
    if personal_policy not in registry.PERSONAL_POLICIES:
        raise FederationError("federation.bad_personal", personal=personal_policy)
    basis = (legal_basis or "").strip() or None
    if personal_policy == "national" and basis is None:
        raise FederationError("federation.legal_basis_required")
    if personal_policy != "national" and basis is not None:
        raise FederationError("federation.legal_basis_unused")
    if (role == "pole") != (pole is not None):
        raise FederationError("federation.pole_option", role=role)
    with engine.begin() as conn:
        if not _exists(conn, "sifc_node"):
            raise FederationError("federation.not_migrated")
        before = current(conn)
        subscribed = conn.execute(text("SELECT count(*) FROM pg_subscription s JOIN pg_database d "
                                       "ON d.oid = s.subdbid WHERE d.datname = current_database()")).scalar()
        # A single node that took the national reference first becomes a pole under the id it gave then.
        if subscribed and before.role != "single" and (before.role, before.node_id) != (role, node_id):
            raise FederationError("federation.identity_fixed", node_id=before.node_id, role=before.role)
        if pole is not None:
            if not conn.execute(text("SELECT 1 FROM pole WHERE code = :p"), {"p": pole}).scalar():
                known = ", ".join(conn.execute(text("SELECT code FROM pole ORDER BY code")).scalars())
                raise FederationError("federation.unknown_pole", pole=pole, known=known or "—")
        conn.execute(text("""
            UPDATE sifc_node SET node_id = :node_id, role = :role, pole_code = :pole, url = :url,
                personal = :personal, legal_basis = :basis, seal_keys = CAST(:keys AS jsonb),
                updated_at = now()"""),
            {"node_id": node_id, "role": role, "pole": pole, "url": url, "personal": personal_policy, "basis": basis,
             "keys": _json(seal_keys or [])})
        node = current(conn)
        if role == "national":
            if personal_policy == "pole":
                registry.relax_personal(conn)
            _upsert_directory(conn, node_id=node_id, role="national", pole_code=None, url=url,
                              seal_keys=seal_keys or [])
        listed = publish(conn, node)
        if replication_login or replication_password is not None:
            set_replication_login(conn, password=replication_password)
    return node, listed


# Peers --------------------------------------------------------------------------------------------


def describe_conninfo(conninfo: str) -> str:
    """``host:port/dbname`` of a connection string, without its password (for messages)."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "?"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '?')}"


@contextmanager
def peer(conninfo: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to another node's database (``conninfo`` as its subscription names it)."""
    try:
        conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as error:
        raise FederationError("federation.bad_conninfo", reason=str(error).splitlines()[0]) from error
    try:
        connection = psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                     application_name="sifc-node")
    except psycopg.OperationalError as error:
        reason = (str(error).strip().splitlines() or ["?"])[-1]
        raise FederationError("federation.peer_unreachable", peer=describe_conninfo(conninfo),
                              reason=reason) from error
    try:
        yield connection
    finally:
        connection.close()


def peer_node(connection: psycopg.Connection[Any]) -> NodeInfo:
    """The peer's ``sifc_node`` row."""
    row = connection.execute(
        "SELECT node_id, role, pole_code, url, personal, seal_keys FROM sifc_node").fetchone()
    if row is None:
        raise FederationError("federation.no_node_row")
    return NodeInfo(row[0], row[1], row[2], row[3], row[4], list(row[5] or []))


def _schema_version(conn: Connection | psycopg.Connection[Any]) -> str | None:
    query = "SELECT version_num FROM alembic_version"
    if isinstance(conn, Connection):
        return conn.execute(text(query)).scalar()
    row = conn.execute(query).fetchone()
    return str(row[0]) if row else None


def drop_peer_slot(conninfo: str, slot: str, *, wait_s: float = 15) -> bool:
    """Drop replication slot ``slot`` at the peer if it exists (waiting for its walsender to let go)."""
    with peer(conninfo) as connection:
        deadline = time.monotonic() + wait_s
        while True:
            row = connection.execute(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
            if row is None:
                return False
            if row[0] is None:
                connection.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                return True
            if time.monotonic() > deadline:
                connection.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                deadline = time.monotonic() + wait_s
            time.sleep(0.2)


# Subscriptions ------------------------------------------------------------------------------------


def _create_subscription(engine: Engine, *, name: str, conninfo: str, publications: Sequence[str],
                         slot: str, enabled: bool = True) -> None:
    """CREATE SUBSCRIPTION (outside a transaction block: it creates the slot at the publisher).

    Made disabled when the local copy must first be emptied: the slot exists from then on (the
    publisher keeps every change from that point), and nothing is copied before it is enabled.
    """
    raw_publications = sql.SQL(", ").join(sql.Identifier(p) for p in publications)
    statement = sql.SQL(
        "CREATE SUBSCRIPTION {name} CONNECTION {conninfo} PUBLICATION {publications} WITH ("
        "copy_data = true, streaming = on, disable_on_error = false, slot_name = {slot}, "
        "enabled = {enabled})").format(
        name=sql.Identifier(name), conninfo=sql.Literal(conninfo), publications=raw_publications,
        slot=sql.Literal(slot), enabled=sql.SQL("true" if enabled else "false"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        raw: Any = conn.connection.dbapi_connection
        conn.exec_driver_sql(statement.as_string(raw))


def drop_subscription(engine: Engine, name: str) -> tuple[str | None, str | None]:
    """Drop subscription ``name`` without touching its slot; return its (conninfo, slot), or Nones.

    The slot is detached first (``slot_name = NONE``), so the drop never needs the publisher: its slot
    is dropped separately (``drop_peer_slot``) when the publisher is reachable.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        row = conn.execute(text("""
            SELECT s.subconninfo, s.subslotname FROM pg_subscription s
            JOIN pg_database d ON d.oid = s.subdbid AND d.datname = current_database()
            WHERE s.subname = :n"""), {"n": name}).one_or_none()
        if row is None:
            return None, None
        prep = conn.dialect.identifier_preparer
        conn.execute(text(f"ALTER SUBSCRIPTION {prep.quote(name)} DISABLE"))
        conn.execute(text(f"ALTER SUBSCRIPTION {prep.quote(name)} SET (slot_name = NONE)"))
        conn.execute(text(f"DROP SUBSCRIPTION {prep.quote(name)}"))
        return str(row.subconninfo), (str(row.subslotname) if row.subslotname else None)


def sync_states(conn: Connection, name: str) -> dict[str, int]:
    """How many of the subscription's tables are in each state (``i`` init, ``d`` copying, ``f``, ``s``, ``r``)."""
    return {str(state): int(count) for state, count in conn.execute(text("""
        SELECT r.srsubstate, count(*) FROM pg_subscription_rel r
        JOIN pg_subscription s ON s.oid = r.srsubid
        JOIN pg_database d ON d.oid = s.subdbid AND d.datname = current_database()
        WHERE s.subname = :n GROUP BY r.srsubstate"""), {"n": name}).all()}


def wait_synced(engine: Engine, name: str, *, timeout: float = 600) -> int:
    """Wait until every table of subscription ``name`` has its initial copy; the number of tables."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            states = sync_states(conn, name)
        if states and set(states) <= set(SYNCED):
            return sum(states.values())
        if time.monotonic() > deadline:
            waiting = sum(n for s, n in states.items() if s not in SYNCED)
            raise FederationError("federation.sync_timeout", name=name, timeout=int(timeout), waiting=waiting)
        time.sleep(0.3)


def rebuild_pieces(engine: Engine) -> None:
    """Rebuild ``territory_piece`` from the reference (derived locally on each node, never replicated)."""
    from sifc.territories import pieces

    with engine.begin() as conn:
        session = Session(bind=conn)
        for level in ("region", "commune"):
            pieces.refresh(session, level)
        session.flush()


def _holds_registry(conn: Connection) -> bool:
    prep = conn.dialect.identifier_preparer
    for entry in registry.owned_by("pole"):
        if entry.commune_column and entry.publish == "all" and _exists(conn, entry.table):
            if conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {prep.quote(entry.table)})")).scalar():
                return True
    return False


def _empty_reference(conn: Connection) -> None:
    """Delete this node's copy of the national tables (and their pieces), replica mode (FKs asleep).

    The national node's copy replaces it; the codes are the same, so the registry's references hold.
    """
    conn.execute(text("SET LOCAL session_replication_role = replica"))
    prep = conn.dialect.identifier_preparer
    for entry in reversed(registry.owned_by("national")):
        if _exists(conn, entry.table):
            conn.execute(text(f"DELETE FROM {prep.quote(entry.table)}"))
    conn.execute(text("DELETE FROM territory_piece"))


def subscribe(engine: Engine, conninfo: str, *, node_id: str | None = None, wait: bool = True,
              timeout: float = 600) -> Subscribed:
    """Subscribe this node to its peer at ``conninfo`` (national: to a pole; pole: to the national node).

    At the national node, the pole's directory entry (URL, pole, seal public keys read from the pole)
    is written too. At a pole, the national copy replaces the local reference (refused if the pole
    already holds registry rows: its references must not dangle), then ``territory_piece`` is rebuilt
    once the copy is complete. A single node may take the national reference this way before it becomes
    a pole (``sifc node init`` then finds its pole's communes there); it then names the node id it will
    have (``node_id``, from ``SIFC_NODE_ID``), which names its slot at the national node.
    """
    with engine.connect() as conn:
        node = current(conn)
        own_version = _schema_version(conn)
    if node.role == "single":
        if not node_id:
            raise FederationError("federation.node_id_needed")
        node = NodeInfo(node_id, "single", None, node.url, node.personal)
    elif node_id and node_id != node.node_id:
        raise FederationError("federation.identity_fixed", node_id=node.node_id, role=node.role)
    with peer(conninfo) as connection:
        other = peer_node(connection)
        if _schema_version(connection) != own_version:
            raise FederationError("federation.schema_differs", peer=other.node_id,
                                  theirs=_schema_version(connection) or "—", ours=own_version or "—")
        expected = "pole" if node.role == "national" else "national"  # a single node: becoming a pole
        if other.role != expected:
            raise FederationError("federation.peer_role", peer=other.node_id, role=other.role, expected=expected)
    if node.role == "national":
        name = subscription_name(other.node_id)
        publications: tuple[str, ...] = (POLE_PUBLICATION, AUDIT_PUBLICATION)
        with engine.begin() as conn:
            taken = conn.execute(text(
                "SELECT node_id FROM federation_node WHERE role = 'pole' AND pole_code = :p AND node_id <> :n"),
                {"p": other.pole_code, "n": other.node_id}).scalar()
            if taken:
                raise FederationError("federation.pole_taken", pole=other.pole_code or "", node_id=taken)
            if other.personal == "pole":
                registry.relax_personal(conn)
            _upsert_directory(conn, node_id=other.node_id, role="pole", pole_code=other.pole_code,
                              url=other.url or "", seal_keys=other.seal_keys)
    else:
        name, publications = NATIONAL_SUBSCRIPTION, (NATIONAL_PUBLICATION,)
        with engine.connect() as conn:
            if _holds_registry(conn):
                raise FederationError("federation.pole_not_empty")
    with engine.connect() as conn:
        if _subscription_exists(conn, name):
            raise FederationError("federation.already_subscribed", name=name)
    if node.role == "national":
        _create_subscription(engine, name=name, conninfo=conninfo, publications=publications,
                             slot=slot_name(node.node_id))
    else:
        _create_subscription(engine, name=name, conninfo=conninfo, publications=publications,
                             slot=slot_name(node.node_id), enabled=False)
        with engine.begin() as conn:
            _empty_reference(conn)
        set_enabled(engine, [name], True)
    return _after_copy(engine, node, name, other.node_id, wait=wait, timeout=timeout)


def _after_copy(engine: Engine, node: NodeInfo, name: str, publisher: str, *, wait: bool,
                timeout: float) -> Subscribed:
    if not wait:
        return Subscribed(name, publisher, 0, False)
    tables = wait_synced(engine, name, timeout=timeout)
    if node.role != "national":
        rebuild_pieces(engine)
    return Subscribed(name, publisher, tables, True)


def _subscription_exists(conn: Connection, name: str) -> bool:
    return bool(conn.execute(text("""
        SELECT 1 FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
        WHERE d.datname = current_database() AND s.subname = :n"""), {"n": name}).scalar())


def _delete_pole_rows(conn: Connection, pole_node_id: str, communes: list[str]) -> dict[str, int]:
    """Delete every row the pole published (its communes' rows, its heartbeat), replica mode."""
    conn.execute(text("SET LOCAL session_replication_role = replica"))
    prep = conn.dialect.identifier_preparer
    deleted: dict[str, int] = {}
    for entry in reversed(registry.owned_by("pole")):
        if not _exists(conn, entry.table):
            continue
        if entry.commune_column:
            result = conn.execute(text(f"DELETE FROM {prep.quote(entry.table)} "
                                       f"WHERE {prep.quote(entry.commune_column)} = ANY(:c)"), {"c": communes})
        else:
            result = conn.execute(text(f"DELETE FROM {prep.quote(entry.table)} WHERE node_id = :n"),
                                  {"n": pole_node_id})
        deleted[entry.table] = result.rowcount
    return deleted


def resync(engine: Engine, peer_id: str, *, timeout: float = 600) -> tuple[Subscribed, dict[str, int]]:
    """Copy a peer's data again from scratch (a lost slot, a stalled subscription): ADR 0004, point 6.

    At the national node, for pole ``peer_id``: the subscription is dropped without its slot, the slot
    dropped at the pole, the pole's rows deleted here (by its communes, in one transaction, replica
    mode), and the subscription made again with ``copy_data``. At a pole (``peer_id``: the national
    node's id or ``national``), the same with the reference. The peer must be reachable: nothing is
    changed otherwise.
    """
    with engine.connect() as conn:
        node = current(conn)
    if node.role == "national":
        name = subscription_name(peer_id)
        with engine.connect() as conn:
            pole_code = conn.execute(text("SELECT pole_code FROM federation_node WHERE node_id = :n AND "
                                          "role = 'pole'"), {"n": peer_id}).scalar()
            communes = pole_communes(conn, pole_code) if pole_code else []
        if not pole_code or not communes:
            raise FederationError("federation.unknown_peer", peer=peer_id)
    elif node.role == "pole":
        name, communes = NATIONAL_SUBSCRIPTION, []
    else:
        raise FederationError("federation.not_initialised")
    with engine.connect() as conn:
        row = conn.execute(text("""
            SELECT s.subconninfo, s.subpublications FROM pg_subscription s
            JOIN pg_database d ON d.oid = s.subdbid AND d.datname = current_database()
            WHERE s.subname = :n"""), {"n": name}).one_or_none()
    if row is None:
        raise FederationError("federation.no_subscription", name=name)
    conninfo, publications = str(row.subconninfo), list(row.subpublications)
    with peer(conninfo):  # reachable, or nothing is changed
        pass
    drop_subscription(engine, name)
    drop_peer_slot(conninfo, slot_name(node.node_id))
    _create_subscription(engine, name=name, conninfo=conninfo, publications=publications,
                         slot=slot_name(node.node_id), enabled=False)
    with engine.begin() as conn:
        if node.role == "national":
            deleted = _delete_pole_rows(conn, peer_id, communes)
        else:
            _empty_reference(conn)
            deleted = {}
    set_enabled(engine, [name], True)
    return _after_copy(engine, node, name, peer_id, wait=True, timeout=timeout), deleted


def set_enabled(engine: Engine, names: Sequence[str] | None, enabled: bool) -> list[str]:
    """Enable (or disable) this node's subscriptions ``names`` (all when None); the names changed."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        existing = list(conn.execute(text("""
            SELECT s.subname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
            WHERE d.datname = current_database() ORDER BY s.subname""")).scalars())
        missing = sorted(set(names or ()) - set(existing))
        if missing:
            raise FederationError("federation.no_subscription", name=missing[0])
        chosen = existing if names is None else [n for n in existing if n in names]
        prep = conn.dialect.identifier_preparer
        for name in chosen:
            conn.execute(text(f"ALTER SUBSCRIPTION {prep.quote(name)} {'ENABLE' if enabled else 'DISABLE'}"))
            # The operator decides now: a pause left by an interrupted `sifc node migrate` (its mark, a comment)
            # is no longer that command's to resume.
            conn.execute(text(f"COMMENT ON SUBSCRIPTION {prep.quote(name)} IS NULL"))
    return chosen


def subscription_for(node: NodeInfo, peer_id: str) -> str:
    """The name of this node's subscription to ``peer_id`` (a pole's to the national node is fixed)."""
    return NATIONAL_SUBSCRIPTION if node.role == "pole" else subscription_name(peer_id)
