"""Document jobs: the job queue builds batch PDFs as well as imports

A council session's documents (the extract of délibération and the certificat d'affectation of each
granted procedure, the session's register), a campaign's printed display and the close of a display
period are too long for one request: they run as durable jobs of the node's queue (ADR 0005, § Jobs),
with the same claim, advisory lock, progress, retry and reaping as imports.

- ``import_job.kind`` admits ``documents``. A documents job has no upload: ``file_name``,
  ``upload_path`` and ``size_bytes`` become nullable, and ``ck_import_job_upload`` keeps them required
  for every other kind, so an import without its file is still refused by the database. The builder's
  name and parameters live in ``options``; the built PDF and zip are written under the upload
  directory (``<upload_dir>/documents/<job id>/``), not in the row.
- ``issued_document.kind`` is widened once for every slice of ADR 0005: ``registre_session`` (the
  session's register), ``affichage_public`` (printed display), ``recu`` and ``bordereau_versement``
  (fees), ``recepisse`` (the récépissé carrying the tracking code).

Federation order: additive (``import_job`` is node-local; the wider CHECK accepts every older row).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"

OLD_DOCUMENT_KINDS = ("fiche_parcellaire", "extrait_deliberation", "certificat_affectation", "registre_foncier")
NEW_DOCUMENT_KINDS = ("registre_session", "affichage_public", "recu", "bordereau_versement", "recepisse")
UPLOAD_COLUMNS = ("file_name", "upload_path", "size_bytes")


def _kinds(kinds: tuple[str, ...]) -> str:
    return ", ".join(f"'{k}'" for k in kinds)


def upgrade() -> None:
    op.execute("ALTER TABLE issued_document DROP CONSTRAINT ck_issued_document_kind")
    op.execute("ALTER TABLE issued_document ADD CONSTRAINT ck_issued_document_kind "
               f"CHECK (kind IN ({_kinds(OLD_DOCUMENT_KINDS + NEW_DOCUMENT_KINDS)}))")

    op.execute("ALTER TABLE import_job DROP CONSTRAINT ck_import_job_kind")
    op.execute("ALTER TABLE import_job ADD CONSTRAINT ck_import_job_kind "
               "CHECK (kind IN ('parcels', 'field_return', 'documents'))")
    for column in UPLOAD_COLUMNS:
        op.execute(f"ALTER TABLE import_job ALTER COLUMN {column} DROP NOT NULL")
    op.execute("ALTER TABLE import_job ADD CONSTRAINT ck_import_job_upload CHECK (kind = 'documents' OR "
               "(file_name IS NOT NULL AND upload_path IS NOT NULL AND size_bytes IS NOT NULL))")


def downgrade() -> None:
    op.execute("DELETE FROM import_job WHERE kind = 'documents'")
    op.execute("ALTER TABLE import_job DROP CONSTRAINT ck_import_job_upload")
    for column in UPLOAD_COLUMNS:
        op.execute(f"ALTER TABLE import_job ALTER COLUMN {column} SET NOT NULL")
    op.execute("ALTER TABLE import_job DROP CONSTRAINT ck_import_job_kind")
    op.execute("ALTER TABLE import_job ADD CONSTRAINT ck_import_job_kind CHECK (kind IN ('parcels', 'field_return'))")
    # issued_document is append-only: documents of the newer kinds stay as issued; NOT VALID keeps them
    # while refusing new ones.
    op.execute("ALTER TABLE issued_document DROP CONSTRAINT ck_issued_document_kind")
    op.execute("ALTER TABLE issued_document ADD CONSTRAINT ck_issued_document_kind "
               f"CHECK (kind IN ({_kinds(OLD_DOCUMENT_KINDS)})) NOT VALID")
