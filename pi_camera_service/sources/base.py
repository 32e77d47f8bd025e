"""The one interface every camera source implements, and the streaming statistics they share.

Exception tree::

    CameraError                 the camera cannot do what was asked
    ├── CameraUnavailable       no frame yet / the device is gone (HTTP 503)
    ├── SourceOpenError         the configured source cannot be opened at start-up
    └── NotSupported            this source has no such control (no sensor, no autofocus...) (HTTP 409)
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pi_camera_service.frames import AnalysisFrame

if TYPE_CHECKING:
    from pi_camera_service.imaging import ImageAdjust

StreamState = Literal["stopped", "connecting", "streaming", "reconnecting"]


class CameraError(RuntimeError):
    """Base class of camera errors."""


class CameraUnavailable(CameraError):
    """No frame is available (the source has not produced one yet, or the device went away)."""


class SourceOpenError(CameraError):
    """The configured source cannot be opened (missing file, no device, no picamera2)."""


class NotSupported(CameraError):
    """The source cannot do this at all (e.g. exposure time on a video file, sensor HDR on a non-IMX708)."""


@dataclass(frozen=True)
class SourceCapabilities:
    """What a source can be asked to do (``GET /v1/camera/capabilities``).

    Attributes:
        backend: ``picamera2`` (libcamera controls through the ISP) or ``software`` (PyAV-decoded
            frames adjusted by the service itself).
        model: sensor model as libcamera names it (``imx708_wide_noir``...), None for software.
        noir: the sensor has no IR-cut filter (libcamera's ``_noir`` model suffix, or
            ``CAMERA_NOIR=true``).
        platform: ``vc4`` (Pi Zero 2 W .. Pi 4) or ``pisp`` (Pi 5), None for software.
        tuning: the tuning file in use (name or path), None when not applicable.
        libcamera_controls: ``{name: (min, max, default)}`` from ``Picamera2.camera_controls``.
        pixel_array_size: sensor (w, h) px.
        scaler_crop_maximum: ``ScalerCropMaximum`` (x, y, w, h) sensor px, the frame of
            ``ScalerCrop`` and ``AfWindows``.
        sensor_hdr: the sensor has an HDR mode (Camera Module 3, IMX708) that needs a re-open.
        isp_hdr: the ISP has ``HdrMode`` (Pi 5).
        level_unit: what the day/night level is measured in: ``lux`` or ``luma`` (mean 0..255).
    """

    backend: Literal["picamera2", "software"]
    model: str | None = None
    noir: bool = False
    platform: str | None = None
    tuning: str | None = None
    libcamera_controls: dict[str, tuple[Any, Any, Any]] = field(default_factory=dict)
    pixel_array_size: tuple[int, int] | None = None
    scaler_crop_maximum: tuple[int, int, int, int] | None = None
    sensor_hdr: bool = False
    isp_hdr: bool = False
    level_unit: Literal["lux", "luma"] = "luma"


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
        """Sensor metadata: at least ``lux``, ``exposure_us`` (µs), ``analogue_gain``,
        ``colour_temperature`` (K), ``auto_exposure`` (bool); the Pi camera adds gains, focus, AF state,
        sensor temperature and crop, software sources ``scene_luma``. None for what this source cannot
        measure."""

    @property
    def frames_captured(self) -> int:
        """Frames captured since :meth:`open` (0 when unknown)."""
        return 0

    # ------------------------------------------------------------------ controls (see controls/)
    def capabilities(self) -> SourceCapabilities:
        """What this source supports; software sources have no libcamera controls."""
        return SourceCapabilities(backend="software")

    def set_controls(self, controls: dict[str, Any]) -> None:
        """Apply libcamera controls (``{"AeEnable": False, ...}``).

        Raises:
            NotSupported: the source has no sensor controls (the default).
        """
        raise NotSupported(f"{self.source} has no sensor controls")

    def set_image_adjust(self, adjust: "ImageAdjust") -> None:
        """Adjustments the service applies to frames itself (see :mod:`pi_camera_service.imaging`).

        Software sources apply all of it to every frame (stream, snapshots, analysis); the Pi camera
        applies only ``adjust.lens`` (to snapshots and analysed frames; its ISP does the rest).
        """

    def set_sensor_hdr(self, enabled: bool) -> float:
        """Switch the sensor's HDR mode, re-opening the camera; returns the time it took, ms.

        Raises:
            NotSupported: the sensor has no HDR mode (the default).
        """
        raise NotSupported(f"{self.source} has no sensor HDR mode")

    def scene_level(self) -> float | None:
        """The day/night level: ``Lux`` (Pi camera) or mean luma 0..255 of the unprocessed frame;
        None before the first frame."""
        return None
