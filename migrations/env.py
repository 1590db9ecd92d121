"""Alembic environment: migrations run as the superuser (SIFC_ADMIN_DATABASE_URL)."""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import pool

from sifc.db import make_engine
from sifc.models import metadata
from sifc.settings import Settings

config = context.config
settings: Settings = config.attributes.get("settings") or Settings()
# Migrations create and grant the service's own role; they need its name and password.
config.attributes.setdefault("service_url", settings.db_url)


def run_migrations_offline() -> None:
    context.configure(
        url=settings.admin_url.render_as_string(hide_password=False),
        target_metadata=metadata,
        literal_binds=True,
        include_object=alembic_helpers.include_object,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(settings.admin_url, application_name="sifc-migrate")
    engine.pool = pool.NullPool(engine.pool._creator)  # one short-lived connection
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=alembic_helpers.include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
