"""Deadlines and public tracking codes printed on the récépissé

Placeholder of the migration chain of ADR 0005, filled by its slice.

Federation order: additive.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05
"""

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
