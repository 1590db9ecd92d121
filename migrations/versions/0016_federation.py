"""Federation: the node's role, a commune on every pole-owned row, and ownership enforced by the database

ADR 0004 (one node per pole, a national node, PostgreSQL 15 logical replication). This migration
prepares the schema of every node; it replicates nothing (``sifc node init`` and ``sifc node
subscribe`` do). A node stays ``single`` until initialised, and a single node owns every commune, so
nothing changes for today's servers.

- ``sifc_node``: this node (one row, never replicated): its id (``local`` until initialised), role
  (``single``, ``pole`` with its pole code, ``national``), public URL, personal-data policy and seal
  public keys; under ``personal = 'national'`` (identities sent to the national node), ``legal_basis``:
  the reference of the CDP formality (loi n° 2008-12, décret n° 2008-721), required by a CHECK.
  ``federation_node``: the directory of nodes, written by the national node and
  replicated to every pole. The service role only reads both.
- ``sifc_owns(commune)``: whether this node writes the commune's registry (single: every commune;
  national: none; pole: the communes of its pole's regions).
- ``commune_code`` on the rows that lacked one (``rrr_holder``, ``procedure_step``, ``source_file``,
  ``parcel_lineage``, ``parcel_source``, ``field_package_item``, ``field_return``: from their parent,
  here for existing rows and by the trigger ``sifc_10_fill_commune`` when a writer leaves it out;
  ``issued_document``: from its subject), NOT NULL, since a publication filters rows on it.
  ``import_batch``: the importer names the commune (the first, by code, of the communes of the file's
  kept features; a pole's import is confined to its own communes). Existing batches take the first
  commune of their parcel versions or bornes, else of the same file's other batches, else of the
  communes the batch's journal entry names. A batch that wrote nothing and names no commune is given the
  first commune of the reference: it has no rows anywhere, so its commune only decides which pole would
  publish it.
- ``sifc_20_owner_guard`` on every pole-owned table: a row of a commune this node does not own is
  refused, SQLSTATE ``SF403`` (message ``commune <code> is not owned by this node``, detail: the code).
  Ordinary triggers do not fire while a subscription applies rows (``session_replication_role =
  replica``): replication and re-synchronisation pass, local writers (API, CLI, worker, a ``psql``
  session of the service role) are refused.
- ``write_audit.id`` and ``access_audit.id`` become uuids, time-ordered (``sifc_uuid7()``: milliseconds,
  then the microseconds and a node-local counter, so that one node's rows sort in the order written),
  since the national node receives the rows of every pole; existing rows keep their order (their
  time, then their old number). ``node_id`` names the node that wrote each row.
- ``uq_<table>_replica`` (primary key and commune) is the replica identity of every pole-owned table:
  a row filter on ``commune_code`` must be covered by it, or every UPDATE and DELETE is refused at
  the publisher.
- Every trigger function runs with ``search_path = public, pg_temp``.

The national node also lets the personal columns hold NULL (``sifc.federation.registry.relax_personal``,
run by ``sifc node init --role national``), since a publication without them sends NULL.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# Pole-owned tables (frozen here; sifc.federation.registry is the living list) and their primary keys.
POLE_TABLES = {
    "import_batch": ("id",),
    "parcel_version": ("parcel_id", "version"),
    "parcel_mutation": ("id",),
    "parcel_lineage": ("mutation_id", "parent_id", "child_id"),
    "party_version": ("party_id", "version"),
    "rrr_version": ("rrr_id", "version"),
    "rrr_holder": ("rrr_id", "version", "party_id"),
    "tenure_procedure": ("id",),
    "procedure_step": ("procedure_id", "seq"),
    "source_document": ("id",),
    "source_file": ("id",),
    "issued_document": ("code",),
    "borne_version": ("borne_id", "version"),
    "field_package": ("id",),
    "field_package_item": ("package_id", "fid"),
    "field_return": ("id",),
    "parcel_source": ("parcel_id", "source_id"),
}

# Each table that gains a commune, and where its existing rows find it.
FILLS = {
    "rrr_holder": "UPDATE rrr_holder t SET commune_code = p.commune_code FROM rrr_version p "
                  "WHERE p.rrr_id = t.rrr_id AND p.version = t.version",
    "procedure_step": "UPDATE procedure_step t SET commune_code = p.commune_code FROM tenure_procedure p "
                      "WHERE p.id = t.procedure_id",
    "source_file": "UPDATE source_file t SET commune_code = p.commune_code FROM source_document p "
                   "WHERE p.id = t.source_id",
    "parcel_lineage": "UPDATE parcel_lineage t SET commune_code = p.commune_code FROM parcel_mutation p "
                      "WHERE p.id = t.mutation_id",
    "parcel_source": """UPDATE parcel_source t SET commune_code = coalesce(
                          (SELECT p.commune_code FROM parcel_version p WHERE p.parcel_id = t.parcel_id
                           ORDER BY p.version DESC LIMIT 1),
                          (SELECT s.commune_code FROM source_document s WHERE s.id = t.source_id))""",
    "field_package_item": "UPDATE field_package_item t SET commune_code = p.commune_code FROM field_package p "
                          "WHERE p.id = t.package_id",
    "field_return": "UPDATE field_return t SET commune_code = p.commune_code FROM field_package p "
                    "WHERE p.id = t.package_id",
    "import_batch": """UPDATE import_batch t SET commune_code = coalesce(
                         (SELECT min(p.commune_code) FROM parcel_version p WHERE p.batch_id = t.id),
                         (SELECT min(b.commune_code) FROM borne_version b WHERE b.batch_id = t.id),
                         (SELECT min(p.commune_code) FROM import_batch o JOIN parcel_version p ON p.batch_id = o.id
                          WHERE o.sha256 = t.sha256),
                         (SELECT min(c.key) FROM write_audit w,
                                 jsonb_object_keys(CASE jsonb_typeof(w.after -> 'communes') WHEN 'object'
                                                   THEN w.after -> 'communes' END) AS c(key)
                          WHERE w.object_kind = 'import_batch' AND w.object_id = t.id::text
                            AND EXISTS (SELECT 1 FROM commune k WHERE k.code = c.key)),
                         (SELECT min(code) FROM commune))""",
    "issued_document": """UPDATE issued_document t SET commune_code = CASE t.subject_kind
                            WHEN 'commune' THEN t.subject_id
                            WHEN 'parcel' THEN (SELECT p.commune_code FROM parcel_version p
                                                WHERE p.parcel_id::text = t.subject_id
                                                ORDER BY p.version DESC LIMIT 1)
                            WHEN 'procedure' THEN (SELECT p.commune_code FROM tenure_procedure p
                                                   WHERE p.id::text = t.subject_id) END
                          WHERE t.commune_code IS NULL""",
}

# What the fill trigger reads, per table, for a row inserted without its commune.
PARENTS = {
    "rrr_holder": "SELECT p.commune_code FROM rrr_version p WHERE p.rrr_id = NEW.rrr_id AND p.version = NEW.version",
    "procedure_step": "SELECT p.commune_code FROM tenure_procedure p WHERE p.id = NEW.procedure_id",
    "source_file": "SELECT p.commune_code FROM source_document p WHERE p.id = NEW.source_id",
    "parcel_lineage": "SELECT p.commune_code FROM parcel_mutation p WHERE p.id = NEW.mutation_id",
    "parcel_source": """SELECT coalesce(
            (SELECT p.commune_code FROM parcel_version p WHERE p.parcel_id = NEW.parcel_id
             ORDER BY p.version DESC LIMIT 1),
            (SELECT s.commune_code FROM source_document s WHERE s.id = NEW.source_id))""",
    "field_package_item": "SELECT p.commune_code FROM field_package p WHERE p.id = NEW.package_id",
    "field_return": "SELECT p.commune_code FROM field_package p WHERE p.id = NEW.package_id",
}

# Trigger functions of earlier migrations that ran with the caller's search_path (0012 and 0004 set theirs).
TRIGGER_FUNCTIONS = ("access_audit_guard", "append_only_guard", "borne_version_guard", "forbid_history_change",
                     "parcel_version_guard", "party_version_guard", "rrr_shares_check", "rrr_version_guard")

AUDITS = ("write_audit", "access_audit")

NODE = """
CREATE TABLE sifc_node (
    singleton boolean NOT NULL DEFAULT true,
    node_id text NOT NULL,
    role text NOT NULL DEFAULT 'single',
    pole_code text,
    url text,
    personal text NOT NULL DEFAULT 'pole',
    legal_basis text,
    seal_keys jsonb NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_sifc_node PRIMARY KEY (singleton),
    CONSTRAINT fk_sifc_node_pole_code_pole FOREIGN KEY (pole_code) REFERENCES pole (code),
    CONSTRAINT ck_sifc_node_singleton CHECK (singleton),
    CONSTRAINT ck_sifc_node_node_id CHECK (node_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    CONSTRAINT ck_sifc_node_role CHECK (role IN ('single', 'pole', 'national')),
    CONSTRAINT ck_sifc_node_pole CHECK ((role = 'pole') = (pole_code IS NOT NULL)),
    CONSTRAINT ck_sifc_node_personal CHECK (personal IN ('pole', 'national')),
    CONSTRAINT ck_sifc_node_legal_basis CHECK (
        personal = 'pole' OR (legal_basis IS NOT NULL AND btrim(legal_basis) <> '')),
    CONSTRAINT ck_sifc_node_seal_keys CHECK (jsonb_typeof(seal_keys) = 'array')
)"""

DIRECTORY = """
CREATE TABLE federation_node (
    node_id text NOT NULL,
    role text NOT NULL,
    pole_code text,
    url text NOT NULL,
    seal_keys jsonb NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_federation_node PRIMARY KEY (node_id),
    CONSTRAINT ck_federation_node_role CHECK (role IN ('pole', 'national')),
    CONSTRAINT ck_federation_node_pole CHECK ((role = 'pole') = (pole_code IS NOT NULL)),
    CONSTRAINT ck_federation_node_seal_keys CHECK (jsonb_typeof(seal_keys) = 'array')
)"""

OWNS = """
CREATE FUNCTION sifc_owns(commune text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    -- No node row (it was deleted): this node owns nothing, rather than everything.
    SELECT coalesce((
        SELECT CASE n.role
            WHEN 'single' THEN true
            WHEN 'national' THEN false
            ELSE EXISTS (SELECT 1 FROM commune c JOIN region r ON r.code = c.region_code
                         WHERE c.code = $1 AND r.pole_code = n.pole_code) END
        FROM sifc_node n), false)
$$"""

NODE_ID = """
CREATE FUNCTION sifc_node_id() RETURNS text
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT node_id FROM sifc_node
$$"""

# A version 7 uuid (RFC 9562): 48 bits of Unix milliseconds, the version, 12 bits of sub-millisecond time
# (method 3), the variant, 30 bits of a node-local counter (rows of one microsecond keep their order),
# 32 random bits.
UUID7 = """
CREATE FUNCTION sifc_uuid7() RETURNS uuid
LANGUAGE sql VOLATILE SET search_path = public, pg_temp AS $$
    SELECT (lpad(to_hex(t.us / 1000), 12, '0') || '7' || lpad(to_hex((t.us % 1000) * 4096 / 1000), 3, '0')
            || to_hex(2147483648 + nextval('sifc_uuid7_seq') % 1073741824)
            || lpad(to_hex(floor(random() * 4294967296)::bigint), 8, '0'))::uuid
    FROM (SELECT floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS us) t
$$"""

# An existing audit row's uuid: its time, then its old number (below 2^60), so the order is kept.
LEGACY_ID = ("(lpad(to_hex(floor(extract(epoch FROM occurred_at) * 1000)::bigint), 12, '0') || '7000' || '8' "
             "|| lpad(to_hex(id), 15, '0'))::uuid")

FILL = """
CREATE FUNCTION sifc_fill_commune() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
-- A row inserted without its commune takes its parent's (a publication filters rows on it).
BEGIN
    IF NEW.commune_code IS NULL THEN
{branches}
    END IF;
    RETURN NEW;
END $$"""

GUARD = """
CREATE FUNCTION sifc_owner_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
-- Only the node that owns a commune writes its registry (ADR 0004); not fired while a subscription
-- applies rows (session_replication_role = replica).
DECLARE
    refused text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF NOT sifc_owns(OLD.commune_code) THEN
            refused := OLD.commune_code;
        END IF;
    END IF;
    -- A row without a commune is left to its NOT NULL constraint, whose message says what is missing.
    IF refused IS NULL AND TG_OP <> 'DELETE' AND NEW.commune_code IS NOT NULL THEN
        IF NOT sifc_owns(NEW.commune_code) THEN
            refused := NEW.commune_code;
        END IF;
    END IF;
    IF refused IS NOT NULL THEN
        RAISE EXCEPTION 'commune % is not owned by this node', refused
            USING ERRCODE = 'SF403', DETAIL = refused;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$"""


def _fill_function() -> str:
    branches = []
    for number, (table, query) in enumerate(PARENTS.items()):
        keyword = "IF" if number == 0 else "ELSIF"
        branches.append(f"        {keyword} TG_TABLE_NAME = '{table}' THEN\n"
                        f"            NEW.commune_code := ({query});")
    return FILL.format(branches="\n".join(branches) + "\n        END IF;")


def _grant(statement: str, *identifiers: str) -> None:
    bind = op.get_bind()
    role = sql.Identifier(context.config.attributes["service_url"].username)
    formatted = sql.SQL(statement).format(*(sql.Identifier(i) for i in identifiers), role=role)
    bind.exec_driver_sql(formatted.as_string(bind.connection.dbapi_connection))


def upgrade() -> None:
    # The node and the directory.
    op.execute(NODE)
    op.execute("INSERT INTO sifc_node (node_id) VALUES ('local')")
    op.execute(DIRECTORY)
    op.execute("CREATE SEQUENCE sifc_uuid7_seq AS bigint CYCLE")
    for function in (OWNS, NODE_ID, UUID7):
        op.execute(function)
    _grant("GRANT SELECT ON sifc_node, federation_node TO {role}")
    _grant("GRANT USAGE ON SEQUENCE sifc_uuid7_seq TO {role}")

    # Communes on every pole-owned row: existing rows as their parents say (append-only guards are
    # ordinary triggers, not fired in replica mode, which this superuser session takes for the fill).
    op.execute("SET LOCAL session_replication_role = replica")
    for table in FILLS:
        if table != "issued_document":
            op.execute(f"ALTER TABLE {table} ADD COLUMN commune_code text")
    for query in FILLS.values():
        op.execute(query)
    op.execute("SET LOCAL session_replication_role = origin")
    for table in FILLS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN commune_code SET NOT NULL")
    op.execute(_fill_function())
    for table in PARENTS:
        op.execute(f"CREATE TRIGGER sifc_10_fill_commune BEFORE INSERT ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION sifc_fill_commune()")

    # Ownership and the replica identity of every pole-owned table.
    op.execute(GUARD)
    for table, key in POLE_TABLES.items():
        op.execute(f"CREATE TRIGGER sifc_20_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION sifc_owner_guard()")
        op.execute(f"CREATE UNIQUE INDEX uq_{table}_replica ON {table} ({', '.join(key)}, commune_code)")
        op.execute(f"ALTER TABLE {table} REPLICA IDENTITY USING INDEX uq_{table}_replica")

    # The audits: ids that two nodes never both write, and the node that wrote each row.
    for table in AUDITS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id DROP IDENTITY")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id TYPE uuid USING {LEGACY_ID}")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT sifc_uuid7()")
        op.execute(f"ALTER TABLE {table} ADD COLUMN node_id text NOT NULL DEFAULT sifc_node_id()")

    for function in TRIGGER_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function}() SET search_path = public, pg_temp")


def downgrade() -> None:
    for function in TRIGGER_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function}() RESET search_path")

    # Audit numbers again, in the uuids' order (their time); the append-only guards sleep meanwhile.
    op.execute("SET LOCAL session_replication_role = replica")
    for table in AUDITS:
        op.execute(f"ALTER TABLE {table} DROP COLUMN node_id")
        op.execute(f"ALTER TABLE {table} ADD COLUMN number bigint")
        op.execute(f"UPDATE {table} t SET number = o.n FROM (SELECT id, row_number() OVER (ORDER BY id) AS n "
                   f"FROM {table}) o WHERE o.id = t.id")
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}")
        op.execute(f"ALTER TABLE {table} DROP COLUMN id")
        op.execute(f"ALTER TABLE {table} RENAME COLUMN number TO id")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET NOT NULL")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
        op.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                   f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id)")
        _grant("GRANT USAGE ON SEQUENCE {} TO {role}", f"{table}_id_seq")
    op.execute("SET LOCAL session_replication_role = origin")

    for table in POLE_TABLES:
        op.execute(f"ALTER TABLE {table} REPLICA IDENTITY DEFAULT")
        op.execute(f"DROP INDEX IF EXISTS uq_{table}_replica")
        op.execute(f"DROP TRIGGER IF EXISTS sifc_20_owner_guard ON {table}")
    op.execute("DROP FUNCTION IF EXISTS sifc_owner_guard()")
    for table in PARENTS:
        op.execute(f"DROP TRIGGER IF EXISTS sifc_10_fill_commune ON {table}")
    op.execute("DROP FUNCTION IF EXISTS sifc_fill_commune()")
    for table in FILLS:
        if table == "issued_document":
            op.execute("ALTER TABLE issued_document ALTER COLUMN commune_code DROP NOT NULL")
        else:
            op.execute(f"ALTER TABLE {table} DROP COLUMN commune_code")

    for function in ("sifc_uuid7()", "sifc_node_id()", "sifc_owns(text)"):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.execute("DROP SEQUENCE IF EXISTS sifc_uuid7_seq")
    op.execute("DROP TABLE IF EXISTS federation_node")
    op.execute("DROP TABLE IF EXISTS sifc_node")
