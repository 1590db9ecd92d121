"""Parcel mutations (split, merge, lotissement, boundary correction) and their lineage

- ``parcel_mutation``: one operation, its date, author, reason and the sources it rests on (the
  survey plan, the délibération of a lotissement…).
- ``parcel_lineage``: the parcel versions it retired (parents) → the versions it wrote (children),
  so that the lineage walks both ways; a boundary correction links a parcel's two versions.

Both are append-only (guard triggers, the service role may only INSERT and SELECT).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from alembic import context, op
from psycopg import sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("parcel_mutation", "parcel_lineage")


def upgrade() -> None:
    op.execute("""
    CREATE TABLE parcel_mutation (
        id uuid NOT NULL,
        operation text NOT NULL,
        occurred_on date NOT NULL,
        commune_code text NOT NULL,
        source_ids uuid[] NOT NULL,
        reason text NOT NULL,
        details jsonb NOT NULL DEFAULT '{}'::jsonb,
        author text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_parcel_mutation PRIMARY KEY (id),
        CONSTRAINT fk_parcel_mutation_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT ck_parcel_mutation_operation CHECK (operation IN ('split', 'merge', 'lotissement',
            'boundary_correction')),
        CONSTRAINT ck_parcel_mutation_sources CHECK (cardinality(source_ids) >= 1),
        CONSTRAINT ck_parcel_mutation_reason CHECK (btrim(reason) <> '')
    )""")
    op.execute("CREATE INDEX ix_parcel_mutation_recorded_at ON parcel_mutation (recorded_at)")
    op.execute("""
    CREATE TABLE parcel_lineage (
        mutation_id uuid NOT NULL,
        parent_id uuid NOT NULL,
        parent_version integer NOT NULL,
        child_id uuid NOT NULL,
        child_version integer NOT NULL,
        CONSTRAINT pk_parcel_lineage PRIMARY KEY (mutation_id, parent_id, child_id),
        CONSTRAINT fk_parcel_lineage_mutation_id_parcel_mutation FOREIGN KEY (mutation_id)
            REFERENCES parcel_mutation (id),
        CONSTRAINT fk_parcel_lineage_parent_id_parcel_version FOREIGN KEY (parent_id, parent_version)
            REFERENCES parcel_version (parcel_id, version),
        CONSTRAINT fk_parcel_lineage_child_id_parcel_version FOREIGN KEY (child_id, child_version)
            REFERENCES parcel_version (parcel_id, version)
    )""")
    op.execute("CREATE INDEX ix_parcel_lineage_parent_id ON parcel_lineage (parent_id)")
    op.execute("CREATE INDEX ix_parcel_lineage_child_id ON parcel_lineage (child_id)")
    for table in TABLES:
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION append_only_guard()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION append_only_guard()")
    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    for table in TABLES:
        bind.exec_driver_sql(sql.SQL("GRANT SELECT, INSERT ON {} TO {}")
                             .format(sql.Identifier(table), role).as_string(raw))


def downgrade() -> None:
    for table in ("parcel_lineage", "parcel_mutation"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
