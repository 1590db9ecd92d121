"""Fee schedules, payments, gap-free receipts per commune and year; the régisseur role

ADR 0005 §7. The régisseur de recettes records the fees paid on the files of its scope:

- Role ``regisseur`` in the ``role`` CHECKs of ``app_user`` and ``api_key``.
- ``fee_schedule``: a commune's fees for a procedure kind from ``valid_from`` (to ``valid_to``), a ``rule``
  (``fixed``, ``per_m2`` or ``per_ha_bands``; whole francs CFA), citing the délibération that set it
  (``deliberation_source_id`` NOT NULL: no amount without its source). Append-only: a new délibération is a
  new row; the one in force on a date is the latest ``valid_from`` not after it whose ``valid_to`` is later.
- ``procedure_fee``: the amount due for a procedure, computed once at registration from the schedule in
  force on its registration date (the row names the schedule used and the area it was computed on).
- ``payment``: append-only; a paper quittance's number (``quittance_papier`` mode) or SIFC's receipt
  number per commune and year (``recu_pdf`` mode); a cancellation is a new row with the opposite amount
  naming the payment it cancels (one at most), with its reason (personal, as ``recorded_by``).
- ``receipt_counter``: the last receipt number per commune and year, taken by ``INSERT … ON CONFLICT DO
  UPDATE … RETURNING`` in the payment's transaction: concurrent payments queue on the row, a rolled-back
  payment gives its number back, so receipts are numbered without gaps; a trigger allows only ``+ 1``.
  Unique ``(commune_code, receipt_year, receipt_number)`` on ``payment`` backs it.
- All four are pole-owned (owner guard, replica index and identity as in 0016). The service role reads and
  inserts them and may update ``receipt_counter.last_number`` only.

Federation order: additive.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

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


PROCEDURE_KINDS = "('affectation', 'desaffectation', 'reaffectation_heritiers', 'regularisation')"
TABLES = {"fee_schedule": ("id",), "procedure_fee": ("procedure_id",), "payment": ("id",),
          "receipt_counter": ("id",)}
APPEND_ONLY = ("fee_schedule", "procedure_fee", "payment")

COUNTER_GUARD = """
CREATE FUNCTION receipt_counter_forward() RETURNS trigger LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.last_number <> OLD.last_number + 1 OR NEW.commune_code <> OLD.commune_code OR NEW.year <> OLD.year THEN
        RAISE EXCEPTION 'receipt_counter: a receipt number is taken one at a time (% after %)',
            NEW.last_number, OLD.last_number USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""


def _grant(statement: str, table: str) -> None:
    bind = op.get_bind()
    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind.exec_driver_sql(sql.SQL(statement).format(sql.Identifier(table), role)
                         .as_string(bind.connection.dbapi_connection))


