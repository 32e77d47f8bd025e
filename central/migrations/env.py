"""Alembic environment of the central server: migrates the database named in the config's URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from central.models import Base

config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK_KEY = 0x70637331  # PostgreSQL advisory lock key held while migrating ("pcs1")


def run_migrations_offline() -> None:
    """Emit SQL for ``alembic upgrade --sql`` without a database connection."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate over a live connection (SQLite uses batch mode for ALTER TABLE)."""
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # server processes starting together migrate one after the other (the later ones find
                # the schema current); the lock ends with the migration's transaction
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
