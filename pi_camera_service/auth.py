"""Authentication of the edge service: API key, password login and HS256 JSON Web Tokens.

Every ``/v1`` route except ``/v1/auth/*`` depends on :func:`require_auth` (or the :data:`AuthDep`
alias), which accepts either of:

* ``X-API-Key: <CAMERA_API_KEY>``;
* ``Authorization: Bearer <JWT>`` (RFC 6750 §2.1), the JWT being issued by ``POST /v1/auth/token``
  (OAuth 2.0 password grant, RFC 6749 §4.3) or ``GET /v1/auth/login`` (HTTP Basic, RFC 7617);
* the web page's session cookie (:data:`SESSION_COOKIE`, set by ``POST /login`` of
  :mod:`pi_camera_service.web.routes`): an HttpOnly, SameSite=Strict cookie holding a short-lived JWT
  (:data:`SESSION_TTL`). It is only looked at when neither header is sent. A state-changing request
  (anything but GET/HEAD/OPTIONS) authenticated by the cookie must also carry ``X-CSRF-Token``
  equal to :func:`csrf_token_for` the session: an HMAC-SHA256 of the session's ``jti`` under the JWT
  secret (a stateless "HMAC-based synchroniser token", no server-side storage), else 403.
  ``POST /logout`` revokes the session's ``jti`` (in ``<CAMERA_STATE_DIR>/revoked_sessions.json``,
  so it survives a restart, until the token would expire anyway). A session token (``typ``
  ``session``) is refused as ``Bearer``, and a bearer token (``typ`` ``access``) as the cookie.
* Every token carries ``iss`` and ``aud`` ``pi-camera-service`` (checked by PyJWT), so a token the
  central server signed is refused here even with the same key.
* ``Authorization: Basic <device_id:device_secret>`` while the camera is paired with a central server
  (:mod:`pi_camera_service.central_link`), so that server can read the camera's status and live view.

Failures are answered with 401, a ``WWW-Authenticate: Bearer realm="pi-camera-service"`` challenge
(with ``error="invalid_token"`` / ``error="invalid_request"`` and an ``error_description`` as in
RFC 6750 §3) and a JSON ``detail`` saying what is wrong.

Choices worth knowing:

* Tokens in the URL (``?token=`` / ``?access_token=``, RFC 6750 §2.3) are always refused, even when
  a valid header is sent as well: the URL has already been written to access logs, proxies and
  browser history, so the client must be fixed rather than silently served. RFC 6750 §2 also
  forbids sending a token by more than one method in a request.
* Every credential presented must be valid: a wrong ``X-API-Key`` is not ignored because a valid
  bearer token is also present, and the reverse.
* ``/v1`` is never served without authentication. :func:`load_auth_config` resolves the secrets at
  start-up: with neither ``CAMERA_API_KEY`` nor ``CAMERA_PASSWORD_HASH`` an API key is generated,
  stored in ``<CAMERA_STATE_DIR>/api_key`` (mode 0600) and printed once; without
  ``CAMERA_JWT_SECRET`` a signing secret is generated and stored in ``<CAMERA_STATE_DIR>/jwt_secret``.
  A short or well-known ``CAMERA_JWT_SECRET`` stops the start with :class:`ConfigError`.
* A login with a wrong username costs the same argon2 verification as a wrong password, so response
  times do not reveal whether the username exists (see :func:`authenticate`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import argon2
import jwt
from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from pi_camera_service.config import ConfigError, Settings
from pcs_common.fileio import fsync_dir, make_private_dir, write_atomic
from pcs_common.jwt_secrets import GENERATE_SECRET_HINT, MIN_JWT_SECRET_LENGTH, jwt_secret_problem  # noqa: F401 - re-exported

logger = logging.getLogger(__name__)

REALM = "pi-camera-service"
"""Realm sent in ``WWW-Authenticate`` challenges (RFC 7235 §2.2)."""

JWT_ALGORITHM = "HS256"
"""The only signing algorithm issued and accepted (``alg: none`` and all others are refused)."""

TOKEN_ISSUER = "pi-camera-service"
"""``iss`` of every token the camera signs (RFC 7519 §4.1.1); checked by PyJWT on every request."""

TOKEN_AUDIENCE = "pi-camera-service"
"""``aud`` of every token the camera signs (RFC 7519 §4.1.3): a central-server token is refused here
even if the two services were given the same key (the central server uses ``pi-camera-central``)."""

ACCESS_TOKEN = "access"
"""``typ`` claim of bearer tokens (``POST /v1/auth/token``, ``GET /v1/auth/login``)."""

SESSION_TOKEN = "session"
"""``typ`` claim of web session tokens: accepted only as the :data:`SESSION_COOKIE`, never as Bearer."""

REVOKED_SESSIONS_FILE = "revoked_sessions.json"
"""File in ``CAMERA_STATE_DIR`` listing the ``jti`` of logged-out sessions until they expire."""

API_KEY_PRINCIPAL = "api-key"
"""Principal returned by :func:`require_auth` for a request authenticated with ``X-API-Key``."""

API_KEY_HEADER = "X-API-Key"
TOKEN_URL = "/v1/auth/token"
LOGIN_URL = "/v1/auth/login"
API_KEY_FILE = "api_key"
JWT_SECRET_FILE = "jwt_secret"
QUERY_TOKEN_PARAMS = ("token", "access_token")

SESSION_COOKIE = "pcs_session"
"""Name of the web page's session cookie (HttpOnly, SameSite=Strict, a JWT)."""

