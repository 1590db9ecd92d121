"""Fee schedules, payments, gap-free receipts per commune and year; the régisseur role

ADR 0005 §7. The régisseur de recettes records the fees paid on the files of its scope:

- Role ``regisseur`` in the ``role`` CHECKs of ``app_user`` and ``api_key``.

Federation order: additive.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"

ROLES_BEFORE = "('lecteur', 'agent_foncier', 'analyste_sig', 'administrateur')"
ROLES = "('lecteur', 'agent_foncier', 'analyste_sig', 'administrateur', 'regisseur')"


def _roles(roles: str) -> None:
    for table in ("app_user", "api_key"):
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT ck_{table}_role")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT ck_{table}_role CHECK (role IN {roles})")


def upgrade() -> None:
    _roles(ROLES)


def downgrade() -> None:
    # A régisseur's account or key would break the narrower CHECK, and no older role is as narrow:
    # the operator changes them first (sifc users role …, sifc keys revoke …); the downgrade refuses meanwhile.
    op.execute("""
    DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM app_user WHERE role = 'regisseur') OR EXISTS (SELECT 1 FROM api_key WHERE role = 'regisseur')
        THEN RAISE EXCEPTION 'accounts or keys with the role regisseur exist: change or revoke them first';
        END IF;
    END $$""")
    _roles(ROLES_BEFORE)
