"""Procedure kinds beyond affectation, and deferral (ajournement) of a deliberation

ADR 0005 §2. A council may defer a request to a later session and deliberate it again; a commune's
land office handles more than requests for an affectation.

- ``ck_tenure_procedure_kind`` widens to ``affectation``, ``desaffectation``,
  ``reaffectation_heritiers`` (an affectation to the heirs of a holder who died, following the ended
  right) and ``regularisation`` (an affectation after a systematic survey, registered by a campaign).
  Which kinds a commune uses is its ``procedure_kinds`` setting; each kind's steps and final effect are
  in ``sifc.tenure.procedures``.
- ``procedure_step`` gains the step ``deferred`` (ajourné), whose reason is required like a refusal's.
  A deferred procedure comes back to a later session, so ``deferred`` may occur more than once: the
  unique constraint ``uq_procedure_step_procedure_id_step`` becomes the partial unique index
  ``uq_procedure_step_once (procedure_id, step) WHERE step <> 'deferred'``; every other step still
  occurs at most once.

Existing rows are all ``affectation`` procedures without ``deferred`` steps: nothing to fill. The
downgrade refuses while a procedure of another kind or a deferred step exists (it would break the
narrower constraints).

Federation order: additive (constraints only; a pole that upgraded first sends rows the national node
accepts once it upgraded too: upgrade the national node first, as for every additive migration).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"

KINDS = ("affectation", "desaffectation", "reaffectation_heritiers", "regularisation")
STEPS = ("registered", "surveyed", "deliberated", "approved", "notified", "refused")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def upgrade() -> None:
    op.execute("ALTER TABLE tenure_procedure DROP CONSTRAINT ck_tenure_procedure_kind")
    op.execute(f"ALTER TABLE tenure_procedure ADD CONSTRAINT ck_tenure_procedure_kind CHECK (kind IN ({_in(KINDS)}))")
    op.execute("ALTER TABLE procedure_step DROP CONSTRAINT ck_procedure_step_step")
    op.execute("ALTER TABLE procedure_step ADD CONSTRAINT ck_procedure_step_step "
               f"CHECK (step IN ({_in((*STEPS, 'deferred'))}))")
    op.execute("ALTER TABLE procedure_step ADD CONSTRAINT ck_procedure_step_deferral "
               "CHECK (step <> 'deferred' OR btrim(coalesce(reason, '')) <> '')")
    op.execute("ALTER TABLE procedure_step DROP CONSTRAINT uq_procedure_step_procedure_id_step")
    op.execute("CREATE UNIQUE INDEX uq_procedure_step_once ON procedure_step (procedure_id, step) "
               "WHERE step <> 'deferred'")


def downgrade() -> None:
    op.execute("DROP INDEX uq_procedure_step_once")
    op.execute("ALTER TABLE procedure_step ADD CONSTRAINT uq_procedure_step_procedure_id_step UNIQUE (procedure_id, step)")
    op.execute("ALTER TABLE procedure_step DROP CONSTRAINT ck_procedure_step_deferral")
    op.execute("ALTER TABLE procedure_step DROP CONSTRAINT ck_procedure_step_step")
    op.execute(f"ALTER TABLE procedure_step ADD CONSTRAINT ck_procedure_step_step CHECK (step IN ({_in(STEPS)}))")
    op.execute("ALTER TABLE tenure_procedure DROP CONSTRAINT ck_tenure_procedure_kind")
    op.execute("ALTER TABLE tenure_procedure ADD CONSTRAINT ck_tenure_procedure_kind CHECK (kind IN ('affectation'))")
