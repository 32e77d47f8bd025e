"""The camera's resolved authentication settings and the bootstrap of its secrets (API key, JWT secret).

:func:`load_auth_config` runs once at start-up; :func:`get_auth_config` hands the result to requests.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from pcs_common.auth import is_argon2_hash
from pcs_common.fileio import fsync_dir, make_private_dir, read_or_create_secret, write_atomic
from pi_camera_service.auth.secret_check import GENERATE_SECRET_HINT, jwt_secret_problem
from pi_camera_service.config import ConfigError, Settings

logger = logging.getLogger("pi_camera_service.auth")

API_KEY_HEADER = "X-API-Key"
TOKEN_URL = "/v1/auth/token"
LOGIN_URL = "/v1/auth/login"
API_KEY_FILE = "api_key"
JWT_SECRET_FILE = "jwt_secret"
HASH_PASSWORD_HINT = "pi-camera-service hash-password"


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Resolved authentication settings, built once at start-up by :func:`load_auth_config`.

    Attributes:
        api_key: value accepted in ``X-API-Key``; ``None`` disables API-key authentication (only
            when a password is configured, so ``/v1`` always has a way in).
        username: the only user that can log in (``CAMERA_USERNAME``).
        password_hash: argon2 hash of that user's password; ``None`` disables password login
            (the token endpoints then answer 401 explaining how to configure it).
        jwt_secret: HS256 signing secret, at least 32 characters.
        token_ttl: lifetime of issued tokens, in seconds.
        state_dir: ``CAMERA_STATE_DIR``, where logged-out sessions are remembered (None: in memory).
        upgraded_hash: ``{configured hash: re-hash with ARGON2_PARAMETERS}``, filled at the first
            successful login with a hash of older parameters (see :func:`authenticate`).

    Secrets are left out of ``repr()`` so the object can be logged.
    """

    api_key: str | None = field(repr=False)
    username: str
    password_hash: str | None = field(repr=False)
    jwt_secret: str = field(repr=False)
    token_ttl: int
    state_dir: Path | None = None
    upgraded_hash: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def password_login_enabled(self) -> bool:
        """``True`` when ``CAMERA_PASSWORD_HASH`` is set, i.e. the token endpoints can issue tokens."""
        return self.password_hash is not None


def load_auth_config(settings: Settings) -> AuthConfig:
    """Resolve the authentication settings, generating and storing missing secrets.

    * ``CAMERA_JWT_SECRET`` set: it is checked with :func:`jwt_secret_problem`. Unset (or empty):
      ``<state_dir>/jwt_secret`` is read, or created with ``secrets.token_urlsafe(48)``.
    * ``CAMERA_API_KEY`` set: it is used. Unset and no ``CAMERA_PASSWORD_HASH`` either:
      ``<state_dir>/api_key`` is read, or created with ``secrets.token_urlsafe(32)`` and shown
      once in a WARNING log line (later starts only log, at INFO, where it is stored). With a
      password hash, a key file that already exists is still read (the key printed at first start
      keeps working next to password login until the file is deleted); when there is none, no key
      is generated and API-key authentication is off. One INFO line says which credentials are
      accepted.
    * ``CAMERA_PASSWORD_HASH`` must be an argon2 hash (``pi-camera-service hash-password``).

    The state directory is created with mode 0700 when missing (an existing one is tightened to
    0700, whatever the umask and also when every secret is configured); secret files are written
    atomically (temporary file created with mode 0600, then ``os.replace``). Stored files readable
    by group or others are tightened to 0600 with a warning.

    Raises:
        ConfigError: unfit ``CAMERA_JWT_SECRET`` or stored secret, invalid ``CAMERA_PASSWORD_HASH``,
            or the state directory / a secret file cannot be created or read. The message is one
            line naming the variable or file and saying how to fix it.
    """
    state_dir = Path(settings.state_dir)
    if state_dir.is_dir():  # 0700 also when every secret is configured (outbox.db, credentials live there)
        _ensure_state_dir(state_dir)

    password_hash = (settings.password_hash or "").strip() or None
    if password_hash is not None and not is_argon2_hash(password_hash):
        raise ConfigError(
            "CAMERA_PASSWORD_HASH is not an argon2 hash (expected $argon2id$v=19$m=...); "
            f"create one with `{HASH_PASSWORD_HINT}` or leave it unset"
        )

    jwt_secret = settings.jwt_secret or None
    if jwt_secret is not None:
        problem = jwt_secret_problem(jwt_secret)
        if problem:
            raise ConfigError(
                f"CAMERA_JWT_SECRET {problem}; generate a random one with `{GENERATE_SECRET_HINT}` "
                f"or leave CAMERA_JWT_SECRET unset to have one generated and stored in "
                f"{state_dir / JWT_SECRET_FILE}"
            )
    else:
        path = state_dir / JWT_SECRET_FILE
        jwt_secret, created = _load_or_create_secret(path, lambda: secrets.token_urlsafe(48))
        problem = jwt_secret_problem(jwt_secret)
        if problem:
            raise ConfigError(
                f"the JWT secret stored in {path} {problem}; delete the file to have a new one "
                f"generated (every issued token becomes invalid) or set CAMERA_JWT_SECRET"
            )
        if created:
            logger.info("Generated a JWT signing secret and stored it in %s (mode 0600)", path)
        else:
            logger.info("Using the JWT signing secret stored in %s", path)

    api_key = settings.api_key or None
    if api_key is not None and len(api_key) < 16:
        logger.warning("CAMERA_API_KEY is short (%d characters); use 32 random characters", len(api_key))
    key_source = "CAMERA_API_KEY" if api_key is not None else None
    if api_key is None:
        path = state_dir / API_KEY_FILE
        if password_hash is None or path.exists():
            # A key once generated (and printed) stays valid when a password is added later:
            # both work side by side until the file is deleted.
            api_key, created = _load_or_create_secret(path, lambda: secrets.token_urlsafe(32))
            key_source = str(path)
            if created:
                _announce_api_key(api_key, path)
    logger.info("%s", _accepted_credentials(key_source, settings.username, password_hash is not None))

    return AuthConfig(
        api_key=api_key,
        username=settings.username,
        password_hash=password_hash,
        jwt_secret=jwt_secret,
        token_ttl=int(settings.token_ttl),
        state_dir=state_dir,
    )


