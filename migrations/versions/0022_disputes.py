"""Disputes register (litiges): cases, parcels, parties, dated steps, outcome

ADR 0005 §6. A dispute is a case of one commune: its parcels, its parties with their roles, its kind,
and the dated steps it goes through, each with its documents. Opening one creates today's ``litige``
restriction on each parcel (the parcel freezes as before); closing it lifts each with ``mainlevee``
(``sifc.commission.disputes``).

- ``dispute``: the case (``commune_code``, ``kind`` — limites, succession, double_affectation,
  occupation, autre —, ``opened_on``, ``description``: the grounds as the officer wrote them,
  personal; ``source_ids``; ``origin``: where it came from — an overlap of an import or a field
  return, a claim —, ids only).
- ``dispute_parcel``: each parcel with the ``litige`` restriction opening created (``rrr_id``).
- ``dispute_party``: each party with its role (demandeur, defendeur, temoin, autre).
- ``dispute_step``: ``declared`` (at opening) → ``mediation`` → ``resolved`` | ``sent_to_court``
  → ``closed``; each dated, with its sources and a note (personal); the closing step carries the
  outcome (personal), sending to court the court's reference.

Every table is **append-only** (no UPDATE, DELETE or TRUNCATE, like the procedures of 0007): the
state of a dispute is its last step, its version (``If-Match``) its number of steps. No mutable
head column, so no guard on its transitions is needed in the database: the steps are the history,
and a step recorded concurrently collides on the primary key ``(dispute_id, seq)``.

Each table is pole-owned (``commune_code`` NOT NULL, owner guard ``sifc_20_owner_guard``, replica
index ``uq_<table>_replica`` and replica identity); the service role may SELECT and INSERT only.

Federation order: additive (new tables; ``sifc node migrate`` adds them to the publications).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"

KINDS = "('limites', 'succession', 'double_affectation', 'occupation', 'autre')"
ROLES = "('demandeur', 'defendeur', 'temoin', 'autre')"
STEPS = "('declared', 'mediation', 'resolved', 'sent_to_court', 'closed')"
TABLES = {"dispute": ("id",), "dispute_parcel": ("dispute_id", "parcel_id"),
          "dispute_party": ("dispute_id", "party_id"), "dispute_step": ("dispute_id", "seq")}


def _grant(statement: str, table: str) -> None:
    bind = op.get_bind()
    role = sql.Identifier(context.config.attributes["service_url"].username)
    formatted = sql.SQL(statement).format(sql.Identifier(table), role)
    bind.exec_driver_sql(formatted.as_string(bind.connection.dbapi_connection))


def upgrade() -> None:
    op.execute(f"""
    CREATE TABLE dispute (
        id uuid NOT NULL,
        commune_code text NOT NULL,
        kind text NOT NULL,
        opened_on date NOT NULL,
        description text,
        source_ids uuid[] NOT NULL DEFAULT '{{}}',
        origin jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_dispute PRIMARY KEY (id),
        CONSTRAINT fk_dispute_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT ck_dispute_kind CHECK (kind IN {KINDS}),
        CONSTRAINT ck_dispute_origin CHECK (jsonb_typeof(origin) = 'object')
    )""")
    op.execute("CREATE INDEX ix_dispute_commune_code ON dispute (commune_code)")
    op.execute("""
    CREATE TABLE dispute_parcel (
        dispute_id uuid NOT NULL,
        parcel_id uuid NOT NULL,
        rrr_id uuid NOT NULL,
        commune_code text NOT NULL,
        CONSTRAINT pk_dispute_parcel PRIMARY KEY (dispute_id, parcel_id),
        CONSTRAINT fk_dispute_parcel_dispute_id_dispute FOREIGN KEY (dispute_id) REFERENCES dispute (id)
    )""")
    op.execute("CREATE INDEX ix_dispute_parcel_parcel_id ON dispute_parcel (parcel_id)")
    op.execute(f"""
    CREATE TABLE dispute_party (
        dispute_id uuid NOT NULL,
        party_id uuid NOT NULL,
        role text NOT NULL,
        commune_code text NOT NULL,
        CONSTRAINT pk_dispute_party PRIMARY KEY (dispute_id, party_id),
        CONSTRAINT fk_dispute_party_dispute_id_dispute FOREIGN KEY (dispute_id) REFERENCES dispute (id),
        CONSTRAINT ck_dispute_party_role CHECK (role IN {ROLES})
    )""")
    op.execute(f"""
    CREATE TABLE dispute_step (
        dispute_id uuid NOT NULL,
        seq integer NOT NULL,
        step text NOT NULL,
        occurred_on date NOT NULL,
        source_ids uuid[] NOT NULL DEFAULT '{{}}',
        note text,
        outcome text,
        court_reference text,
        author text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        commune_code text NOT NULL,
        CONSTRAINT pk_dispute_step PRIMARY KEY (dispute_id, seq),
        CONSTRAINT fk_dispute_step_dispute_id_dispute FOREIGN KEY (dispute_id) REFERENCES dispute (id),
        CONSTRAINT uq_dispute_step_dispute_id_step UNIQUE (dispute_id, step),
        CONSTRAINT ck_dispute_step_step CHECK (step IN {STEPS}),
        CONSTRAINT ck_dispute_step_declared_first CHECK ((step = 'declared') = (seq = 1)),
        CONSTRAINT ck_dispute_step_outcome CHECK (step <> 'closed' OR btrim(coalesce(outcome, '')) <> '')
    )""")
    for table, key in TABLES.items():
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION append_only_guard()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION append_only_guard()")
        op.execute(f"CREATE TRIGGER sifc_20_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION sifc_owner_guard()")
        op.execute(f"CREATE UNIQUE INDEX uq_{table}_replica ON {table} ({', '.join(key)}, commune_code)")
        op.execute(f"ALTER TABLE {table} REPLICA IDENTITY USING INDEX uq_{table}_replica")
        _grant("GRANT SELECT, INSERT ON {} TO {}", table)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
