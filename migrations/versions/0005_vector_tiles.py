"""Vector tiles: geometries kept in Web Mercator (EPSG:3857) by the database

A tile of the WebMercatorQuad grid is built in one statement (``ST_TileEnvelope``, ``&&``,
``ST_AsMVTGeom``, ``ST_AsMVT``). Transforming every geometry from UTM 28N on each request is
avoidable work, so the database keeps a copy in EPSG:3857, as stored generated columns that
nobody can write and that change with ``geom``:

- ``parcel_version.geom_3857``, without an index of its own: a tile finds its parcels with the
  existing index of current versions (the tile's envelope transformed to UTM 28N, widened by 1 m)
  and keeps those whose ``geom_3857`` intersects it. Measured on 1,000,000 parcels (z16 tiles,
  interleaved runs): 21 ms a tile with the stored column, with or without a GiST index on it,
  30 ms transforming on the fly. What a version costs on import: one ``ST_Transform`` (about
  3 µs of CPU) and about 135 bytes of heap; a GiST index on it would add an index insertion per
  version for no gain;
- on every territorial level, ``geom_3857`` (GiST) and ``geom_3857_low``, the same simplified to
  100 m for the small zooms, where one tile holds the whole country.

The guard of ``parcel_version`` compares a closed version with its new content except the
closing fields and the generated columns (not yet computed in a BEFORE trigger).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from alembic import context, op
from psycopg import sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TERRITORY_TABLES = ("pole", "region", "department", "arrondissement", "commune")
LOW_TOLERANCE_M = 100  # Web Mercator metres; a third of a 512-pixel tile's pixel at zoom 8 in Senegal

GUARD = """
CREATE OR REPLACE FUNCTION parcel_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'parcel_version: % refused, history is never deleted', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.valid_to IS NOT NULL THEN
        RAISE EXCEPTION 'parcel_version: version % of % is already closed', OLD.version, OLD.parcel_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Generated columns (area_m2{extra}) are not yet computed in NEW in a BEFORE trigger.
    IF (to_jsonb(NEW) - ARRAY['valid_to', 'closed_by', 'close_reason', 'area_m2'{columns}])
       IS DISTINCT FROM (to_jsonb(OLD) - ARRAY['valid_to', 'closed_by', 'close_reason', 'area_m2'{columns}]) THEN
        RAISE EXCEPTION 'parcel_version: a version''s content is immutable; only closing it is allowed'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$"""


def upgrade() -> None:
    op.execute(GUARD.format(extra=", geom_3857", columns=", 'geom_3857'"))
    op.execute("ALTER TABLE parcel_version ADD COLUMN geom_3857 geometry(MultiPolygon, 3857) "
               "GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED")
    # The view lists the table's columns as they were when it was made: add the new one.
    op.execute("CREATE OR REPLACE VIEW parcel AS SELECT * FROM parcel_version WHERE valid_to IS NULL")
    for table in TERRITORY_TABLES:
        op.execute(f"ALTER TABLE {table} "
                   "ADD COLUMN geom_3857 geometry(MultiPolygon, 3857) "
                   "GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED, "
                   "ADD COLUMN geom_3857_low geometry(MultiPolygon, 3857) "
                   f"GENERATED ALWAYS AS (ST_Multi(ST_SimplifyPreserveTopology(ST_Transform(geom, 3857), "
                   f"{LOW_TOLERANCE_M}))) STORED")
        op.execute(f"CREATE INDEX ix_{table}_geom_3857 ON {table} USING gist (geom_3857)")


def downgrade() -> None:
    for table in TERRITORY_TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS geom_3857_low, DROP COLUMN IF EXISTS geom_3857")
    op.execute("DROP VIEW IF EXISTS parcel")
    op.execute("ALTER TABLE parcel_version DROP COLUMN IF EXISTS geom_3857")
    op.execute("CREATE VIEW parcel AS SELECT * FROM parcel_version WHERE valid_to IS NULL")
    bind = op.get_bind()
    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind.exec_driver_sql(sql.SQL("GRANT SELECT ON parcel TO {}").format(role).as_string(bind.connection.dbapi_connection))
    op.execute(GUARD.format(extra="", columns=""))
