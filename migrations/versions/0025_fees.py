"""Fee schedules, payments, gap-free receipts per commune and year; the régisseur role

Placeholder of the migration chain of ADR 0005, filled by its slice.

Federation order: additive.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
