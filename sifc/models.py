"""Table definitions (SQLAlchemy Core), the single metadata Alembic compares against.

Constraints that only PostgreSQL can express (validity, PCODE prefixes, append-only
history) are declared here too, so autogenerate sees no drift.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
)

STORAGE_SRID = 32628
"""WGS 84 / UTM zone 28N: the metric CRS of Senegalese survey data (see domain notes)."""

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


def _geom(nullable: bool = False) -> Column:
    return Column(
        "geom",
        Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=False),
        nullable=nullable,
    )


def _boundary_columns() -> list[Column]:
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
    *_boundary_columns(),
    *_boundary_checks(),
    CheckConstraint("code ~ '^[A-Z]{3}$'", "code_format"),
    comment="Pôles territoriaux (Sénégal 2050); polygons are the union of their regions.",
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
    *_boundary_columns(),
    *_boundary_checks(),
    ForeignKeyConstraint(["pole_code"], ["pole.code"]),
    CheckConstraint("code ~ '^SN[0-9]{2}$'", "code_format"),
    comment="Régions (State districts), OCHA PCODE SNnn.",
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
    *_boundary_columns(),
    *_boundary_checks(),
    ForeignKeyConstraint(["region_code"], ["region.code"]),
    UniqueConstraint("code", "region_code"),
    CheckConstraint("code ~ '^SN[0-9]{4}$' AND left(code, 4) = region_code", "code_format"),
    comment="Départements (collectivités territoriales), OCHA PCODE SNnnnn.",
)

arrondissement = Table(
    "arrondissement",
    metadata,
    Column("code", Text, primary_key=True),
    Column("department_code", Text, nullable=False),
    Column("region_code", Text, nullable=False),
    Column("name", Text, nullable=True, comment="NULL where the source gives none (N/A)."),
    Column("name_search", Text, nullable=False),
    Column("official_area_km2", Float),
    _geom(),
    *_boundary_columns(),
    *_boundary_checks(),
    ForeignKeyConstraint(["department_code", "region_code"], ["department.code", "department.region_code"]),
    UniqueConstraint("code", "department_code"),
    CheckConstraint("code ~ '^SN[0-9]{6}$' AND left(code, 6) = department_code", "code_format"),
    comment="Arrondissements (State districts), OCHA PCODE SNnnnnnn.",
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
    comment="Communes (collectivités territoriales); code = department PCODE + slug of the name.",
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
    comment="Known variants of commune names (Mont Roland → Mont-Rolland, Sabodala → Sabadola).",
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
    comment="Append-only history of replaced boundaries, each with its validity period.",
)

Index("ix_boundary_version_unit", boundary_version.c.level, boundary_version.c.unit_code)
for _table in (pole, region, department, arrondissement, commune):
    Index(f"ix_{_table.name}_name_search", _table.c.name_search)
    Index(f"ix_{_table.name}_geom", _table.c.geom, postgresql_using="gist")
Index("ix_boundary_version_geom", boundary_version.c.geom, postgresql_using="gist")
Index("ix_commune_alias_search", commune_alias.c.alias_search)
Index("ix_region_pole_code", region.c.pole_code)
Index("ix_department_region_code", department.c.region_code)
Index("ix_arrondissement_department_code", arrondissement.c.department_code)
Index("ix_commune_department_code", commune.c.department_code)
Index("ix_commune_arrondissement_code", commune.c.arrondissement_code)

TERRITORY_TABLES = {"pole": pole, "region": region, "department": department,
                    "arrondissement": arrondissement, "commune": commune}
