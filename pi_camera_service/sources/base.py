"""The one interface every camera source implements, and the streaming statistics they share.

Exception tree::

    CameraError                 the camera cannot do what was asked
    ├── CameraUnavailable       no frame yet / the device is gone (HTTP 503)
    └── SourceOpenError         the configured source cannot be opened at start-up
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from pi_camera_service.frames import AnalysisFrame

StreamState = Literal["stopped", "connecting", "streaming", "reconnecting"]


class CameraError(RuntimeError):
    """Base class of camera errors."""


class CameraUnavailable(CameraError):
    """No frame is available (the source has not produced one yet, or the device went away)."""


class SourceOpenError(CameraError):
    """The configured source cannot be opened (missing file, no device, no picamera2)."""


@dataclass(frozen=True)
class StreamingStatus:
    """What ``GET /v1/streaming/status`` reports.

    Attributes:
        state: ``stopped`` | ``connecting`` | ``streaming`` | ``reconnecting``.
        url: the RTSP publish URL (credentials removed).
        fps: frames published per second over the last ~2 s.
        frames_sent: frames handed to the RTSP muxer since the service started.
        bitrate: measured H.264 bitrate over the last ~2 s, bit/s.
        reconnects: times the RTSP connection was re-established after a failure.
        last_error: the last RTSP/encoder error message, or None.
    """

    state: StreamState
    url: str
    fps: float
    frames_sent: int
    bitrate: float
    reconnects: int
    last_error: str | None


class StreamStats:
    """Thread-safe rolling counters of a publisher: frames, bytes, reconnects, last error.

    ``record(nbytes)`` is called once per published frame (O(1)); rates are computed over a sliding
    window of ``window`` seconds when read.
    """

    def __init__(self, window: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._events: deque[tuple[float, int]] = deque()
        self.frames_sent = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.state: StreamState = "stopped"

    def record(self, nbytes: int, now: float | None = None) -> None:
        """Count one published frame of ``nbytes`` bytes of H.264."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self.frames_sent += 1
            self._events.append((now, nbytes))
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._events and now - self._events[0][0] > self._window:
            self._events.popleft()

    def rates(self, now: float | None = None) -> tuple[float, float]:
        """(fps, bit/s) over the sliding window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._events) < 2:
                return 0.0, 0.0
            span = max(now - self._events[0][0], 1e-3)
            frames = len(self._events)
            nbytes = sum(n for _, n in self._events)
        return frames / span, nbytes * 8 / span

    def snapshot(self, url: str) -> StreamingStatus:
        """The current :class:`StreamingStatus` for ``url``."""
        fps, bitrate = self.rates() if self.state == "streaming" else (0.0, 0.0)
        return StreamingStatus(
            state=self.state,
            url=redact_url(url),
            fps=round(fps, 2),
            frames_sent=self.frames_sent,
            bitrate=round(bitrate),
            reconnects=self.reconnects,
            last_error=self.last_error,
        )


def redact_url(url: str) -> str:
    """``rtsp://user:pass@host/p`` -> ``rtsp://user:***@host/p`` (for logs and status)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _, hostpart = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}"


class Camera(ABC):
    """A camera source owned by one capture thread.

    Implementations: :class:`~pi_camera_service.sources.software.SoftwareCamera` (files, URLs,
    V4L2 through PyAV, encoded with libx264) and
    :class:`~pi_camera_service.sources.picamera2_backend.Picamera2Camera` (Raspberry Pi cameras,
    encoded by Picamera2's H264Encoder). All methods are thread-safe.
    """

    #: what ``CAMERA_SOURCE`` resolved to, e.g. ``"file:/path/carphone.mp4"`` or ``"picamera2:0"``
    source: str
    width: int
    height: int
    framerate: float

    @abstractmethod
    def open(self) -> None:
        """Open the device and start the capture thread.

        Raises:
            SourceOpenError: the source cannot be opened.
        """

    @abstractmethod
    def close(self) -> None:
        """Stop streaming and capture and release the device (idempotent)."""

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """True while the capture thread runs and the device is held."""

    @abstractmethod
    def start_streaming(self) -> StreamingStatus:
        """Start publishing H.264 to the RTSP URL (idempotent); returns at once, connecting in the background."""

    @abstractmethod
    def stop_streaming(self) -> StreamingStatus:
        """Stop publishing (idempotent); capture and detection go on."""

    @abstractmethod
    def streaming_status(self) -> StreamingStatus:
        """The publisher's current state and counters."""

    @abstractmethod
    def analysis_frame(self) -> AnalysisFrame | None:
        """The newest frame of the analysis (lores) stream, or None before the first frame."""

    @abstractmethod
    def snapshot_jpeg(self, width: int | None = None, quality: int = 90) -> bytes:
        """JPEG of the newest full-resolution frame, scaled to ``width`` px wide when given.

        Raises:
            CameraUnavailable: no frame has been captured yet.
        """

    @abstractmethod
    def metadata(self) -> dict[str, Any]:
        """Sensor metadata: ``lux``, ``exposure_us`` (µs), ``analogue_gain``, ``colour_temperature`` (K),
        ``auto_exposure`` (bool); None for what this source cannot measure."""

    @property
    def frames_captured(self) -> int:
        """Frames captured since :meth:`open` (0 when unknown)."""
        return 0
