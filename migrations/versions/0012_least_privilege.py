"""Least privilege for the service role: accounts and role changes through their own path

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from alembic import op  # noqa: F401

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
