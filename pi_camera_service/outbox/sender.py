"""Draining the outbox to the central server: :class:`OutboxSender`; see docs/outbox.md.

While the camera is paired
(:meth:`CentralLink.device_credentials <pi_camera_service.central_link.CentralLink.device_credentials>`),
it posts face events in batches (``POST /v1/ingest/events``, at most
:data:`~pcs_common.protocol.MAX_BATCH_ITEMS` items and about ``BATCH_BYTES`` per request) and photos one
by one (``POST /v1/ingest/photos``), deleting items only once the server acknowledged them (``stored``
or ``duplicate``). Failures (network, 401, 403, 5xx, unreadable answers) keep everything and retry with
:class:`~pcs_common.backoff.Backoff` (cap ``CAMERA_CENTRAL_RETRY_MAX_DELAY``, 300 s). Requests are built
and answers checked with :mod:`pcs_common.protocol`'s models.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import ValidationError

from pcs_common import protocol
from pcs_common.backoff import Backoff
from pcs_common.protocol import (
    EventBatch,
    EventBatchAnswer,
    FaceEventItem,
    PhotoAnswer,
    PhotoUpload,
    ProtocolError,
)
from pi_camera_service import __version__
from pi_camera_service.central_link.replies import cancel_and_close
from pi_camera_service.outbox.store import Outbox, OutboxItem, iso_utc

log = logging.getLogger("pi_camera_service.outbox_sender")  # the name journal filters have always used

MAX_BATCH = protocol.MAX_BATCH_ITEMS
"""Most items per ``POST /v1/ingest/events`` (protocol limit)."""
BATCH_BYTES = 8 * 1024 * 1024
"""Stop adding items to a batch once it holds this many stored bytes (one item is always sent)."""
REQUEST_TIMEOUT = 30.0
"""Timeout of one ingest request (connect, read, write), s."""
IDLE_CHECK = 30.0
"""While idle, the sender looks at the outbox (and applies the age bound) at least this often, s."""

class _Retry(Exception):
    """A delivery failed in a way that keeps the items (network, 401, 403, 5xx, bad answer)."""


def _text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "detail"):
            if isinstance(body.get(key), str):
                return f"HTTP {response.status_code} {body[key][:200]}"
    return f"HTTP {response.status_code}"


class OutboxSender:
    """Drains the outbox to the central server (see the module docstring).

    Args:
        outbox: an open outbox.
        central_url: the central server's base URL (None: the sender stays ``disabled``).
        credentials: ``() -> (device_id, device_secret) | None`` (``CentralLink.device_credentials``).
        retry_initial: first retry delay, s.
        retry_max_delay: cap of the retry delay, s.
        unpaired_poll: how often to look for credentials while unpaired, s.
        before_round: optional blocking ``() -> None`` run in a thread before each round (the
            :class:`StillsFollower`'s ``poll``); its errors are logged.
        transport: httpx transport (None: the network).

    ``await start()``, ``await stop()``; :meth:`state` any time.
    """

    def __init__(self, outbox: Outbox, central_url: str | None,
                 credentials: Callable[[], tuple[str, str] | None], *, retry_initial: float = 1.0,
                 retry_max_delay: float = 300.0, unpaired_poll: float = 2.0,
                 before_round: Callable[[], Any] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.outbox = outbox
        self.central_url = central_url
        self._credentials = credentials
        self._backoff = Backoff(min(retry_initial, retry_max_delay), retry_max_delay)
        self.unpaired_poll = float(unpaired_poll)
        self._before_round = before_round
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state = "disabled" if not central_url else "starting"
        self._next_attempt_at: float | None = None

    # ------------------------------------------------------------------ public
    def state(self) -> dict[str, Any]:
        """``{"state": "disabled" | "unpaired" | "idle" | "sending" | "retrying", "next_attempt_at":
        ISO-8601 UTC of the next retry or None}``. ``disabled``: no central server configured."""
        nxt = self._next_attempt_at
        return {"state": self._state, "next_attempt_at": iso_utc(nxt) if nxt else None}

    def wake(self) -> None:
        """Ask for a round soon (thread-safe; :meth:`Outbox.add` listener). A retry delay is kept."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # loop closed at shutdown
                loop.call_soon_threadsafe(event.set)

    async def start(self) -> None:
        """Start the task (nothing when no central URL is configured; idempotent)."""
        if not self.central_url or (self._task is not None and not self._task.done()):
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(
            base_url=self.central_url, timeout=REQUEST_TIMEOUT, transport=self._transport,
            headers={"User-Agent": f"pi-camera-service/{__version__}", "Accept": "application/json"},
            follow_redirects=False,
        )
        self.outbox.add_listener(self.wake)
        self._task = asyncio.create_task(self._run(), name="outbox-sender")

    async def stop(self) -> None:
        """Cancel the task (an unanswered request leaves its items queued) and close the client."""
        task, self._task = self._task, None
        client, self._client = self._client, None
        await cancel_and_close(task, client)

    # ------------------------------------------------------------------ loop
    async def _wait(self, delay: float, wakeable: bool) -> None:
        assert self._wake is not None
        if not wakeable:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)
        self._wake.clear()

    async def _run(self) -> None:
        while True:
            if self._before_round is not None:
                try:
                    await asyncio.to_thread(self._before_round)
                except Exception as exc:  # noqa: BLE001
                    log.warning("outbox: %s", exc)
            creds = self._credentials()
            if creds is None:
                self._state = "unpaired"
                await self._wait(self.unpaired_poll, wakeable=False)
                continue
            try:
                await asyncio.to_thread(self.outbox.enforce_limits)
                depth = await asyncio.to_thread(self.outbox.depth)
            except Exception as exc:  # noqa: BLE001 - a broken disk must not end the task
                log.error("outbox: cannot read the outbox: %s", exc)
                await self._wait(self._backoff.next_delay(), wakeable=False)
                continue
            if depth == 0:
                self._state = "idle"
                await self._wait(IDLE_CHECK if self._before_round is None else self.unpaired_poll, wakeable=True)
                continue
            self._state = "sending"
            try:
                await self._round(creds)
            except _Retry as exc:
                delay = self._backoff.next_delay()
                self._state = "retrying"
                self._next_attempt_at = time.time() + delay
                log.warning("outbox: delivery failed (%s); %d item(s) kept, next try in %.1f s", exc, depth, delay)
                await self._wait(delay, wakeable=False)
                self._next_attempt_at = None
                continue
            self._backoff.reset()

    async def _round(self, creds: tuple[str, str]) -> None:
        """Send one batch of events and one photo. Raises :class:`_Retry` on a failure that keeps them."""
        events = await asyncio.to_thread(self.outbox.peek, MAX_BATCH, "face_event", BATCH_BYTES)
        if events:
            await self._send_events(creds, events)
        photos = await asyncio.to_thread(self.outbox.peek, 1, "photo")
        if photos:
            await self._send_photo(creds, photos[0])

    async def _fail(self, item_ids: list[str], message: str) -> None:
        await asyncio.to_thread(self.outbox.note_failure, item_ids, message)
        raise _Retry(message)

    async def _send_events(self, creds: tuple[str, str], items: list[OutboxItem]) -> None:
        assert self._client is not None
        wire, invalid = await asyncio.to_thread(events_body, items)
        for item_id, reason in invalid:  # never accepted by any server: dropped, counted, not retried
            log.error("outbox: item %s breaks the protocol and is dropped: %s", item_id, reason)
            await asyncio.to_thread(self.outbox.reject, item_id, reason)
        if not wire:
            return
        ids = [i.item_id for i in wire]
        body = EventBatch(items=wire).model_dump_json().encode("utf-8")
        try:
            response = await self._client.post(protocol.INGEST_EVENTS_PATH, content=body, auth=creds,
                                               headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            await self._fail(ids, f"central server unreachable: {type(exc).__name__}: {exc}"[:300])
        if response.status_code != 200:
            await self._fail(ids, f"events refused: {_text(response)}")
        try:
            answer = EventBatchAnswer.model_validate_json(response.content)
        except (ValueError, ValidationError):
            await self._fail(ids, "unreadable answer to the events")
        answers = {r.item_id: r for r in answer.results if r.item_id is not None}
        acked = [i for i in ids if i in answers and answers[i].status in protocol.ACKNOWLEDGED]
        rejected = [(i, answers[i].reason or "rejected") for i in ids
                    if i in answers and answers[i].status == "rejected"]
        if acked:
            await asyncio.to_thread(self.outbox.ack, acked)
        for item_id, reason in rejected:
            await asyncio.to_thread(self.outbox.reject, item_id, reason)
        missing = [i for i in ids if i not in answers]
        if missing:
            await self._fail(missing, f"the central server did not answer for {len(missing)} item(s)")
        await asyncio.to_thread(self.outbox.clear_error)
        log.debug("outbox: %d event(s) delivered, %d rejected", len(acked), len(rejected))

    async def _send_photo(self, creds: tuple[str, str], item: OutboxItem) -> None:
        assert self._client is not None
        path = item.file_named(f"{item.item_id}-photo.jpg")
        try:
            data = await asyncio.to_thread(path.read_bytes) if path is not None else None
        except OSError:
            data = None
        if data is None:
            await asyncio.to_thread(self.outbox.reject, item.item_id, "photo file missing on the camera")
            return
        payload = item.payload
        try:
            fields = PhotoUpload.parse({"item_id": item.item_id, "kind": payload.get("kind", "snapshot"),
                                        "captured_at": payload.get("captured_at") or iso_utc(item.created_at),
                                        "metadata": payload.get("metadata")})
        except ProtocolError as exc:
            await asyncio.to_thread(self.outbox.reject, item.item_id, f"photo breaks the protocol: {exc}")
            return
        try:
            response = await self._client.post(
                protocol.INGEST_PHOTOS_PATH, data=fields.form(), auth=creds,
                files={PhotoUpload.FILE_FIELD: (f"{item.item_id}.jpg", data, "image/jpeg")})
        except httpx.HTTPError as exc:
            await self._fail([item.item_id], f"central server unreachable: {type(exc).__name__}: {exc}"[:300])
        if response.status_code == 422:
            await asyncio.to_thread(self.outbox.reject, item.item_id, f"photo rejected: {_text(response)}")
            return
        status = None
        if response.status_code == 200:
            with contextlib.suppress(ValueError, ValidationError):
                status = PhotoAnswer.model_validate_json(response.content).status
        if status not in protocol.ACKNOWLEDGED:
            await self._fail([item.item_id], f"photo refused: {_text(response)}")
        await asyncio.to_thread(self.outbox.ack, [item.item_id])
        await asyncio.to_thread(self.outbox.clear_error)


def events_body(items: list[OutboxItem]) -> tuple[list[FaceEventItem], list[tuple[str, str]]]:
    """The wire items of ``POST /v1/ingest/events`` for stored ``face_event`` items (images read from
    their files and base64-encoded; a missing file is sent as null), validated by
    :class:`pcs_common.protocol.FaceEventItem`; and ``(item_id, reason)`` of the items the protocol
    refuses (blocking: reads files)."""

    def b64(item: OutboxItem, name: str | None) -> str | None:
        path = item.file_named(f"{item.item_id}-{name}") if name else None
        if path is None:
            return None
        try:
            return base64.b64encode(path.read_bytes()).decode("ascii")
        except OSError:
            return None

    wire, invalid = [], []
    for item in items:
        p = item.payload
        try:
            faces = [{"box": f["box"], "encoding": f.get("encoding"), "crop_jpeg": b64(item, f.get("crop_file"))}
                     for f in p.get("faces", [])]
            wire.append(FaceEventItem.parse({
                "item_id": item.item_id, "type": "face_event", "captured_at": p["captured_at"],
                "track_id": p["track_id"], "event": p["event"], "faces": faces,
                "profiles": [{"box": pr["box"]} for pr in p.get("profiles", [])],
                "frame_jpeg": b64(item, p.get("frame_file")),
            }))
        except (KeyError, TypeError) as exc:
            invalid.append((item.item_id, f"stored item is incomplete ({type(exc).__name__}: {exc})"))
        except ProtocolError as exc:
            invalid.append((item.item_id, str(exc)))
    return wire, invalid
