"""Parcel registry: versioned parcels (LADM spatial units) and import batches

Every change to a parcel writes a new row of ``parcel_version``; the content of a version
never changes and nothing is deleted. Closing a version (``valid_to``, ``closed_by``,
``close_reason``) is the only update allowed, once: the service role holds UPDATE on those
three columns only, and a trigger refuses any other change, whoever makes it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from alembic import context, op
from psycopg import sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Region and commune polygons cut into small pieces (ST_Subdivide): point-in-polygon and
    # cover tests against them touch a few hundred vertices instead of tens of thousands.
    # Derived from the boundaries, rebuilt whenever they change.
    op.execute("""
    CREATE TABLE territory_piece (
        level text NOT NULL,
        code text NOT NULL,
        geom geometry(Geometry, 32628) NOT NULL,
        CONSTRAINT ck_territory_piece_level CHECK (level IN ('region', 'commune'))
    )""")
    op.execute("CREATE INDEX ix_territory_piece_geom ON territory_piece USING gist (geom)")
    op.execute("CREATE INDEX ix_territory_piece_code ON territory_piece (level, code)")
    op.execute("""
    INSERT INTO territory_piece (level, code, geom)
    SELECT 'region', code, ST_Subdivide(geom, 128) FROM region
    UNION ALL
    SELECT 'commune', code, ST_Subdivide(geom, 128) FROM commune WHERE geom IS NOT NULL""")

    op.execute("""
    CREATE TABLE import_batch (
        id uuid PRIMARY KEY,
        kind text NOT NULL DEFAULT 'parcels',
        file_name text NOT NULL,
        sha256 text NOT NULL,
        options jsonb NOT NULL,
        counts jsonb NOT NULL,
        report jsonb NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        synthetic boolean NOT NULL DEFAULT false,
        CONSTRAINT ck_import_batch_sha256 CHECK (sha256 ~ '^[0-9a-f]{64}$')
    )""")
    op.execute("CREATE INDEX ix_import_batch_sha256 ON import_batch (sha256)")

    op.execute("""
    CREATE TABLE parcel_version (
        parcel_id uuid NOT NULL,
        version integer NOT NULL,
        nicad text,
        nicad_status text NOT NULL,
        commune_code text NOT NULL REFERENCES commune (code),
        section text,
        local_number text,
        source_id text,
        geom geometry(MultiPolygon, 32628) NOT NULL,
        area_m2 double precision GENERATED ALWAYS AS (ST_Area(geom)) STORED,
        declared_area_m2 double precision,
        land_use text,
        tenure_regime text,
        batch_id uuid REFERENCES import_batch (id),
        action text NOT NULL,
        author text NOT NULL,
        reason text,
        valid_from timestamptz NOT NULL DEFAULT now(),
        valid_to timestamptz,
        closed_by text,
        close_reason text,
        CONSTRAINT pk_parcel_version PRIMARY KEY (parcel_id, version),
        CONSTRAINT ck_parcel_version_version CHECK (version >= 1),
        CONSTRAINT ck_parcel_version_geom_valid CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
        CONSTRAINT ck_parcel_version_nicad_status
            CHECK (nicad_status IN ('attribue', 'absent', 'a_reattribuer')),
        CONSTRAINT ck_parcel_version_nicad_consistent CHECK (
            (nicad_status = 'attribue') = (nicad IS NOT NULL)),
        CONSTRAINT ck_parcel_version_nicad_not_blank CHECK (nicad IS NULL OR btrim(nicad) <> ''),
        CONSTRAINT ck_parcel_version_declared_area CHECK (declared_area_m2 IS NULL OR declared_area_m2 >= 0),
        CONSTRAINT ck_parcel_version_closing CHECK (
            (valid_to IS NULL AND closed_by IS NULL AND close_reason IS NULL)
            OR (valid_to IS NOT NULL AND valid_to >= valid_from AND closed_by IS NOT NULL)),
        CONSTRAINT ck_parcel_version_provenance CHECK (batch_id IS NOT NULL OR action <> 'import')
    )""")
    # One current version per parcel; one current parcel per NICAD.
    op.execute("CREATE UNIQUE INDEX uq_parcel_version_current ON parcel_version (parcel_id) "
               "WHERE valid_to IS NULL")
    op.execute("CREATE UNIQUE INDEX uq_parcel_version_current_nicad ON parcel_version (nicad) "
               "WHERE valid_to IS NULL AND nicad IS NOT NULL")
    op.execute("CREATE INDEX ix_parcel_version_current_geom ON parcel_version USING gist (geom) "
               "WHERE valid_to IS NULL")
    op.execute("CREATE INDEX ix_parcel_version_geom ON parcel_version USING gist (geom)")
    op.execute("CREATE INDEX ix_parcel_version_commune_current ON parcel_version (commune_code, parcel_id) "
               "WHERE valid_to IS NULL")
    op.execute("CREATE INDEX ix_parcel_version_nicad ON parcel_version (nicad)")
    op.execute("CREATE INDEX ix_parcel_version_batch ON parcel_version (batch_id)")

    op.execute("""
    CREATE FUNCTION parcel_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'UPDATE' THEN
            RAISE EXCEPTION 'parcel_version: % refused, history is never deleted', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF OLD.valid_to IS NOT NULL THEN
            RAISE EXCEPTION 'parcel_version: version % of % is already closed', OLD.version, OLD.parcel_id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- area_m2 is generated from geom (and not yet computed in NEW in a BEFORE trigger).
        IF (to_jsonb(NEW) - ARRAY['valid_to', 'closed_by', 'close_reason', 'area_m2'])
           IS DISTINCT FROM (to_jsonb(OLD) - ARRAY['valid_to', 'closed_by', 'close_reason', 'area_m2']) THEN
            RAISE EXCEPTION 'parcel_version: a version''s content is immutable; only closing it is allowed'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END $$""")
    op.execute("""
    CREATE TRIGGER parcel_version_immutable BEFORE UPDATE OR DELETE ON parcel_version
        FOR EACH ROW EXECUTE FUNCTION parcel_version_guard()""")
    op.execute("""
    CREATE TRIGGER parcel_version_no_truncate BEFORE TRUNCATE ON parcel_version
        FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_change()""")
    # Area shared by two polygons' interiors. GEOS's relate (ST_Relate, ST_Overlaps) throws on
    # nearly coincident survey edges ("side location conflict"); overlay NG does not, and a
    # 1 mm snap-rounded overlay is the fallback should it ever fail.
    op.execute("""
    CREATE FUNCTION overlap_area(a geometry, b geometry) RETURNS double precision
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    BEGIN
        RETURN ST_Area(ST_Intersection(a, b));
    EXCEPTION WHEN OTHERS THEN
        RETURN ST_Area(ST_Intersection(a, b, 0.001));
    END $$""")
    op.execute("""
    CREATE VIEW parcel AS
        SELECT * FROM parcel_version WHERE valid_to IS NULL""")

    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    for statement in (
        "GRANT SELECT, INSERT ON import_batch TO {}",
        "GRANT SELECT, INSERT, DELETE ON territory_piece TO {}",
        "GRANT SELECT, INSERT ON parcel_version TO {}",
        "GRANT UPDATE (valid_to, closed_by, close_reason) ON parcel_version TO {}",
        "GRANT SELECT ON parcel TO {}",
    ):
        bind.exec_driver_sql(sql.SQL(statement).format(role).as_string(raw))


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS parcel")
    op.execute("DROP TABLE IF EXISTS parcel_version")
    op.execute("DROP FUNCTION IF EXISTS parcel_version_guard()")
    op.execute("DROP FUNCTION IF EXISTS overlap_area(geometry, geometry)")
    op.execute("DROP TABLE IF EXISTS import_batch")
    op.execute("DROP TABLE IF EXISTS territory_piece")
