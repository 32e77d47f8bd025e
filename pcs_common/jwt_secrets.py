"""Checks of HS256 signing secrets shared by both services (``CAMERA_JWT_SECRET``, ``CENTRAL_SECRET_KEY``).

A JWT signed with a guessable key can be forged by anyone on the LAN, so both services refuse
well-known, short and patterned keys at start-up with :func:`jwt_secret_problem`, and say how to
generate a good one (:data:`GENERATE_SECRET_HINT`).
"""

from __future__ import annotations

import re

MIN_JWT_SECRET_LENGTH = 32
"""Shortest accepted signing secret, in characters (RFC 7518 §3.2 wants >= 256 bits for HS256)."""

GENERATE_SECRET_HINT = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
"""Shell command that prints a suitable random secret (384 bits, base64url), quoted in error messages."""

# Values copied from tutorials, docs and .env templates; compared after lower-casing and dropping
# everything that is not a letter or digit ("Change-Me" == "changeme").
_WELL_KNOWN_SECRETS = frozenset(
    {
        "secret", "secrets", "secretkey", "mysecret", "mysecretkey", "supersecret", "supersecretkey",
        "topsecret", "changeme", "changeit", "changethis", "yoursecret", "yoursecretkey",
        "yourjwtsecret", "your256bitsecret", "password", "passw0rd", "jwtsecret", "jwtsecretkey",
        "jwtkey", "key", "token", "default", "test", "testing", "admin", "qwerty", "letmein",
        "123456", "12345678", "1234567890", "thisisthesecretkey", "thisismysecretkey",
        # JWT secret printed in the seed project's build journal (public).
        "dmbgbntdxk82se3bn2xgcmftqmdlzwn9",
        # SECRET_KEY of the FastAPI "OAuth2 with Password, Bearer with JWT tokens" tutorial.
        "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",
    }
)
# Phrases that mark a template value even inside a long string ("your-super-secret-change-me-…").
_PLACEHOLDER_PHRASES = (
    "changeme", "changethis", "changeit", "replaceme", "replacethis", "yoursecret", "yoursuper",
    "secretkey", "jwtsecret", "supersecret", "placeholder", "example",
)
_MIN_DISTINCT_CHARACTERS = 8


def jwt_secret_problem(secret: str) -> str | None:
    """Say why ``secret`` is unfit to sign HS256 tokens, or return ``None`` when it is acceptable.

    Refused: well-known or template values ("secret", "changeme", "your-secret-key", the secret of
    the FastAPI tutorial, ...), anything shorter than :data:`MIN_JWT_SECRET_LENGTH` characters
    (RFC 7518 §3.2 asks for a key of at least the hash size, 256 bits, for HS256), repeated
    patterns ("aaaa...", "abcabc...") and strings with fewer than 8 distinct characters.
    """
    normalized = re.sub(r"[^a-z0-9]", "", secret.lower())
    if normalized in _WELL_KNOWN_SECRETS or any(p in normalized for p in _PLACEHOLDER_PHRASES):
        return "is a well-known or placeholder value"
    if len(secret) < MIN_JWT_SECRET_LENGTH:
        return f"is too short ({len(secret)} characters, at least {MIN_JWT_SECRET_LENGTH} needed)"
    if len(set(secret)) < _MIN_DISTINCT_CHARACTERS or _is_repetition(secret):
        return "is a repeated pattern, not a random value"
    return None


def _is_repetition(value: str) -> bool:
    """True when ``value`` is a shorter unit repeated (possibly with a partial last copy)."""
    n = len(value)
    return any(value == (value[:p] * (n // p + 1))[:n] for p in range(1, n // 2 + 1))


__all__ = ["GENERATE_SECRET_HINT", "MIN_JWT_SECRET_LENGTH", "jwt_secret_problem"]
