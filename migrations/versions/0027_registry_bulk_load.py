"""The registry loaded at national scale: ownership checked per statement, an import withdraws its own rows

A national load (ADR 0006). A first load of a commune now writes its parcels straight into ``parcel_version``
with ``COPY``, chunk by chunk, while the file's next chunk is checked; two rules of the registry were
written for one row at a time and are restated per statement, as strict as before:

- ``sifc_20_owner_guard`` (0016) asked ``sifc_owns`` once per inserted row (a query each: 40 % of the
  cost of inserting 200,000 parcels). On ``parcel_version``, new rows are now checked once per statement
  and commune, after the statement, by ``sifc_20_owner_guard_insert`` (``sifc_owner_guard_rows``, with
  the statement's rows as a transition table): a row of a commune this node does not own still fails the
  whole statement with SQLSTATE ``SF403`` and the commune as detail. Updates and deletes keep the row
  trigger. Neither fires while a subscription applies rows (ordinary triggers).
- ``parcel_version_guard`` refused every DELETE. An import finds some refusals only once its rows are
  in (overlaps within a large file are searched in the registry's own spatial index; a NICAD repeated
  far apart in the file): it may now withdraw a current version of **its own batch**, before that batch
  commits, and nothing else. The batch must be named in ``sifc.withdraw_batch`` (a setting local to the
  transaction) and its ``import_batch`` row must have been written by the running transaction: a
  committed batch is history and stays so. Logical replication sends the insert and its withdrawal in
  the same transaction; the subscriber ends with neither. The service role gets ``DELETE`` on
  ``parcel_version`` for this alone (the guard refuses every other delete, as before).
- ``import_batch`` is written before the batch's rows (their statements check it exists) and completed
  after them: the service role may update its ``counts``, ``report`` and ``commune_code``, and only while
  the transaction that wrote it runs (``import_batch_sealed``); a committed batch is never rewritten.

Federation order: additive (functions and triggers only; nothing published changes).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"

WRITTEN_HERE = """
CREATE FUNCTION sifc_written_here(row_xmin xid) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
-- Whether a row this transaction sees was written by this very transaction (or one of its savepoints):
-- visible and still in progress. The row's 32-bit xmin is widened with the current epoch.
DECLARE
    current_xact bigint := pg_current_xact_id()::text::bigint;
    inserted bigint;
BEGIN
    IF row_xmin IS NULL THEN
        RETURN false;
    END IF;
    -- A savepoint's xid follows its transaction's: the row's xid is the one nearest the current one.
    inserted := (current_xact >> 32 << 32) + row_xmin::text::bigint;
    IF inserted > current_xact + 2147483648 AND inserted >= 4294967296 THEN
        inserted := inserted - 4294967296;
    ELSIF inserted < current_xact - 2147483648 THEN
        inserted := inserted + 4294967296;
    END IF;
    RETURN pg_xact_status(inserted::text::xid8) = 'in progress';
END $$"""

SEALED = """
CREATE FUNCTION import_batch_sealed() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT sifc_written_here(OLD.xmin) THEN
        RAISE EXCEPTION 'import_batch: batch % is committed and never rewritten', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$"""

GUARD_ROWS = """
CREATE FUNCTION sifc_owner_guard_rows() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
-- The owner guard of a whole statement's new rows (transition table new_rows): one question per commune.
DECLARE
    refused text;
BEGIN
    SELECT n.commune_code INTO refused
    FROM (SELECT DISTINCT commune_code FROM new_rows WHERE commune_code IS NOT NULL) n
    WHERE NOT sifc_owns(n.commune_code) ORDER BY n.commune_code LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'commune % is not owned by this node', refused
            USING ERRCODE = 'SF403', DETAIL = refused;
    END IF;
    RETURN NULL;
END $$"""

# The guard of 0015 (WITHDRAWAL left out), plus the withdrawal of an uncommitted batch's own current versions.
WITHDRAWAL = """
    IF TG_OP = 'DELETE' AND OLD.valid_to IS NULL AND OLD.batch_id IS NOT NULL
       AND OLD.batch_id::text = current_setting('sifc.withdraw_batch', true) THEN
        IF sifc_written_here((SELECT b.xmin FROM import_batch b WHERE b.id = OLD.batch_id)) THEN
            RETURN OLD;
        END IF;
    END IF;"""
GUARD = """
CREATE OR REPLACE FUNCTION parcel_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    before parcel_version := OLD;
    after parcel_version := NEW;
BEGIN{withdrawal}
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'parcel_version: % refused, history is never deleted', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.valid_to IS NOT NULL THEN
        RAISE EXCEPTION 'parcel_version: version % of % is already closed', OLD.version, OLD.parcel_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF ST_AsEWKB(NEW.geom) IS DISTINCT FROM ST_AsEWKB(OLD.geom) THEN
        RAISE EXCEPTION 'parcel_version: a version''s content is immutable; only closing it is allowed'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- The shape is compared above; generated columns (area_m2, geom_3857) are not yet computed in NEW.
    before.geom := NULL; after.geom := NULL;
    before.geom_3857 := NULL; after.geom_3857 := NULL;
    before.area_m2 := NULL; after.area_m2 := NULL;
    IF (to_jsonb(after) - ARRAY['valid_to', 'closed_by', 'close_reason'])
       IS DISTINCT FROM (to_jsonb(before) - ARRAY['valid_to', 'closed_by', 'close_reason']) THEN
        RAISE EXCEPTION 'parcel_version: a version''s content is immutable; only closing it is allowed'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$"""


def _grant(statement: str) -> None:
    bind = op.get_bind()
    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind.exec_driver_sql(sql.SQL(statement).format(role=role).as_string(bind.connection.dbapi_connection))


def upgrade() -> None:
    op.execute(WRITTEN_HERE)
    op.execute(SEALED)
    op.execute("CREATE TRIGGER import_batch_sealed BEFORE UPDATE ON import_batch "
               "FOR EACH ROW EXECUTE FUNCTION import_batch_sealed()")
    _grant("GRANT UPDATE (counts, report, commune_code) ON import_batch TO {role}")
    _grant("GRANT DELETE ON parcel_version TO {role}")
    op.execute(GUARD_ROWS)
    op.execute("DROP TRIGGER sifc_20_owner_guard ON parcel_version")
    op.execute("CREATE TRIGGER sifc_20_owner_guard BEFORE UPDATE OR DELETE ON parcel_version "
               "FOR EACH ROW EXECUTE FUNCTION sifc_owner_guard()")
    op.execute("CREATE TRIGGER sifc_20_owner_guard_insert AFTER INSERT ON parcel_version "
               "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sifc_owner_guard_rows()")
    op.execute(GUARD.format(withdrawal=WITHDRAWAL))


def downgrade() -> None:
    op.execute(GUARD.format(withdrawal=""))
    op.execute("DROP TRIGGER sifc_20_owner_guard_insert ON parcel_version")
    op.execute("DROP TRIGGER sifc_20_owner_guard ON parcel_version")
    op.execute("CREATE TRIGGER sifc_20_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON parcel_version "
               "FOR EACH ROW EXECUTE FUNCTION sifc_owner_guard()")
    op.execute("DROP FUNCTION sifc_owner_guard_rows()")
    _grant("REVOKE DELETE ON parcel_version FROM {role}")
    _grant("REVOKE UPDATE (counts, report, commune_code) ON import_batch FROM {role}")
    op.execute("DROP TRIGGER import_batch_sealed ON import_batch")
    op.execute("DROP FUNCTION import_batch_sealed()")
    op.execute("DROP FUNCTION sifc_written_here(xid)")
