"""CSRF tokens of cookie sessions: a stateless HMAC-based synchroniser token (OWASP CSRF cheat sheet).

``base64url(HMAC-SHA256(secret, "<audience> csrf v1:" + jti))`` without padding (43 characters): only
the server can compute it, it changes with every login (the session token's ``jti``), and nothing
needs storing. A cross-site page can neither read it (it is only in the page or in a same-origin JSON
answer) nor derive it from the HttpOnly cookie it cannot read. The audience in the context keeps the
camera's and the central server's tokens apart even under one key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from pcs_common.auth.compare import same

CSRF_HEADER = "X-CSRF-Token"
"""Header that cookie-authenticated state-changing requests must carry."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that need no CSRF token with cookie authentication (they change nothing, RFC 9110 §9.2.1)."""


def csrf_token(secret: str, audience: str, jti: str) -> str:
    """The CSRF token bound to the session whose token has id ``jti`` (43 url-safe characters)."""
    message = f"{audience} csrf v1:{jti}".encode()
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def csrf_matches(secret: str, audience: str, jti: str, sent: str | None) -> bool:
    """True when ``sent`` is the CSRF token of session ``jti`` (compared in constant time)."""
    return bool(sent) and same(sent, csrf_token(secret, audience, jti))