def _tables() -> None:
    op.execute(f"""
    CREATE TABLE fee_schedule (
        id uuid NOT NULL,
        commune_code text NOT NULL,
        procedure_kind text NOT NULL,
        valid_from date NOT NULL,
        valid_to date,
        rule jsonb NOT NULL,
        deliberation_source_id uuid NOT NULL,
        recorded_by text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_fee_schedule PRIMARY KEY (id),
        CONSTRAINT fk_fee_schedule_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT fk_fee_schedule_deliberation_source_id_source_document
            FOREIGN KEY (deliberation_source_id) REFERENCES source_document (id),
        CONSTRAINT ck_fee_schedule_procedure_kind CHECK (procedure_kind IN {PROCEDURE_KINDS}),
        CONSTRAINT ck_fee_schedule_dates CHECK (valid_to IS NULL OR valid_to > valid_from),
        CONSTRAINT ck_fee_schedule_rule CHECK (jsonb_typeof(rule) = 'object'
                                               AND rule ->> 'kind' IN ('fixed', 'per_m2', 'per_ha_bands'))
    )""")
    op.execute("CREATE INDEX ix_fee_schedule_commune_code_procedure_kind_valid_from "
               "ON fee_schedule (commune_code, procedure_kind, valid_from)")
    op.execute("""
    CREATE TABLE procedure_fee (
        procedure_id uuid NOT NULL,
        commune_code text NOT NULL,
        schedule_id uuid NOT NULL,
        amount bigint NOT NULL,
        area_m2 double precision NOT NULL,
        assessed_on date NOT NULL,
        assessed_by text NOT NULL,
        assessed_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_procedure_fee PRIMARY KEY (procedure_id),
        CONSTRAINT fk_procedure_fee_procedure_id_tenure_procedure
            FOREIGN KEY (procedure_id) REFERENCES tenure_procedure (id),
        CONSTRAINT fk_procedure_fee_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT fk_procedure_fee_schedule_id_fee_schedule FOREIGN KEY (schedule_id) REFERENCES fee_schedule (id),
        CONSTRAINT ck_procedure_fee_amount CHECK (amount >= 0)
    )""")
    op.execute("""
    CREATE TABLE payment (
        id uuid NOT NULL,
        commune_code text NOT NULL,
        procedure_id uuid NOT NULL,
        amount bigint NOT NULL,
        method text NOT NULL,
        mobile_reference text,
        paid_on date NOT NULL,
        quittance_number text,
        receipt_year integer,
        receipt_number integer,
        cancels_payment_id uuid,
        reason text,
        recorded_by text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_payment PRIMARY KEY (id),
        CONSTRAINT fk_payment_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT fk_payment_procedure_id_tenure_procedure FOREIGN KEY (procedure_id) REFERENCES tenure_procedure (id),
        CONSTRAINT fk_payment_cancels_payment_id_payment FOREIGN KEY (cancels_payment_id) REFERENCES payment (id),
        CONSTRAINT uq_payment_commune_code_receipt_year_receipt_number
            UNIQUE (commune_code, receipt_year, receipt_number),
        CONSTRAINT uq_payment_commune_code_quittance_number UNIQUE (commune_code, quittance_number),
        CONSTRAINT uq_payment_cancels_payment_id UNIQUE (cancels_payment_id),
        CONSTRAINT ck_payment_method CHECK (method IN ('cash', 'mobile_money')),
        CONSTRAINT ck_payment_amount CHECK ((cancels_payment_id IS NULL AND amount > 0)
                                            OR (cancels_payment_id IS NOT NULL AND amount < 0)),
        CONSTRAINT ck_payment_mobile_reference CHECK ((method = 'mobile_money') = (mobile_reference IS NOT NULL)
                                                      AND (mobile_reference IS NULL OR btrim(mobile_reference) <> '')),
        CONSTRAINT ck_payment_receipt CHECK ((receipt_year IS NULL) = (receipt_number IS NULL)
                                             AND (receipt_number IS NULL OR receipt_number > 0)),
        CONSTRAINT ck_payment_voucher CHECK (
            (cancels_payment_id IS NULL AND num_nonnulls(quittance_number, receipt_number) = 1)
            OR (cancels_payment_id IS NOT NULL AND quittance_number IS NULL AND receipt_number IS NULL)),
        CONSTRAINT ck_payment_quittance_number CHECK (quittance_number IS NULL OR btrim(quittance_number) <> ''),
        CONSTRAINT ck_payment_reason CHECK (cancels_payment_id IS NULL OR btrim(coalesce(reason, '')) <> '')
    )""")
    op.execute("CREATE INDEX ix_payment_procedure_id ON payment (procedure_id)")
    op.execute("CREATE INDEX ix_payment_commune_code_paid_on ON payment (commune_code, paid_on)")
    op.execute("""
    CREATE TABLE receipt_counter (
        id uuid NOT NULL,
        commune_code text NOT NULL,
        year integer NOT NULL,
        last_number integer NOT NULL DEFAULT 0,
        CONSTRAINT pk_receipt_counter PRIMARY KEY (id),
        CONSTRAINT fk_receipt_counter_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT uq_receipt_counter_commune_code_year UNIQUE (commune_code, year),
        CONSTRAINT ck_receipt_counter_last_number CHECK (last_number >= 0)
    )""")
    op.execute(COUNTER_GUARD)
    op.execute("CREATE TRIGGER receipt_counter_forward BEFORE UPDATE ON receipt_counter "
               "FOR EACH ROW EXECUTE FUNCTION receipt_counter_forward()")


def upgrade() -> None:
    _roles(ROLES)
    _tables()
    for table in APPEND_ONLY:
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION append_only_guard()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION append_only_guard()")
    for table, key in TABLES.items():
        op.execute(f"CREATE TRIGGER sifc_20_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION sifc_owner_guard()")
        op.execute(f"CREATE UNIQUE INDEX uq_{table}_replica ON {table} ({', '.join(key)}, commune_code)")
        op.execute(f"ALTER TABLE {table} REPLICA IDENTITY USING INDEX uq_{table}_replica")
        _grant("GRANT SELECT, INSERT ON {} TO {}", table)
    _grant("GRANT UPDATE (last_number) ON {} TO {}", "receipt_counter")


def downgrade() -> None:
    for table in ("receipt_counter", "payment", "procedure_fee", "fee_schedule"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS receipt_counter_forward()")
    # A régisseur's account or key would break the narrower CHECK, and no older role is as narrow:
    # the operator changes them first (sifc users role …, sifc keys revoke …); the downgrade refuses meanwhile.
    op.execute("""
    DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM app_user WHERE role = 'regisseur') OR EXISTS (SELECT 1 FROM api_key WHERE role = 'regisseur')
        THEN RAISE EXCEPTION 'accounts or keys with the role regisseur exist: change or revoke them first';
        END IF;
    END $$""")
    _roles(ROLES_BEFORE)
