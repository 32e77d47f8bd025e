"""Filling and draining the outbox (:mod:`pi_camera_service.outbox`); see docs/outbox.md.

* :class:`DetectionRecorder`: the detection listener. On the detection thread it only runs the
  :class:`~pi_camera_service.detection.tracks.FaceTracker` and hands the (rare) track events to its
  own worker thread, which takes the camera's newest full-size frame, crops each face to a JPEG and
  records a ``face_event`` item. Neither thread ever touches the network.
* :class:`StillsFollower`: with ``CAMERA_OUTBOX_STILLS=true``, queues every new still of the
  history as a ``photo`` item (``kind`` ``still``); :func:`queue_still` queues one on request.
* :class:`OutboxSender`: an asyncio task that, while the camera is paired
  (:meth:`CentralLink.device_credentials <pi_camera_service.central_link.CentralLink.device_credentials>`),
  posts face events in batches (``POST /v1/ingest/events``, at most 100 items and about
  ``BATCH_BYTES`` per request) and photos one by one (``POST /v1/ingest/photos``), deleting items
  only once the server acknowledged them (``stored`` or ``duplicate``). Failures (network, 401, 403,
  5xx, unreadable answers) keep everything and retry with
  :class:`~pcs_common.backoff.Backoff` (cap ``CAMERA_CENTRAL_RETRY_MAX_DELAY``, 300 s).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from pi_camera_service import __version__
from pcs_common.backoff import Backoff
from pi_camera_service.central_link import cancel_and_close
from pi_camera_service.detection.tracks import FaceTracker, TrackEvent
from pi_camera_service.frames import encode_jpeg
from pi_camera_service.outbox import Outbox, iso_utc

log = logging.getLogger(__name__)

EVENTS_PATH = "/v1/ingest/events"
PHOTOS_PATH = "/v1/ingest/photos"
MAX_BATCH = 100
"""Most items per ``POST /v1/ingest/events`` (protocol limit)."""
BATCH_BYTES = 8 * 1024 * 1024
"""Stop adding items to a batch once it holds this many stored bytes (one item is always sent)."""
MAX_CROP_BYTES = 200 * 1024
"""Largest face crop JPEG the protocol accepts, bytes."""
MAX_FRAME_BYTES = 2 * 1024 * 1024
"""Largest full-frame JPEG the protocol accepts, bytes."""
CROP_MARGIN = 0.25
"""The crop extends the face box by this fraction of its size on every side."""
REQUEST_TIMEOUT = 30.0
"""Timeout of one ingest request (connect, read, write), s."""
IDLE_CHECK = 30.0
"""While idle, the sender looks at the outbox (and applies the age bound) at least this often, s."""


# ------------------------------------------------------------------------------------------------
# Images
# ------------------------------------------------------------------------------------------------


def fit_jpeg(bgr: np.ndarray, limit: int, quality: int = 90) -> bytes | None:
    """JPEG of ``bgr`` ((H, W, 3) uint8) no larger than ``limit`` bytes: the quality is lowered to 50,
    then the image halved, until it fits; None when even a 16 px wide image does not."""
    image = bgr
    while image.shape[1] >= 16:
        for q in (quality, 75, 50):
            data = encode_jpeg(image, q)
            if len(data) <= limit:
                return data
        image = cv2.resize(image, (image.shape[1] // 2, max(1, image.shape[0] // 2)), interpolation=cv2.INTER_AREA)
    return None


def crop_box(bgr: np.ndarray, box: tuple[int, int, int, int], margin: float = CROP_MARGIN) -> np.ndarray | None:
    """The part of ``bgr`` around ``box`` ((x, y, w, h) px) grown by ``margin`` of its size on each side,
    clipped to the image; None when nothing is left."""
    h_img, w_img = bgr.shape[:2]
    x, y, w, h = box
    mx, my = int(w * margin), int(h * margin)
    x0, y0 = max(0, x - mx), max(0, y - my)
    x1, y1 = min(w_img, x + w + mx), min(h_img, y + h + my)
    if x1 <= x0 or y1 <= y0:
        return None
    return bgr[y0:y1, x0:x1]


def newest_frame_bgr(camera: Any) -> np.ndarray | None:
    """The camera's newest full-size frame as (H, W, 3) BGR, or None when there is none yet.

    Uses ``camera.latest_frame()`` when the source has it (software sources: no encoding), else
    decodes ``camera.snapshot_jpeg(None, 95)`` (the Pi camera: waits for the next frame)."""
    latest = getattr(camera, "latest_frame", None)
    if callable(latest):
        frame = latest()
        return frame.bgr() if frame is not None else None
    try:
        jpeg = camera.snapshot_jpeg(None, 95)
    except Exception as exc:  # noqa: BLE001 - no frame yet, camera re-opening...
        log.debug("outbox: no frame for face crops: %s", exc)
        return None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return image


# ------------------------------------------------------------------------------------------------
# Producers
# ------------------------------------------------------------------------------------------------


class DetectionRecorder:
    """Detection listener turning track events into ``face_event`` outbox items.

    Args:
        outbox: an open outbox.
        camera: the running camera (``latest_frame()`` or ``snapshot_jpeg()``, ``width``, ``height``).
        tracker: the track logic (its ``update_interval`` rate-limits the events).
        full_frame: also store the whole frame as a JPEG (<= 2 MB) with each event.
        queue_size: track events waiting for the worker; more are counted in ``events_skipped``.

    :meth:`on_detection` is the listener; :meth:`start` / :meth:`stop` run the worker thread.
    """

    def __init__(self, outbox: Outbox, camera: Any, tracker: FaceTracker, *, full_frame: bool = False,
                 queue_size: int = 32) -> None:
        self.outbox = outbox
        self.camera = camera
        self.tracker = tracker
        self.full_frame = full_frame
        self._queue: queue.Queue[list[TrackEvent] | None] = queue.Queue(queue_size)
        self._thread: threading.Thread | None = None
        self.events_recorded = 0
        self.events_skipped = 0
        self.errors = 0
        self.last_error: str | None = None

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="outbox-recorder", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued events and stop the worker, waiting up to ``timeout`` s (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        thread.join(timeout)

    def on_detection(self, result: Any) -> None:
        """Detection listener (detection thread): track, and queue the events for the worker (never
        blocks and never raises; ignored once :meth:`stop` was called)."""
        if self._thread is None:
            return
        try:
            events = self.tracker.update(result)
        except Exception:
            log.exception("outbox: face tracking failed")
            return
        if not events:
            return
        try:
            self._queue.put_nowait(events)
        except queue.Full:
            self.events_skipped += len(events)
            log.warning("outbox: %d face event(s) skipped, the recorder is behind", len(events))

    def _run(self) -> None:
        while True:
            events = self._queue.get()
            if events is None:
                return
            try:
                self.record(events)
            except Exception as exc:  # noqa: BLE001 - count, log, go on
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("outbox: cannot record %d face event(s): %s", len(events), self.last_error)

    def record(self, events: list[TrackEvent]) -> list[str]:
        """Record ``events`` (from one result) as outbox items, cropping faces from the newest frame;
        returns the item ids.

        Raises:
            OSError, sqlite3.Error: from :meth:`Outbox.add` (nothing of the failing item is kept).
        """
        bgr = newest_frame_bgr(self.camera)
        frame_jpeg = fit_jpeg(bgr, MAX_FRAME_BYTES, 85) if (self.full_frame and bgr is not None) else None
        ids = []
        for event in events:
            files: dict[str, bytes] = {}
            payload = face_event_payload(event)
            if event.face is not None and bgr is not None:
                crop = crop_box(bgr, event.box)
                data = fit_jpeg(crop, MAX_CROP_BYTES) if crop is not None else None
                if data is not None:
                    files["crop0.jpg"] = data
                    payload["faces"][0]["crop_file"] = "crop0.jpg"
            if frame_jpeg is not None:
                files["frame.jpg"] = frame_jpeg
                payload["frame_file"] = "frame.jpg"
            ids.append(self.outbox.add("face_event", payload, files, created_at=time.time()))
            self.events_recorded += 1
            log.debug("outbox: %s event of track %s recorded", event.event, event.track_id)
        return ids

    def stats(self) -> dict[str, Any]:
        """``{events_recorded, events_skipped, errors, last_error, active_tracks}``."""
        return {"events_recorded": self.events_recorded, "events_skipped": self.events_skipped,
                "errors": self.errors, "last_error": self.last_error,
                "active_tracks": self.tracker.active_tracks}


def face_event_payload(event: TrackEvent) -> dict[str, Any]:
    """The stored payload of a track event: the wire item without ``item_id`` and images.

    ``{"type": "face_event", "captured_at": ISO-8601 UTC, "track_id", "event", "faces": [{"box":
    [x, y, w, h], "encoding": [128 floats] | None}], "profiles": [{"box": [...]}]}`` (boxes in
    main-stream px). A track follows one face, frontal (in ``faces``) or in profile (in ``profiles``).
    """
    faces, profiles = [], []
    if event.face is not None:
        enc = [float(v) for v in event.face.encoding] if event.face.encoding else None
        faces.append({"box": list(event.box), "encoding": enc})
    else:
        profiles.append({"box": list(event.box)})
    return {
        "type": "face_event",
        "captured_at": iso_utc(event.result.frame_timestamp),
        "track_id": event.track_id,
        "event": event.event,
        "faces": faces,
        "profiles": profiles,
    }


def queue_still(outbox: Outbox, stills: Any, still_id: str) -> str:
    """Queue the still ``still_id`` of the history as a ``photo`` item (``kind`` ``still``); returns the
    item id. The JPEG is copied into the outbox (retention may delete the still before it is sent).

    Raises:
        InvalidId: ``still_id`` is malformed (:mod:`pi_camera_service.stills.store`).
        KeyError: no such still.
        OSError, sqlite3.Error: reading the still or recording the item failed.
    """
    record = stills.store.get(still_id)
    if record is None:
        raise KeyError(still_id)
    data = Path(stills.store.jpeg_path(still_id)).read_bytes()
    meta: dict[str, Any] = {"still_id": still_id, "trigger": getattr(record, "trigger", None),
                            "width": getattr(record, "width", None), "height": getattr(record, "height", None)}
    payload = {"kind": "still", "captured_at": iso_utc(record.taken_at), "metadata": meta}
    return outbox.add("photo", payload, {"photo.jpg": data})


def queue_snapshot(outbox: Outbox, jpeg: bytes, width: int, height: int) -> str:
    """Queue a snapshot JPEG (taken now) as a ``photo`` item of ``kind`` ``snapshot``; returns the item id.

    Raises:
        OSError, sqlite3.Error: recording the item failed.
    """
    payload = {"kind": "snapshot", "captured_at": iso_utc(time.time()),
               "metadata": {"width": width, "height": height}}
    return outbox.add("photo", payload, {"photo.jpg": jpeg})


class StillsFollower:
    """Queues every still taken after it first ran (``CAMERA_OUTBOX_STILLS=true``).

    The id of the newest still queued is kept in the outbox (``last_queued_still``), so a restart
    neither queues a still twice nor misses those taken while the sender was down. Call
    :meth:`poll` periodically (blocking: a thread).
    """

    MARK = "last_queued_still"

    def __init__(self, outbox: Outbox, stills: Any) -> None:
        self.outbox = outbox
        self.stills = stills

    def poll(self) -> int:
        """Queue the stills newer than the mark; returns how many were queued.

        Raises:
            OSError, sqlite3.Error: recording failed (the mark stays before the failing still).
        """
        records, _ = self.stills.store.page(200, None, None)  # newest first
        mark = self.outbox.get_text(self.MARK)
        if mark is None:
            # first run: start from now on (an existing history is not uploaded wholesale)
            self.outbox.set_text(self.MARK, records[0].id if records else "")
            return 0
        new = [r for r in records if r.id > mark]
        queued = 0
        for record in reversed(new):  # oldest first
            try:
                queue_still(self.outbox, self.stills, record.id)
            except (KeyError, FileNotFoundError):
                log.debug("outbox: still %s deleted before it could be queued", record.id)
            self.outbox.set_text(self.MARK, record.id)
            queued += 1
        return queued


# ------------------------------------------------------------------------------------------------
# The sender
# ------------------------------------------------------------------------------------------------


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

    async def _send_events(self, creds: tuple[str, str], items: list[Any]) -> None:
        assert self._client is not None
        ids = [i.item_id for i in items]
        body = await asyncio.to_thread(_events_body, items)
        try:
            response = await self._client.post(EVENTS_PATH, content=body, auth=creds,
                                               headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            await self._fail(ids, f"central server unreachable: {type(exc).__name__}: {exc}"[:300])
        if response.status_code != 200:
            await self._fail(ids, f"events refused: {_text(response)}")
        try:
            results = response.json()["results"]
            answers = {r["item_id"]: r for r in results if isinstance(r, dict) and "item_id" in r}
        except (ValueError, KeyError, TypeError):
            await self._fail(ids, "unreadable answer to the events")
        acked = [i for i in ids if answers.get(i, {}).get("status") in ("stored", "duplicate")]
        rejected = [(i, str(answers[i].get("reason") or "rejected")) for i in ids
                    if answers.get(i, {}).get("status") == "rejected"]
        if acked:
            await asyncio.to_thread(self.outbox.ack, acked)
        for item_id, reason in rejected:
            await asyncio.to_thread(self.outbox.reject, item_id, reason)
        missing = [i for i in ids if i not in acked and all(i != r for r, _ in rejected)]
        if missing:
            await self._fail(missing, f"the central server did not answer for {len(missing)} item(s)")
        await asyncio.to_thread(self.outbox.clear_error)
        log.debug("outbox: %d event(s) delivered, %d rejected", len(acked), len(rejected))

    async def _send_photo(self, creds: tuple[str, str], item: Any) -> None:
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
        form = {"item_id": item.item_id, "kind": payload.get("kind", "snapshot"),
                "captured_at": payload.get("captured_at") or iso_utc(item.created_at),
                "metadata": json.dumps(payload.get("metadata") or {})}
        try:
            response = await self._client.post(PHOTOS_PATH, data=form, auth=creds,
                                               files={"file": (f"{item.item_id}.jpg", data, "image/jpeg")})
        except httpx.HTTPError as exc:
            await self._fail([item.item_id], f"central server unreachable: {type(exc).__name__}: {exc}"[:300])
        if response.status_code == 422:
            await asyncio.to_thread(self.outbox.reject, item.item_id, f"photo rejected: {_text(response)}")
            return
        status = None
        if response.status_code == 200:
            with contextlib.suppress(ValueError, AttributeError):
                status = response.json().get("status")
        if status not in ("stored", "duplicate"):
            await self._fail([item.item_id], f"photo refused: {_text(response)}")
        await asyncio.to_thread(self.outbox.ack, [item.item_id])
        await asyncio.to_thread(self.outbox.clear_error)


def _events_body(items: list[Any]) -> bytes:
    """The JSON body of ``POST /v1/ingest/events`` for stored ``face_event`` items (images read from
    their files and base64-encoded; a missing file is sent as null)."""

    def b64(item: Any, name: str | None) -> str | None:
        path = item.file_named(f"{item.item_id}-{name}") if name else None
        if path is None:
            return None
        try:
            return base64.b64encode(path.read_bytes()).decode("ascii")
        except OSError:
            return None

    wire = []
    for item in items:
        p = item.payload
        faces = [{"box": f["box"], "encoding": f.get("encoding"), "crop_jpeg": b64(item, f.get("crop_file"))}
                 for f in p.get("faces", [])]
        wire.append({
            "item_id": item.item_id, "type": "face_event", "captured_at": p["captured_at"],
            "track_id": p["track_id"], "event": p["event"], "faces": faces,
            "profiles": [{"box": pr["box"]} for pr in p.get("profiles", [])],
            "frame_jpeg": b64(item, p.get("frame_file")),
        })
    return json.dumps({"items": wire}, separators=(",", ":")).encode("utf-8")
