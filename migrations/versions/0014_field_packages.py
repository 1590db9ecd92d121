"""Field packages: the server's record of what was checked out to the field, and the returns

A field package (ADR 0003) is a GeoPackage and a QGIS project that a land officer takes to the field
without a network. When it comes back, the return is judged against what the server recorded at
check-out, never against values read from the returned file, which its holder could have edited:

- ``field_package``: who holds it, the area and commune, when it expires, whether it carries holders
  (then a stated purpose is required), its status (open, returned, expired, lost), and the MAC that
  authenticates its id (``hmac_kid``: the seal key the MAC key was derived from). Rows are never
  deleted; only the columns of its life (status, holder on reassignment, closing, the built file's
  size and digest) may change;
- ``field_package_item``: one row per parcel issued: its ``fid`` in the file, the version issued,
  ``base_version`` (the version the holder's file is judged against, advanced when a return applies)
  and the fingerprint of that state;
- ``field_return``: each return applied or previewed, by file digest: the same bytes applied twice
  change nothing (``uq_field_return_applied``);
- ``parcel_source``: sources attached to a parcel (photos taken in the field);
- ``import_job.kind`` admits ``field_return``: returns run as durable jobs like imports.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

STATUSES = ("open", "returned", "expired", "lost")


def upgrade() -> None:
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    op.execute(f"""
    CREATE TABLE field_package (
        id uuid PRIMARY KEY,
        commune_code text NOT NULL REFERENCES commune (code),
        area geometry(MultiPolygon, 32628) NOT NULL,
        selection jsonb NOT NULL,
        issued_to text NOT NULL,
        issued_by text NOT NULL,
        issued_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        purpose text,
        includes_holders boolean NOT NULL DEFAULT false,
        status text NOT NULL DEFAULT 'open',
        format integer NOT NULL,
        hmac_kid text NOT NULL,
        mac text NOT NULL,
        item_count integer NOT NULL DEFAULT 0,
        zip_bytes bigint,
        zip_sha256 text,
        returned_at timestamptz,
        closed_at timestamptz,
        closed_by text,
        close_reason text,
        CONSTRAINT ck_field_package_area_valid CHECK (ST_IsValid(area) AND NOT ST_IsEmpty(area)),
        CONSTRAINT ck_field_package_expiry CHECK (expires_at > issued_at),
        CONSTRAINT ck_field_package_purpose
            CHECK (NOT includes_holders OR (purpose IS NOT NULL AND btrim(purpose) <> '')),
        CONSTRAINT ck_field_package_status CHECK (status IN ({statuses})),
        CONSTRAINT ck_field_package_mac CHECK (mac ~ '^[0-9a-f]{{64}}$'),
        CONSTRAINT ck_field_package_zip_sha256 CHECK (zip_sha256 IS NULL OR zip_sha256 ~ '^[0-9a-f]{{64}}$'),
        CONSTRAINT ck_field_package_items CHECK (item_count >= 0),
        CONSTRAINT ck_field_package_closing CHECK ((status = 'lost') = (closed_at IS NOT NULL AND closed_by IS NOT NULL))
    )""")
    op.execute("CREATE INDEX ix_field_package_issued_to_status ON field_package (issued_to, status)")
    op.execute("CREATE INDEX ix_field_package_commune_code ON field_package (commune_code)")
    op.execute("CREATE INDEX ix_field_package_area ON field_package USING gist (area)")
    op.execute("""
    CREATE TABLE field_package_item (
        package_id uuid NOT NULL REFERENCES field_package (id),
        fid bigint NOT NULL,
        parcel_id uuid NOT NULL,
        issued_version integer NOT NULL,
        base_version integer NOT NULL,
        fingerprint text NOT NULL,
        CONSTRAINT pk_field_package_item PRIMARY KEY (package_id, fid),
        CONSTRAINT uq_field_package_item_package_id_parcel_id UNIQUE (package_id, parcel_id),
        CONSTRAINT fk_field_package_item_issued FOREIGN KEY (parcel_id, issued_version)
            REFERENCES parcel_version (parcel_id, version),
        CONSTRAINT fk_field_package_item_base FOREIGN KEY (parcel_id, base_version)
            REFERENCES parcel_version (parcel_id, version),
        CONSTRAINT ck_field_package_item_fid CHECK (fid >= 1),
        CONSTRAINT ck_field_package_item_base CHECK (base_version >= issued_version),
        CONSTRAINT ck_field_package_item_fingerprint CHECK (fingerprint ~ '^[0-9a-f]{64}$')
    )""")
    op.execute("CREATE INDEX ix_field_package_item_parcel_id ON field_package_item (parcel_id)")
    op.execute("ALTER TABLE import_job DROP CONSTRAINT ck_import_job_kind")
    op.execute("ALTER TABLE import_job ADD CONSTRAINT ck_import_job_kind CHECK (kind IN ('parcels', 'field_return'))")
    op.execute("""
    CREATE TABLE field_return (
        id uuid PRIMARY KEY,
        package_id uuid NOT NULL REFERENCES field_package (id),
        job_id uuid NOT NULL REFERENCES import_job (id),
        file_sha256 text NOT NULL,
        returned_by text NOT NULL,
        returned_at timestamptz NOT NULL DEFAULT now(),
        applied boolean NOT NULL,
        counts jsonb NOT NULL,
        CONSTRAINT ck_field_return_file_sha256 CHECK (file_sha256 ~ '^[0-9a-f]{64}$')
    )""")
    op.execute("CREATE UNIQUE INDEX uq_field_return_applied ON field_return (package_id, file_sha256) WHERE applied")
    op.execute("CREATE INDEX ix_field_return_package_id ON field_return (package_id)")
    op.execute("""
    CREATE TABLE parcel_source (
        parcel_id uuid NOT NULL,
        source_id uuid NOT NULL REFERENCES source_document (id),
        field_return_id uuid REFERENCES field_return (id),
        attached_by text NOT NULL,
        attached_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_parcel_source PRIMARY KEY (parcel_id, source_id)
    )""")
    op.execute("CREATE INDEX ix_parcel_source_source_id ON parcel_source (source_id)")

    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    for statement in (
        "GRANT SELECT, INSERT ON field_package TO {}",
        "GRANT UPDATE (status, issued_to, item_count, zip_bytes, zip_sha256, returned_at, closed_at, closed_by, "
        "close_reason) ON field_package TO {}",
        "GRANT SELECT, INSERT ON field_package_item TO {}",
        "GRANT UPDATE (base_version, fingerprint) ON field_package_item TO {}",
        "GRANT SELECT, INSERT ON field_return TO {}",
        "GRANT SELECT, INSERT ON parcel_source TO {}",
    ):
        bind.exec_driver_sql(sql.SQL(statement).format(role).as_string(raw))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS parcel_source")
    op.execute("DROP TABLE IF EXISTS field_return")
    op.execute("DELETE FROM import_job WHERE kind = 'field_return'")
    op.execute("ALTER TABLE import_job DROP CONSTRAINT ck_import_job_kind")
    op.execute("ALTER TABLE import_job ADD CONSTRAINT ck_import_job_kind CHECK (kind IN ('parcels'))")
    op.execute("DROP TABLE IF EXISTS field_package_item")
    op.execute("DROP TABLE IF EXISTS field_package")