CSRF_HEADER = "X-CSRF-Token"
"""Header that cookie-authenticated state-changing requests must carry (see :func:`csrf_token_for`)."""

SESSION_TTL = 3600
"""Longest lifetime of a web session cookie, s (shorter when ``CAMERA_TOKEN_TTL`` is shorter)."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that need no CSRF token with cookie authentication (they change nothing)."""

_CSRF_CONTEXT = b"pi-camera-service csrf v1:"

HASH_PASSWORD_HINT = "pi-camera-service hash-password"

ARGON2_PARAMETERS = {"memory_cost": 19_456, "time_cost": 2, "parallelism": 1}
"""argon2id cost of new hashes: m = 19 MiB (KiB units), t = 2 passes, p = 1 lane.

The first of the equivalent configurations in OWASP's Password Storage Cheat Sheet (Argon2id,
"m=19456 (19 MiB), t=2, p=1"), chosen for a 512 MB Pi Zero 2 W: pwdlib's default (m = 64 MiB,
t = 3, p = 4) costs 64 MiB per verification. Hashes made with other parameters keep verifying and
are re-hashed with these at the next successful login (:func:`verify_and_update_password`).
"""

_password_hasher = PasswordHash((Argon2Hasher(**ARGON2_PARAMETERS),))



# ------------------------------------------------------------------------------------------------
# Passwords
# ------------------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """Hash ``password`` with argon2id (pwdlib, :data:`ARGON2_PARAMETERS`) for ``CAMERA_PASSWORD_HASH``.

    Returns the PHC-encoded string (``$argon2id$v=19$m=...,t=...,p=...$salt$digest``); a new random
    salt is used on every call.

    Raises:
        ValueError: ``password`` is empty.
    """
    if not password:
        raise ValueError("the password must not be empty")
    return _password_hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Check ``password`` against an argon2 ``password_hash`` (constant time inside argon2).

    Returns ``False`` on a mismatch and also for a hash that is not a valid argon2 hash, so a bad
    configured value fails closed (:func:`load_auth_config` refuses such a hash at start-up anyway).
    """
    try:
        return _password_hasher.verify(password, password_hash)
    except Exception:  # pwdlib UnknownHashError, or anything argon2 raises on a corrupt hash
        return False


def verify_and_update_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """Check ``password`` like :func:`verify_password`; also a new hash when ``password_hash`` uses
    other argon2 parameters than :data:`ARGON2_PARAMETERS` (pwdlib ``verify_and_update``).

    Returns ``(ok, new_hash)``; ``new_hash`` is None unless ``ok`` and the hash is outdated.
    """
    try:
        return _password_hasher.verify_and_update(password, password_hash)
    except Exception:  # as verify_password: a corrupt hash fails closed
        return False, None


def _is_argon2_hash(value: str) -> bool:
    try:
        argon2.extract_parameters(value)
    except Exception:
        return False
    return Argon2Hasher.identify(value)


