"""Disputes register (litiges): cases, parcels, parties, dated steps, outcome

Placeholder of the migration chain of ADR 0005, filled by its slice.

Federation order: additive.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
