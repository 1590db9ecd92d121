"""Localités (villages, quartiers) inside communes, optional sex of persons, tenure indicators

ADR 0005 §3. Communes are large (Mont-Rolland: 172 km²) and their people name places by village
or quartier: a campaign's display is printed per village, a request says where it lies. So:

- ``localite_version``: a localité (ville, village, hameau, quartier, lieu-dit, habitation isolée)
  as a versioned point in the storage CRS (EPSG:32628), inside its commune, with its name and
  search form, its kind, where it comes from (``origin``: ``osm`` for a point loaded from
  OpenStreetMap with its ``osm_node_id``, ``agent`` for one a land officer placed) and the version
  columns of ``party_version``: a version's content never changes, closing it is the only update
  allowed, once, in the name of the transaction's declared actor (the guards of 0007, 0012, 0016).
  The view ``localite`` holds the current versions. Pole-owned: owner guard and replica identity
  as 0016 gives the other registry tables. One current localité per OSM node.
- ``party_version.sex``: ``F`` or ``M``, optional (NULL: not recorded). Personal data (loi 2008-12):
  never public, published to the national node only under ``personal = 'national'``; the version
  guard of 0007 covers it (it compares whole rows).
- ``tenure_indicator``: per commune, aggregates computed by the pole from its own registry
  (holders of current affectations by sex), so that the national node receives figures without
  the personal column: one row per (commune, indicator), replaced at each refresh. Small counts are
  withheld (the commune setting ``gender_min_count``); without that setting nothing is published
  and ``withheld`` says why. Pole-owned, non-personal.

Federation order: additive (new tables and a nullable column; ``sifc node migrate`` adds the tables
to the publications once every node has them).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"

# The same values as sifc.models.LOCALITE_KINDS, LOCALITE_ORIGINS, SEXES and INDICATORS.
KINDS = ("ville", "village", "hameau", "quartier", "lieu_dit", "habitation_isolee")
ORIGINS = ("osm", "agent")
INDICATORS = ("holders_by_sex",)
WITHHELD = ("setting_missing", "small_counts", "no_holders")
# What a refresh replaces in a commune's row (INSERT … ON CONFLICT DO UPDATE): the figures, never the key.
INDICATOR_FIGURES = ("computed_at", "min_count", "holders", "women", "men", "unrecorded", "entities", "withheld")

GUARD = """
CREATE FUNCTION localite_version_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'localite_version: % refused, history is never deleted', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.valid_to IS NOT NULL THEN
        RAISE EXCEPTION 'localite_version: this version is already closed' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF ST_AsEWKB(NEW.geom) IS DISTINCT FROM ST_AsEWKB(OLD.geom)
       OR (to_jsonb(NEW) - ARRAY['geom', 'valid_to', 'closed_by', 'close_reason'])
          IS DISTINCT FROM (to_jsonb(OLD) - ARRAY['geom', 'valid_to', 'closed_by', 'close_reason']) THEN
        RAISE EXCEPTION 'localite_version: a version''s content is immutable; only closing it is allowed'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$"""


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _grant(statement: str) -> None:
    bind = op.get_bind()
    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind.exec_driver_sql(sql.SQL(statement).format(role=role).as_string(bind.connection.dbapi_connection))


def _pole_owned(table: str, key: str) -> None:
    """The owner guard and replica identity 0016 gives every pole-owned table."""
    op.execute(f"CREATE TRIGGER sifc_20_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON {table} "
               "FOR EACH ROW EXECUTE FUNCTION sifc_owner_guard()")
    op.execute(f"CREATE UNIQUE INDEX uq_{table}_replica ON {table} ({key}, commune_code)")
    op.execute(f"ALTER TABLE {table} REPLICA IDENTITY USING INDEX uq_{table}_replica")


def upgrade() -> None:
    op.execute(f"""
    CREATE TABLE localite_version (
        localite_id uuid NOT NULL,
        version integer NOT NULL,
        commune_code text NOT NULL,
        name text NOT NULL,
        name_search text NOT NULL,
        kind text NOT NULL,
        geom geometry(Point, 32628) NOT NULL,
        osm_node_id bigint,
        origin text NOT NULL,
        synthetic boolean NOT NULL DEFAULT false,
        action text NOT NULL,
        author text NOT NULL,
        reason text,
        valid_from timestamptz NOT NULL DEFAULT now(),
        valid_to timestamptz,
        closed_by text,
        close_reason text,
        CONSTRAINT pk_localite_version PRIMARY KEY (localite_id, version),
        CONSTRAINT fk_localite_version_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT ck_localite_version_version CHECK (version >= 1),
        CONSTRAINT ck_localite_version_name CHECK (btrim(name) <> '' AND name_search <> ''),
        CONSTRAINT ck_localite_version_kind CHECK (kind IN ({_quoted(KINDS)})),
        CONSTRAINT ck_localite_version_origin CHECK (origin IN ({_quoted(ORIGINS)})),
        CONSTRAINT ck_localite_version_osm CHECK ((origin = 'osm') = (osm_node_id IS NOT NULL)),
        CONSTRAINT ck_localite_version_geom_valid CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
        CONSTRAINT ck_localite_version_geom_srid CHECK (ST_SRID(geom) = 32628),
        CONSTRAINT ck_localite_version_closing CHECK (
            (valid_to IS NULL AND closed_by IS NULL AND close_reason IS NULL)
            OR (valid_to IS NOT NULL AND valid_to >= valid_from AND closed_by IS NOT NULL))
    )""")
    op.execute("CREATE UNIQUE INDEX uq_localite_version_current ON localite_version (localite_id) "
               "WHERE valid_to IS NULL")
    op.execute("CREATE UNIQUE INDEX uq_localite_version_current_osm ON localite_version (osm_node_id) "
               "WHERE valid_to IS NULL AND osm_node_id IS NOT NULL")
    op.execute("CREATE INDEX ix_localite_version_commune_current ON localite_version (commune_code, name_search) "
               "WHERE valid_to IS NULL")
    op.execute("CREATE INDEX ix_localite_version_current_geom ON localite_version USING gist (geom) "
               "WHERE valid_to IS NULL")
    op.execute(GUARD)
    op.execute("CREATE TRIGGER localite_version_immutable BEFORE UPDATE OR DELETE ON localite_version "
               "FOR EACH ROW EXECUTE FUNCTION localite_version_guard()")
    op.execute("CREATE TRIGGER localite_version_no_truncate BEFORE TRUNCATE ON localite_version "
               "FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_change()")
    op.execute("CREATE TRIGGER localite_version_closer BEFORE UPDATE ON localite_version "
               "FOR EACH ROW EXECUTE FUNCTION version_closer_guard()")
    _pole_owned("localite_version", "localite_id, version")
    op.execute("CREATE VIEW localite AS SELECT * FROM localite_version WHERE valid_to IS NULL")

    op.execute("ALTER TABLE party_version ADD COLUMN sex text")
    op.execute("ALTER TABLE party_version ADD CONSTRAINT ck_party_version_sex "
               "CHECK (sex IS NULL OR (sex IN ('F', 'M') AND kind = 'natural_person'))")

    op.execute(f"""
    CREATE TABLE tenure_indicator (
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        commune_code text NOT NULL,
        indicator text NOT NULL,
        computed_at timestamptz NOT NULL DEFAULT now(),
        min_count integer,
        holders integer NOT NULL,
        women integer,
        men integer,
        unrecorded integer,
        entities integer,
        withheld text,
        CONSTRAINT pk_tenure_indicator PRIMARY KEY (id),
        CONSTRAINT fk_tenure_indicator_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT uq_tenure_indicator_commune_code_indicator UNIQUE (commune_code, indicator),
        CONSTRAINT ck_tenure_indicator_indicator CHECK (indicator IN ({_quoted(INDICATORS)})),
        CONSTRAINT ck_tenure_indicator_withheld CHECK (withheld IS NULL OR withheld IN ({_quoted(WITHHELD)})),
        CONSTRAINT ck_tenure_indicator_published CHECK (
            (withheld IS NULL) = (women IS NOT NULL AND men IS NOT NULL AND unrecorded IS NOT NULL)),
        CONSTRAINT ck_tenure_indicator_counts CHECK (
            holders >= 0 AND coalesce(women, 0) >= 0 AND coalesce(men, 0) >= 0
            AND coalesce(unrecorded, 0) >= 0 AND coalesce(entities, 0) >= 0
            AND (min_count IS NULL OR min_count >= 1))
    )""")
    _pole_owned("tenure_indicator", "id")

    _grant("GRANT SELECT, INSERT ON localite_version TO {role}")
    _grant("GRANT UPDATE (valid_to, closed_by, close_reason) ON localite_version TO {role}")
    _grant("GRANT SELECT ON localite TO {role}")
    _grant("GRANT SELECT, INSERT ON tenure_indicator TO {role}")
    _grant(f"GRANT UPDATE ({', '.join(INDICATOR_FIGURES)}) ON tenure_indicator TO {{role}}")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS tenure_indicator")
    op.execute("ALTER TABLE party_version DROP CONSTRAINT IF EXISTS ck_party_version_sex")
    # The version guard of 0007 refuses an UPDATE; dropping a column rewrites nothing it sees.
    op.execute("ALTER TABLE party_version DROP COLUMN IF EXISTS sex")
    op.execute("DROP VIEW IF EXISTS localite")
    op.execute("DROP TABLE IF EXISTS localite_version")
    op.execute("DROP FUNCTION IF EXISTS localite_version_guard()")
