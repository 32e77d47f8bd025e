"""The one interface every camera source implements, and the streaming statistics they share.

Exception tree::

    CameraError                 the camera cannot do what was asked
    ├── CameraUnavailable       no frame yet / the device is gone (HTTP 503)
    ├── SourceOpenError         the configured source cannot be opened at start-up
    └── NotSupported            this source has no such control (no sensor, no autofocus...) (HTTP 409)
"""

from __future__ import annotations

import bisect
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pi_camera_service.frames import AnalysisFrame, Frame
from pcs_common.urls import redact_url  # noqa: F401 - also imported from here by the sources

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

    Every figure describes frames handed to the RTSP muxer (what a viewer receives), timed when they
    were muxed, not what the camera captured.

    Attributes:
        state: ``stopped`` | ``connecting`` | ``streaming`` | ``reconnecting``.
        url: the RTSP publish URL (credentials removed).
        fps: frames published per second over the last ~2 s.
        frames_sent: frames handed to the RTSP muxer since the service started.
        bitrate: measured H.264 bitrate over the last ~2 s, bit/s.
        reconnects: times the RTSP connection was re-established after a failure.
        last_error: the last RTSP/encoder error message, or None.
        fps_10s, fps_60s: frames published per second over the last 10 s / 60 s (over the time
            streamed when the connection is younger than that); 0 when not streaming.
        frame_gaps_60s: intervals between consecutive published frames longer than
            :data:`FRAME_GAP_S` (100 ms) in the last 60 s.
        max_gap_ms_60s: the longest interval between consecutive published frames in the last
            60 s, ms, including the time since the last frame while streaming (a stall shows at once).
        frame_gaps: intervals longer than 100 ms since the service started.
        frames_dropped: frames the camera produced that never reached the muxer (the encoder was
            busy with an older frame, or the sensor timestamps jump by more than one frame duration),
            since the service started.
        frames_dropped_60s: the same over the last 60 s.
    """

    state: StreamState
    url: str
    fps: float
    frames_sent: int
    bitrate: float
    reconnects: int
    last_error: str | None
    fps_10s: float = 0.0
    fps_60s: float = 0.0
    frame_gaps_60s: int = 0
    max_gap_ms_60s: float = 0.0
    frame_gaps: int = 0
    frames_dropped: int = 0
    frames_dropped_60s: int = 0


#: an interval between two published frames longer than this is a *frame gap*, s (a viewer sees a stutter)
FRAME_GAP_S = 0.1
#: how far back the windowed health figures look, s
HEALTH_WINDOW_S = 60.0


class StreamStats:
    """Thread-safe rolling counters of a publisher: frames, bytes, gaps, drops, reconnects, last error.

    ``record(nbytes)`` is called once per published frame (O(1) amortised); fps and bitrate over
    ``window`` s, and the health figures over 10 s and :data:`HEALTH_WINDOW_S`, are computed when read.
    Memory is bounded: one float per frame of the last 60 s (1,800 at 30 fps) plus one entry per gap
    or drop event of the last 60 s (at most one per frame).

    Setting ``state`` to anything but ``streaming`` ends the current connection's frame sequence: the
    interval across a reconnect is counted in ``reconnects``, not as a frame gap.
    """

    def __init__(self, window: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._events: deque[tuple[float, int]] = deque()
        self._times: deque[tuple[float, float]] = deque()  # (mux time, interval since the previous frame or 0)
        self._gaps: deque[tuple[float, float]] = deque()  # (end time, interval s) of intervals > FRAME_GAP_S
        self._drops: deque[tuple[float, int]] = deque()
        self._last: float | None = None
        self._session_start: float | None = None
        self.frames_sent = 0
        self.frame_gaps = 0
        self.frames_dropped = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self._state: StreamState = "stopped"

    @property
    def state(self) -> StreamState:
        """``stopped`` | ``connecting`` | ``streaming`` | ``reconnecting``."""
        return self._state

    @state.setter
    def state(self, value: StreamState) -> None:
        with self._lock:
            if value != "streaming":
                self._last = None
                self._session_start = None
            self._state = value

    def record(self, nbytes: int, now: float | None = None) -> None:
        """Count one published frame of ``nbytes`` bytes of H.264, muxed at ``now`` (``time.monotonic()``, s)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self.frames_sent += 1
            self._events.append((now, nbytes))
            interval = 0.0 if self._last is None else now - self._last
            self._times.append((now, interval))
            if interval > FRAME_GAP_S:
                self._gaps.append((now, interval))
                self.frame_gaps += 1
            if self._session_start is None:
                self._session_start = now
            self._last = now
            self._trim(now)

    def drop(self, frames: int = 1, now: float | None = None) -> None:
        """Count ``frames`` frames that were produced but will never be published."""
        if frames <= 0:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            self.frames_dropped += frames
            self._drops.append((now, frames))
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._events and now - self._events[0][0] > self._window:
            self._events.popleft()
        horizon = now - HEALTH_WINDOW_S
        for queue in (self._gaps, self._drops):
            while queue and queue[0][0] < horizon:
                queue.popleft()
        while self._times and self._times[0][0] < horizon:
            self._times.popleft()

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

    def health(self, now: float | None = None) -> dict[str, float | int]:
        """``{fps_10s, fps_60s, frame_gaps_60s, max_gap_ms_60s, frame_gaps, frames_dropped,
        frames_dropped_60s}`` (see :class:`StreamingStatus`)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            streaming = self._state == "streaming" and self._session_start is not None
            fps = {}
            for label, window in (("fps_10s", 10.0), ("fps_60s", HEALTH_WINDOW_S)):
                if not streaming:
                    fps[label] = 0.0
                    continue
                start = max(now - window, self._session_start)  # type: ignore[arg-type]
                n = len(self._times) - bisect.bisect_left(self._times, (start,))
                fps[label] = round(n / max(now - start, 1e-3), 2) if now - start >= 1.0 else 0.0
            largest = max((interval for _, interval in self._times), default=0.0)
            if streaming and self._last is not None:
                largest = max(largest, now - self._last)
            return {
                **fps,
                "frame_gaps_60s": len(self._gaps),
                "max_gap_ms_60s": round(largest * 1000, 1),
                "frame_gaps": self.frame_gaps,
                "frames_dropped": self.frames_dropped,
                "frames_dropped_60s": sum(n for _, n in self._drops),
            }

    def falling_behind(self, framerate: float, now: float | None = None, window: float = 2.0) -> bool:
        """True while streaming if, in the last ``window`` s, fewer than 90% of ``framerate`` frames/s
        were published, a frame was dropped, or an interval exceeded :data:`FRAME_GAP_S` (or 2.5 frame
        durations at low frame rates): the signal for background work to back off.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._state != "streaming" or self._session_start is None or framerate <= 0:
                return False
            self._trim(now)
            start = now - window
            if self._session_start > start:  # too young to judge the rate; gaps and drops still count
                rate_low = False
            else:
                n = len(self._times) - bisect.bisect_left(self._times, (start,))
                rate_low = n < 0.9 * framerate * window
            limit = max(FRAME_GAP_S, 2.5 / framerate)
            gap = any(end >= start and interval > limit for end, interval in self._gaps)
            stalled = self._last is not None and now - self._last > limit
            dropped = any(t >= start for t, _ in self._drops)
            return rate_low or gap or stalled or dropped

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
            **self.health(),  # type: ignore[arg-type]
        )


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception (just ``Type`` when the message is empty), for logs and status."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_chain(exc: BaseException) -> str:
    """``RuntimeError: Camera __init__ sequence did not complete. (caused by OSError: ...)``."""
    cause = exc.__cause__
    return describe(exc) + (f" (caused by {describe(cause)})" if cause is not None else "")


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

    def latest_frame(self) -> Frame | None:
        """The newest main-stream frame as captured, without encoding it; None before the first frame,
        and always None for sources that do not keep one (the Pi camera: use :meth:`snapshot_jpeg`)."""
        return None

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
