"""Issued documents: the register of printed sheets, extracts and certificates and their codes

- ``issued_document``: one row per document issued (fiche parcellaire, extrait de délibération,
  certificat d'affectation, registre foncier): its verification code (an HMAC-SHA256 of the
  document's canonical content), what it is about, a public summary of what it certifies, the
  SHA-256 of the canonical content and of the PDF's bytes, when and by whom it was issued.

Append-only (guard triggers; the service role may only INSERT and SELECT): a code once issued is
never withdrawn nor rewritten.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from alembic import context, op
from psycopg import sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLE = "issued_document"


def upgrade() -> None:
    op.execute("""
    CREATE TABLE issued_document (
        code text NOT NULL,
        kind text NOT NULL,
        subject_kind text NOT NULL,
        subject_id text NOT NULL,
        commune_code text,
        summary jsonb NOT NULL,
        personal boolean NOT NULL DEFAULT false,
        content_sha256 text NOT NULL,
        pdf_sha256 text,
        issued_at timestamptz NOT NULL DEFAULT now(),
        issued_by text NOT NULL,
        CONSTRAINT pk_issued_document PRIMARY KEY (code),
        CONSTRAINT ck_issued_document_kind CHECK (kind IN ('fiche_parcellaire', 'extrait_deliberation',
            'certificat_affectation', 'registre_foncier'))
    )""")
    op.execute("CREATE INDEX ix_issued_document_subject ON issued_document (subject_kind, subject_id)")
    op.execute("CREATE INDEX ix_issued_document_pdf_sha256 ON issued_document (pdf_sha256)")
    op.execute(f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
               "FOR EACH ROW EXECUTE FUNCTION append_only_guard()")
    op.execute(f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
               "FOR EACH STATEMENT EXECUTE FUNCTION append_only_guard()")
    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    bind.exec_driver_sql(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(sql.Identifier(TABLE), role)
                         .as_string(raw))


def downgrade() -> None:
    op.execute(f"DROP TABLE IF EXISTS {TABLE}")