def _accepted_credentials(key_source: str | None, username: str, password: bool) -> str:
    """The one start-up log line saying which credentials ``/v1`` accepts (keys named, never shown).

    ``key_source`` is where the accepted API key comes from (``CAMERA_API_KEY`` or the key file's
    path), None when API-key authentication is off.
    """
    parts = []
    if key_source is not None:
        revoke = "unset it" if key_source == "CAMERA_API_KEY" else "delete the file and restart"
        parts.append(f"{API_KEY_HEADER} with the key from {key_source} (to revoke: {revoke})")
    if password:
        parts.append(f"password login for user {username!r} (CAMERA_PASSWORD_HASH) -> Bearer token from {TOKEN_URL}")
    return "/v1 accepts: " + "; ".join(parts)


def _announce_api_key(api_key: str, path: Path) -> None:
    """Show a freshly generated API key once: a WARNING log line (journald keeps it with the start).

    When WARNING records of this logger are filtered out (``CAMERA_LOG_LEVEL=ERROR``), the same
    line is printed on stderr instead, so the key is always shown exactly once.
    """
    message = (
        f"generated an API key for /v1 (neither CAMERA_API_KEY nor CAMERA_PASSWORD_HASH is set), "
        f"stored in {path} (mode 0600) and shown only this once: {API_KEY_HEADER}: {api_key}"
    )
    if logger.isEnabledFor(logging.WARNING):
        logger.warning("%s", message)
    else:
        print(f"WARNING {logger.name}: {message}", file=sys.stderr, flush=True)


def _ensure_state_dir(state_dir: Path) -> None:
    """Create ``state_dir`` mode 0700, or tighten an existing one to 0700 (it holds every secret)."""
    try:
        make_private_dir(state_dir)
    except ValueError as exc:
        raise ConfigError(f"CAMERA_STATE_DIR={str(state_dir)!r}: {exc}") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot create CAMERA_STATE_DIR={str(state_dir)!r}: {exc.strerror or exc}; "
            "create it (mode 0700) or point CAMERA_STATE_DIR at a writable directory"
        ) from None


def _load_or_create_secret(path: Path, generate: Callable[[], str]) -> tuple[str, bool]:
    """Return ``(secret, created)``: the stripped content of ``path``, or a new value written there
    (mode 0600; :func:`pcs_common.fileio.read_or_create_secret`).

    Raises:
        ConfigError: the state directory or the file cannot be created, read or written.
    """
    _ensure_state_dir(path.parent)
    try:
        return read_or_create_secret(path, generate)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"cannot read or write {path}: {reason}; make CAMERA_STATE_DIR writable "
                          "or fix the file's permissions") from None


def _write_secret_file(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` atomically with mode 0600 from its creation on.

    Raises:
        ConfigError: the file cannot be written.
    """
    try:
        write_atomic(path, (value + "\n").encode("utf-8"))
        fsync_dir(path.parent)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc.strerror or exc}; make CAMERA_STATE_DIR writable"
        ) from None


def get_auth_config(request: Request) -> AuthConfig:
    """Return ``request.app.state.auth``, set by the app factory from :func:`load_auth_config`.

    Raises:
        RuntimeError: the app has no ``state.auth`` (a wiring bug; the request fails with 500, so
            nothing is ever served unauthenticated).
    """
    cfg = getattr(request.app.state, "auth", None)
    if not isinstance(cfg, AuthConfig):
        raise RuntimeError(
            "app.state.auth is not set; the app factory must set it to load_auth_config(settings)"
        )
    return cfg

