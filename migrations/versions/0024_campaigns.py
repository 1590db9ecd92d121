"""Systematic campaigns, public display periods and claims (réclamations, oppositions)

Placeholder of the migration chain of ADR 0005, filled by its slice.

Federation order: additive.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