def _same(a: str, b: str) -> bool:
    """Constant-time string comparison (hmac.compare_digest on UTF-8 bytes, so any text works)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


# ------------------------------------------------------------------------------------------------
# Configuration and secret bootstrap
# ------------------------------------------------------------------------------------------------


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
    if password_hash is not None and not _is_argon2_hash(password_hash):
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
    """Return ``(secret, created)``: the stripped content of ``path``, or a new value written there."""
    _ensure_state_dir(path.parent)
    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}; fix its permissions") from None

    if info is not None:
        if stat.S_IMODE(info.st_mode) & 0o077:
            logger.warning("%s was readable by other users; setting its mode to 0600", path)
            try:
                os.chmod(path, 0o600)
            except OSError as exc:
                raise ConfigError(f"cannot chmod 0600 {path}: {exc.strerror or exc}") from None
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}; fix it or delete it to regenerate") from None
        if value:
            return value, False
        logger.warning("%s is empty; generating a new value", path)

    value = generate()
    _write_secret_file(path, value)
    return value, True


def _write_secret_file(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` atomically; the file has mode 0600 from its creation on."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.write(fd, (value + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        try:  # make the rename durable (power cuts are common on a Pi)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ConfigError(
            f"cannot write {path}: {exc.strerror or exc}; make CAMERA_STATE_DIR writable"
        ) from None


# ------------------------------------------------------------------------------------------------
# Tokens
# ------------------------------------------------------------------------------------------------


class TokenError(Exception):
    """A bearer token was refused; ``str()`` is a short reason such as ``"token expired"``.

    Raised by :func:`decode_token`, which is the single place where PyJWT exceptions are mapped;
    :func:`require_auth` turns it into a 401 with ``error="invalid_token"`` (RFC 6750 §3.1).
    """


def issue_token(
    cfg: AuthConfig, subject: str, ttl: int | None = None, kind: str = ACCESS_TOKEN
) -> tuple[str, int]:
    """Sign an HS256 JWT for ``subject``; return ``(token, expires_in)``, ``expires_in`` in seconds.

    Claims (RFC 7519 §4.1): ``sub`` = ``subject``, ``iss`` = :data:`TOKEN_ISSUER`, ``aud`` =
    :data:`TOKEN_AUDIENCE`, ``typ`` = ``kind`` (:data:`ACCESS_TOKEN` or :data:`SESSION_TOKEN`),
    ``iat`` = now, ``exp`` = now + ``ttl`` (default ``cfg.token_ttl``; NumericDate, seconds since
    the epoch) and a random ``jti``.
    """
    lifetime = cfg.token_ttl if ttl is None else int(ttl)
    now = int(time.time())
    claims = {
        "sub": subject,
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
        "typ": kind,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
    }
    token = jwt.encode(claims, cfg.jwt_secret, algorithm=JWT_ALGORITHM)
    return token, lifetime


def decode_token(cfg: AuthConfig, token: str, kind: str = ACCESS_TOKEN) -> dict[str, Any]:
    """Verify ``token`` and return its claims.

    Only HS256 is accepted (``algorithms=["HS256"]``, so ``alg: none`` and algorithm confusion are
    refused); ``exp``, ``iat`` and ``sub`` are required, ``exp`` is checked against the current
    time (no leeway), ``iss`` and ``aud`` must be :data:`TOKEN_ISSUER` / :data:`TOKEN_AUDIENCE`
    (PyJWT's ``issuer``/``audience`` checks), ``typ`` must be ``kind`` (a session token is not an
    access token, nor the reverse), a ``jti`` must be present and ``sub`` must be the configured
    username.

    Raises:
        TokenError: with a message saying what is wrong ("token expired", "token signature
            invalid", "token is malformed ...", ...).
    """
    try:
        claims = jwt.decode(
            token,
            cfg.jwt_secret,
            algorithms=[JWT_ALGORITHM],
            audience=TOKEN_AUDIENCE,
            issuer=TOKEN_ISSUER,
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired; get a new one from POST /v1/auth/token") from None
    except jwt.InvalidSignatureError:
        raise TokenError(
            "token signature invalid (the token was altered or signed with another secret)"
        ) from None
    except jwt.InvalidAlgorithmError:
        raise TokenError(f"token algorithm not allowed (only {JWT_ALGORITHM} is accepted)") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"token lacks the required {exc.claim} claim") from None
    except jwt.InvalidAudienceError:
        raise TokenError(f"token audience invalid (not issued for {TOKEN_AUDIENCE}: a token of another service)") from None
    except jwt.InvalidIssuerError:
        raise TokenError(f"token issuer invalid (not issued by {TOKEN_ISSUER})") from None
    except jwt.ImmatureSignatureError:
        raise TokenError("token is not valid yet (issued in the future)") from None
    except jwt.DecodeError:
        raise TokenError("token is malformed (not a JWS compact serialization)") from None
    except jwt.InvalidTokenError as exc:  # e.g. exp or iat that is not a number
        raise TokenError(f"token is invalid ({_header_safe(str(exc))})") from None
    if claims.get("typ") != kind:
        if kind == ACCESS_TOKEN and claims.get("typ") == SESSION_TOKEN:
            raise TokenError("a web session token is only accepted as the session cookie, not as a bearer "
                             f"token; get an access token from POST {TOKEN_URL}")
        raise TokenError(f"token type {str(claims.get('typ'))[:20]!r} is not accepted here ({kind!r} needed)")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise TokenError("token lacks the required jti claim")
    if not isinstance(claims.get("sub"), str) or not _same(claims["sub"], cfg.username):
        raise TokenError("token subject is not a known user")
    return claims


# ------------------------------------------------------------------------------------------------
# Login and request authentication (FastAPI)
# ------------------------------------------------------------------------------------------------


def authenticate(cfg: AuthConfig, username: str, password: str) -> bool:
    """Check a username and password against ``cfg``; ``True`` when both are right.

    The username is compared in constant time and the password is *always* verified with argon2
    against the configured hash, also when the username is wrong: that dummy verification uses the
    very same hash (so the same cost parameters) and makes a wrong username take as long as a
    wrong password, so timing does not reveal which usernames exist. Returns ``False`` when no
    password hash is configured.
    """
    if cfg.password_hash is None:
        return False
    user_ok = _same(username, cfg.username)
    current = cfg.upgraded_hash.get(cfg.password_hash, cfg.password_hash)
    password_ok, new_hash = verify_and_update_password(password, current)
    if user_ok and password_ok and new_hash is not None:
        # The configured value comes from the environment, which the service cannot rewrite: the
        # re-hash is kept for this process (cheaper logins from now on) and the operator is told.
        cfg.upgraded_hash[cfg.password_hash] = new_hash
        logger.warning(
            "CAMERA_PASSWORD_HASH uses older argon2 parameters than %s; it was re-hashed in memory. "
            "To keep the cheaper hash across restarts, set CAMERA_PASSWORD_HASH to the output of `%s`.",
            ARGON2_PARAMETERS, HASH_PASSWORD_HINT,
        )
    return user_ok and password_ok


def password_gate(request: Request) -> Any:
    """The app's :class:`~pcs_common.limits.PasswordCheckGate` (``app.state.password_gate``),
    created with the defaults (2 at once, 2 s wait) for an app that did not set one."""
    from pcs_common.limits import PasswordCheckGate

    gate = getattr(request.app.state, "password_gate", None)
    if gate is None:
        gate = request.app.state.password_gate = PasswordCheckGate()
    return gate


LOGIN_WINDOW = "15 minutes"
"""Window of the camera's login budgets (a ``limits`` period)."""


class LoginLimiter:
    """Budgets of failed logins (password or API-key forms), atomic under concurrency.

    Design (OWASP Authentication and Blocking Brute Force Attacks cheat sheets: throttle instead of
    locking the account, so an attacker cannot lock the owner out):

    * ``address``: failures from one client address, ``CAMERA_LOGIN_FAILURES_PER_ADDRESS`` per 15 min;
    * ``global``: failures from all addresses together, ``CAMERA_LOGIN_FAILURES_GLOBAL`` per 15 min (a
      slow-down for guessing spread over many addresses), not applied to addresses that logged in
      successfully since the service started (the address as OWASP's "device cookie").

    Counting: ``limits``' moving window in memory (one camera process). Only failures are counted, but
    attempts still being verified count as failures-to-be: :meth:`begin` checks the budget including
    attempts in flight and registers the new one under one lock, so 60 concurrent wrong passwords get
    exactly the budget, not 60 verifications. Thread-safe.

    Args:
        per_address: failures per address per window.
        global_: failures in total per window (windows are :data:`LOGIN_WINDOW`).
    """

    def __init__(self, per_address: int, global_: int) -> None:
        from limits import parse
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self._items = {"address": parse(f"{int(per_address)}/{LOGIN_WINDOW}"),
                       "global": parse(f"{int(global_)}/{LOGIN_WINDOW}")}
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, str], int] = {}
        self._known: set[str] = set()

    def _checks(self, address: str) -> list[tuple[str, str]]:
        checks = [("address", address)]
        if address not in self._known:
            checks.append(("global", "all"))
        return checks

    def begin(self, address: str) -> tuple[list[tuple[str, str]] | None, int]:
        """Register one login attempt from ``address``: ``(checks, 0)`` when it may go on, else
        ``(None, retry_after_s)``. Pass ``checks`` to :meth:`end` once the credentials are checked."""
        with self._lock:
            checks = self._checks(address)
            for rule, key in checks:
                item = self._items[rule]
                stats = self._limiter.get_window_stats(item, rule, key)
                if stats.remaining - self._inflight.get((rule, key), 0) <= 0:
                    wait = max(1, math.ceil(stats.reset_time - time.time())) if stats.remaining <= 0 else 1
                    return None, wait
            for check in checks:
                self._inflight[check] = self._inflight.get(check, 0) + 1
            return checks, 0

    def end(self, address: str, checks: list[tuple[str, str]], ok: bool, counted: bool = True) -> None:
        """The attempt :meth:`begin` registered is over: a failure is counted under each budget, a
        success makes ``address`` known (exempt from the global slow-down) and forgets its failures.
        ``counted=False``: the credentials were never checked (no password-check slot: 503), so the
        attempt uses up nothing."""
        with self._lock:
            for check in checks:
                left = self._inflight.get(check, 0) - 1
                if left > 0:
                    self._inflight[check] = left
                else:
                    self._inflight.pop(check, None)
                if not ok and counted:
                    self._limiter.hit(self._items[check[0]], *check)
            if ok:
                self._known.add(address)
                self._limiter.clear(self._items["address"], "address", address)


