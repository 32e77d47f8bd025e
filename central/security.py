"""Secrets of the central server: argon2 passwords (pwdlib), JWTs (PyJWT), random tokens and pairing codes.

Token formats (the prefix tells a leaked string's kind at a glance, as GitHub's ``ghp_`` does):

- API tokens: ``pcs_`` + 43 url-safe characters (256 random bits);
- device secrets and pairing poll tokens: 43 url-safe characters (256 bits);
- pairing codes: 8 characters from :data:`CODE_ALPHABET`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pcs_common.auth import (  # noqa: F401 - re-exported for the routes
    JWT_ALGORITHM, TokenClaims, TokenError, TokenService, hash_password, verify_and_update_password, verify_password,
)

TOKEN_ISSUER = "pi-camera-central"
"""``iss`` of every JWT the central server signs (RFC 7519 §4.1.1), checked by PyJWT."""
TOKEN_AUDIENCE = "pi-camera-central"
"""``aud`` of every JWT the central server signs (RFC 7519 §4.1.3): a camera's token (audience
``pi-camera-service``) is refused here even if both were given the same key, and the reverse."""
API_TOKEN_PREFIX = "pcs_"

TOKENS = TokenService(issuer=TOKEN_ISSUER, audience=TOKEN_AUDIENCE, session_name="dashboard session")
"""How the central server signs and checks its JWTs (:class:`pcs_common.auth.TokenService`)."""

# Mixed-case letters and digits without the look-alikes 0/O/o, 1/l/I/i: 24 + 23 + 8 = 55 symbols.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ" + "abcdefghjkmnpqrstuvwxyz" + "23456789"
CODE_LENGTH = 8


def random_token(nbytes: int = 32) -> str:
    """A url-safe random string of ``nbytes`` random bytes (43 characters for 32 bytes)."""
    return secrets.token_urlsafe(nbytes)


def digest(token: str) -> str:
    """SHA-256 hex digest of a high-entropy token (how API tokens and device secrets are stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def digest_matches(token: str, stored_digest: str | None) -> bool:
    """Constant-time comparison of ``digest(token)`` with ``stored_digest`` (False when None)."""
    if not stored_digest:
        return False
    return hmac.compare_digest(digest(token), stored_digest)


def new_api_token() -> str:
    """A new API token ``pcs_...``; show it once, store :func:`digest` of it."""
    return API_TOKEN_PREFIX + random_token()


def new_pairing_code() -> str:
    """An 8-character pairing code drawn uniformly from :data:`CODE_ALPHABET` (55^8 ≈ 8.4e13 codes)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    """A typed code without spaces and dashes (``"Xk7m-Pq2R"`` → ``"Xk7mPq2R"``); case is kept."""
    return code.replace(" ", "").replace("-", "").strip()


def encode_jwt(secret_key: str, subject: str, kind: str, ttl_s: int, **claims: Any) -> tuple[str, int]:
    """Sign a JWT for ``subject`` of kind ``kind`` ("access", "setup", "session") valid ``ttl_s`` s.

    Returns ``(token, expires_in_s)``. Claims: ``sub``, ``typ``, ``iss`` (:data:`TOKEN_ISSUER`), ``aud``
    (:data:`TOKEN_AUDIENCE`), ``iat``, ``exp``, ``jti`` and ``claims`` (:meth:`TokenService.encode`).
    """
    return TOKENS.encode(secret_key, subject, kind, ttl_s, **claims)


def decode_jwt(secret_key: str, token: str, kind: str) -> TokenClaims:
    """Verify ``token`` (signature, ``exp``, required claims, ``iss`` and ``aud`` by PyJWT) and that its
    ``typ`` is ``kind`` (:meth:`TokenService.decode`).

    Raises:
        TokenError: the token is invalid, expired, of another service or of another kind; the message
            says which.
    """
    return TOKENS.decode(secret_key, token, kind)


class DatabaseRevocations:
    """The central server's :class:`pcs_common.auth.RevocationStore`: the ``revoked_sessions`` table.

    In the database, so a logout survives restarts and holds for every server process on it; rows are
    purged once the token has expired anyway (:func:`central.app.purge_revoked_sessions`). ``db``: read
    with this session (the request's) instead of opening one.
    """

    def __init__(self, sessions: sessionmaker[Session], db: Session | None = None) -> None:
        self.sessions = sessions
        self.db = db

    def add(self, jti: str, exp: float) -> None:
        """Store ``jti`` until ``exp`` (s since the epoch); a repeated logout is a no-op."""
        from central.models import RevokedSession

        jti = str(jti)[:64]
        expires = dt.datetime.fromtimestamp(float(exp), dt.timezone.utc)
        with self.sessions() as db:
            if db.get(RevokedSession, jti) is None:
                db.add(RevokedSession(jti=jti, expires_at=expires))
                try:
                    db.commit()
                except IntegrityError:  # a concurrent logout of the same session stored it first
                    db.rollback()

    def __contains__(self, jti: object) -> bool:
        from central.models import RevokedSession

        key = str(jti)[:64]
        if self.db is not None:
            return self.db.get(RevokedSession, key) is not None
        with self.sessions() as db:
            return db.get(RevokedSession, key) is not None
