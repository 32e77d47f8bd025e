"""Settings of the central server (environment prefix ``CENTRAL_``; the database also from ``DATABASE_URL``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CENTRAL_"


class ConfigError(ValueError):
    """Raised by :func:`load_settings` when a setting is invalid; ``str()`` is one line."""


class CentralSettings(BaseSettings):
    """All settings of the central server. Durations are in seconds unless the name says otherwise."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        env_ignore_empty=True,
        populate_by_name=True,
    )

    host: str = Field("0.0.0.0", description="address the HTTP API and dashboard bind to")
    port: int = Field(8080, ge=1, le=65535, description="HTTP port")
    workers: int = Field(
        1, ge=1, le=64,
        description="uvicorn worker processes sharing the port (several need PostgreSQL; docs/central.md#several-processes)",
    )
    data_dir: Path = Field(Path("central-data"), description="SQLite file and generated secret key")
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "CENTRAL_DATABASE_URL", "database_url"),
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pass@host/db; default SQLite in data_dir",
    )
    migrate_on_start: bool = Field(True, description="run Alembic upgrade to head at start-up")
    secret_key: str | None = Field(
        None, min_length=32,
        description="JWT signing key (32+ random characters; weak or template values are refused); when unset "
                    "one is generated and kept in the database's server_state table (row jwt_secret_key)",
    )
    access_token_ttl: int = Field(24 * 3600, ge=60, le=30 * 24 * 3600, description="login JWT lifetime, s")
    setup_token_ttl: int = Field(15 * 60, ge=60, le=3600, description="bootstrap setup token lifetime, s")
    session_ttl: int = Field(12 * 3600, ge=60, le=7 * 24 * 3600, description="dashboard session lifetime, s")
    login_failures_per_user: int = Field(
        5, ge=1, le=1000, description="failed logins of one username from one client address per 15 min before 429"
    )
    login_failures_per_user_global: int = Field(
        30, ge=1, le=100000,
        description="failed logins of one username from all addresses together per 15 min before 429; addresses "
                    "the username logged in from in the last 30 days are exempt (docs/security.md#rate-limits)",
    )
    login_failures_per_address: int = Field(
        20, ge=1, le=10000, description="failed logins per client address per 15 min before 429"
    )
    pairing_code_ttl: int = Field(600, ge=5, le=3600, description="pairing code lifetime, s")
    pairing_failures_per_address: int = Field(
        10, ge=1, le=10000, description="wrong pairing codes per client address per 15 min before 429"
    )
    pairing_failures_global: int = Field(
        100, ge=1, le=100000, description="wrong pairing codes per hour, all clients together, before 429"
    )
    pairing_requests_per_address: int = Field(
        30, ge=1, le=100000, description="pairing code requests per client address per hour"
    )
    max_pending_pairings: int = Field(200, ge=1, le=100000, description="unexpired codes at once (503 beyond)")
    heartbeat_interval: int = Field(30, ge=2, le=3600, description="how often cameras report in, s")
    offline_after: int = Field(
        0, ge=0, le=86400, description="a camera is offline when silent this long, s (0 = 3 × heartbeat)"
    )
    mdns_enabled: bool = Field(True, description="browse for _pi-camera._tcp cameras over mDNS")
    mdns_interfaces: str | None = Field(None, description="comma-separated IPv4 addresses to browse on")
    camera_port: int = Field(8000, ge=1, le=65535, description="port the CIDR scan probes")
    trust_proxy_headers: bool = Field(
        False, description="take the client address from X-Forwarded-For / X-Forwarded-Proto, only when the "
                           "connection comes from CENTRAL_FORWARDED_ALLOW_IPS (uvicorn's proxy_headers)"
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1", min_length=1, max_length=1000,
        description="comma-separated addresses/networks of the reverse proxies trusted with "
                    "CENTRAL_TRUST_PROXY_HEADERS (uvicorn's forwarded_allow_ips; '*' trusts every peer)",
    )
    match_tolerance: float = Field(
        0.6, gt=0.0, le=2.0,
        description="largest Euclidean distance between two 128-d face encodings of the same person "
                    "(0.6 is dlib's / face_recognition's default; lower is stricter)",
    )
    sighting_gap_s: float = Field(
        60.0, gt=0.0, le=86400.0,
        description="a detection more than this many s after a person's last one on a camera opens a new sighting",
    )
    match_ann_threshold: int = Field(
        150_000, ge=0, le=100_000_000,
        description="enrolled encodings from which face matching uses the approximate faiss IVF-Flat index "
                    "instead of exact search (0: always exact); docs/people.md",
    )
    unknown_face_retention_days: float = Field(
        30.0, ge=0.0, le=36_500.0,
        description="faces matching nobody are erased this many days after capture (0: kept forever); "
                    "enrolled people's faces are never erased by it",
    )
    unknown_group_representatives: int = Field(
        20, ge=1, le=10_000,
        description="newest faces of each unknown group that new faces are compared with",
    )
    media_dir: Path | None = Field(None, description="face crops and photos; default data_dir/media")
    ingest_max_request_mb: int = Field(
        64, ge=1, le=1024, description="largest POST /v1/ingest/events body, MB (413 beyond)"
    )
    password_checks_max: int = Field(
        2, ge=1, le=64, description="argon2 password verifications at once (19 MiB each); more wait, then 503"
    )
    password_check_wait: float = Field(
        2.0, ge=0, le=30, description="s a login waits for a free password-check slot before 503 + Retry-After"
    )
    max_body_kb: int = Field(
        64, ge=1, le=10_240, description="largest JSON/form request body of the API and dashboard, KiB (413 beyond)"
    )
    mqtt_url: str | None = Field(
        None, description="publish sightings to this MQTT broker: mqtt://[user:pass@]host[:port] or mqtts:// "
                          "(TLS, system CA); unset = off (docs/people.md#mqtt)",
    )
    mqtt_topic_prefix: str = Field("pi-camera", description="first level(s) of every MQTT topic")
    mqtt_retain_last_seen: bool = Field(True, description="publish <prefix>/people/<id>/last_seen retained")
    mqtt_update_interval_s: float = Field(
        10.0, ge=0.0, le=3600.0, description="least time between two 'updated' MQTT messages of one sighting, s",
    )
    mqtt_discovery: bool = Field(
        True, description="publish one Home Assistant presence device per person (MQTT discovery, docs/integrations.md)"
    )
    mqtt_discovery_prefix: str = Field("homeassistant", description="Home Assistant's MQTT discovery prefix")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("secret_key")
    @classmethod
    def _strong_key(cls, value: str | None) -> str | None:
        from pcs_common.jwt_secrets import GENERATE_SECRET_HINT, jwt_secret_problem

        problem = jwt_secret_problem(value) if value is not None else None
        if problem:
            raise ValueError(f"the key {problem}; generate one with `{GENERATE_SECRET_HINT}` or leave it unset")
        return value

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith("postgres://"):  # the Heroku-style spelling
            value = "postgresql://" + value[len("postgres://"):]
        if value.startswith("postgresql://"):  # SQLAlchemy's default driver is psycopg2; we ship psycopg 3
            value = "postgresql+psycopg://" + value[len("postgresql://"):]
        if not value.startswith(("sqlite", "postgresql+psycopg://")):
            raise ValueError("must be an sqlite:/// or postgresql:// URL")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str | None) -> str | None:
        if value is not None:
            from pcs_common.mqtt import parse_mqtt_url

            parse_mqtt_url(value)  # ValueError with what is allowed
        return value

    @field_validator("mqtt_topic_prefix", "mqtt_discovery_prefix")
    @classmethod
    def _mqtt_prefix(cls, value: str) -> str:
        from pcs_common.mqtt import check_topic_prefix

        return check_topic_prefix(value)

    def uvicorn_proxy_options(self) -> dict[str, object]:
        """uvicorn's ``proxy_headers`` / ``forwarded_allow_ips`` from ``trust_proxy_headers``
        (:func:`pcs_common.proxy.uvicorn_proxy_options`)."""
        from pcs_common.proxy import uvicorn_proxy_options

        return uvicorn_proxy_options(self.trust_proxy_headers, self.forwarded_allow_ips)

    def resolved_database_url(self) -> str:
        """The database URL in use: ``database_url`` or ``sqlite:///<data_dir>/central.db``."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'central.db').resolve()}"

    def resolved_media_dir(self) -> Path:
        """Where face crops, frames and photos are written: ``media_dir`` or ``data_dir/media``."""
        return (self.media_dir or self.data_dir / "media").resolve()

    def offline_after_s(self) -> int:
        """Silence (s) after which a paired camera is shown offline."""
        return self.offline_after or 3 * self.heartbeat_interval

    def mdns_interface_list(self) -> list[str] | None:
        """``mdns_interfaces`` split into addresses, or None for all interfaces."""
        if not self.mdns_interfaces:
            return None
        return [part.strip() for part in self.mdns_interfaces.split(",") if part.strip()]


def load_settings(**overrides: object) -> CentralSettings:
    """Read the settings from the environment and ``.env``; keyword ``overrides`` win (tests).

    Raises:
        ConfigError: a value is invalid; the message names the variable, its value and what is allowed.
    """
    try:
        return CentralSettings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = str(err.get("loc", ("?",))[0])
        name = "DATABASE_URL" if loc == "database_url" else ENV_PREFIX + loc.upper()
        value = err.get("input")
        if loc == "mqtt_url":
            from pcs_common.urls import redact_url

            value = redact_url(value)  # never print the broker password
        elif loc == "secret_key":
            value = "<hidden>"  # never print a key, even a weak one
        raise ConfigError(f"{name}={value!r} is invalid: {err.get('msg')}") from None


def configure_logging(level: str) -> None:
    """Root logging: timestamps from a terminal, none under journald (see :mod:`pcs_common.logs`)."""
    from pcs_common.logs import configure_logging as configure

    configure(level)