def login_limiter(request: Request) -> LoginLimiter:
    """The app's :class:`LoginLimiter` (``app.state.login_limiter``), made from the settings on first use."""
    limiter = getattr(request.app.state, "login_limiter", None)
    if not isinstance(limiter, LoginLimiter):
        settings = getattr(request.app.state, "settings", None)
        limiter = request.app.state.login_limiter = LoginLimiter(
            getattr(settings, "login_failures_per_address", 10), getattr(settings, "login_failures_global", 30))
    return limiter


def client_address(request: Request) -> str:
    """The client's IP address as the ASGI server reports it (uvicorn replaces it by ``X-Forwarded-For``
    only with ``CAMERA_TRUST_PROXY_HEADERS`` and a peer in ``CAMERA_FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else "unknown"


def _header_safe(text: str) -> str:
    """Keep only characters allowed in an RFC 6750 ``error_description`` (no quote, no backslash)."""
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')


def bearer_challenge(error: str | None = None, description: str | None = None) -> str:
    """Build a ``WWW-Authenticate`` value for the Bearer scheme (RFC 6750 §3).

    Without ``error`` (request carried no credentials) only the realm is sent, as RFC 6750 §3.1
    recommends; otherwise ``error`` (``invalid_token`` or ``invalid_request``) and an
    ``error_description`` are added.
    """
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
        if description:
            value += f', error_description="{_header_safe(description)}"'
    return value


def unauthorized(detail: str, *, error: str | None = None) -> HTTPException:
    """A 401 ``HTTPException`` with JSON ``detail`` and a Bearer challenge (RFC 6750 §3)."""
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": bearer_challenge(error, detail)},
    )


api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="APIKey",
    description="CAMERA_API_KEY, or the key generated at first start (see the start-up log).",
    auto_error=False,
)
"""OpenAPI security scheme for ``X-API-Key`` (read by :func:`require_auth`)."""

bearer_scheme = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    scheme_name="OAuth2Password",
    description=f"JWT from POST {TOKEN_URL} (password form) or GET {LOGIN_URL} (HTTP Basic).",
    auto_error=False,
)
"""OpenAPI security scheme for ``Authorization: Bearer <JWT>`` (read by :func:`require_auth`)."""

_CREDENTIALS_HINT = (
    f"send {API_KEY_HEADER}: <key> or Authorization: Bearer <token> "
    f"(get a token from POST {TOKEN_URL} or GET {LOGIN_URL})"
)


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


# ------------------------------------------------------------------------------------------------
# Web sessions (cookie + CSRF)
# ------------------------------------------------------------------------------------------------


def csrf_token_for(cfg: AuthConfig, jti: str) -> str:
    """The CSRF token bound to the session whose JWT has id ``jti``.

    ``base64url(HMAC-SHA256(jwt_secret, "pi-camera-service csrf v1:" + jti))``: only the server can
    compute it, it changes with every login, and nothing needs storing. A cross-site page can neither
    read it (it is only in the page's HTML) nor derive it from the HttpOnly cookie it cannot read.
    """
    digest = hmac.new(cfg.jwt_secret.encode("utf-8"), _CSRF_CONTEXT + jti.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def csrf_valid(cfg: AuthConfig, claims: dict[str, Any], sent: str | None) -> bool:
    """True when ``sent`` is the CSRF token of the session ``claims`` (compared in constant time)."""
    return bool(sent) and _same(sent, csrf_token_for(cfg, claims["jti"]))


def session_ttl(cfg: AuthConfig) -> int:
    """Lifetime of a web session, s: :data:`SESSION_TTL` or ``CAMERA_TOKEN_TTL`` when that is shorter."""
    return max(1, min(SESSION_TTL, cfg.token_ttl))


def issue_session(cfg: AuthConfig) -> tuple[str, int, str]:
    """Open a web session for the configured user: return ``(jwt, ttl_seconds, csrf_token)``."""
    token, ttl = issue_token(cfg, cfg.username, ttl=session_ttl(cfg), kind=SESSION_TOKEN)
    claims = jwt.decode(token, options={"verify_signature": False})
    return token, ttl, csrf_token_for(cfg, claims["jti"])


class RevokedSessions:
    """The ``jti`` of logged-out sessions with their expiry (s since the epoch), kept until they expire.

    Stored in ``<CAMERA_STATE_DIR>/revoked_sessions.json`` (``{"<jti>": <exp>, ...}``, mode 0600,
    written atomically), so a logout survives a restart of the service; expired entries are dropped
    on every change, so the file holds at most the sessions of the last :data:`SESSION_TTL` s.
    Thread-safe. ``path`` None keeps them in memory only. An unreadable file is logged and treated
    as empty (sessions last at most :data:`SESSION_TTL` s anyway).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, float] = {}
        if path is not None:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                self._entries = {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}
            except FileNotFoundError:
                pass
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                logger.warning("cannot read %s (%s): earlier logouts are forgotten", path, exc)

    def __contains__(self, jti: object) -> bool:
        with self._lock:
            exp = self._entries.get(jti) if isinstance(jti, str) else None
        return exp is not None and exp >= time.time()

    def add(self, jti: str, exp: float) -> None:
        """Remember ``jti`` until ``exp`` and write the file.

        Raises:
            OSError: the file cannot be written (the revocation still holds in memory).
        """
        now = time.time()
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if v >= now}
            self._entries[jti] = float(exp)
            if self.path is not None:
                make_private_dir(self.path.parent)
                write_atomic(self.path, json.dumps(self._entries).encode("utf-8"))  # mkstemp: 0600
                fsync_dir(self.path.parent)


