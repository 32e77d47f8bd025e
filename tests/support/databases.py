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
    """Drop the PostgreSQL database ``name`` (connections to it are closed: ``WITH (FORCE)``).

    Without ``pg_signal_backend`` (scripts/postgres-for-tests.sh grants it), PostgreSQL 15 refuses
    FORCE while an autovacuum worker is in the database ("must be a member of the role whose process
    is being terminated"); then this role's own sessions are ended and a plain ``DROP DATABASE`` is
    used, which stops the autovacuum worker itself.
    """
    import sqlalchemy
    from sqlalchemy.exc import ProgrammingError

    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        try:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except ProgrammingError:
            conn.execute(sqlalchemy.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name "
                "AND usename = current_user AND pid <> pg_backend_pid()"), {"name": name})
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()

