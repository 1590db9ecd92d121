"""The migrations users run and the table definitions in sifc/models.py agree (no drift)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers

from sifc.models import metadata


def test_models_match_the_migrated_database(admin_engine):
    with admin_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "include_object": alembic_helpers.include_object})
        drift = compare_metadata(context, metadata)
    assert drift == []


def test_migrations_are_at_head(admin_engine):
    from alembic.script import ScriptDirectory

    from sifc.provision import MIGRATIONS_DIR

    with admin_engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert current == head