def _revoked_sessions(app: Any) -> RevokedSessions:
    revoked = getattr(app.state, "revoked_sessions", None)
    if not isinstance(revoked, RevokedSessions):
        cfg = getattr(app.state, "auth", None)
        state_dir = cfg.state_dir if isinstance(cfg, AuthConfig) else None
        revoked = app.state.revoked_sessions = RevokedSessions(
            state_dir / REVOKED_SESSIONS_FILE if state_dir is not None else None)
    return revoked


def revoke_session(app: Any, claims: dict[str, Any]) -> None:
    """Refuse the session ``claims`` (its ``jti``) from now on, on every path (logout).

    Kept in :class:`RevokedSessions` (``<CAMERA_STATE_DIR>/revoked_sessions.json``) until the token
    would have expired anyway, so it survives a restart. Session tokens are never accepted as
    ``Bearer`` (their ``typ`` is ``session``), so the cookie check is the only way in to guard.
    A failed write is logged; the revocation still holds until the next restart.
    """
    jti = claims.get("jti")
    if isinstance(jti, str):
        try:
            _revoked_sessions(app).add(jti, float(claims.get("exp", time.time() + SESSION_TTL)))
        except OSError as exc:
            logger.error("cannot store the logout of a session (%s): it holds until the next restart", exc)


