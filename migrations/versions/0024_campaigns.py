"""Systematic campaigns, public display periods and claims (réclamations, oppositions)

A systematic campaign (PROCASEF-style: a village surveyed at once) lists the surveyed parcels of an
area with their presumed holders; a public display period (affichage public) shows the results per
localité; claims (réclamations, oppositions) are received during the period and resolved; at its
close, every parcel without an open claim gets a régularisation procedure (ADR 0005 §5).

- ``campaign``: commune, name, area (a localité buffer, a section or a bbox: MULTIPOLYGON 32628),
  state ``open → display → closed``.
- ``campaign_parcel``: a parcel of a campaign, its presumed holders (personal: ``[{party_id,
  share}]`` like a request's applicants), its origin (``import_batch``, ``field_package``,
  ``manual``) and the procedure registered at the close.
- ``display_period``: the campaign's display, per localité or whole; ``ends_on`` computed by the
  service from ``display_days`` in force on ``starts_on``; closed once.
- ``claim``: parcel, campaign (nullable: a claim outside a campaign is a plain réclamation),
  claimant (a party, or a name: personal), grounds (personal), sources, state ``received →
  accepted | rejected | disputed``, resolution reason (personal), the dispute it became.

Every table is pole-owned (owner guard, replica index and identity as 0016 does). The service role
inserts rows and updates only the columns a state change writes.

Federation order: additive.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"

TABLES = {  # table: its key (the replica index is the key and the commune)
    "campaign": ("id",),
    "campaign_parcel": ("campaign_id", "parcel_id"),
    "display_period": ("id",),
    "claim": ("id",),
}
UPDATES = {
    "campaign": ("state", "updated_at"),
    "campaign_parcel": ("procedure_id",),
    "display_period": ("closed_at", "closed_by"),
    "claim": ("state", "resolved_on", "resolution_reason", "resolved_by", "dispute_id"),
}

DDL = """
CREATE TABLE campaign (
    id uuid NOT NULL,
    commune_code text NOT NULL,
    name text NOT NULL,
    area geometry(MULTIPOLYGON, 32628) NOT NULL,
    area_kind text NOT NULL,
    localite_id uuid,
    section text,
    state text NOT NULL DEFAULT 'open',
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_campaign PRIMARY KEY (id),
    CONSTRAINT fk_campaign_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
    CONSTRAINT ck_campaign_state CHECK (state IN ('open', 'display', 'closed')),
    CONSTRAINT ck_campaign_area_kind CHECK (area_kind IN ('localite', 'section', 'bbox')),
    CONSTRAINT ck_campaign_area_valid CHECK (ST_IsValid(area) AND NOT ST_IsEmpty(area))
);
CREATE INDEX ix_campaign_commune_code ON campaign (commune_code);
CREATE INDEX ix_campaign_area ON campaign USING gist (area);

CREATE TABLE campaign_parcel (
    campaign_id uuid NOT NULL,
    parcel_id uuid NOT NULL,
    commune_code text NOT NULL,
    presumed_holders jsonb NOT NULL DEFAULT '[]',
    origin text NOT NULL,
    batch_id uuid,
    procedure_id uuid,
    added_by text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_campaign_parcel PRIMARY KEY (campaign_id, parcel_id),
    CONSTRAINT fk_campaign_parcel_campaign_id_campaign FOREIGN KEY (campaign_id) REFERENCES campaign (id),
    CONSTRAINT fk_campaign_parcel_batch_id_import_batch FOREIGN KEY (batch_id) REFERENCES import_batch (id),
    CONSTRAINT fk_campaign_parcel_procedure_id_tenure_procedure
        FOREIGN KEY (procedure_id) REFERENCES tenure_procedure (id),
    CONSTRAINT ck_campaign_parcel_origin CHECK (origin IN ('import_batch', 'field_package', 'manual')),
    CONSTRAINT ck_campaign_parcel_presumed_holders CHECK (jsonb_typeof(presumed_holders) = 'array')
);
CREATE INDEX ix_campaign_parcel_parcel_id ON campaign_parcel (parcel_id);

