"""Filling the outbox: face events from the detector (:class:`DetectionRecorder`) and photos
(:func:`queue_still`, :func:`queue_snapshot`, :class:`StillsFollower`); see docs/outbox.md.

What is stored is the wire item of :class:`pcs_common.protocol.FaceEventItem` /
:class:`~pcs_common.protocol.PhotoUpload` without its id and images (kept as files next to the row).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from pcs_common.protocol import MAX_CROP_BYTES, MAX_FRAME_BYTES
from pi_camera_service.detection.tracks import FaceTracker, TrackEvent
from pi_camera_service.frames import encode_jpeg
from pi_camera_service.outbox.store import Outbox, iso_utc

if TYPE_CHECKING:
    from pi_camera_service.sources.base import Camera

log = logging.getLogger("pi_camera_service.outbox_sender")  # the name journal filters have always used

CROP_MARGIN = 0.25
"""The crop extends the face box by this fraction of its size on every side."""

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


def newest_frame_bgr(camera: Camera) -> np.ndarray | None:
    """The camera's newest full-size frame as (H, W, 3) uint8 BGR, or None when there is none yet.

    :meth:`~pi_camera_service.sources.base.Camera.latest_frame` when the source hands frames out
    (software sources: no encoding), else ``camera.snapshot_jpeg(None, 95)`` decoded (the Pi camera:
    waits for the next frame)."""
    frame = camera.latest_frame()
    if frame is not None:
        return frame.bgr()
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
        camera: the running camera (its newest frame: :func:`newest_frame_bgr`).
        tracker: the track logic (its ``update_interval`` rate-limits the events).
        full_frame: also store the whole frame as a JPEG (<= 2 MB) with each event.
        queue_size: track events waiting for the worker; more are counted in ``events_skipped``.

    :meth:`on_detection` is the listener; :meth:`start` / :meth:`stop` run the worker thread.
    """

    def __init__(self, outbox: Outbox, camera: Camera, tracker: FaceTracker, *, full_frame: bool = False,
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
