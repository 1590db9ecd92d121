"""Council sessions: agenda, attendees, decisions, one délibération for the whole agenda

Placeholder of the migration chain of ADR 0005, filled by its slice.

Federation order: additive.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
