"""Bornes in the registry: boundary markers as versioned points

Until now a table of bornes only built parcel outlines at import; the points themselves were lost.
``borne_version`` keeps each borne (a surveyed corner) like ``parcel_version`` keeps a parcel: every
change writes a new version, a version's content never changes, closing it (``valid_to``,
``closed_by``, ``close_reason``) is the only update allowed, once, in the name of the transaction's
declared actor (the guards of 0002/0007 and 0012). What a borne carries:

- ``geom``: a valid, non-empty point in the storage CRS (EPSG:32628);
- ``precision_m``: the survey's precision in metres, ]0, 50] (sifc/bounds.py ``borne.precision_m``),
  unknown (NULL) for a table of bornes without a precision column;
- ``survey_method``: how it was surveyed (GNSS RTK, GNSS, total station, tape, digitised, unknown);
- ``surveyed_on``: the survey's date, within [1850-01-01, tomorrow] like every date of record;
- ``label`` (the surveyor's number, « B12 »), ``source_id`` (the key of a re-import), ``source``
  (free text: the plan or the file it comes from) and an optional ``source_document_id``;
- ``code``: reserved for a national borne number should one exist (none is known today).

The view ``borne`` holds the current versions (served like the other layers). The service role may
add versions and close them, nothing else.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The same values as sifc.models.SURVEY_METHODS and sifc.bounds ("borne.precision_m");
# tests/integration/test_bornes.py checks that they agree.
SURVEY_METHODS = ("gnss_rtk", "gnss", "station_totale", "ruban", "numerisation", "inconnu")
MAX_PRECISION_M = "50"
EARLIEST = "DATE '1850-01-01'"
TOMORROW = "((now() AT TIME ZONE 'UTC')::date + 1)"

GUARD = """
CREATE FUNCTION borne_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'borne_version: % refused, history is never deleted', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.valid_to IS NOT NULL THEN
        RAISE EXCEPTION 'borne_version: this version is already closed' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (to_jsonb(NEW) - ARRAY['valid_to', 'closed_by', 'close_reason'])
       IS DISTINCT FROM (to_jsonb(OLD) - ARRAY['valid_to', 'closed_by', 'close_reason']) THEN
        RAISE EXCEPTION 'borne_version: a version''s content is immutable; only closing it is allowed'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$"""


def upgrade() -> None:
    methods = ", ".join(f"'{m}'" for m in SURVEY_METHODS)
    op.execute(f"""
    CREATE TABLE borne_version (
        borne_id uuid NOT NULL,
        version integer NOT NULL,
        code text,
        commune_code text NOT NULL REFERENCES commune (code),
        label text,
        source_id text,
        geom geometry(Point, 32628) NOT NULL,
        precision_m double precision,
        survey_method text NOT NULL DEFAULT 'inconnu',
        surveyed_on date,
        source text,
        source_document_id uuid REFERENCES source_document (id),
        batch_id uuid REFERENCES import_batch (id),
        action text NOT NULL,
        author text NOT NULL,
        reason text,
        valid_from timestamptz NOT NULL DEFAULT now(),
        valid_to timestamptz,
        closed_by text,
        close_reason text,
        CONSTRAINT pk_borne_version PRIMARY KEY (borne_id, version),
        CONSTRAINT ck_borne_version_version CHECK (version >= 1),
        CONSTRAINT ck_borne_version_geom_valid CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
        CONSTRAINT ck_borne_version_geom_srid CHECK (ST_SRID(geom) = 32628),
        CONSTRAINT ck_borne_version_precision_bounds
            CHECK (precision_m IS NULL OR (precision_m > 0 AND precision_m <= {MAX_PRECISION_M})),
        CONSTRAINT ck_borne_version_survey_method CHECK (survey_method IN ({methods})),
        CONSTRAINT ck_borne_version_surveyed_on_bounds
            CHECK (surveyed_on IS NULL OR (surveyed_on >= {EARLIEST} AND surveyed_on <= {TOMORROW})),
        CONSTRAINT ck_borne_version_code_not_blank CHECK (code IS NULL OR btrim(code) <> ''),
        CONSTRAINT ck_borne_version_closing CHECK (
            (valid_to IS NULL AND closed_by IS NULL AND close_reason IS NULL)
            OR (valid_to IS NOT NULL AND valid_to >= valid_from AND closed_by IS NOT NULL)),
        CONSTRAINT ck_borne_version_provenance CHECK (batch_id IS NOT NULL OR action <> 'import')
    )""")
    # One current version per borne; one current borne per code, should codes ever be given.
    op.execute("CREATE UNIQUE INDEX uq_borne_version_current ON borne_version (borne_id) WHERE valid_to IS NULL")
    op.execute("CREATE UNIQUE INDEX uq_borne_version_current_code ON borne_version (code) "
               "WHERE valid_to IS NULL AND code IS NOT NULL")
    op.execute("CREATE INDEX ix_borne_version_current_geom ON borne_version USING gist (geom) "
               "WHERE valid_to IS NULL")
    op.execute("CREATE INDEX ix_borne_version_commune_current ON borne_version (commune_code, borne_id) "
               "WHERE valid_to IS NULL")
    op.execute("CREATE INDEX ix_borne_version_batch_id ON borne_version (batch_id)")
    op.execute(GUARD)
    op.execute("""
    CREATE TRIGGER borne_version_immutable BEFORE UPDATE OR DELETE ON borne_version
        FOR EACH ROW EXECUTE FUNCTION borne_version_guard()""")
    op.execute("""
    CREATE TRIGGER borne_version_no_truncate BEFORE TRUNCATE ON borne_version
        FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_change()""")
    op.execute("""
    CREATE TRIGGER borne_version_closer BEFORE UPDATE ON borne_version
        FOR EACH ROW EXECUTE FUNCTION version_closer_guard()""")
    op.execute("CREATE VIEW borne AS SELECT * FROM borne_version WHERE valid_to IS NULL")

    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    for statement in (
        "GRANT SELECT, INSERT ON borne_version TO {}",
        "GRANT UPDATE (valid_to, closed_by, close_reason) ON borne_version TO {}",
        "GRANT SELECT ON borne TO {}",
    ):
        bind.exec_driver_sql(sql.SQL(statement).format(role).as_string(raw))


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS borne")
    op.execute("DROP TABLE IF EXISTS borne_version")
    op.execute("DROP FUNCTION IF EXISTS borne_version_guard()")
