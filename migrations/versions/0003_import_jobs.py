"""Import jobs: uploads queued in PostgreSQL, run by a separate worker process

A job is claimed with ``FOR UPDATE SKIP LOCKED``; while it runs, the worker's import
connection holds a session advisory lock on it. A job left ``running`` whose lock anyone
can take has lost its worker (killed, crashed, connection lost): it is marked failed, and
can be queued again. Its import ran in one transaction, so nothing of it was written.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from alembic import context, op
from psycopg import sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE import_job (
        id uuid PRIMARY KEY,
        kind text NOT NULL DEFAULT 'parcels',
        status text NOT NULL DEFAULT 'queued',
        stage text,
        progress_done bigint NOT NULL DEFAULT 0,
        progress_total bigint NOT NULL DEFAULT 0,
        file_name text NOT NULL,
        upload_path text NOT NULL,
        size_bytes bigint NOT NULL,
        options jsonb NOT NULL,
        dry_run boolean NOT NULL DEFAULT false,
        attempts integer NOT NULL DEFAULT 0,
        worker text,
        error jsonb,
        report jsonb,
        issues_gz bytea,
        rejects_gpkg bytea,
        batch_id uuid REFERENCES import_batch (id),
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        CONSTRAINT ck_import_job_status CHECK (status IN ('queued', 'running', 'done', 'failed')),
        CONSTRAINT ck_import_job_kind CHECK (kind IN ('parcels')),
        CONSTRAINT ck_import_job_size CHECK (size_bytes >= 0),
        CONSTRAINT ck_import_job_finished CHECK ((status IN ('done', 'failed')) = (finished_at IS NOT NULL))
    )""")
    op.execute("CREATE INDEX ix_import_job_pending ON import_job (created_at) "
               "WHERE status IN ('queued', 'running')")
    op.execute("CREATE INDEX ix_import_job_created ON import_job (created_at)")
    # Re-imports match parcels by their source identifier within a commune.
    op.execute("CREATE INDEX ix_parcel_version_current_source ON parcel_version (commune_code, source_id) "
               "WHERE valid_to IS NULL AND source_id IS NOT NULL")

    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    bind.exec_driver_sql(sql.SQL("GRANT SELECT, INSERT, UPDATE ON import_job TO {}").format(role).as_string(raw))


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_parcel_version_current_source")
    op.execute("DROP TABLE IF EXISTS import_job")
