"""Browser sessions of both services: a session JWT in an HttpOnly cookie, its CSRF token, and logout.

A session is a :class:`~pcs_common.auth.tokens.TokenService` token of ``typ`` ``session``; its CSRF
token is :func:`~pcs_common.auth.csrf.csrf_token` of its ``jti``. A logout stores the ``jti`` in a
:class:`RevocationStore` until the token would expire anyway: the camera's
:class:`JsonFileRevocations` (``<CAMERA_STATE_DIR>/revoked_sessions.json``), the central server's
``revoked_sessions`` table (:class:`central.security.DatabaseRevocations`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pcs_common.auth.csrf import csrf_matches, csrf_token
from pcs_common.auth.tokens import SESSION_TOKEN, TokenClaims, TokenError, TokenService
from pcs_common.fileio import fsync_dir, make_private_dir, write_atomic

logger = logging.getLogger(__name__)


class SessionEnded(TokenError):
    """The session token is valid but its session was ended by a logout."""


class RevocationStore(Protocol):
    """Where ended sessions are remembered: ``jti`` -> the token's ``exp`` (s since the epoch)."""

    def add(self, jti: str, exp: float) -> None:
        """Refuse ``jti`` until ``exp`` (a second add of the same ``jti`` is a no-op)."""

    def __contains__(self, jti: object) -> bool:
        """True while ``jti`` is refused."""


@dataclass(frozen=True)
class SessionService:
    """Opens, checks and ends the sessions of one service.

    Attributes:
        tokens: the service's token issuer/verifier.
        cookie: the session cookie's name.
        revoked: where logouts are kept.
    """

    tokens: TokenService
    cookie: str
    revoked: RevocationStore

    def open(self, secret: str, subject: str, ttl_s: int, **extra: object) -> tuple[str, int, str]:
        """A new session for ``subject``: ``(session_jwt, ttl_s, csrf_token)``."""
        token, ttl = self.tokens.encode(secret, subject, SESSION_TOKEN, ttl_s, **extra)
        claims = self.tokens.decode(secret, token, SESSION_TOKEN)
        return token, ttl, self.csrf(secret, claims)

    def check(self, secret: str, cookie: str, **decode_options: object) -> TokenClaims:
        """The claims of a valid, not logged-out session cookie.

        Raises:
            TokenError: the token is invalid or expired (see :meth:`TokenService.decode`) or not a
                session token; :class:`SessionEnded` when its session was ended by a logout.
        """
        claims = self.tokens.decode(secret, cookie, SESSION_TOKEN, **decode_options)  # type: ignore[arg-type]
        if claims.jti in self.revoked:
            raise SessionEnded("session ended (logged out)")
        return claims

    def csrf(self, secret: str, claims: TokenClaims) -> str:
        """The CSRF token of the session ``claims``."""
        return csrf_token(secret, self.tokens.audience, claims.jti)

    def csrf_valid(self, secret: str, claims: TokenClaims, sent: str | None) -> bool:
        """True when ``sent`` is the CSRF token of the session ``claims`` (constant time)."""
        return csrf_matches(secret, self.tokens.audience, claims.jti, sent)

    def end(self, claims: TokenClaims) -> None:
        """Refuse the session ``claims`` from now on (logout), until its ``exp``.

        Raises:
            OSError: the store could not write it (a file store still refuses it in memory).
        """
        self.revoked.add(claims.jti, float(claims.exp))


class JsonFileRevocations:
    """A :class:`RevocationStore` in a JSON file: ``{"<jti>": <exp>, ...}``, mode 0600, written atomically.

    A logout survives a restart of the service; expired entries are dropped on every change, so the
    file holds at most the sessions of the last session lifetime. Thread-safe. ``path`` None keeps
    them in memory only. An unreadable file is logged and treated as empty (sessions are short-lived).
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
