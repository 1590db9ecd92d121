"""Dated, sourced settings per commune (setting_default national, commune_setting pole-owned)

Placeholder of the migration chain of ADR 0005, filled by its slice.

Federation order: additive.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
