"""Table definitions (SQLAlchemy Core), the single metadata Alembic compares against.

Constraints that only PostgreSQL can express (validity, PCODE prefixes, append-only
history) are declared here too, so autogenerate sees no drift.
"""

from __future__ import annotations

from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from sifc.crs import STORAGE_SRID
from sifc.federation import registry

LEVELS = ("pole", "region", "department", "arrondissement", "commune")
BOUNDARY_STATUSES = ("official", "provisional")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _geom(nullable: bool = False) -> Column[Any]:
    return Column(
        "geom",
        Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=False),
        nullable=nullable,
    )


def _mercator_columns() -> list[Column[Any]]:
    # Kept by the database for vector tiles (migration 0005): full detail, and simplified to 100 m.
    return [
        Column("geom_3857", Geometry("MULTIPOLYGON", srid=3857, spatial_index=False),
               Computed("ST_Transform(geom, 3857)", persisted=True)),
        Column("geom_3857_low", Geometry("MULTIPOLYGON", srid=3857, spatial_index=False),
               Computed("ST_Multi(ST_SimplifyPreserveTopology(ST_Transform(geom, 3857), 100))", persisted=True)),
    ]


def _boundary_columns() -> list[Column[Any]]:
    return [
        Column("boundary_status", Text, nullable=False, server_default="official"),
        Column("source", Text, nullable=False),
        Column("valid_from", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


def _boundary_checks() -> list[CheckConstraint]:
    return [
        CheckConstraint("geom IS NULL OR (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))", "geom_valid"),
        CheckConstraint("boundary_status IN ('official', 'provisional')", "boundary_status"),
        CheckConstraint("name_search <> ''", "name_search"),
    ]


pole = Table(
    "pole",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("name_search", Text, nullable=False),
    Column("region_order", Integer, nullable=False, server_default="0"),
    _geom(nullable=True),
    *_mercator_columns(),
    *_boundary_columns(),
    *_boundary_checks(),
    CheckConstraint("code ~ '^[A-Z]{3}$'", "code_format"),
)

region = Table(
    "region",
    metadata,
    Column("code", Text, primary_key=True),
    Column("pole_code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("name_search", Text, nullable=False),
    Column("official_area_km2", Float),
    _geom(),
    *_mercator_columns(),
    *_boundary_columns(),
    *_boundary_checks(),
    ForeignKeyConstraint(["pole_code"], ["pole.code"]),
    CheckConstraint("code ~ '^SN[0-9]{2}$'", "code_format"),
)

department = Table(
    "department",
    metadata,
    Column("code", Text, primary_key=True),
    Column("region_code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("name_search", Text, nullable=False),
    Column("official_area_km2", Float),
    _geom(),
    *_mercator_columns(),
    *_boundary_columns(),
    *_boundary_checks(),
    ForeignKeyConstraint(["region_code"], ["region.code"]),
    UniqueConstraint("code", "region_code"),
    CheckConstraint("code ~ '^SN[0-9]{4}$' AND left(code, 4) = region_code", "code_format"),
)

arrondissement = Table(
    "arrondissement",
    metadata,
    Column("code", Text, primary_key=True),
    Column("department_code", Text, nullable=False),
    Column("region_code", Text, nullable=False),
    Column("name", Text, nullable=True),  # NULL where the source gives none ("N/A")
    Column("name_search", Text, nullable=False),
    Column("official_area_km2", Float),
    _geom(),
    *_mercator_columns(),
    *_boundary_columns(),
    *_boundary_checks(),
    ForeignKeyConstraint(["department_code", "region_code"], ["department.code", "department.region_code"]),
    UniqueConstraint("code", "department_code"),
    CheckConstraint("code ~ '^SN[0-9]{6}$' AND left(code, 6) = department_code", "code_format"),
)

commune = Table(
    "commune",
    metadata,
    Column("code", Text, primary_key=True),
    Column("national_code", Text, nullable=True),
    Column("name", Text, nullable=False),
    Column("name_search", Text, nullable=False),
    Column("department_code", Text, nullable=False),
    Column("region_code", Text, nullable=False),
    Column("arrondissement_code", Text, nullable=True),
    Column("gazetteer_id", Integer, nullable=True),
    Column("seat_source", Text, nullable=True),
    _geom(nullable=True),
    *_mercator_columns(),
    *_boundary_columns(),
    *_boundary_checks(),
    ForeignKeyConstraint(["department_code", "region_code"], ["department.code", "department.region_code"]),
    ForeignKeyConstraint(
        ["arrondissement_code", "department_code"],
        ["arrondissement.code", "arrondissement.department_code"],
    ),
    UniqueConstraint("national_code"),
    CheckConstraint(
        "code ~ '^SN[0-9]{4}-[a-z0-9]+(-[a-z0-9]+)*$' AND left(code, 6) = department_code",
        "code_format",
    ),
    CheckConstraint("boundary_status = 'provisional' OR geom IS NOT NULL", "official_has_geom"),
)

commune_alias = Table(
    "commune_alias",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("alias", Text, nullable=False),
    Column("alias_search", Text, nullable=False),
    Column("source", Text, nullable=False),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    UniqueConstraint("alias_search", "commune_code"),
    CheckConstraint("alias_search <> ''", "alias_search"),
)

boundary_version = Table(
    "boundary_version",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("level", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("name", Text, nullable=True),
    _geom(nullable=True),
    Column("boundary_status", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_to", DateTime(timezone=True), nullable=False),
    Column("replaced_by", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "level IN ('pole', 'region', 'department', 'arrondissement', 'commune')", "level"
    ),
    CheckConstraint("valid_to >= valid_from", "validity"),
    CheckConstraint("geom IS NULL OR ST_IsValid(geom)", "geom_valid"),
)

Index("ix_boundary_version_unit", boundary_version.c.level, boundary_version.c.unit_code)
for _table in (pole, region, department, arrondissement, commune):
    Index(f"ix_{_table.name}_name_search", _table.c.name_search)
    Index(f"ix_{_table.name}_geom", _table.c.geom, postgresql_using="gist")
    Index(f"ix_{_table.name}_geom_3857", _table.c.geom_3857, postgresql_using="gist")
Index("ix_boundary_version_geom", boundary_version.c.geom, postgresql_using="gist")
Index("ix_commune_alias_search", commune_alias.c.alias_search)
Index("ix_region_pole_code", region.c.pole_code)
Index("ix_department_region_code", department.c.region_code)
Index("ix_arrondissement_department_code", arrondissement.c.department_code)
Index("ix_commune_department_code", commune.c.department_code)
Index("ix_commune_arrondissement_code", commune.c.arrondissement_code)

territory_piece = Table(
    "territory_piece",
    metadata,
    Column("level", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("geom", Geometry("GEOMETRY", srid=STORAGE_SRID, spatial_index=False), nullable=False),
    CheckConstraint("level IN ('region', 'commune')", "level"),
)
Index("ix_territory_piece_geom", territory_piece.c.geom, postgresql_using="gist")
Index("ix_territory_piece_code", territory_piece.c.level, territory_piece.c.code)

import_batch = Table(
    "import_batch",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("kind", Text, nullable=False, server_default="parcels"),
    Column("file_name", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("options", JSONB, nullable=False),
    Column("counts", JSONB, nullable=False),
    Column("report", JSONB, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("synthetic", Boolean, nullable=False, server_default="false"),
    Column("commune_code", Text, nullable=False),  # named by the importer (migration 0016)
)
Index("ix_import_batch_sha256", import_batch.c.sha256)

parcel_version = Table(
    "parcel_version",
    metadata,
    Column("parcel_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("nicad", Text),
    Column("nicad_status", Text, nullable=False),
    Column("commune_code", Text, nullable=False),
    Column("section", Text),
    Column("local_number", Text),
    Column("source_id", Text),
    Column("geom", Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=False), nullable=False),
    Column("area_m2", Float(precision=53), Computed("ST_Area(geom)", persisted=True)),
    Column("geom_3857", Geometry("MULTIPOLYGON", srid=3857, spatial_index=False),
           Computed("ST_Transform(geom, 3857)", persisted=True)),  # vector tiles (migration 0005)
    Column("declared_area_m2", Float(precision=53)),
    Column("land_use", Text),
    Column("tenure_regime", Text),
    Column("batch_id", UUID(as_uuid=True)),
    Column("action", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("reason", Text),
    Column("valid_from", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("valid_to", DateTime(timezone=True)),
    Column("closed_by", Text),
    Column("close_reason", Text),
    # commune_code and batch_id are checked per statement by triggers (migration 0004), not by FKs.
)
Index("uq_parcel_version_current", parcel_version.c.parcel_id, unique=True,
      postgresql_where=parcel_version.c.valid_to.is_(None))
Index("uq_parcel_version_current_nicad", parcel_version.c.nicad, unique=True,
      postgresql_where=parcel_version.c.valid_to.is_(None) & parcel_version.c.nicad.isnot(None))
Index("ix_parcel_version_current_geom", parcel_version.c.geom, postgresql_using="gist",
      postgresql_where=parcel_version.c.valid_to.is_(None))
Index("ix_parcel_version_closed_geom", parcel_version.c.geom, postgresql_using="gist",
      postgresql_where=parcel_version.c.valid_to.isnot(None))
Index("ix_parcel_version_commune_current", parcel_version.c.commune_code, parcel_version.c.parcel_id,
      postgresql_where=parcel_version.c.valid_to.is_(None))
Index("ix_parcel_version_closed_nicad", parcel_version.c.nicad,
      postgresql_where=parcel_version.c.valid_to.isnot(None) & parcel_version.c.nicad.isnot(None))
Index("ix_parcel_version_batch", parcel_version.c.batch_id)

Index("ix_parcel_version_current_source", parcel_version.c.commune_code, parcel_version.c.source_id,
      postgresql_where=parcel_version.c.valid_to.is_(None) & parcel_version.c.source_id.isnot(None))

import_job = Table(
    "import_job",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("kind", Text, nullable=False, server_default="parcels"),
    Column("status", Text, nullable=False, server_default="queued"),
    Column("stage", Text),
    Column("progress_done", BigInteger, nullable=False, server_default="0"),
    Column("progress_total", BigInteger, nullable=False, server_default="0"),
    # NULL only for kind 'documents', which has no upload (ck_import_job_upload, migration 0021)
    Column("file_name", Text),
    Column("upload_path", Text),
    Column("size_bytes", BigInteger),
    Column("options", JSONB, nullable=False),
    Column("dry_run", Boolean, nullable=False, server_default="false"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("worker", Text),
    Column("error", JSONB),
    Column("report", JSONB),
    Column("issues_gz", LargeBinary),
    Column("rejects_gpkg", LargeBinary),
    Column("batch_id", UUID(as_uuid=True)),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    ForeignKeyConstraint(["batch_id"], ["import_batch.id"]),
)
Index("ix_import_job_pending", import_job.c.created_at,
      postgresql_where=import_job.c.status.in_(["queued", "running"]))
Index("ix_import_job_created", import_job.c.created_at)

TERRITORY_TABLES = {"pole": pole, "region": region, "department": department,
                    "arrondissement": arrondissement, "commune": commune}


# --- accounts and access audit (migration 0006) ------------------------------------------

ROLES = ("lecteur", "agent_foncier", "analyste_sig", "administrateur", "regisseur")  # regisseur: 0025
SCOPE_LEVELS = ("country", "pole", "region", "department", "commune")

app_user = Table(
    "app_user",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("username", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("failed_attempts", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_login_at", DateTime(timezone=True)),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("username"),
    CheckConstraint("username ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'", "username"),
    CheckConstraint(f"role IN {ROLES}", "role"),
    CheckConstraint("password_hash LIKE '$argon2%'", "password_hash"),
    CheckConstraint("failed_attempts >= 0", "failed_attempts"),
)

app_user_scope = Table(
    "app_user_scope",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("level", Text, primary_key=True),
    Column("code", Text, primary_key=True),
    ForeignKeyConstraint(["user_id"], ["app_user.id"]),
    CheckConstraint(f"level IN {SCOPE_LEVELS}", "level"),
)

api_key = Table(
    "api_key",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("prefix", Text, nullable=False),
    Column("secret_hash", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    UniqueConstraint("prefix"),
    CheckConstraint("prefix ~ '^[0-9a-f]{10}$'", "prefix"),
    CheckConstraint("secret_hash ~ '^[0-9a-f]{64}$'", "secret_hash"),
    CheckConstraint("btrim(name) <> ''", "name"),
    CheckConstraint(f"role IN {ROLES}", "role"),
    CheckConstraint("expires_at IS NULL OR expires_at > created_at", "expiry"),
)

api_key_scope = Table(
    "api_key_scope",
    metadata,
    Column("key_id", BigInteger, primary_key=True),
    Column("level", Text, primary_key=True),
    Column("code", Text, primary_key=True),
    ForeignKeyConstraint(["key_id"], ["api_key.id"]),
    CheckConstraint(f"level IN {SCOPE_LEVELS}", "level"),
)

refresh_token = Table(
    "refresh_token",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("family_id", UUID(as_uuid=True), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("token_hash", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    UniqueConstraint("token_hash"),
    ForeignKeyConstraint(["user_id"], ["app_user.id"]),
    CheckConstraint("token_hash ~ '^[0-9a-f]{64}$'", "token_hash"),
    CheckConstraint("expires_at > issued_at", "expiry"),
)
Index("ix_refresh_token_family_id", refresh_token.c.family_id)
Index("ix_refresh_token_user_id", refresh_token.c.user_id)


def _actor_columns() -> list[Column[Any]]:
    # Who did it and when: the head of both append-only logs (access_audit, write_audit).
    return [
        # uuid v7-like, made by the database: the national node receives every pole's rows (migration 0016).
        Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("sifc_uuid7()")),
        Column("node_id", Text, nullable=False, server_default=text("sifc_node_id()")),
        Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor_kind", Text, nullable=False),
        Column("actor_id", BigInteger),
        Column("actor", Text, nullable=False),
        Column("role", Text, nullable=False),
    ]

# Append-only (triggers refuse UPDATE, DELETE and TRUNCATE; the service role may only INSERT).
access_audit = Table(
    "access_audit",
    metadata,
    *_actor_columns(),
    Column("method", Text, nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("subject_kind", Text, nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("commune_code", Text),
    Column("purpose", Text),
    CheckConstraint("actor_kind IN ('user', 'api_key', 'cli')", "actor_kind"),
    CheckConstraint("btrim(subject_kind) <> '' AND btrim(subject_id) <> ''", "subject"),
)
Index("ix_access_audit_subject_kind_subject_id", access_audit.c.subject_kind, access_audit.c.subject_id)
Index("ix_access_audit_actor_kind_actor_id", access_audit.c.actor_kind, access_audit.c.actor_id)
Index("ix_access_audit_occurred_at", access_audit.c.occurred_at)



# --- tenure (LADM): parties, rights, sources, procedures, write audit (migration 0007) -------

PARTY_KINDS = ("natural_person", "group", "legal_entity")
RRR_TYPES = {
    "right": ("affectation", "bail", "titre_foncier", "droit_superficie", "occupation"),
    "restriction": ("servitude", "zone_reservee", "litige"),
    "responsibility": ("mise_en_valeur", "entretien"),
}
SOURCE_KINDS = ("deliberation", "approbation", "acte", "plan", "proces_verbal", "notification",
                "decision_justice", "certificat", "autre")
APPROVING_AUTHORITIES = ("sous_prefet", "prefet", "gouverneur")
PROCEDURE_STEPS = ("registered", "surveyed", "deliberated", "approved", "notified", "refused")
DOCUMENT_MEDIA_TYPES = ("application/pdf", "image/jpeg", "image/png", "image/tiff")


def _version_columns(*, synthetic: bool = True) -> list[Column[Any]]:
    # As parcel_version: a version is only ever closed (valid_to, closed_by, close_reason). ``synthetic``
    # marks demo records where a table may hold them (parties and rights; bornes have none).
    marker = [Column("synthetic", Boolean, nullable=False, server_default="false")] if synthetic else []
    return [
        *marker,
        Column("action", Text, nullable=False),
        Column("author", Text, nullable=False),
        Column("reason", Text),
        Column("valid_from", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("valid_to", DateTime(timezone=True)),
        Column("closed_by", Text),
        Column("close_reason", Text),
    ]


party_version = Table(
    "party_version",
    metadata,
    Column("party_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("group_type", Text),
    Column("name", Text, nullable=False),  # personal data (loi 2008-12), as the three below
    Column("given_names", Text),
    Column("id_number", Text),
    Column("contact", Text),
    Column("members", ARRAY(UUID(as_uuid=True))),
    Column("commune_code", Text, nullable=False),
    Column("sex", Text),  # 'F' | 'M' | NULL (migration 0023): personal, for aggregated gender indicators only
    *_version_columns(),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
)
Index("uq_party_version_current", party_version.c.party_id, unique=True,
      postgresql_where=party_version.c.valid_to.is_(None))
Index("ix_party_version_commune_code", party_version.c.commune_code)
Index("ix_party_version_id_number", party_version.c.id_number,
      postgresql_where=party_version.c.id_number.isnot(None))

source_document = Table(
    "source_document",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("reference", Text),
    Column("document_date", Date, nullable=False),
    Column("authority", Text),
    Column("council_session", Text),
    Column("commune_code", Text, nullable=False),
    Column("description", Text),
    Column("synthetic", Boolean, nullable=False, server_default="false"),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
)
Index("ix_source_document_commune_code", source_document.c.commune_code)

source_file = Table(
    "source_file",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("source_id", UUID(as_uuid=True), nullable=False),
    Column("file_name", Text, nullable=False),
    Column("media_type", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("commune_code", Text, nullable=False),  # the document's, filled by a trigger (migration 0016)
    ForeignKeyConstraint(["source_id"], ["source_document.id"]),
)
Index("ix_source_file_source_id", source_file.c.source_id)

tenure_procedure = Table(
    "tenure_procedure",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("kind", Text, nullable=False, server_default="affectation"),
    Column("reference", Text),
    Column("parcel_id", UUID(as_uuid=True), nullable=False),
    Column("commune_code", Text, nullable=False),
    Column("applicants", JSONB, nullable=False),  # [{party_id, share_numerator, share_denominator}]
    Column("purpose", Text),
    Column("follows_rrr_id", UUID(as_uuid=True)),
    Column("synthetic", Boolean, nullable=False, server_default="false"),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
)
Index("ix_tenure_procedure_parcel_id", tenure_procedure.c.parcel_id)
Index("ix_tenure_procedure_reference", tenure_procedure.c.reference)  # the file number tracked (0026)

procedure_step = Table(
    "procedure_step",
    metadata,
    Column("procedure_id", UUID(as_uuid=True), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("step", Text, nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("details", JSONB, nullable=False, server_default="{}"),
    Column("source_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default="{}"),
    Column("reason", Text),
    Column("author", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("commune_code", Text, nullable=False),  # the procedure's, filled by a trigger (migration 0016)
    ForeignKeyConstraint(["procedure_id"], ["tenure_procedure.id"]),
)
# Each step once per procedure, except a deferral (ajournement), which may recur (migration 0019).
Index("uq_procedure_step_once", procedure_step.c.procedure_id, procedure_step.c.step, unique=True,
      postgresql_where=procedure_step.c.step != "deferred")

# Council sessions (migration 0020, ADR 0005 §4): an agenda of procedures deliberated in one transaction,
# citing one délibération; attendees make the quorum.
SESSION_KINDS = ("commission_domaniale", "conseil_municipal")
SESSION_STATES = ("planned", "agenda_closed", "deliberated")
SESSION_DECISIONS = ("granted", "refused", "deferred")
ATTENDEE_CAPACITIES = ("president", "membre", "secretaire", "invite")

council_session = Table(
    "council_session",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("held_on", Date, nullable=False),
    Column("reference", Text),  # public: « session ordinaire du 2e trimestre »
    Column("members_in_office", Integer),
    Column("state", Text, nullable=False, server_default="planned"),
    Column("revision", Integer, nullable=False, server_default="1"),  # its If-Match version
    Column("deliberation_number", Text),
    Column("deliberated_on", Date),
    Column("deliberation_source_id", UUID(as_uuid=True)),
    Column("minutes_source_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default="{}"),
    Column("members_present", Integer),
    Column("quorum_met", Boolean),
    Column("synthetic", Boolean, nullable=False, server_default="false"),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    ForeignKeyConstraint(["deliberation_source_id"], ["source_document.id"]),
)
Index("ix_council_session_commune_code", council_session.c.commune_code, council_session.c.held_on)

session_item = Table(
    "session_item",
    metadata,
    Column("session_id", UUID(as_uuid=True), primary_key=True),
    Column("procedure_id", UUID(as_uuid=True), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("decision", Text),
    Column("reason", Text),  # personal: an officer's motive
    Column("votes_for", Integer),
    Column("votes_against", Integer),
    Column("abstentions", Integer),
    Column("step_seq", Integer),  # the procedure_step the decision recorded
    Column("added_by", Text, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["session_id"], ["council_session.id"]),
    ForeignKeyConstraint(["procedure_id"], ["tenure_procedure.id"]),
)
Index("ix_session_item_procedure_id", session_item.c.procedure_id)

session_attendee = Table(
    "session_attendee",
    metadata,
    Column("session_id", UUID(as_uuid=True), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("party_id", UUID(as_uuid=True)),
    Column("name", Text),  # personal
    Column("capacity", Text, nullable=False),
    Column("present", Boolean, nullable=False, server_default="true"),
    Column("added_by", Text, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["session_id"], ["council_session.id"]),
)

rrr_version = Table(
    "rrr_version",
    metadata,
    Column("rrr_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("parcel_id", UUID(as_uuid=True), nullable=False),
    Column("commune_code", Text, nullable=False),
    Column("class", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("tf_number", Text),
    Column("description", Text),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("end_cause", Text),
    Column("notice_date", Date),
    Column("source_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("procedure_id", UUID(as_uuid=True)),
    Column("predecessor_id", UUID(as_uuid=True)),
    *_version_columns(),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    ForeignKeyConstraint(["procedure_id"], ["tenure_procedure.id"]),
)
Index("uq_rrr_version_current", rrr_version.c.rrr_id, unique=True, postgresql_where=rrr_version.c.valid_to.is_(None))
Index("uq_rrr_version_one_affectation", rrr_version.c.parcel_id, unique=True,
      postgresql_where=rrr_version.c.valid_to.is_(None) & (rrr_version.c.type == "affectation")
      & rrr_version.c.end_date.is_(None))
Index("ix_rrr_version_parcel_id", rrr_version.c.parcel_id)

rrr_holder = Table(
    "rrr_holder",
    metadata,
    Column("rrr_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("party_id", UUID(as_uuid=True), primary_key=True),
    Column("share_numerator", Integer, nullable=False),
    Column("share_denominator", Integer, nullable=False),
    Column("commune_code", Text, nullable=False),  # the right's, filled by a trigger (migration 0016)
    ForeignKeyConstraint(["rrr_id", "version"], ["rrr_version.rrr_id", "rrr_version.version"]),
)
Index("ix_rrr_holder_party_id", rrr_holder.c.party_id)

# Append-only for everyone, as access_audit: every write, who, when, what, before and after.
write_audit = Table(
    "write_audit",
    metadata,
    *_actor_columns(),
    Column("operation", Text, nullable=False),
    Column("object_kind", Text, nullable=False),
    Column("object_id", Text, nullable=False),
    Column("parcel_id", UUID(as_uuid=True)),
    Column("commune_code", Text),
    Column("before", JSONB),
    Column("after", JSONB),
)
Index("ix_write_audit_object_kind_object_id", write_audit.c.object_kind, write_audit.c.object_id)
Index("ix_write_audit_parcel_id", write_audit.c.parcel_id)
Index("ix_write_audit_occurred_at", write_audit.c.occurred_at)


# --- parcel mutations and lineage (migration 0008) -------------------------------------------

MUTATIONS = ("split", "merge", "lotissement", "boundary_correction")

parcel_mutation = Table(
    "parcel_mutation",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("operation", Text, nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("commune_code", Text, nullable=False),
    Column("source_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("reason", Text, nullable=False),
    Column("details", JSONB, nullable=False, server_default="{}"),
    Column("author", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
)
Index("ix_parcel_mutation_recorded_at", parcel_mutation.c.recorded_at)

parcel_lineage = Table(
    "parcel_lineage",
    metadata,
    Column("mutation_id", UUID(as_uuid=True), primary_key=True),
    Column("parent_id", UUID(as_uuid=True), primary_key=True),
    Column("parent_version", Integer, nullable=False),
    Column("child_id", UUID(as_uuid=True), primary_key=True),
    Column("child_version", Integer, nullable=False),
    Column("commune_code", Text, nullable=False),  # the mutation's, filled by a trigger (migration 0016)
    ForeignKeyConstraint(["mutation_id"], ["parcel_mutation.id"]),
    ForeignKeyConstraint(["parent_id", "parent_version"], ["parcel_version.parcel_id", "parcel_version.version"]),
    ForeignKeyConstraint(["child_id", "child_version"], ["parcel_version.parcel_id", "parcel_version.version"]),
)
Index("ix_parcel_lineage_parent_id", parcel_lineage.c.parent_id)
Index("ix_parcel_lineage_child_id", parcel_lineage.c.child_id)


# --- issued documents and their verification codes (migration 0009) ---------------------------

DOCUMENT_KINDS = ("fiche_parcellaire", "extrait_deliberation", "certificat_affectation", "registre_foncier",
                  # widened once for ADR 0005 (migration 0021)
                  "registre_session", "affichage_public", "recu", "bordereau_versement", "recepisse")

issued_document = Table(
    "issued_document",
    metadata,
    Column("code", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("subject_kind", Text, nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("commune_code", Text, nullable=False),
    Column("summary", JSONB, nullable=False),
    Column("personal", Boolean, nullable=False, server_default="false"),
    Column("content_sha256", Text, nullable=False),
    Column("pdf_sha256", Text),
    Column("issued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("issued_by", Text, nullable=False),
    Column("key_id", Text, nullable=False),  # the seal key that sealed it (sifc.keyring; migration 0011)
    CheckConstraint(f"kind IN {DOCUMENT_KINDS}", name="kind"),
    CheckConstraint("key_id ~ '^[a-z0-9][a-z0-9-]{0,63}$'", name="key_id"),
)
Index("ix_issued_document_subject", issued_document.c.subject_kind, issued_document.c.subject_id)
Index("ix_issued_document_pdf_sha256", issued_document.c.pdf_sha256)

# Tracking codes printed on the récépissé (migration 0026, ADR 0005 §8): the code's SHA-256 only, one live
# code per procedure; a reprint revokes the previous one (the service may set revoked_at, nothing else).
tracking_code = Table(
    "tracking_code",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("procedure_id", UUID(as_uuid=True), nullable=False),
    Column("commune_code", Text, nullable=False),
    Column("code_sha256", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    ForeignKeyConstraint(["procedure_id"], ["tenure_procedure.id"]),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    CheckConstraint("code_sha256 ~ '^[0-9a-f]{64}$'", name="sha256"),
    CheckConstraint("revoked_at IS NULL OR revoked_at >= issued_at", name="revoked"),
)
Index("ix_tracking_code_procedure_id", tracking_code.c.procedure_id)
Index("uq_tracking_code_active", tracking_code.c.procedure_id, unique=True,
      postgresql_where=tracking_code.c.revoked_at.is_(None))


# --- bornes: boundary markers as versioned points (migration 0013) -------------------------------

SURVEY_METHODS = ("gnss_rtk", "gnss", "station_totale", "ruban", "numerisation", "inconnu")

borne_version = Table(
    "borne_version",
    metadata,
    Column("borne_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("code", Text),
    Column("commune_code", Text, nullable=False),
    Column("label", Text),
    Column("source_id", Text),
    Column("geom", Geometry("POINT", srid=STORAGE_SRID, spatial_index=False), nullable=False),
    Column("precision_m", Float(precision=53)),
    Column("survey_method", Text, nullable=False, server_default="inconnu"),
    Column("surveyed_on", Date),
    Column("source", Text),
    Column("source_document_id", UUID(as_uuid=True)),
    Column("batch_id", UUID(as_uuid=True)),
    *_version_columns(synthetic=False),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    ForeignKeyConstraint(["source_document_id"], ["source_document.id"]),
    ForeignKeyConstraint(["batch_id"], ["import_batch.id"]),
)
Index("uq_borne_version_current", borne_version.c.borne_id, unique=True,
      postgresql_where=borne_version.c.valid_to.is_(None))
Index("uq_borne_version_current_code", borne_version.c.code, unique=True,
      postgresql_where=borne_version.c.valid_to.is_(None) & borne_version.c.code.isnot(None))
Index("ix_borne_version_current_geom", borne_version.c.geom, postgresql_using="gist",
      postgresql_where=borne_version.c.valid_to.is_(None))
Index("ix_borne_version_commune_current", borne_version.c.commune_code, borne_version.c.borne_id,
      postgresql_where=borne_version.c.valid_to.is_(None))
Index("ix_borne_version_batch_id", borne_version.c.batch_id)


# --- localités and tenure indicators (migration 0023, ADR 0005 §3) --------------------------------

LOCALITE_KINDS = ("ville", "village", "hameau", "quartier", "lieu_dit", "habitation_isolee")
LOCALITE_ORIGINS = ("osm", "agent")
SEXES = ("F", "M")
INDICATORS = ("holders_by_sex",)

localite_version = Table(
    "localite_version",
    metadata,
    Column("localite_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("name_search", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("geom", Geometry("POINT", srid=STORAGE_SRID, spatial_index=False), nullable=False),
    Column("osm_node_id", BigInteger),
    Column("origin", Text, nullable=False),
    *_version_columns(),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
)
Index("uq_localite_version_current", localite_version.c.localite_id, unique=True,
      postgresql_where=localite_version.c.valid_to.is_(None))
Index("uq_localite_version_current_osm", localite_version.c.osm_node_id, unique=True,
      postgresql_where=localite_version.c.valid_to.is_(None) & localite_version.c.osm_node_id.isnot(None))
Index("ix_localite_version_commune_current", localite_version.c.commune_code, localite_version.c.name_search,
      postgresql_where=localite_version.c.valid_to.is_(None))
Index("ix_localite_version_current_geom", localite_version.c.geom, postgresql_using="gist",
      postgresql_where=localite_version.c.valid_to.is_(None))

# Non-personal aggregates a pole computes from its registry, replicated to the national node.
tenure_indicator = Table(
    "tenure_indicator",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("commune_code", Text, nullable=False),
    Column("indicator", Text, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("min_count", Integer),
    Column("holders", Integer, nullable=False),
    Column("women", Integer),
    Column("men", Integer),
    Column("unrecorded", Integer),
    Column("entities", Integer),
    Column("withheld", Text),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    UniqueConstraint("commune_code", "indicator"),
)


# --- field packages and their returns (migration 0014) -------------------------------------------

FIELD_PACKAGE_STATUSES = ("open", "returned", "expired", "lost")

field_package = Table(
    "field_package",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("area", Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=False), nullable=False),
    Column("selection", JSONB, nullable=False),
    Column("issued_to", Text, nullable=False),
    Column("issued_by", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("purpose", Text),
    Column("includes_holders", Boolean, nullable=False, server_default="false"),
    Column("status", Text, nullable=False, server_default="open"),
    Column("format", Integer, nullable=False),
    Column("hmac_kid", Text, nullable=False),
    Column("mac", Text, nullable=False),
    Column("item_count", Integer, nullable=False, server_default="0"),
    Column("zip_bytes", BigInteger),
    Column("zip_sha256", Text),
    Column("returned_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("closed_by", Text),
    Column("close_reason", Text),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
)
Index("ix_field_package_issued_to_status", field_package.c.issued_to, field_package.c.status)
Index("ix_field_package_commune_code", field_package.c.commune_code)
Index("ix_field_package_area", field_package.c.area, postgresql_using="gist")

field_package_item = Table(
    "field_package_item",
    metadata,
    Column("package_id", UUID(as_uuid=True), primary_key=True),
    Column("fid", BigInteger, primary_key=True),
    Column("parcel_id", UUID(as_uuid=True), nullable=False),
    Column("issued_version", Integer, nullable=False),
    Column("base_version", Integer, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("commune_code", Text, nullable=False),  # the package's, filled by a trigger (migration 0016)
    ForeignKeyConstraint(["package_id"], ["field_package.id"]),
    ForeignKeyConstraint(["parcel_id", "issued_version"], ["parcel_version.parcel_id", "parcel_version.version"],
                         name="fk_field_package_item_issued"),
    ForeignKeyConstraint(["parcel_id", "base_version"], ["parcel_version.parcel_id", "parcel_version.version"],
                         name="fk_field_package_item_base"),
    UniqueConstraint("package_id", "parcel_id"),
)
Index("ix_field_package_item_parcel_id", field_package_item.c.parcel_id)

field_return = Table(
    "field_return",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("package_id", UUID(as_uuid=True), nullable=False),
    Column("job_id", UUID(as_uuid=True), nullable=False),
    Column("file_sha256", Text, nullable=False),
    Column("returned_by", Text, nullable=False),
    Column("returned_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("applied", Boolean, nullable=False),
    Column("counts", JSONB, nullable=False),
    Column("commune_code", Text, nullable=False),  # the package's, filled by a trigger (migration 0016)
    ForeignKeyConstraint(["package_id"], ["field_package.id"]),
    ForeignKeyConstraint(["job_id"], ["import_job.id"]),
)
Index("uq_field_return_applied", field_return.c.package_id, field_return.c.file_sha256, unique=True,
      postgresql_where=field_return.c.applied)
Index("ix_field_return_package_id", field_return.c.package_id)

parcel_source = Table(
    "parcel_source",
    metadata,
    Column("parcel_id", UUID(as_uuid=True), primary_key=True),
    Column("source_id", UUID(as_uuid=True), primary_key=True),
    Column("field_return_id", UUID(as_uuid=True)),
    Column("attached_by", Text, nullable=False),
    Column("attached_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("commune_code", Text, nullable=False),  # the parcel's, filled by a trigger (migration 0016)
    ForeignKeyConstraint(["source_id"], ["source_document.id"]),
    ForeignKeyConstraint(["field_return_id"], ["field_return.id"]),
)
Index("ix_parcel_source_source_id", parcel_source.c.source_id)


# --- commission: systematic campaigns, public display, claims (migration 0024, ADR 0005 §5) ------------

CAMPAIGN_STATES = ("open", "display", "closed")
CAMPAIGN_AREA_KINDS = ("localite", "section", "bbox")
CAMPAIGN_PARCEL_ORIGINS = ("import_batch", "field_package", "manual")
CLAIM_KINDS = ("reclamation", "opposition")
CLAIM_STATES = ("received", "accepted", "rejected", "disputed")

campaign = Table(
    "campaign",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("area", Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=False), nullable=False),
    Column("area_kind", Text, nullable=False),
    Column("localite_id", UUID(as_uuid=True)),
    Column("section", Text),
    Column("state", Text, nullable=False, server_default="open"),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    CheckConstraint(f"state IN {CAMPAIGN_STATES}", name="state"),
    CheckConstraint(f"area_kind IN {CAMPAIGN_AREA_KINDS}", name="area_kind"),
    CheckConstraint("ST_IsValid(area) AND NOT ST_IsEmpty(area)", name="area_valid"),
)
Index("ix_campaign_commune_code", campaign.c.commune_code)
Index("ix_campaign_area", campaign.c.area, postgresql_using="gist")

# A parcel of a campaign: presumed_holders is personal ([{party_id, share}], like a request's applicants).
campaign_parcel = Table(
    "campaign_parcel",
    metadata,
    Column("campaign_id", UUID(as_uuid=True), primary_key=True),
    Column("parcel_id", UUID(as_uuid=True), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("presumed_holders", JSONB, nullable=False, server_default=text("'[]'")),
    Column("origin", Text, nullable=False),
    Column("batch_id", UUID(as_uuid=True)),
    Column("procedure_id", UUID(as_uuid=True)),
    Column("added_by", Text, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
    ForeignKeyConstraint(["batch_id"], ["import_batch.id"]),
    ForeignKeyConstraint(["procedure_id"], ["tenure_procedure.id"]),
    CheckConstraint(f"origin IN {CAMPAIGN_PARCEL_ORIGINS}", name="origin"),
    CheckConstraint("jsonb_typeof(presumed_holders) = 'array'", name="presumed_holders"),
)
Index("ix_campaign_parcel_parcel_id", campaign_parcel.c.parcel_id)

display_period = Table(
    "display_period",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("campaign_id", UUID(as_uuid=True), nullable=False),
    Column("commune_code", Text, nullable=False),
    Column("localite_id", UUID(as_uuid=True)),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
    Column("display_days", Integer, nullable=False),
    Column("opened_by", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("closed_at", DateTime(timezone=True)),
    Column("closed_by", Text),
    ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
    CheckConstraint("ends_on >= starts_on", name="dates"),
    CheckConstraint("display_days > 0", name="days"),
)
Index("ix_display_period_campaign_id", display_period.c.campaign_id)

# A réclamation or opposition: the claimant's name, the grounds and the resolution's reason are personal.
claim = Table(
    "claim",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("parcel_id", UUID(as_uuid=True), nullable=False),
    Column("campaign_id", UUID(as_uuid=True)),
    Column("display_period_id", UUID(as_uuid=True)),
    Column("kind", Text, nullable=False, server_default="reclamation"),
    Column("claimant_party_id", UUID(as_uuid=True)),
    Column("claimant_name", Text),
    Column("grounds", Text, nullable=False),
    Column("source_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default="{}"),
    Column("received_on", Date, nullable=False),
    Column("state", Text, nullable=False, server_default="received"),
    Column("resolved_on", Date),
    Column("resolution_reason", Text),
    Column("resolved_by", Text),
    Column("dispute_id", UUID(as_uuid=True)),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
    ForeignKeyConstraint(["display_period_id"], ["display_period.id"]),
    ForeignKeyConstraint(["dispute_id"], ["dispute.id"]),
    CheckConstraint(f"kind IN {CLAIM_KINDS}", name="kind"),
    CheckConstraint(f"state IN {CLAIM_STATES}", name="state"),
    CheckConstraint("claimant_party_id IS NOT NULL OR btrim(coalesce(claimant_name, '')) <> ''", name="claimant"),
    CheckConstraint("(state = 'received') = (resolved_on IS NULL)", name="resolved"),
    CheckConstraint("state <> 'rejected' OR btrim(coalesce(resolution_reason, '')) <> ''", name="rejection_reason"),
    CheckConstraint("(state = 'disputed') = (dispute_id IS NOT NULL)", name="dispute"),
)
Index("ix_claim_parcel_id", claim.c.parcel_id)
Index("ix_claim_campaign_id", claim.c.campaign_id)


# --- commission: disputes register (litiges) (migration 0022, ADR 0005 §6) --------------------------
# Append-only, like the procedures: a dispute's state is its last step, its version its number of steps.

DISPUTE_KINDS = ("limites", "succession", "double_affectation", "occupation", "autre")
DISPUTE_ROLES = ("demandeur", "defendeur", "temoin", "autre")
DISPUTE_STEPS = ("declared", "mediation", "resolved", "sent_to_court", "closed")

dispute = Table(
    "dispute",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("description", Text),  # the grounds as the officer wrote them: personal
    Column("source_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default="{}"),
    Column("origin", JSONB, nullable=False, server_default=text("'{}'::jsonb")),  # ids only (overlap, claim)
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    CheckConstraint(f"kind IN {DISPUTE_KINDS}", name="kind"),
    CheckConstraint("jsonb_typeof(origin) = 'object'", name="origin"),
)
Index("ix_dispute_commune_code", dispute.c.commune_code)

dispute_parcel = Table(
    "dispute_parcel",
    metadata,
    Column("dispute_id", UUID(as_uuid=True), primary_key=True),
    Column("parcel_id", UUID(as_uuid=True), primary_key=True),
    Column("rrr_id", UUID(as_uuid=True), nullable=False),  # the litige restriction opening created
    Column("commune_code", Text, nullable=False),
    ForeignKeyConstraint(["dispute_id"], ["dispute.id"]),
)
Index("ix_dispute_parcel_parcel_id", dispute_parcel.c.parcel_id)

dispute_party = Table(
    "dispute_party",
    metadata,
    Column("dispute_id", UUID(as_uuid=True), primary_key=True),
    Column("party_id", UUID(as_uuid=True), primary_key=True),
    Column("role", Text, nullable=False),
    Column("commune_code", Text, nullable=False),
    ForeignKeyConstraint(["dispute_id"], ["dispute.id"]),
    CheckConstraint(f"role IN {DISPUTE_ROLES}", name="role"),
)

dispute_step = Table(
    "dispute_step",
    metadata,
    Column("dispute_id", UUID(as_uuid=True), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("step", Text, nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("source_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default="{}"),
    Column("note", Text),  # personal
    Column("outcome", Text),  # the closing step's: personal
    Column("court_reference", Text),  # sending to court: the court's case number
    Column("author", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("commune_code", Text, nullable=False),
    ForeignKeyConstraint(["dispute_id"], ["dispute.id"]),
    UniqueConstraint("dispute_id", "step"),
    CheckConstraint(f"step IN {DISPUTE_STEPS}", name="step"),
    CheckConstraint("(step = 'declared') = (seq = 1)", name="declared_first"),
    CheckConstraint("step <> 'closed' OR btrim(coalesce(outcome, '')) <> ''", name="outcome"),
)


# --- federation: this node, the directory of nodes, replica identities (migration 0016, ADR 0004) ------

NODE_ROLES = ("single", "pole", "national")

# This node (one row, never replicated); written by `sifc node init`, read by the service.
sifc_node = Table(
    "sifc_node",
    metadata,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("node_id", Text, nullable=False),
    Column("role", Text, nullable=False, server_default="single"),
    Column("pole_code", Text),
    Column("url", Text),
    Column("personal", Text, nullable=False, server_default="pole"),
    # Under personal = 'national': the reference of the CDP formality (loi 2008-12) that allows the transfer.
    Column("legal_basis", Text),
    Column("seal_keys", JSONB, nullable=False, server_default=text("'[]'")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["pole_code"], ["pole.code"]),
    CheckConstraint("singleton", "singleton"),
    CheckConstraint("node_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'", "node_id"),
    CheckConstraint(f"role IN {NODE_ROLES}", "role"),
    CheckConstraint("(role = 'pole') = (pole_code IS NOT NULL)", "pole"),
    CheckConstraint("personal IN ('pole', 'national')", "personal"),
    CheckConstraint("personal = 'pole' OR (legal_basis IS NOT NULL AND btrim(legal_basis) <> '')", "legal_basis"),
    CheckConstraint("jsonb_typeof(seal_keys) = 'array'", "seal_keys"),
)

# The directory of nodes: written at the national node, replicated to every pole.
federation_node = Table(
    "federation_node",
    metadata,
    Column("node_id", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("pole_code", Text),
    Column("url", Text, nullable=False),
    Column("seal_keys", JSONB, nullable=False, server_default=text("'[]'")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("role IN ('pole', 'national')", "role"),
    CheckConstraint("(role = 'pole') = (pole_code IS NOT NULL)", "pole"),
    CheckConstraint("jsonb_typeof(seal_keys) = 'array'", "seal_keys"),
)

# Each pole's last sign of life (migration 0017): written by the pole itself, replicated to the national node,
# where now() - beat_at is the age of that pole's data.
federation_heartbeat = Table(
    "federation_heartbeat",
    metadata,
    Column("node_id", Text, primary_key=True),
    Column("beat_at", DateTime(timezone=True), nullable=False),
)

# Dated, sourced settings (migration 0018, ADR 0005 §1): the national defaults, each citing its text, and
# each commune's own values (append-only; the latest valid_from not after a date is in force).
setting_default = Table(
    "setting_default",
    metadata,
    Column("key", Text, primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("valid_to", Date),
    Column("value", JSONB, nullable=False),
    Column("source", Text, nullable=False),
    Column("docs_anchor", Text, nullable=False),
    CheckConstraint("btrim(source) <> ''", "source"),
    CheckConstraint("btrim(docs_anchor) <> ''", "docs_anchor"),
    CheckConstraint("valid_to IS NULL OR valid_to > valid_from", "dates"),
)

commune_setting = Table(
    "commune_setting",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("value", JSONB, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_document_id", UUID(as_uuid=True)),
    Column("set_by", Text, nullable=False),  # personal: who recorded it
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    ForeignKeyConstraint(["source_document_id"], ["source_document.id"]),
    CheckConstraint("btrim(source) <> ''", "source"),
)
Index("ix_commune_setting_commune_code_key_valid_from", commune_setting.c.commune_code, commune_setting.c.key,
      commune_setting.c.valid_from)

# Fees and receipts (migration 0025, ADR 0005 §7): each commune's fee schedules, citing the délibération that
# set them; the amount due per procedure, computed at registration; payments and their cancellations
# (append-only); the receipt numbers per commune and year, taken without gaps.
FEE_RULE_KINDS = ("fixed", "per_m2", "per_ha_bands")
PAYMENT_METHODS = ("cash", "mobile_money")
FEE_PROCEDURE_KINDS = ("affectation", "desaffectation", "reaffectation_heritiers", "regularisation")

fee_schedule = Table(
    "fee_schedule",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("procedure_kind", Text, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("rule", JSONB, nullable=False),  # {"kind": fixed | per_m2 | per_ha_bands, ...}: whole XOF
    Column("deliberation_source_id", UUID(as_uuid=True), nullable=False),
    Column("recorded_by", Text, nullable=False),  # personal
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    ForeignKeyConstraint(["deliberation_source_id"], ["source_document.id"]),
    CheckConstraint(f"procedure_kind IN {FEE_PROCEDURE_KINDS}", "procedure_kind"),
    CheckConstraint("valid_to IS NULL OR valid_to > valid_from", "dates"),
    CheckConstraint(f"jsonb_typeof(rule) = 'object' AND rule ->> 'kind' IN {FEE_RULE_KINDS}", "rule"),
)
Index("ix_fee_schedule_commune_code_procedure_kind_valid_from", fee_schedule.c.commune_code,
      fee_schedule.c.procedure_kind, fee_schedule.c.valid_from)

procedure_fee = Table(
    "procedure_fee",
    metadata,
    Column("procedure_id", UUID(as_uuid=True), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("schedule_id", UUID(as_uuid=True), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("area_m2", Float, nullable=False),  # the parcel's area the amount was computed on
    Column("assessed_on", Date, nullable=False),  # the registration date: the schedule in force then
    Column("assessed_by", Text, nullable=False),  # personal
    Column("assessed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["procedure_id"], ["tenure_procedure.id"]),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    ForeignKeyConstraint(["schedule_id"], ["fee_schedule.id"]),
    CheckConstraint("amount >= 0", "amount"),
)

payment = Table(
    "payment",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("procedure_id", UUID(as_uuid=True), nullable=False),
    Column("amount", BigInteger, nullable=False),  # negative for a cancellation
    Column("method", Text, nullable=False),
    Column("mobile_reference", Text),  # the operator's transaction reference, never a phone number
    Column("paid_on", Date, nullable=False),
    Column("quittance_number", Text),  # the Treasury's paper quittance (quittance_papier)
    Column("receipt_year", Integer),  # SIFC's receipt (recu_pdf): numbered per commune and year
    Column("receipt_number", Integer),
    Column("cancels_payment_id", UUID(as_uuid=True)),
    Column("reason", Text),  # personal: why a payment was cancelled
    Column("recorded_by", Text, nullable=False),  # personal
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    ForeignKeyConstraint(["procedure_id"], ["tenure_procedure.id"]),
    ForeignKeyConstraint(["cancels_payment_id"], ["payment.id"]),
    UniqueConstraint("commune_code", "receipt_year", "receipt_number"),
    UniqueConstraint("commune_code", "quittance_number"),
    UniqueConstraint("cancels_payment_id"),
    CheckConstraint(f"method IN {PAYMENT_METHODS}", "method"),
    CheckConstraint("(cancels_payment_id IS NULL AND amount > 0) OR (cancels_payment_id IS NOT NULL AND amount < 0)",
                    "amount"),
    CheckConstraint("(method = 'mobile_money') = (mobile_reference IS NOT NULL) "
                    "AND (mobile_reference IS NULL OR btrim(mobile_reference) <> '')", "mobile_reference"),
    CheckConstraint("(receipt_year IS NULL) = (receipt_number IS NULL) "
                    "AND (receipt_number IS NULL OR receipt_number > 0)", "receipt"),
    CheckConstraint("(cancels_payment_id IS NULL AND num_nonnulls(quittance_number, receipt_number) = 1) "
                    "OR (cancels_payment_id IS NOT NULL AND quittance_number IS NULL AND receipt_number IS NULL)",
                    "voucher"),
    CheckConstraint("quittance_number IS NULL OR btrim(quittance_number) <> ''", "quittance_number"),
    CheckConstraint("cancels_payment_id IS NULL OR btrim(coalesce(reason, '')) <> ''", "reason"),
)
Index("ix_payment_procedure_id", payment.c.procedure_id)
Index("ix_payment_commune_code_paid_on", payment.c.commune_code, payment.c.paid_on)

receipt_counter = Table(
    "receipt_counter",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("commune_code", Text, nullable=False),
    Column("year", Integer, nullable=False),
    Column("last_number", Integer, nullable=False, server_default="0"),
    ForeignKeyConstraint(["commune_code"], ["commune.code"]),
    UniqueConstraint("commune_code", "year"),
    CheckConstraint("last_number >= 0", "last_number"),
)

# Each pole-owned table's replica identity: its key and its commune, which the publications' row filters use.
for _entry in registry.owned_by("pole"):
    if _entry.guarded and _entry.table in metadata.tables:
        _replicated = metadata.tables[_entry.table]
        Index(_entry.replica_index, *(_replicated.c[name] for name in _entry.key), _replicated.c.commune_code,
              unique=True)
