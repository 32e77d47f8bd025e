"""Throw-away PostgreSQL databases next to ``PCS_TEST_POSTGRES_URL``'s (test.sh starts the server)."""

from __future__ import annotations

import os

POSTGRES_URL = os.environ.get("PCS_TEST_POSTGRES_URL")


def create_postgres_database(name: str) -> str:
    """Create the empty PostgreSQL database ``name`` next to PCS_TEST_POSTGRES_URL's; returns its URL."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(name: str) -> None:
    """Drop the PostgreSQL database ``name`` (connections to it are closed: ``WITH (FORCE)``)."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()