def decode_session(request: Request, cfg: AuthConfig, cookie: str) -> dict[str, Any]:
    """Verify a session cookie's JWT and return its claims.

    Raises:
        TokenError: the token is invalid or expired (see :func:`decode_token`), has no ``jti``,
            or its session was ended by a logout.
    """
    claims = decode_token(cfg, cookie, kind=SESSION_TOKEN)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise TokenError("session token lacks a jti claim")
    if jti in _revoked_sessions(request.app):
        raise TokenError("session ended (logged out)")
    return claims


def session_from_request(request: Request) -> dict[str, Any] | None:
    """Claims of the request's valid session cookie, or ``None`` (no cookie, invalid, expired, revoked)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return decode_session(request, get_auth_config(request), cookie)
    except TokenError:
        return None


def forbidden(detail: str) -> HTTPException:
    """A 403 ``HTTPException`` with a JSON ``detail`` (CSRF failures: authenticated but not allowed)."""
    return HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=detail)


def _cookie_principal(request: Request, cfg: AuthConfig, cookie: str) -> str:
    """Authenticate by the session cookie; state-changing methods also need the CSRF header."""
    try:
        claims = decode_session(request, cfg, cookie)
    except TokenError as exc:
        reason = str(exc).split(";", 1)[0]
        raise unauthorized(
            f"session cookie refused ({reason}): log in again at /login, or {_CREDENTIALS_HINT}",
            error="invalid_token",
        ) from None
    if request.method.upper() not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if not sent:
            raise forbidden(
                f"CSRF token missing: a {request.method} authenticated by the session cookie must send the "
                f"{CSRF_HEADER} header with the token of the page (meta name=csrf-token); API clients "
                f"should use {API_KEY_HEADER} or Authorization: Bearer instead"
            )
        if not csrf_valid(cfg, claims, sent):
            raise forbidden(
                f"CSRF token invalid: the {CSRF_HEADER} header does not belong to this session; "
                "reload the page (a new login issues a new token)"
            )
    principal = claims["sub"]
    request.state.principal = principal
    return principal


DEVICE_PRINCIPAL_PREFIX = "device:"
"""Principal of a request authenticated with the central server's device credentials: ``device:<id>``."""


