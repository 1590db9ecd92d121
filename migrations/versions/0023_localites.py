"""Localités (villages, quartiers) inside communes, optional sex of persons, tenure indicators

Placeholder of the migration chain of ADR 0005, filled by its slice.

Federation order: additive.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