CREATE TABLE display_period (
    id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    commune_code text NOT NULL,
    localite_id uuid,
    starts_on date NOT NULL,
    ends_on date NOT NULL,
    display_days integer NOT NULL,
    opened_by text NOT NULL,
    opened_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    closed_by text,
    CONSTRAINT pk_display_period PRIMARY KEY (id),
    CONSTRAINT fk_display_period_campaign_id_campaign FOREIGN KEY (campaign_id) REFERENCES campaign (id),
    CONSTRAINT ck_display_period_dates CHECK (ends_on >= starts_on),
    CONSTRAINT ck_display_period_days CHECK (display_days > 0)
);
CREATE INDEX ix_display_period_campaign_id ON display_period (campaign_id);

CREATE TABLE claim (
    id uuid NOT NULL,
    commune_code text NOT NULL,
    parcel_id uuid NOT NULL,
    campaign_id uuid,
    display_period_id uuid,
    kind text NOT NULL DEFAULT 'reclamation',
    claimant_party_id uuid,
    claimant_name text,
    grounds text NOT NULL,
    source_ids uuid[] NOT NULL DEFAULT '{}',
    received_on date NOT NULL,
    state text NOT NULL DEFAULT 'received',
    resolved_on date,
    resolution_reason text,
    resolved_by text,
    dispute_id uuid,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_claim PRIMARY KEY (id),
    CONSTRAINT fk_claim_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
    CONSTRAINT fk_claim_campaign_id_campaign FOREIGN KEY (campaign_id) REFERENCES campaign (id),
    CONSTRAINT fk_claim_display_period_id_display_period
        FOREIGN KEY (display_period_id) REFERENCES display_period (id),
    CONSTRAINT fk_claim_dispute_id_dispute FOREIGN KEY (dispute_id) REFERENCES dispute (id),
    CONSTRAINT ck_claim_kind CHECK (kind IN ('reclamation', 'opposition')),
    CONSTRAINT ck_claim_state CHECK (state IN ('received', 'accepted', 'rejected', 'disputed')),
    CONSTRAINT ck_claim_claimant CHECK (claimant_party_id IS NOT NULL OR btrim(coalesce(claimant_name, '')) <> ''),
    CONSTRAINT ck_claim_resolved CHECK ((state = 'received') = (resolved_on IS NULL)),
    CONSTRAINT ck_claim_rejection_reason
        CHECK (state <> 'rejected' OR btrim(coalesce(resolution_reason, '')) <> ''),
    CONSTRAINT ck_claim_dispute CHECK ((state = 'disputed') = (dispute_id IS NOT NULL))
);
CREATE INDEX ix_claim_parcel_id ON claim (parcel_id);
CREATE INDEX ix_claim_campaign_id ON claim (campaign_id);
"""


def _grant(statement: str, *identifiers: str) -> None:
    bind = op.get_bind()
    role = sql.Identifier(context.config.attributes["service_url"].username)
    formatted = sql.SQL(statement).format(*(sql.Identifier(i) for i in identifiers), role=role)
    bind.exec_driver_sql(formatted.as_string(bind.connection.dbapi_connection))


def upgrade() -> None:
    op.execute(DDL)
    for table, key in TABLES.items():
        op.execute(f"CREATE TRIGGER sifc_20_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION sifc_owner_guard()")
        op.execute(f"CREATE UNIQUE INDEX uq_{table}_replica ON {table} ({', '.join(key)}, commune_code)")
        op.execute(f"ALTER TABLE {table} REPLICA IDENTITY USING INDEX uq_{table}_replica")
        _grant("GRANT SELECT, INSERT ON {} TO {role}", table)
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in UPDATES[table])
        bind = op.get_bind()
        role = sql.Identifier(context.config.attributes["service_url"].username)
        bind.exec_driver_sql(sql.SQL("GRANT UPDATE ({}) ON {} TO {}").format(
            columns, sql.Identifier(table), role).as_string(bind.connection.dbapi_connection))


def downgrade() -> None:
    for table in reversed(list(TABLES)):
        op.execute(f"DROP TABLE IF EXISTS {table}")
