"""Dated, sourced settings per commune (setting_default national, commune_setting pole-owned)

Every value of law or local practice the procedures use (approval thresholds, notice days, required
documents, display days, fees rules…) is configuration, dated and citing its source (ADR 0005 §1):

- ``setting_default``: the national default of a key, from ``valid_from`` (to ``valid_to`` when a text
  ended it), with the text and article it rests on (``source``) and the ``docs/`` page that cites it
  (``docs_anchor``). National-owned: written by ``sifc territories load`` from
  ``data/senegal/setting_defaults.yaml`` (like the communes), published to the poles, whose own copy the
  national one replaces at their first subscription. This migration inserts no row: a row written at every
  node would collide with the national copy. A key without a row has no default.
- ``commune_setting``: a commune's own value of a key from ``valid_from``; append-only (a change, or a
  correction, is a new row: the row in force on a date is the latest ``valid_from`` not after it, the
  last recorded winning a tie). ``source`` (the délibération or arrêté, cited) is required;
  ``source_document_id`` names the scanned source when there is one; ``set_by`` (personal) who recorded it.
  Pole-owned: owner guard, replica index and identity, as migration 0016 does for the registry.
- The service role reads both; it writes the defaults (the reference loader runs as the service) and only
  inserts commune rows.

Federation order: additive.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"


def _grant(statement: str, table: str) -> None:
    bind = op.get_bind()
    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind.exec_driver_sql(sql.SQL(statement).format(sql.Identifier(table), role)
                         .as_string(bind.connection.dbapi_connection))


def upgrade() -> None:
    op.execute("""
    CREATE TABLE setting_default (
        key text NOT NULL,
        valid_from date NOT NULL,
        valid_to date,
        value jsonb NOT NULL,
        source text NOT NULL,
        docs_anchor text NOT NULL,
        CONSTRAINT pk_setting_default PRIMARY KEY (key, valid_from),
        CONSTRAINT ck_setting_default_source CHECK (btrim(source) <> ''),
        CONSTRAINT ck_setting_default_docs_anchor CHECK (btrim(docs_anchor) <> ''),
        CONSTRAINT ck_setting_default_dates CHECK (valid_to IS NULL OR valid_to > valid_from)
    )""")
    op.execute("""
    CREATE TABLE commune_setting (
        id uuid NOT NULL,
        commune_code text NOT NULL,
        key text NOT NULL,
        valid_from date NOT NULL,
        value jsonb NOT NULL,
        source text NOT NULL,
        source_document_id uuid,
        set_by text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_commune_setting PRIMARY KEY (id),
        CONSTRAINT fk_commune_setting_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT fk_commune_setting_source_document_id_source_document
            FOREIGN KEY (source_document_id) REFERENCES source_document (id),
        CONSTRAINT ck_commune_setting_source CHECK (btrim(source) <> '')
    )""")
    op.execute("CREATE INDEX ix_commune_setting_commune_code_key_valid_from ON commune_setting (commune_code, key, valid_from)")
    op.execute("CREATE TRIGGER commune_setting_append_only BEFORE UPDATE OR DELETE ON commune_setting "
               "FOR EACH ROW EXECUTE FUNCTION append_only_guard()")
    op.execute("CREATE TRIGGER commune_setting_no_truncate BEFORE TRUNCATE ON commune_setting "
               "FOR EACH STATEMENT EXECUTE FUNCTION append_only_guard()")
    op.execute("CREATE TRIGGER sifc_20_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON commune_setting "
               "FOR EACH ROW EXECUTE FUNCTION sifc_owner_guard()")
    op.execute("CREATE UNIQUE INDEX uq_commune_setting_replica ON commune_setting (id, commune_code)")
    op.execute("ALTER TABLE commune_setting REPLICA IDENTITY USING INDEX uq_commune_setting_replica")
    _grant("GRANT SELECT, INSERT, UPDATE ON {} TO {}", "setting_default")
    _grant("GRANT SELECT, INSERT ON {} TO {}", "commune_setting")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS commune_setting")
    op.execute("DROP TABLE IF EXISTS setting_default")
