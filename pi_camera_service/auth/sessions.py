"""The camera's web sessions: the session cookie (a JWT), its CSRF token, and logout.

The cookie (:data:`SESSION_COOKIE`, set by ``POST /login`` of :mod:`pi_camera_service.web.routes`) is
HttpOnly, SameSite=Strict and holds a JWT of ``typ`` ``session`` valid at most :data:`SESSION_TTL` s.
State-changing requests it authenticates also need ``X-CSRF-Token`` (:func:`csrf_token_for`).
``POST /logout`` revokes the session's ``jti`` in ``<CAMERA_STATE_DIR>/revoked_sessions.json``, so it
survives a restart, until the token would expire anyway.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import HTTPException, Request, status

from pcs_common.auth import (
    CSRF_HEADER, SAFE_METHODS, JsonFileRevocations, SessionService, TokenClaims, TokenError, csrf_matches, csrf_token,
)
from pcs_common.auth import same as _same
from pi_camera_service.auth.config import AuthConfig, get_auth_config
from pi_camera_service.auth.tokens import TOKENS

logger = logging.getLogger("pi_camera_service.auth")

SESSION_COOKIE = "pcs_session"
"""Name of the web page's session cookie (HttpOnly, SameSite=Strict, a JWT)."""

SESSION_TTL = 3600
"""Longest lifetime of a web session cookie, s (shorter when ``CAMERA_TOKEN_TTL`` is shorter)."""

REVOKED_SESSIONS_FILE = "revoked_sessions.json"
"""File in ``CAMERA_STATE_DIR`` listing the ``jti`` of logged-out sessions until they expire."""

RevokedSessions = JsonFileRevocations
"""The camera's store of logged-out sessions (:class:`pcs_common.auth.JsonFileRevocations`)."""

__all__ = ["CSRF_HEADER", "REVOKED_SESSIONS_FILE", "RevokedSessions", "SAFE_METHODS", "SESSION_COOKIE",
           "SESSION_TTL", "csrf_token_for", "csrf_valid", "decode_session", "forbidden", "issue_session",
           "revoke_session", "session_from_request", "session_service", "session_ttl"]


def session_service(app: Any) -> SessionService:
    """The app's :class:`~pcs_common.auth.SessionService` (``app.state.sessions``), made on first use
    with :class:`RevokedSessions` in ``<CAMERA_STATE_DIR>/revoked_sessions.json`` (memory only without
    a state directory)."""
    service = getattr(app.state, "sessions", None)
    if not isinstance(service, SessionService):
        cfg = getattr(app.state, "auth", None)
        state_dir = cfg.state_dir if isinstance(cfg, AuthConfig) else None
        revoked = getattr(app.state, "revoked_sessions", None)
        if not isinstance(revoked, JsonFileRevocations):
            revoked = app.state.revoked_sessions = RevokedSessions(
                state_dir / REVOKED_SESSIONS_FILE if state_dir is not None else None)
        service = app.state.sessions = SessionService(TOKENS, SESSION_COOKIE, revoked)
    return service


def csrf_token_for(cfg: AuthConfig, jti: str) -> str:
    """The CSRF token bound to the session whose JWT has id ``jti`` (:func:`pcs_common.auth.csrf_token`:
    ``base64url(HMAC-SHA256(jwt_secret, "pi-camera-service csrf v1:" + jti))``)."""
    return csrf_token(cfg.jwt_secret, TOKENS.audience, jti)


def csrf_valid(cfg: AuthConfig, claims: TokenClaims | dict[str, Any], sent: str | None) -> bool:
    """True when ``sent`` is the CSRF token of the session ``claims`` (compared in constant time)."""
    return csrf_matches(cfg.jwt_secret, TOKENS.audience, claims["jti"], sent)


def session_ttl(cfg: AuthConfig) -> int:
    """Lifetime of a web session, s: :data:`SESSION_TTL` or ``CAMERA_TOKEN_TTL`` when that is shorter."""
    return max(1, min(SESSION_TTL, cfg.token_ttl))


def issue_session(cfg: AuthConfig) -> tuple[str, int, str]:
    """Open a web session for the configured user: return ``(jwt, ttl_seconds, csrf_token)``."""
    token, ttl = TOKENS.encode(cfg.jwt_secret, cfg.username, "session", session_ttl(cfg))
    claims = TOKENS.decode(cfg.jwt_secret, token, "session")
    return token, ttl, csrf_token_for(cfg, claims.jti)


def revoke_session(app: Any, claims: TokenClaims | dict[str, Any]) -> None:
    """Refuse the session ``claims`` (its ``jti``) from now on, on every path (logout).

    Kept until the token would have expired anyway, so it survives a restart. Session tokens are
    never accepted as ``Bearer`` (their ``typ`` is ``session``), so the cookie check is the only way in
    to guard. A failed write is logged; the revocation still holds until the next restart.
    """
    jti = claims.get("jti")
    if isinstance(jti, str):
        try:
            session_service(app).revoked.add(jti, float(claims.get("exp", time.time() + SESSION_TTL)))
        except OSError as exc:
            logger.error("cannot store the logout of a session (%s): it holds until the next restart", exc)


def decode_session(request: Request, cfg: AuthConfig, cookie: str) -> TokenClaims:
    """Verify a session cookie's JWT and return its claims.

    Raises:
        TokenError: the token is invalid or expired, not a session token, for another user, or its
            session was ended by a logout.
    """
    return session_service(request.app).check(cfg.jwt_secret, cookie,
                                              subject_ok=lambda sub: _same(sub, cfg.username))


def session_from_request(request: Request) -> TokenClaims | None:
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