def _device_principal(request: Request, authorization: str) -> str | None:
    """Check HTTP Basic (RFC 7617) ``device_id:device_secret`` against the paired camera's credentials.

    The credentials come from ``request.app.state.central_link.device_credentials()`` (see
    :mod:`pi_camera_service.central_link`); both parts are compared in constant time. Returns
    ``device:<device_id>`` when they match, ``None`` when the scheme is not Basic or the camera is not
    paired (the caller then refuses the scheme as before).

    Raises:
        HTTPException: 401 when the camera is paired and the Basic credentials are malformed or wrong.
    """
    scheme, _, param = authorization.strip().partition(" ")
    link = getattr(request.app.state, "central_link", None)
    stored = link.device_credentials() if link is not None and scheme.lower() == "basic" else None
    if stored is None:
        return None
    try:
        device_id, sep, secret = base64.b64decode(param.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        raise unauthorized("Basic credentials are not valid base64 of UTF-8 device_id:device_secret",
                           error="invalid_request") from None
    id_ok = _same(device_id, stored[0])
    secret_ok = _same(secret, stored[1])
    if not (sep and id_ok and secret_ok):
        raise unauthorized("device credentials invalid (HTTP Basic is only accepted with the device_id and "
                           "device_secret the central server issued to this camera)", error="invalid_token")
    request.state.principal = DEVICE_PRINCIPAL_PREFIX + device_id
    return request.state.principal


async def require_auth(
    request: Request,
    api_key: Annotated[str | None, Security(api_key_scheme)],
    bearer_token: Annotated[str | None, Security(bearer_scheme)],
) -> str:
    """FastAPI dependency guarding ``/v1`` routes; returns the principal.

    The principal is the username for a valid bearer token (RFC 6750 §2.1), else
    :data:`API_KEY_PRINCIPAL` for a valid ``X-API-Key``; it is also stored in
    ``request.state.principal``. Every credential presented must be valid. Without either header,
    a valid session cookie (:data:`SESSION_COOKIE`) is accepted as the username; with it, methods
    other than GET/HEAD/OPTIONS need the session's ``X-CSRF-Token`` (403 when missing or wrong).
    While the camera is paired with a central server, ``Authorization: Basic`` with its device
    credentials is accepted as ``device:<device_id>`` (see :func:`_device_principal`); otherwise the
    Basic scheme is refused like any other non-Bearer scheme.

    Raises:
        HTTPException: 401 with ``WWW-Authenticate: Bearer realm=...`` (RFC 6750 §3) and a
            ``detail`` message when: a token is passed in the query string (``error=
            "invalid_request"``, refused even with a valid header); a viewer ticket (``?ticket=``) is
            sent to a route other than the MJPEG view; no credentials are sent; the
            Authorization scheme is not Bearer; the API key is wrong or API keys are disabled; the
            token is empty, malformed, expired, wrongly signed, altered, ``alg: none`` or for an
            unknown subject (``error="invalid_token"``); the session cookie is invalid, expired or
            logged out.
        HTTPException: 403 when a cookie-authenticated POST/PATCH/PUT/DELETE lacks the session's
            ``X-CSRF-Token`` or sends a wrong one.
        RuntimeError: ``app.state.auth`` is missing (see :func:`get_auth_config`).
    """
    cfg = get_auth_config(request)

    in_query = [name for name in QUERY_TOKEN_PARAMS if name in request.query_params]
    if in_query:
        raise unauthorized(
            f"token in the query string (?{in_query[0]}=) is refused: URLs end up in logs and "
            "browser history; send it in the Authorization header as Authorization: Bearer <token>",
            error="invalid_request",
        )

    if "ticket" in request.query_params:  # pcs_common.viewer_ticket: only the MJPEG view takes one
        raise unauthorized("a viewer ticket (?ticket=) is only accepted by GET /v1/camera/mjpeg",
                           error="invalid_request")

    authorization = request.headers.get("Authorization")
    if api_key is None and not authorization:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return _cookie_principal(request, cfg, cookie)
        raise unauthorized(f"not authenticated: {_CREDENTIALS_HINT}")

    principal: str | None = None
    device = _device_principal(request, authorization) if authorization and bearer_token is None else None
    if device is not None:
        principal, authorization = device, None  # an X-API-Key sent as well must still be valid (below)
    if authorization:
        if bearer_token is None:
            scheme = authorization.split(" ", 1)[0][:20]
            raise unauthorized(
                f"Authorization scheme {_header_safe(scheme)!r} is not accepted here: "
                f"use Authorization: Bearer <token> or {API_KEY_HEADER}: <key>",
                error="invalid_request",
            )
        if not bearer_token.strip():
            raise unauthorized("bearer token is empty", error="invalid_token")
        try:
            claims = decode_token(cfg, bearer_token.strip())
        except TokenError as exc:
            raise unauthorized(str(exc), error="invalid_token") from None
        principal = claims["sub"]

    if api_key is not None:
        if cfg.api_key is None:
            raise unauthorized(
                f"{API_KEY_HEADER} is not accepted: no API key is configured on this camera "
                f"(CAMERA_API_KEY is unset and there is no {API_KEY_FILE} file in the state directory); "
                f"use Authorization: Bearer <token> from POST {TOKEN_URL}"
            )
        if not _same(api_key, cfg.api_key):
            raise unauthorized(f"API key invalid (check the {API_KEY_HEADER} header)")
        principal = principal or API_KEY_PRINCIPAL

    assert principal is not None
    request.state.principal = principal
    return principal


AuthDep = Annotated[str, Depends(require_auth)]
"""Parameter type for protected routes: ``def route(principal: AuthDep)`` (value: the principal)."""
