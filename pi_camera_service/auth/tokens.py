"""The camera's JSON Web Tokens and 401 answers, on :mod:`pcs_common.auth` (PyJWT underneath).

Every token carries ``iss`` and ``aud`` ``pi-camera-service`` (checked by PyJWT), so a token the central
server signed is refused here even with the same key; ``sub`` must be ``CAMERA_USERNAME``.
"""

from __future__ import annotations

from fastapi import HTTPException

from pcs_common.auth import ACCESS_TOKEN, JWT_ALGORITHM, SESSION_TOKEN, TokenClaims, TokenError, TokenService
from pcs_common.auth import bearer_challenge as _bearer_challenge
from pcs_common.auth import header_safe as _header_safe
from pcs_common.auth import same as _same
from pcs_common.auth import unauthorized as _unauthorized
from pi_camera_service.auth.config import TOKEN_URL, AuthConfig

REALM = "pi-camera-service"
"""Realm sent in ``WWW-Authenticate`` challenges (RFC 7235 §2.2)."""

TOKEN_ISSUER = "pi-camera-service"
"""``iss`` of every token the camera signs (RFC 7519 §4.1.1); checked by PyJWT on every request."""

TOKEN_AUDIENCE = "pi-camera-service"
"""``aud`` of every token the camera signs (RFC 7519 §4.1.3): a central-server token is refused here
even if the two services were given the same key (the central server uses ``pi-camera-central``)."""

TOKENS = TokenService(
    issuer=TOKEN_ISSUER, audience=TOKEN_AUDIENCE, renew_hint=f"; get a new one from POST {TOKEN_URL}",
    access_hint=f"; get an access token from POST {TOKEN_URL}", session_name="web session",
)
"""How the camera signs and checks its tokens."""

__all__ = ["ACCESS_TOKEN", "JWT_ALGORITHM", "REALM", "SESSION_TOKEN", "TOKENS", "TOKEN_AUDIENCE", "TOKEN_ISSUER",
           "TokenClaims", "TokenError", "bearer_challenge", "decode_token", "issue_token", "unauthorized",
           "_header_safe", "_same"]


def issue_token(cfg: AuthConfig, subject: str, ttl: int | None = None, kind: str = ACCESS_TOKEN) -> tuple[str, int]:
    """Sign an HS256 JWT for ``subject``; return ``(token, expires_in)``, ``expires_in`` in seconds.

    Claims (RFC 7519 §4.1): ``sub`` = ``subject``, ``iss`` = :data:`TOKEN_ISSUER`, ``aud`` =
    :data:`TOKEN_AUDIENCE`, ``typ`` = ``kind`` (``access`` or ``session``), ``iat`` = now, ``exp`` =
    now + ``ttl`` (default ``cfg.token_ttl``) and a random ``jti``.
    """
    return TOKENS.encode(cfg.jwt_secret, subject, kind, cfg.token_ttl if ttl is None else int(ttl))


def decode_token(cfg: AuthConfig, token: str, kind: str = ACCESS_TOKEN) -> TokenClaims:
    """Verify ``token`` (:meth:`pcs_common.auth.TokenService.decode`) and that ``sub`` is the configured
    username; return its claims (a :class:`~pcs_common.auth.TokenClaims`, also readable as a dict).

    Raises:
        TokenError: with a message saying what is wrong ("token expired", "token signature
            invalid", "token is malformed ...", "token subject is not a known user", ...).
    """
    return TOKENS.decode(cfg.jwt_secret, token, kind, subject_ok=lambda sub: _same(sub, cfg.username))


def bearer_challenge(error: str | None = None, description: str | None = None) -> str:
    """The camera's ``WWW-Authenticate`` Bearer value (RFC 6750 §3), see :func:`pcs_common.auth.bearer_challenge`."""
    return _bearer_challenge(REALM, error, description)


def unauthorized(detail: str, *, error: str | None = None, challenge: str | None = None) -> HTTPException:
    """A 401 ``HTTPException`` with JSON ``detail`` and a Bearer challenge (RFC 6750 §3), or ``challenge``."""
    return _unauthorized(detail, realm=REALM, error=error, challenge=challenge)

