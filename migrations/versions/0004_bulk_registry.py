"""Registry writes in bulk: reference checks per statement, one spatial index entry per version

An import writes hundreds of thousands of versions in one statement. Two costs dominated:

- the foreign keys of ``parcel_version`` (to ``commune`` and ``import_batch``) run one lookup
  per row. They are replaced by the same rules checked once per statement, on the rows the
  statement wrote (transition table), with the referenced rows locked ``FOR KEY SHARE`` as a
  foreign key would; the referenced side refuses to delete or renumber a row still referenced.
- every version entered two GiST indexes (current versions, all versions). Each version is now
  in exactly one: current versions in one, closed versions in another; likewise the NICAD
  index of closed versions (current NICADs have their unique index).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE parcel_version DROP CONSTRAINT parcel_version_commune_code_fkey")
    op.execute("ALTER TABLE parcel_version DROP CONSTRAINT parcel_version_batch_id_fkey")
    op.execute("""
    CREATE FUNCTION parcel_version_references() RETURNS trigger LANGUAGE plpgsql
    -- Row locks need a privilege the service role does not have on the referenced tables.
    SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
        missing text;
    BEGIN
        -- Lock what the new rows refer to, as a foreign key does, then check it exists.
        PERFORM 1 FROM commune c WHERE c.code IN (SELECT DISTINCT commune_code FROM new_rows) FOR KEY SHARE;
        SELECT n.commune_code INTO missing FROM (SELECT DISTINCT commune_code FROM new_rows) n
        WHERE NOT EXISTS (SELECT 1 FROM commune c WHERE c.code = n.commune_code) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'parcel_version: commune % does not exist', missing
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        PERFORM 1 FROM import_batch b WHERE b.id IN (SELECT DISTINCT batch_id FROM new_rows) FOR KEY SHARE;
        SELECT n.batch_id::text INTO missing FROM (SELECT DISTINCT batch_id FROM new_rows) n
        WHERE n.batch_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM import_batch b WHERE b.id = n.batch_id) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'parcel_version: import batch % does not exist', missing
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END $$""")
    op.execute("""
    CREATE TRIGGER parcel_version_references AFTER INSERT ON parcel_version
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION parcel_version_references()""")
    op.execute("""
    CREATE FUNCTION parcel_version_referenced() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
        IF TG_TABLE_NAME = 'commune' AND EXISTS (SELECT 1 FROM parcel_version WHERE commune_code = OLD.code) THEN
            RAISE EXCEPTION 'commune %: parcels refer to it', OLD.code USING ERRCODE = 'foreign_key_violation';
        END IF;
        IF TG_TABLE_NAME = 'import_batch' AND EXISTS (SELECT 1 FROM parcel_version WHERE batch_id = OLD.id) THEN
            RAISE EXCEPTION 'import batch %: parcels refer to it', OLD.id USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END $$""")
    op.execute("""
    CREATE TRIGGER commune_referenced BEFORE DELETE OR UPDATE OF code ON commune
        FOR EACH ROW EXECUTE FUNCTION parcel_version_referenced()""")
    op.execute("""
    CREATE TRIGGER import_batch_referenced BEFORE DELETE OR UPDATE OF id ON import_batch
        FOR EACH ROW EXECUTE FUNCTION parcel_version_referenced()""")
    # (A commune is never deleted in practice: that rare check may scan the table.)

    # EXCEPTION blocks open subtransactions, which parallel workers cannot.
    op.execute("ALTER FUNCTION overlap_area(geometry, geometry) PARALLEL RESTRICTED")
    op.execute("DROP INDEX ix_parcel_version_geom")
    op.execute("CREATE INDEX ix_parcel_version_closed_geom ON parcel_version USING gist (geom) "
               "WHERE valid_to IS NOT NULL")
    op.execute("DROP INDEX ix_parcel_version_nicad")
    op.execute("CREATE INDEX ix_parcel_version_closed_nicad ON parcel_version (nicad) "
               "WHERE valid_to IS NOT NULL AND nicad IS NOT NULL")


def downgrade() -> None:
    op.execute("ALTER FUNCTION overlap_area(geometry, geometry) PARALLEL SAFE")
    op.execute("DROP INDEX IF EXISTS ix_parcel_version_closed_nicad")
    op.execute("CREATE INDEX ix_parcel_version_nicad ON parcel_version (nicad)")
    op.execute("DROP INDEX IF EXISTS ix_parcel_version_closed_geom")
    op.execute("CREATE INDEX ix_parcel_version_geom ON parcel_version USING gist (geom)")
    op.execute("DROP TRIGGER IF EXISTS import_batch_referenced ON import_batch")
    op.execute("DROP TRIGGER IF EXISTS commune_referenced ON commune")
    op.execute("DROP FUNCTION IF EXISTS parcel_version_referenced()")
    op.execute("DROP TRIGGER IF EXISTS parcel_version_references ON parcel_version")
    op.execute("DROP FUNCTION IF EXISTS parcel_version_references()")
    op.execute("ALTER TABLE parcel_version ADD CONSTRAINT parcel_version_commune_code_fkey "
               "FOREIGN KEY (commune_code) REFERENCES commune (code)")
    op.execute("ALTER TABLE parcel_version ADD CONSTRAINT parcel_version_batch_id_fkey "
               "FOREIGN KEY (batch_id) REFERENCES import_batch (id)")
