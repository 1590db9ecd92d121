"""Plausible bounds on every number and date a client can send, checked by the database

The bounds of sifc/bounds.py (docs/bounds.md), as CHECK constraints. History is immutable, so they
are added NOT VALID: rows stored before are neither checked nor rewritten (their readers read them
defensively, sifc/stored_json.py), and every row written from now on is checked.

A *current* version out of bounds would block every later change of its object (closing a version
is an UPDATE, which the new constraints check), and it is what every reader shows: each one gets a
corrective new version written by this migration, the old one closed with the reason
« correction automatique : valeur hors bornes (migration 0010) » and kept as it was:

- a parcel's declared area out of ]0, 197 000 km²] becomes NULL (unknown: a clamped area would be
  a false one);
- a right's start date is clamped into [1850-01-01 (1972-10-27 for an affectation), tomorrow], its
  end date into [its start, today + 36 525 days], and a notice date out of bounds becomes NULL
  (dates the register must have: the nearest admissible one, the original kept on the old version).

Each correction is written to the write journal (actor « sifc (migration 0010) »). Tables without
versions (sources, procedure steps, mutations) are append-only: their old rows stay as they are.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from alembic import op
from sqlalchemy import text

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

AUTHOR = "sifc (migration 0010)"
CLOSE_REASON = "correction automatique : valeur hors bornes (migration 0010)"
# The same literals as data/bounds.yaml's defaults (sifc.bounds.ENVELOPE); tests/integration/test_value_bounds.py
# checks that the database and the service agree.
EARLIEST = "DATE '1850-01-01'"
EARLIEST_AFFECTATION = "DATE '1972-10-27'"
MAX_AREA_M2 = "197000000000"
TOMORROW = "((now() AT TIME ZONE 'UTC')::date + 1)"
AHEAD = "((now() AT TIME ZONE 'UTC')::date + 36525)"  # 100 years

AREA_OK = f"(declared_area_m2 > 0 AND declared_area_m2 <= {MAX_AREA_M2})"
FLOOR = f"(CASE WHEN type = 'affectation' THEN {EARLIEST_AFFECTATION} ELSE {EARLIEST} END)"
START_OK = f"(start_date >= {FLOOR} AND start_date <= {TOMORROW})"
END_OK = f"(end_date >= {EARLIEST} AND end_date <= {AHEAD})"
NOTICE_OK = f"(notice_date >= {EARLIEST} AND notice_date <= {TOMORROW})"

CHECKS = (
    ("parcel_version", "ck_parcel_version_declared_area_bounds", f"declared_area_m2 IS NULL OR {AREA_OK}"),
    ("source_document", "ck_source_document_date_bounds",
     f"document_date >= {EARLIEST} AND document_date <= {TOMORROW}"),
    ("rrr_version", "ck_rrr_version_start_date_bounds", START_OK),
    ("rrr_version", "ck_rrr_version_end_date_bounds", f"end_date IS NULL OR {END_OK}"),
    ("rrr_version", "ck_rrr_version_notice_date_bounds", f"notice_date IS NULL OR {NOTICE_OK}"),
    ("procedure_step", "ck_procedure_step_occurred_on_bounds",
     f"occurred_on >= {EARLIEST_AFFECTATION} AND occurred_on <= {TOMORROW}"),
    ("parcel_mutation", "ck_parcel_mutation_occurred_on_bounds",
     f"occurred_on >= {EARLIEST} AND occurred_on <= {TOMORROW}"),
)

PARCEL_COLUMNS = ("nicad, nicad_status, commune_code, section, local_number, source_id, geom, land_use, tenure_regime, "
                  "batch_id")
RRR_COLUMNS = ("parcel_id, commune_code, class, type, tf_number, description, end_cause, source_ids, procedure_id, "
               "predecessor_id, synthetic")


def _journal(object_kind: str, key: str, changed: str) -> str:
    """The write-journal rows of the corrections listed in ``fix`` (old values kept as text)."""
    return f"""
        INSERT INTO write_audit (actor_kind, actor, role, operation, object_kind, object_id, parcel_id, commune_code,
                                 before, after)
        SELECT 'cli', :author, 'administrateur', '{object_kind}.correct_bounds', '{object_kind}', f.{key}::text,
               f.parcel_id, f.commune_code, jsonb_build_object('version', f.version, {changed}),
               jsonb_build_object('version', f.version + 1, 'reason', CAST(:reason AS text))
        FROM fix f"""


def _correct_parcels() -> None:
    bind = op.get_bind()
    params = {"author": AUTHOR, "reason": CLOSE_REASON}
    bind.execute(text(f"""
        CREATE TEMPORARY TABLE fix ON COMMIT DROP AS
        SELECT parcel_id, version, commune_code, declared_area_m2::text AS area
        FROM parcel_version WHERE valid_to IS NULL AND declared_area_m2 IS NOT NULL AND NOT {AREA_OK}"""))
    bind.execute(text("""
        UPDATE parcel_version p SET valid_to = now(), closed_by = :author, close_reason = :reason
        FROM fix f WHERE p.parcel_id = f.parcel_id AND p.version = f.version"""), params)
    bind.execute(text(f"""
        INSERT INTO parcel_version (parcel_id, version, {PARCEL_COLUMNS}, declared_area_m2, action, author, reason)
        SELECT p.parcel_id, p.version + 1, {', '.join('p.' + c.strip() for c in PARCEL_COLUMNS.split(','))},
               NULL, 'migration:0010', :author, :reason
        FROM parcel_version p JOIN fix f ON p.parcel_id = f.parcel_id AND p.version = f.version"""), params)
    bind.execute(text(_journal("parcel", "parcel_id", "'declared_area_m2', f.area")), params)
    bind.execute(text("DROP TABLE fix"))


def _correct_rights() -> None:
    bind = op.get_bind()
    params = {"author": AUTHOR, "reason": CLOSE_REASON}
    bind.execute(text(f"""
        CREATE TEMPORARY TABLE fix ON COMMIT DROP AS
        SELECT rrr_id, version, parcel_id, commune_code, start_date::text AS start_was, end_date::text AS end_was,
               notice_date::text AS notice_was,
               least(greatest(start_date, {FLOOR}), {TOMORROW}) AS start_date, end_date, notice_date
        FROM rrr_version
        WHERE valid_to IS NULL AND NOT ({START_OK} AND (end_date IS NULL OR {END_OK})
                                        AND (notice_date IS NULL OR {NOTICE_OK}))"""))
    bind.execute(text(f"""
        UPDATE fix SET end_date = CASE WHEN end_date IS NOT NULL  -- greatest() and least() skip NULLs
                                       THEN least(greatest(end_date, start_date, {EARLIEST}), {AHEAD}) END,
                       notice_date = CASE WHEN {NOTICE_OK} THEN notice_date END"""))
    bind.execute(text("""
        UPDATE rrr_version r SET valid_to = now(), closed_by = :author, close_reason = :reason
        FROM fix f WHERE r.rrr_id = f.rrr_id AND r.version = f.version"""), params)
    bind.execute(text(f"""
        INSERT INTO rrr_version (rrr_id, version, {RRR_COLUMNS}, start_date, end_date, notice_date, action, author,
                                 reason)
        SELECT r.rrr_id, r.version + 1, {', '.join('r.' + c.strip() for c in RRR_COLUMNS.split(','))},
               f.start_date, f.end_date, f.notice_date, 'migration:0010', :author, :reason
        FROM rrr_version r JOIN fix f ON r.rrr_id = f.rrr_id AND r.version = f.version"""), params)
    bind.execute(text("""
        INSERT INTO rrr_holder (rrr_id, version, party_id, share_numerator, share_denominator)
        SELECT h.rrr_id, h.version + 1, h.party_id, h.share_numerator, h.share_denominator
        FROM rrr_holder h JOIN fix f ON h.rrr_id = f.rrr_id AND h.version = f.version"""))
    # The shares' check (deferred to commit) runs now: a table with pending trigger events cannot be altered.
    bind.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    bind.execute(text(_journal("rrr", "rrr_id", "'start_date', f.start_was, 'end_date', f.end_was, "
                                               "'notice_date', f.notice_was")), params)
    bind.execute(text("DROP TABLE fix"))


def upgrade() -> None:
    # Corrections first: closing a version is an UPDATE, which the constraints would check.
    _correct_parcels()
    _correct_rights()
    for table, name, condition in CHECKS:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")


def downgrade() -> None:
    # The corrective versions are history: they stay.
    for table, name, _condition in reversed(CHECKS):
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
