"""Sessions checked per request and key ids of the token and seal keys

- ``issued_document.key_id``: the id of the seal key that sealed each document (``sifc.keyring``), so
  that a document verifies with its own key after any number of rotations. The documents issued
  before keys had ids were sealed with the key derived from ``SIFC_SECRET_KEY`` (label
  ``sifc-documents-v1``): they are labelled ``legacy-v1``, which the keyring resolves to that
  derivation while the operator keeps the same ``SIFC_SECRET_KEY`` (and records it in the key file
  the first time it is created). Filled as a column default, so no row is rewritten: the register is
  append-only, its guard trigger is never fired.
- Access tokens name their session (the family of refresh tokens, ``sid``); each request reads the
  account and that family by primary key and ``ix_refresh_token_family_id`` (migration 0006): no new
  index is needed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

LEGACY_SEAL_KID = "legacy-v1"  # sifc.keyring.LEGACY_SEAL_KID, spelled here: a migration never changes


def upgrade() -> None:
    op.execute(f"ALTER TABLE issued_document ADD COLUMN key_id text NOT NULL DEFAULT '{LEGACY_SEAL_KID}'")
    op.execute("ALTER TABLE issued_document ALTER COLUMN key_id DROP DEFAULT")
    op.execute("ALTER TABLE issued_document ADD CONSTRAINT ck_issued_document_key_id "
               "CHECK (key_id ~ '^[a-z0-9][a-z0-9-]{0,63}$')")


def downgrade() -> None:
    op.execute("ALTER TABLE issued_document DROP COLUMN IF EXISTS key_id")
