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

Where it lives: :mod:`.config` (settings, secret bootstrap), :mod:`.secret_check` (JWT secret checks),
:mod:`.tokens` (JWTs, 401 answers), :mod:`.sessions` (cookie, CSRF, logout), :mod:`.login` (password
check, the one login budget), :mod:`.dependency` (:func:`require_auth`); the building blocks they
configure (JWT, CSRF, sessions and revocation, Basic parsing, the 401 shape, argon2) are in
:mod:`pcs_common.auth`, shared with the central server. Every name is importable from here.
"""

from __future__ import annotations

import hmac  # noqa: F401 - re-exported: tests spy on hmac.compare_digest through this module
import logging

from pcs_common.auth import ARGON2_PARAMETERS, hash_password, verify_and_update_password, verify_password
from pcs_common.auth import is_argon2_hash as _is_argon2_hash
from pi_camera_service.auth.config import (
    API_KEY_FILE, API_KEY_HEADER, HASH_PASSWORD_HINT, JWT_SECRET_FILE, LOGIN_URL, TOKEN_URL, AuthConfig,
    _accepted_credentials, _announce_api_key, _ensure_state_dir, _load_or_create_secret, _write_secret_file,
    get_auth_config, load_auth_config,
)
from pi_camera_service.auth.dependency import (
    API_KEY_PRINCIPAL, DEVICE_PRINCIPAL_PREFIX, QUERY_TOKEN_PARAMS, AuthDep, _cookie_principal,
    _device_principal, api_key_scheme, bearer_scheme, require_auth,
)
from pi_camera_service.auth.login import (
    LOGIN_WINDOW, ONVIF_DOOR, ONVIF_FAILURES_PER_ADDRESS, PASSWORD_DOOR, LoginAttempt, LoginLimiter, TooManyLogins,
    authenticate, client_address, login_attempt, login_limiter, login_limiter_of, password_gate,
)
from pi_camera_service.auth.secret_check import (
    GENERATE_SECRET_HINT, MIN_JWT_SECRET_LENGTH, _is_repetition, jwt_secret_problem,
)
from pi_camera_service.auth.sessions import (
    CSRF_HEADER, REVOKED_SESSIONS_FILE, SAFE_METHODS, SESSION_COOKIE, SESSION_TTL, RevokedSessions,
    csrf_token_for, csrf_valid, decode_session, forbidden, issue_session, revoke_session, session_from_request,
    session_service, session_ttl,
)
from pi_camera_service.auth.tokens import (
    ACCESS_TOKEN, JWT_ALGORITHM, REALM, SESSION_TOKEN, TOKEN_AUDIENCE, TOKEN_ISSUER, TOKENS, TokenClaims,
    TokenError, _header_safe, _same, bearer_challenge, decode_token, issue_token, unauthorized,
)

logger = logging.getLogger(__name__)
"""The logger of every module of this package (they log as ``pi_camera_service.auth``)."""

__all__ = [
    "ACCESS_TOKEN", "API_KEY_FILE", "API_KEY_HEADER", "API_KEY_PRINCIPAL", "ARGON2_PARAMETERS", "AuthConfig",
    "AuthDep", "CSRF_HEADER", "DEVICE_PRINCIPAL_PREFIX", "GENERATE_SECRET_HINT", "HASH_PASSWORD_HINT",
    "JWT_ALGORITHM", "JWT_SECRET_FILE", "LOGIN_URL", "LOGIN_WINDOW", "LoginAttempt", "LoginLimiter",
    "MIN_JWT_SECRET_LENGTH", "ONVIF_DOOR", "ONVIF_FAILURES_PER_ADDRESS", "PASSWORD_DOOR", "QUERY_TOKEN_PARAMS",
    "REALM", "REVOKED_SESSIONS_FILE", "RevokedSessions", "SAFE_METHODS", "SESSION_COOKIE", "SESSION_TOKEN",
    "SESSION_TTL", "TOKENS", "TOKEN_AUDIENCE", "TOKEN_ISSUER", "TOKEN_URL", "TokenClaims", "TokenError",
    "TooManyLogins", "api_key_scheme", "authenticate", "bearer_challenge", "bearer_scheme", "client_address",
    "csrf_token_for", "csrf_valid", "decode_session", "decode_token", "forbidden", "get_auth_config",
    "hash_password", "issue_session", "issue_token", "jwt_secret_problem", "load_auth_config", "login_attempt",
    "login_limiter", "login_limiter_of", "password_gate", "require_auth", "revoke_session",
    "session_from_request", "session_service", "session_ttl", "unauthorized", "verify_and_update_password",
    "verify_password",
]
