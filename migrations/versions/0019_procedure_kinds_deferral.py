"""Procedure kinds beyond affectation, and deferral (ajournement) of a deliberation

Placeholder of the migration chain of ADR 0005, filled by its slice.

Federation order: additive.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
