"""Document jobs: the job queue builds batch PDFs as well as imports

Placeholder of the migration chain of ADR 0005, filled by its slice.

Federation order: additive.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
