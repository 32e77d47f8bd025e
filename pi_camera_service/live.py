"""Live view without MediaMTX: an MJPEG broadcaster and a push channel for detections and events.

:class:`MjpegBroadcaster` encodes the newest frame as JPEG at a modest rate (``fps``, ``width``) in one
thread, once per tick however many viewers are connected, and hands each viewer the newest JPEG
through a one-slot mailbox: a slow viewer skips frames instead of making the service buffer them.
The thread runs only while somebody watches (it stops ``idle_stop`` s after the last viewer left).

:func:`mjpeg_parts` turns a subscription into the ``multipart/x-mixed-replace`` body browsers show in
an ``<img>`` (the format of MJPEG IP cameras and of ``ffmpeg -f mpjpeg``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

BOUNDARY = "frame"


@dataclass(frozen=True)
class JpegFrame:
    """One encoded frame: ``seq`` counts frames since the broadcaster started, ``jpeg`` the bytes,
    ``timestamp`` the wall-clock encode time (s since the epoch)."""

    seq: int
    jpeg: bytes
    timestamp: float


class Subscription:
    """One viewer's mailbox: holds only the newest :class:`JpegFrame` (older ones are dropped).

    Created by :meth:`MjpegBroadcaster.subscribe` on the viewer's event loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[JpegFrame] = asyncio.Queue(maxsize=1)
        self.dropped = 0

    def _offer(self, frame: JpegFrame) -> None:
        """Runs on the viewer's loop (scheduled thread-safely by the broadcaster)."""
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(frame)

    def offer(self, frame: JpegFrame) -> None:
        """Hand ``frame`` over from any thread."""
        try:
            self._loop.call_soon_threadsafe(self._offer, frame)
        except RuntimeError:  # the viewer's loop is closed: it is gone
            pass

    async def next(self, timeout: float) -> JpegFrame | None:
        """The next frame, or None after ``timeout`` s without one."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None


class MjpegBroadcaster:
    """Encodes ``camera.snapshot_jpeg(width, quality)`` ``fps`` times a second for all viewers.

    Args:
        camera: any object with ``snapshot_jpeg(width, quality) -> bytes`` (a
            :class:`~pi_camera_service.sources.base.Camera`).
        fps: frames per second sent to viewers (> 0).
        width: JPEG width, px (the height keeps the aspect ratio); capped at the camera's width.
        quality: JPEG quality 1..100.
        idle_stop: s without viewers after which the encoding thread stops.

    Raises:
        ValueError: ``fps`` not positive or ``quality`` outside 1..100.
    """

    def __init__(self, camera: Any, fps: float = 5.0, width: int = 640, quality: int = 70, idle_stop: float = 5.0) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if not 1 <= quality <= 100:
            raise ValueError(f"quality must be 1..100, got {quality}")
        self.camera = camera
        self.fps = float(fps)
        self.width = min(int(width), int(getattr(camera, "width", width)))
        self.quality = int(quality)
        self.idle_stop = idle_stop
        self._lock = threading.Lock()
        self._subscribers: set[Subscription] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._seq = 0
        self._last_viewer_left = time.monotonic()
        self.frames_encoded = 0
        self.errors = 0
        self.last_error: str | None = None

    @property
    def viewers(self) -> int:
        """Viewers connected now."""
        with self._lock:
            return len(self._subscribers)

    def subscribe(self) -> Subscription:
        """Register a viewer on the running event loop (starts the encoding thread if needed)."""
        sub = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(sub)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="mjpeg", daemon=True)
                self._thread.start()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a viewer (the thread stops ``idle_stop`` s after the last one)."""
        with self._lock:
            self._subscribers.discard(sub)
            if not self._subscribers:
                self._last_viewer_left = time.monotonic()

    def close(self) -> None:
        """Stop the encoding thread now."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(3.0)

    def _run(self) -> None:
        period = 1.0 / self.fps
        next_due = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                subscribers = list(self._subscribers)
                idle = not subscribers and time.monotonic() - self._last_viewer_left > self.idle_stop
                if idle:
                    self._thread = None
                    return
            if subscribers:
                try:
                    jpeg = self.camera.snapshot_jpeg(self.width, self.quality)
                except Exception as exc:  # noqa: BLE001 - no frame yet / camera re-opening: try next tick
                    self.errors += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                else:
                    self._seq += 1
                    self.frames_encoded += 1
                    frame = JpegFrame(self._seq, jpeg, time.time())
                    for sub in subscribers:
                        sub.offer(frame)
            next_due += period
            delay = next_due - time.monotonic()
            if delay < 0:  # encoding slower than the rate: skip, never catch up in a burst
                next_due = time.monotonic()
                delay = 0
            self._stop.wait(delay)


async def mjpeg_parts(broadcaster: MjpegBroadcaster, sub: Subscription, timeout: float = 10.0) -> AsyncIterator[bytes]:
    """``multipart/x-mixed-replace; boundary=frame`` body parts for one viewer, until it disconnects
    or no frame came for ``timeout`` s. Always unsubscribes."""
    try:
        while True:
            frame = await sub.next(timeout)
            if frame is None:
                return
            yield (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n"
                f"X-Frame-Seq: {frame.seq}\r\n\r\n"
            ).encode("ascii") + frame.jpeg + b"\r\n"
    finally:
        broadcaster.unsubscribe(sub)
