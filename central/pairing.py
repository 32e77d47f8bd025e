"""Pairing with one-time codes (seed ``photobooth-pairing-notes.md``), done over a channel the camera opens.

1. An unpaired camera ``POST /v1/pairing/requests``: the server stores a pending row (code, expiry,
   SHA-256 of a poll token) and returns the code, which the camera shows.
2. The camera long-polls ``GET /v1/pairing/requests/{id}`` with its poll token; it never needs to be
   reachable from the server.
3. An admin enters the code (``POST /v1/cameras/pair``): the camera record is created and the waiting
   poll is woken, in whichever server process it waits (a ``pcs_pairing`` notification sent with the
   pairing's commit, :mod:`central.notify`; the long poll also re-reads the database every
   :data:`RECHECK_S` s, so a lost notification delays it by at most that).
4. The poll returns a device id and a freshly generated device secret (only its digest is stored). The
   credentials can be collected again (with a new secret) until the camera first authenticates with one.

Binding (docs/security.md#pairing): the request needs no credentials and the hardware id is public (the
camera's ``/health``), so each camera also sends its *pairing key*, a 256-bit secret it generated and keeps
in its state directory; the server stores only its SHA-256 digest on the request. A new request expires
only the earlier codes requested with the same key, so nobody else can expire, replace or claim the code a
camera shows: another key's request is a separate code the administrator never sees on the camera. Once
paired, the camera record keeps the key's digest, and a later pairing of that hardware id with another
key (or none) is refused with 409 ``hardware_id_bound`` until an administrator removes the camera.
Requests without a key (cameras older than this scheme) are accepted and never touch keyed ones.

Codes: 8 symbols from 55 (:data:`central.security.CODE_ALPHABET`), 55^8 ≈ 8.4 × 10^13; single use;
expire after ``pairing_code_ttl`` (600 s); wrong, expired and reused codes are counted and limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from central.models import Camera, PairingAttempt, PairingRequest, utcnow
from central.notify import PAIRING_CHANNEL, notify
from central.security import digest, digest_matches, new_pairing_code, normalise_code, random_token

log = logging.getLogger(__name__)

# Rows of expired or used requests are kept this long, so a reused code is reported as reused.
KEEP_FINISHED = dt.timedelta(days=1)


RECHECK_S = 10.0
"""A waiting long poll re-reads its request at least this often, s: the most a lost wake-up (a
notification sent while this process's listener was reconnecting) delays the answer."""

COUNTED_REFUSALS = frozenset({"wrong_code", "expired_code", "used_code"})
"""``PairingError.error`` values of a refused code: they use up the guessing budgets (429 beyond)."""


class PairingError(Exception):
    """A refused pairing step: ``status`` (HTTP), ``error`` (machine code) and a readable message."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


@dataclass
class Issued:
    """A new pairing request: what the camera receives (the poll token is never stored)."""

    request: PairingRequest
    poll_token: str


class PairingWaiters:
    """Wakes the long polls of pairing requests waiting in this process (asyncio events by request id).

    :meth:`wake` is called by the pairing route of this process and, on PostgreSQL, by the
    ``pcs_pairing`` listener for pairings made by any process (:mod:`central.notify`).
    """

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def watch(self, request_id: str) -> Iterator[asyncio.Event]:
        """An event set by every :meth:`wake` of ``request_id`` while the block runs. Enter it *before*
        reading the database, so that a pairing committed between that read and the wait is not missed."""
        event = asyncio.Event()
        self._events.setdefault(request_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._events.get(request_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._events[request_id]

    async def wait(self, request_id: str, timeout_s: float) -> None:
        """Wait until :meth:`wake` for ``request_id`` or ``timeout_s`` s, whichever comes first."""
        with self.watch(request_id) as event:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_s)

    def wake(self, request_id: str) -> None:
        """Wake the polls waiting on ``request_id`` (no-op when none waits). Call on the event loop."""
        for event in self._events.get(request_id, ()):
            event.set()

    def wake_all(self) -> None:
        """Wake every waiting poll (each re-reads its request): after the listener reconnected, since
        notifications sent meanwhile are lost."""
        for events in self._events.values():
            for event in events:
                event.set()

    def waiting(self) -> int:
        """Polls waiting now."""
        return sum(len(events) for events in self._events.values())


async def wait_for_pairing(waiters: PairingWaiters, request_id: str, check: Any, wait_s: float) -> Any:
    """The long poll of ``request_id``: ``await check()`` (-> ``(result, expires_at)``), then while the
    result is None wait for a wake-up, at most :data:`RECHECK_S` s at a time, and check again, until
    ``wait_s`` s have passed or the code expires; returns the last ``(result, expires_at)``.

    Raises:
        PairingError: from ``check`` (unknown request, wrong token, expired, already claimed).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    with waiters.watch(request_id) as woken:
        result, expires_at = await check()
        if result is None and wait_s > 0:
            log.debug("pairing request %s: long poll waiting up to %.0f s", request_id, wait_s)
        while result is None and (left := deadline - loop.time()) > 0:
            until_expiry = max(0.0, (expires_at - utcnow()).total_seconds()) + 0.5
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(woken.wait(), min(left, until_expiry, RECHECK_S))
            woken.clear()
            result, expires_at = await check()
    return result, expires_at


def purge(db: Session, now: dt.datetime | None = None) -> int:
    """Delete pairing requests finished (expired or used) more than a day ago; returns rows deleted."""
    cutoff = (now or utcnow()) - KEEP_FINISHED
    result = db.execute(delete(PairingRequest).where(PairingRequest.expires_at < cutoff))
    db.execute(delete(PairingAttempt).where(PairingAttempt.at < cutoff))
    db.commit()
    return result.rowcount or 0


def pending_count(db: Session, now: dt.datetime | None = None) -> int:
    """Unexpired, unused pairing codes."""
    now = now or utcnow()
    return db.scalar(
        select(func.count()).select_from(PairingRequest)
        .where(PairingRequest.used_at.is_(None), PairingRequest.expires_at > now)
    ) or 0


def create_request(db: Session, info: dict[str, Any], address: str, ttl_s: int, max_pending: int) -> Issued:
    """Store a pending request for the camera described by ``info`` (``hardware_id``, ``name``,
    ``version``, ``api_url``, ``rtsp_url``, ``pairing_key``). The earlier unused codes of the same
    hardware id *and* pairing key expire at once; other keys' codes are left alone.

    Raises:
        PairingError: 503 ``too_many_pending`` when ``max_pending`` codes are already outstanding.
    """
    now = utcnow()
    info = dict(info)
    key = info.pop("pairing_key", None)
    key_hash = digest(key) if key else None
    # The camera's earlier codes expire now (kept, so an admin typing one learns it expired) -- only
    # those requested with the same pairing key: nobody else can expire the code a camera shows.
    same_key = (PairingRequest.pairing_key_hash == key_hash if key_hash is not None
                else PairingRequest.pairing_key_hash.is_(None))
    db.execute(update(PairingRequest).where(
        PairingRequest.hardware_id == info["hardware_id"], same_key, PairingRequest.used_at.is_(None),
        PairingRequest.expires_at > now).values(expires_at=now))
    if pending_count(db, now) >= max_pending:
        db.rollback()
        raise PairingError(503, "too_many_pending",
                           f"{max_pending} pairing codes are already waiting; try again when some have expired")
    poll_token = random_token()
    for _ in range(5):  # a collision among live codes is ~1e-11 likely; retry anyway
        row = PairingRequest(code=new_pairing_code(), poll_token_hash=digest(poll_token), client_address=address,
                             created_at=now, expires_at=now + dt.timedelta(seconds=ttl_s),
                             pairing_key_hash=key_hash, **info)
        db.add(row)
        try:
            db.commit()
            return Issued(row, poll_token)
        except IntegrityError:
            db.rollback()
    raise PairingError(503, "code_space_busy", "could not allocate a unique pairing code; try again")


def find_for_poll(db: Session, request_id: str, poll_token: str) -> PairingRequest:
    """The request ``request_id`` if ``poll_token`` is its token.

    Raises:
        PairingError: 404 unknown request (purged a day after it ended), 401 wrong poll token.
    """
    row = db.get(PairingRequest, request_id)
    if row is None:
        raise PairingError(404, "unknown_request", "no such pairing request; request a new code")
    if not digest_matches(poll_token, row.poll_token_hash):
        raise PairingError(401, "invalid_poll_token", "wrong poll token for this pairing request")
    return row


def poll_result(db: Session, row: PairingRequest, now: dt.datetime | None = None) -> dict[str, Any] | None:
    """What a poll returns now: the credentials once paired (a new secret on every collection until the
    camera first uses one), None while still pending.

    Raises:
        PairingError: 410 when the code expired unused, or the credentials were already used.
    """
    now = now or utcnow()
    db.refresh(row)
    if row.camera_id is None:
        if row.expires_at <= now:
            raise PairingError(410, "expired", "this pairing code expired; request a new one")
        return None
    camera = db.get(Camera, row.camera_id)
    if camera is None:
        raise PairingError(410, "unpaired", "the camera was unpaired; request a new code")
    if camera.claimed_at is not None:
        raise PairingError(410, "already_claimed", "these credentials were already collected and used")
    secret = random_token()
    camera.secret_hash = digest(secret)
    db.commit()
    return {"status": "paired", "device_id": camera.id, "device_secret": secret, "camera_name": camera.name}


def pair(db: Session, code: str, name: str, admin_id: str, address: str) -> tuple[Camera, PairingRequest]:
    """Pair the camera showing ``code`` under ``name``; records the failure when the code is refused.

    A camera already known by its hardware id keeps its record (id and history) and gets new
    credentials; its old secret stops working at once.

    Raises:
        PairingError: 404 ``wrong_code``, 410 ``expired_code`` or 409 ``used_code`` (counted as failed
            attempts); 409 ``hardware_id_bound`` when the hardware id belongs to a camera paired with
            another pairing key (not counted: the code was right).
    """
    now = utcnow()
    code = normalise_code(code)
    row = db.scalar(select(PairingRequest).where(PairingRequest.code == code))
    reason = None
    if row is None:
        reason, error = "wrong", PairingError(
            404, "wrong_code", "no camera is waiting with this code; check it on the camera (letters are case-sensitive)")
    elif row.used_at is not None:
        reason, error = "reused", PairingError(409, "used_code", "this code was already used; a code pairs one camera once")
    elif row.expires_at <= now:
        reason, error = "expired", PairingError(
            410, "expired_code", "this code expired; the camera shows a new one within a minute")
    if reason is not None:
        db.add(PairingAttempt(at=now, admin_id=admin_id, client_address=address, reason=reason))
        db.commit()
        raise error
    camera = db.scalar(select(Camera).where(Camera.hardware_id == row.hardware_id))
    if camera is not None and camera.pairing_key_hash is not None and (
            row.pairing_key_hash is None or not hmac.compare_digest(camera.pairing_key_hash, row.pairing_key_hash)):
        raise PairingError(
            409, "hardware_id_bound",
            f"the camera {camera.name!r} with this hardware id was paired with another pairing key: this code does "
            "not come from that camera (or its state directory was reset); remove that camera first to pair anew")
    if camera is None:
        camera = Camera(hardware_id=row.hardware_id, name=name)
        db.add(camera)
    camera.name = name
    camera.secret_hash = None
    camera.retiring_secret_hash = None
    camera.rotate_requested = False
    camera.disabled = False
    camera.claimed_at = None
    camera.paired_at = now
    camera.paired_by = admin_id
    camera.version = row.version
    camera.api_url = row.api_url
    camera.rtsp_url = row.rtsp_url
    camera.pairing_key_hash = row.pairing_key_hash
    camera.viewer_key_sealed = None  # the old secret's viewer key: the camera sends its new one
    db.flush()
    row.camera_id = camera.id
    row.used_at = now
    notify(db, PAIRING_CHANNEL, row.id)  # delivered with the commit, to the long poll in any process
    db.commit()
    log.info("camera %s paired as %r (%s)", camera.hardware_id, name, camera.id)
    return camera, row


def failures_since(db: Session, since: dt.datetime) -> dict[str, int]:
    """Refused pairing attempts since ``since`` by reason (``wrong``, ``expired``, ``reused``)."""
    rows = db.execute(select(PairingAttempt.reason, func.count()).where(PairingAttempt.at >= since)
                      .group_by(PairingAttempt.reason)).all()
    return {reason: count for reason, count in rows}
