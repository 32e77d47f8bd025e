"""Viewer tickets: how a paired central server's dashboard opens this camera's MJPEG live view.

A browser ``<img>`` cannot send an ``Authorization`` header, and the camera must not ask the admin
for a second login, so the central server hands the browser a short-lived, single-purpose ticket that
the camera checks itself. Nothing new listens on the camera: the browser connects to the camera's API
port as before, and the camera still opens every connection to the central server itself.

* **Viewer key.** Both sides hold a 256-bit key only for tickets: the camera derives it from its
  device secret (:func:`viewer_key`, HMAC-SHA256 of :data:`VIEWER_KEY_LABEL` under the secret, RFC 2104)
  and sends it in each authenticated heartbeat (``POST /v1/devices/heartbeat``, HTTP Basic with the
  device secret); the central server stores it encrypted under a key derived from its signing key
  (``central.viewer_keys``; it stores only a digest of the secret, so it cannot derive the key). A
  secret rotation changes the key; unpairing forgets it.
* **Ticket.** A JWT (RFC 7519) signed HS256 with the viewer key, with ``aud`` =
  ``pi-camera:<device_id>`` (:func:`audience`: only this camera accepts it), ``scope`` = ``mjpeg``,
  ``sub`` (the admin), ``iat``/``exp`` at most :data:`MAX_TICKET_LIFETIME` s apart and a random ``jti``.
* **Where accepted.** Only ``GET /v1/camera/mjpeg?ticket=...``; every other route refuses ``?ticket=``
  with 401 (:func:`pi_camera_service.auth.require_auth`). Each ticket opens one stream
  (:class:`TicketVerifier` remembers used ``jti`` until they expire); a stream already open keeps running
  after the ticket expires, as a logged-in viewer's does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from typing import Any

import jwt

VIEWER_KEY_LABEL = b"pi-camera-service viewer ticket key v1"
"""HMAC message that turns the device secret into the viewer key (a fixed label: one key per secret)."""

TICKET_PARAM = "ticket"
"""Query parameter carrying the ticket (``/v1/camera/mjpeg?ticket=<JWT>``)."""

TICKET_SCOPE = "mjpeg"
"""The only ``scope`` a viewer ticket may have: it opens the MJPEG live view and nothing else."""

TICKET_ALGORITHM = "HS256"
"""JWS algorithm of tickets (RFC 7518 §3.2); nothing else is accepted."""

DEFAULT_TICKET_TTL = 60
"""Lifetime of the tickets the central server issues, s."""

MAX_TICKET_LIFETIME = 120
"""Longest ``exp - iat`` a camera accepts, s (a ticket for longer is refused even when signed)."""

CLOCK_LEEWAY = 30
"""Tolerated clock difference between the central server and the camera, s."""

MAX_TICKET_LENGTH = 1024
"""Longest ticket looked at, characters (a real one is about 330); longer ones are refused unread."""

MAX_REMEMBERED = 10_000
"""Most used ``jti`` remembered at once; beyond, new tickets are refused until old ones expire."""


class TicketError(Exception):
    """A viewer ticket was refused; ``str()`` says why (expired, wrong camera, reused...)."""


def viewer_key(device_secret: str) -> str:
    """The viewer key for ``device_secret``: base64url (no padding, 43 characters) of
    HMAC-SHA256(key=device_secret, msg=:data:`VIEWER_KEY_LABEL`)."""
    mac = hmac.new(device_secret.encode("utf-8"), VIEWER_KEY_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def audience(device_id: str) -> str:
    """The ``aud`` claim a ticket for camera ``device_id`` carries: ``pi-camera:<device_id>``."""
    return f"pi-camera:{device_id}"


def issue_ticket(key: str, device_id: str, subject: str, ttl: int = DEFAULT_TICKET_TTL) -> tuple[str, int]:
    """Sign a ticket for the MJPEG view of camera ``device_id`` on behalf of ``subject`` (an admin).

    Returns ``(ticket, expires_in)`` (s). ``ttl`` must be 1..:data:`MAX_TICKET_LIFETIME` s.

    Raises:
        ValueError: ``ttl`` out of range or an empty ``key``.
    """
    if not key:
        raise ValueError("no viewer key")
    if not 1 <= int(ttl) <= MAX_TICKET_LIFETIME:
        raise ValueError(f"ticket lifetime must be 1..{MAX_TICKET_LIFETIME} s, not {ttl}")
    now = int(time.time())
    claims = {
        "aud": audience(device_id),
        "sub": subject,
        "scope": TICKET_SCOPE,
        "iat": now,
        "exp": now + int(ttl),
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, key, algorithm=TICKET_ALGORITHM), int(ttl)


class TicketVerifier:
    """Checks tickets for one camera and lets each open one stream (thread-safe).

    Used ``jti`` are remembered until ``exp`` + :data:`CLOCK_LEEWAY` (at most :data:`MAX_REMEMBERED`).
    """

    def __init__(self) -> None:
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, ticket: str, device_id: str, device_secret: str) -> dict[str, Any]:
        """Verify ``ticket`` for the camera paired as ``device_id`` with ``device_secret`` and mark it
        used; returns its claims.

        Checks: length ≤ :data:`MAX_TICKET_LENGTH`; HS256 signature under :func:`viewer_key`; ``aud`` =
        :func:`audience`; ``scope`` = ``mjpeg``; ``exp``, ``iat``, ``sub``, ``jti`` present; not expired
        and not issued in the future (±:data:`CLOCK_LEEWAY` s); ``exp - iat`` ≤
        :data:`MAX_TICKET_LIFETIME`; ``jti`` not seen before.

        Raises:
            TicketError: with the reason.
        """
        if not ticket or len(ticket) > MAX_TICKET_LENGTH:
            raise TicketError(f"viewer ticket is empty or longer than {MAX_TICKET_LENGTH} characters")
        try:
            claims = jwt.decode(
                ticket, viewer_key(device_secret), algorithms=[TICKET_ALGORITHM], audience=audience(device_id),
                leeway=CLOCK_LEEWAY, options={"require": ["exp", "iat", "aud", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise TicketError("viewer ticket expired; reload the central server's page for a new one") from None
        except jwt.InvalidAudienceError:
            raise TicketError("viewer ticket is for another camera") from None
        except jwt.InvalidSignatureError:
            raise TicketError("viewer ticket signature invalid (not issued by this camera's central server, "
                              "or the device secret changed since)") from None
        except jwt.ImmatureSignatureError:
            raise TicketError("viewer ticket is not valid yet (the clocks of camera and central server differ)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TicketError(f"viewer ticket lacks the {exc.claim} claim") from None
        except jwt.InvalidTokenError:
            raise TicketError("viewer ticket is malformed") from None
        if claims.get("scope") != TICKET_SCOPE:
            raise TicketError(f"viewer ticket scope must be {TICKET_SCOPE!r}")
        iat, exp, jti = claims["iat"], claims["exp"], claims["jti"]
        if not all(isinstance(v, (int, float)) for v in (iat, exp)) or not isinstance(jti, str):
            raise TicketError("viewer ticket is malformed")
        if exp - iat > MAX_TICKET_LIFETIME:
            raise TicketError(f"viewer ticket lives longer than {MAX_TICKET_LIFETIME} s")
        now = time.time()
        with self._lock:
            self._used = {k: v for k, v in self._used.items() if v > now} if len(self._used) > 256 else self._used
            if jti in self._used and self._used[jti] > now:
                raise TicketError("viewer ticket already used (each opens one stream); get a new one")
            if len(self._used) >= MAX_REMEMBERED:
                raise TicketError("too many viewer tickets in use; try again in a minute")
            self._used[jti] = float(exp) + CLOCK_LEEWAY
        return claims
