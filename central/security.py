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

import jwt

from pi_camera_service.auth import hash_password
from pi_camera_service.auth import verify_and_update_password as _verify_and_update
from pi_camera_service.auth import verify_password as _verify

JWT_ALGORITHM = "HS256"
TOKEN_ISSUER = "pi-camera-central"
"""``iss`` of every JWT the central server signs (RFC 7519 §4.1.1), checked by PyJWT."""
TOKEN_AUDIENCE = "pi-camera-central"
"""``aud`` of every JWT the central server signs (RFC 7519 §4.1.3): a camera's token (audience
``pi-camera-service``) is refused here even if both were given the same key, and the reverse."""
API_TOKEN_PREFIX = "pcs_"

# Mixed-case letters and digits without the look-alikes 0/O/o, 1/l/I/i: 24 + 23 + 8 = 55 symbols.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ" + "abcdefghjkmnpqrstuvwxyz" + "23456789"
CODE_LENGTH = 8

# Verified against when the username does not exist, so both paths cost one argon2 computation.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class TokenError(ValueError):
    """A JWT is missing, malformed, expired, signed with another key or of the wrong kind."""


def verify_password(password: str, password_hash: str | None) -> bool:
    """Check ``password`` against ``password_hash`` in constant work: a None hash (unknown user) is
    checked against a dummy hash so the response time does not reveal whether the user exists.
    False for a corrupt hash (argon2 via :func:`pi_camera_service.auth.verify_password`)."""
    ok = _verify(password, password_hash or _DUMMY_HASH)
    return ok and password_hash is not None


def verify_and_update_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """As :func:`verify_password` (a None hash costs a dummy verification), also returning a new hash
    when the stored one uses older argon2 parameters (pwdlib ``verify_and_update``): ``(ok, new_hash)``,
    ``new_hash`` None unless ``ok`` and outdated. The caller stores it (same password, new parameters)."""
    ok, new_hash = _verify_and_update(password, password_hash or _DUMMY_HASH)
    if password_hash is None:
        return False, None
    return ok, new_hash if ok else None


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
    (:data:`TOKEN_AUDIENCE`), ``iat``, ``exp``, ``jti`` and ``claims``.
    """
    now = dt.datetime.now(dt.timezone.utc)
    payload = {
        "sub": subject,
        "typ": kind,
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
        "iat": now,
        "exp": now + dt.timedelta(seconds=ttl_s),
        "jti": secrets.token_hex(8),
        **claims,
    }
    return jwt.encode(payload, secret_key, algorithm=JWT_ALGORITHM), ttl_s


def decode_jwt(secret_key: str, token: str, kind: str) -> dict[str, Any]:
    """Verify ``token`` (signature, ``exp``, required claims, ``iss`` and ``aud`` by PyJWT) and that its
    ``typ`` is ``kind``.

    Raises:
        TokenError: the token is invalid, expired, of another service or of another kind; the message
            says which.
    """
    try:
        claims = jwt.decode(
            token, secret_key, algorithms=[JWT_ALGORITHM], audience=TOKEN_AUDIENCE, issuer=TOKEN_ISSUER,
            options={"require": ["exp", "iat", "sub", "typ"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.InvalidAudienceError:
        raise TokenError(f"token audience invalid: not issued for {TOKEN_AUDIENCE} (a token of another service)") from None
    except jwt.InvalidIssuerError:
        raise TokenError(f"token issuer invalid: not issued by {TOKEN_ISSUER}") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise TokenError("invalid token: the jti claim is missing")
    if claims.get("typ") != kind:
        if kind == "access" and claims.get("typ") == "session":
            raise TokenError("a dashboard session token is only accepted as the session cookie, not as a bearer token")
        raise TokenError(f"a {claims.get('typ')!r} token cannot be used here; a {kind!r} token is required")
    return claims
