"""Deadlines and public tracking codes printed on the récépissé

An applicant follows the file with its number and a tracking code printed on the récépissé given at
registration (ADR 0005 §8). Deadlines are computed, never stored (``sifc.tracking.deadlines``): this
migration only adds the codes.

- ``tracking_code``: one row per code issued for a procedure (``procedure_id``, its ``commune_code``),
  with the SHA-256 of the code only (``code_sha256``, 64 hex digits): the code itself (80 random
  bits) is shown once and printed, never kept. A reprint issues a new code and revokes the previous
  one (``revoked_at``); the partial unique index ``uq_tracking_code_active`` keeps one live code per
  procedure.
- Pole-owned: owner guard ``sifc_20_owner_guard`` and the replica index ``uq_tracking_code_replica`` as
  replica identity (migration 0016). Its hash replicates: the national node answers a tracking
  request too. No personal column.
- The service role may read and insert codes and set ``revoked_at`` only.
- ``ix_tenure_procedure_reference``: the file number a visitor types is the request's reference.

Federation order: additive (a new table; ``sifc node migrate`` adds it to the publications).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"


def upgrade() -> None:
    op.execute("""
    CREATE TABLE tracking_code (
        id uuid NOT NULL,
        procedure_id uuid NOT NULL,
        commune_code text NOT NULL,
        code_sha256 text NOT NULL,
        issued_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz,
        CONSTRAINT pk_tracking_code PRIMARY KEY (id),
        CONSTRAINT fk_tracking_code_procedure_id_tenure_procedure FOREIGN KEY (procedure_id)
            REFERENCES tenure_procedure (id),
        CONSTRAINT fk_tracking_code_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT ck_tracking_code_sha256 CHECK (code_sha256 ~ '^[0-9a-f]{64}$'),
        CONSTRAINT ck_tracking_code_revoked CHECK (revoked_at IS NULL OR revoked_at >= issued_at)
    )""")
    op.execute("CREATE INDEX ix_tracking_code_procedure_id ON tracking_code (procedure_id)")
    # The file number a visitor types is a request's reference (or its id, the primary key).
    op.execute("CREATE INDEX ix_tenure_procedure_reference ON tenure_procedure (reference)")
    op.execute("CREATE UNIQUE INDEX uq_tracking_code_active ON tracking_code (procedure_id) "
               "WHERE revoked_at IS NULL")
    op.execute("CREATE TRIGGER sifc_20_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON tracking_code "
               "FOR EACH ROW EXECUTE FUNCTION sifc_owner_guard()")
    op.execute("CREATE UNIQUE INDEX uq_tracking_code_replica ON tracking_code (id, commune_code)")
    op.execute("ALTER TABLE tracking_code REPLICA IDENTITY USING INDEX uq_tracking_code_replica")
    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    for statement in ("GRANT SELECT, INSERT ON tracking_code TO {}",
                      "GRANT UPDATE (revoked_at) ON tracking_code TO {}"):
        bind.exec_driver_sql(sql.SQL(statement).format(role).as_string(raw))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS tracking_code")
    op.execute("DROP INDEX IF EXISTS ix_tenure_procedure_reference")
