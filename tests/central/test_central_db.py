"""Central server storage: Alembic migrations up and down, the CLI commands, settings validation."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import inspect

from central import db
from central.config import ConfigError, load_settings
from central.models import Base

TABLES = {"admins", "api_tokens", "cameras", "pairing_attempts", "pairing_requests", "server_state",
          "ingested_items", "face_observations", "photos", "people", "person_encodings", "unknown_groups", "sightings",
          "revoked_sessions", "rate_limit_counters", "change_counters"}


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url):
    db.upgrade(database_url)
    assert _tables(database_url) == TABLES == set(Base.metadata.tables)
    engine = db.make_engine(database_url)
    assert db.current_revision(engine) == db.head_revision()
    db.downgrade(database_url, "base")
    assert _tables(database_url) == set()
    assert db.current_revision(engine) is None
    db.upgrade(database_url)
    assert _tables(database_url) == TABLES
    engine.dispose()


def test_migrations_match_the_models(database_url):
    """Autogenerate against the migrated database finds nothing to add, drop or alter."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def _cli(args: list[str], url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTRAL_")}
    env["DATABASE_URL"] = url
    return subprocess.run([sys.executable, "-m", "central", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_cli_migrate_revision_downgrade(database_url):
    head = db.head_revision()
    out = _cli(["revision"], database_url)
    assert out.returncode == 0 and "database revision: none" in out.stdout
    out = _cli(["migrate"], database_url)
    assert out.returncode == 0, out.stderr
    assert f"database revision: {head}" in out.stdout
    out = _cli(["downgrade", "base"], database_url)
    assert out.returncode == 0 and "database revision: none" in out.stdout
    assert _tables(database_url) == set()
    bad = _cli(["downgrade", "nonexistent"], database_url)
    assert bad.returncode != 0


def test_settings_validation():
    with pytest.raises(ConfigError, match="DATABASE_URL='mysql://x' is invalid"):
        load_settings(database_url="mysql://x")
    assert load_settings(database_url="postgres://u:p@h/d").database_url == "postgresql+psycopg://u:p@h/d"
    with pytest.raises(ConfigError, match="CENTRAL_PORT"):
        load_settings(port=0)
    assert load_settings(heartbeat_interval=10).offline_after_s() == 30
    assert load_settings(mdns_interfaces="127.0.0.1, 10.0.0.2").mdns_interface_list() == ["127.0.0.1", "10.0.0.2"]
