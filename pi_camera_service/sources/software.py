"""Camera sources decoded with PyAV (video files, RTSP/HTTP URLs, V4L2 USB cameras), encoded with libx264.

One capture thread owns the source: it decodes, scales every frame to the main size with swscale
(PyAV ``VideoFrame.reformat``) straight into I420 keeping its aspect ratio as ``CAMERA_SCALE_MODE``
says (``fit``: black bars, ``fill``: centre crop, ``stretch``; :func:`~pi_camera_service.frames.scale_plan`), measures its mean luma (the day/night level),
applies the image adjustments in force (:class:`~pi_camera_service.imaging.FrameProcessor`:
brightness, contrast, saturation, sharpness, zoom, lens correction; nothing when there are none),
publishes it as the newest frame and offers it to the :class:`~pi_camera_service.streaming.RtspPublisher`,
so the stream, snapshots and detection all see the adjusted picture. Nothing it calls waits on detection, HTTP
or disk. A file loops at its native frame rate, like a live camera; a live source that fails
(unplugged USB camera, RTSP camera rebooting) is re-opened with exponential back-off
(:func:`~pi_camera_service.streaming.publisher.steady_backoff`, 0.5 s doubling up to 10 s).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pi_camera_service.config import Settings
from pi_camera_service.frames import AnalysisFrame, Frame, encode_jpeg, reformat_to_frame
from pi_camera_service.imaging import FrameProcessor, ImageAdjust, mean_luma
from pi_camera_service.sources.base import (
    Camera,
    CameraUnavailable,
    SourceCapabilities,
    SourceOpenError,
    StreamingStatus,
    StreamStats,
    redact_url,
)
from pi_camera_service.streaming import EncoderSettings, RtspPublisher, steady_backoff

log = logging.getLogger(__name__)

#: The bundled real sample video (see ``pi_camera_service/data/ATTRIBUTION.md``).
SAMPLE_VIDEO = Path(__file__).resolve().parent.parent / "data" / "carphone_pristine.mp4"


@dataclass(frozen=True)
class AvSource:
    """How to open a source with ``av.open``.

    Attributes:
        url: file path, URL or device node.
        format: FFmpeg demuxer name (``video4linux2`` for USB cameras) or None to probe.
        options: demuxer options (FFmpeg AVOptions, strings).
        is_file: a finite file: paced at its native rate and looped.
        label: how ``/v1/camera/status`` names it (``file:...``, ``v4l2:/dev/video0``, ``url:...``).
    """

    url: str
    format: str | None
    options: dict[str, str] = field(default_factory=dict)
    is_file: bool = False
    label: str = ""


def parse_av_source(source: str, width: int, height: int, framerate: float) -> AvSource:
    """Map a ``CAMERA_SOURCE`` value (other than ``auto``/``picamera2``) to an :class:`AvSource`.

    ``v4l2:N`` and ``/dev/videoN`` ask the V4L2 device for ``width``x``height`` px at ``framerate``;
    ``rtsp://`` URLs are read over TCP; anything else is a local file path.

    Raises:
        SourceOpenError: the file does not exist.
    """
    if source.startswith("v4l2:"):
        source = f"/dev/video{int(source.split(':', 1)[1])}"
    if source.startswith("/dev/video"):
        options = {"video_size": f"{width}x{height}", "framerate": f"{framerate:g}"}
        return AvSource(source, "video4linux2", options, False, f"v4l2:{source}")
    if source.startswith(("rtsp://", "rtsps://")):
        options = {"rtsp_transport": "tcp", "timeout": "5000000"}
        return AvSource(source, None, options, False, "url:" + redact_url(source))
    if source.startswith(("http://", "https://")):
        return AvSource(source, None, {"reconnect": "1", "rw_timeout": "5000000"}, False, "url:" + redact_url(source))
    path = Path(source).expanduser()
    if not path.is_file():
        raise SourceOpenError(
            f"CAMERA_SOURCE={source!r}: no such file; give auto, picamera2[:N], v4l2:N, /dev/videoN, "
            "an existing video file or an rtsp:// / http:// URL"
        )
    return AvSource(str(path), None, {}, True, f"file:{path}")


class SoftwareCamera(Camera):
    """A PyAV-decoded source, scaled to ``settings.width`` x ``settings.height``, H.264 via libx264.

    Args:
        settings: service settings (size, framerate, bitrate, RTSP URL, detection size).
        source: the decoded source description (:func:`parse_av_source`).
    """

    def __init__(self, settings: Settings, source: AvSource) -> None:
        self.settings = settings
        self.av_source = source
        self.source = source.label
        self.width = settings.width
        self.height = settings.height
        self.framerate = settings.framerate
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._analysis: AnalysisFrame | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._frames = 0
        self._opened = threading.Event()
        self.last_error: str | None = None
        self.stats = StreamStats()
        self._publisher: RtspPublisher | None = None
        self._stream_lock = threading.Lock()
        self._processor: FrameProcessor | None = None
        self._level: float | None = None

    # ------------------------------------------------------------------------------- lifecycle
    def open(self) -> None:
        """Start the capture thread and wait (≤ 10 s) for the source to open.

        Raises:
            SourceOpenError: the source could not be opened within 10 s (the thread keeps retrying
                for live sources; a file that cannot be decoded stops here).
        """
        if self.is_open:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._capture_loop, name="capture", daemon=True)
        self._thread.start()
        if not self._opened.wait(10.0) and self.av_source.is_file:
            self.close()
            raise SourceOpenError(f"cannot decode {self.av_source.url}: {self.last_error}")

    def close(self) -> None:
        """Stop streaming and capture (idempotent)."""
        self.stop_streaming()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self._thread = None

    @property
    def is_open(self) -> bool:
        """True while the capture thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def frames_captured(self) -> int:
        """Frames captured since :meth:`open`."""
        return self._frames

    # ------------------------------------------------------------------------------- capture
    def _capture_loop(self) -> None:
        import av  # lazy: decoding libraries load only when a software source is used

        backoff = steady_backoff(0.5, 10.0)
        while not self._stop.is_set():
            container = None
            try:
                container = av.open(
                    self.av_source.url,
                    format=self.av_source.format,
                    options=self.av_source.options,
                    timeout=(10.0, 5.0),
                )
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                if self.av_source.is_file:
                    rate = stream.average_rate or stream.base_rate
                    if rate:
                        self.framerate = float(rate)
                log.info("opened %s (%s px, %.2f fps)", self.source, f"{stream.width}x{stream.height}", self.framerate)
                backoff.reset()
                self._decode(container, stream)
            except Exception as exc:  # noqa: BLE001 - any decode/open fault: report and retry
                url = self.av_source.url
                self.last_error = f"{type(exc).__name__}: {exc}".replace(url, redact_url(url))
                delay = backoff.next_delay()
                log.warning("camera source %s failed (%s); retrying in %.1f s", self.source, self.last_error, delay)
                self._stop.wait(delay)
            finally:
                if container is not None:
                    container.close()

    def _decode(self, container: Any, stream: Any) -> None:
        """Decode until stopped; files are looped and paced at their native rate."""
        period = 1.0 / self.framerate if self.av_source.is_file else 0.0
        next_due = time.monotonic()
        while not self._stop.is_set():
            decoded_any = False
            for av_frame in container.decode(stream):
                if self._stop.is_set():
                    return
                decoded_any = True
                i420 = reformat_to_frame(av_frame, self.width, self.height, self.settings.scale_mode)
                self._level = mean_luma(i420, self.width, self.height)
                processor = self._processor
                if processor is not None:
                    i420 = processor.process(i420)
                if period:
                    now = time.monotonic()
                    if next_due - now > 0:
                        if self._stop.wait(next_due - now):
                            return
                    elif now - next_due > 1.0:  # far behind (machine was busy): resynchronise
                        next_due = now
                    next_due += period
                self._publish(Frame(i420, self.width, self.height, self._frames))
            if not self.av_source.is_file:
                raise EOFError("live source ended")
            if not decoded_any:
                raise EOFError("file has no decodable video frames")
            container.seek(0)

    def _publish(self, frame: Frame) -> None:
        with self._lock:
            self._frame = frame
            self._frames += 1
        self._opened.set()
        self.last_error = None
        publisher = self._publisher
        if publisher is not None:
            publisher.offer(frame)

    # ------------------------------------------------------------------------------- frames
    def latest_frame(self) -> Frame | None:
        """The newest main-stream frame, or None before the first one."""
        with self._lock:
            return self._frame

    def analysis_frame(self) -> AnalysisFrame | None:
        """The newest frame scaled to ``settings.detection_size`` (computed once per frame, on the caller's thread)."""
        with self._lock:
            frame, cached = self._frame, self._analysis
        if frame is None:
            return None
        if cached is not None and cached.frame.index == frame.index:
            return cached
        lw, lh = self.settings.detection_size
        analysis = AnalysisFrame(frame.resized(lw, lh), self.width, self.height)
        with self._lock:
            self._analysis = analysis
        return analysis

    def snapshot_jpeg(self, width: int | None = None, quality: int = 90) -> bytes:
        """JPEG of the newest frame (``width`` px wide when given, aspect ratio kept).

        Raises:
            CameraUnavailable: no frame captured yet.
        """
        frame = self.latest_frame()
        if frame is None:
            raise CameraUnavailable(f"no frame from {self.source} yet" + (f": {self.last_error}" if self.last_error else ""))
        if width and width != frame.width:
            height = max(2, round(frame.height * width / frame.width) // 2 * 2)
            frame = frame.resized(width - width % 2, height)
        return encode_jpeg(frame.bgr(), quality)

    def metadata(self) -> dict[str, Any]:
        """Software sources have no sensor: every sensor value is None; ``scene_luma`` is the mean luma
        (0..255) of the newest frame before adjustments."""
        return {
            "lux": None, "exposure_us": None, "analogue_gain": None, "colour_temperature": None,
            "auto_exposure": None, "scene_luma": None if self._level is None else round(self._level, 2),
        }

    # ------------------------------------------------------------------------------- controls
    def capabilities(self) -> SourceCapabilities:
        """No libcamera controls; image adjustments in software; day/night level in luma."""
        return SourceCapabilities(backend="software", level_unit="luma")

    def set_image_adjust(self, adjust: ImageAdjust) -> None:
        """Apply ``adjust`` to every frame from the next one on (an identity adjust costs nothing).

        Raises:
            ValueError: ``adjust.roi`` is not inside the picture.
        """
        current = self._processor
        if (current.adjust if current is not None else ImageAdjust()) == adjust:
            return  # unchanged (day/night ticks, other controls): keep the built LUTs and remap maps
        self._processor = None if adjust.is_identity else FrameProcessor(self.width, self.height, adjust)

    def scene_level(self) -> float | None:
        """Mean luma 0..255 of the newest frame before adjustments (None before the first)."""
        return self._level

    # ------------------------------------------------------------------------------- streaming
    def start_streaming(self) -> StreamingStatus:
        """Start the RTSP publisher (idempotent)."""
        with self._stream_lock:
            if self._publisher is None:
                encoder = EncoderSettings(
                    width=self.width,
                    height=self.height,
                    framerate=self.framerate,
                    bitrate=self.settings.bitrate,
                    keyframe_interval=self.settings.keyframe_interval,
                    preset=self.settings.x264_preset,
                )
                publisher = RtspPublisher(
                    self.settings.rtsp_url, encoder, self.stats, max_delay=self.settings.rtsp_reconnect_max_delay
                )
                publisher.start()
                self._publisher = publisher
            return self._publisher.status()

    def stop_streaming(self) -> StreamingStatus:
        """Stop the RTSP publisher (idempotent); capture goes on."""
        with self._stream_lock:
            publisher, self._publisher = self._publisher, None
            if publisher is not None:
                publisher.stop()
            self.stats.state = "stopped"
            return self.stats.snapshot(self.settings.rtsp_url)

    def streaming_status(self) -> StreamingStatus:
        """Publisher state and counters."""
        return self.stats.snapshot(self.settings.rtsp_url)


def decode_analysis_frames(
    path: str | Path,
    width: int,
    height: int,
    detection_size: tuple[int, int],
    timestamp0: float = 0.0,
    monotonic0: float = 0.0,
    scale_mode: str = "fit",
) -> tuple[list[AnalysisFrame], float]:
    """Every frame of a video file as the service analyses it, and the file's frame rate (frames/s).

    Each frame is scaled to ``width`` x ``height`` px per ``scale_mode`` (the main stream, as
    :class:`SoftwareCamera` does with ``CAMERA_SCALE_MODE``) and then to ``detection_size`` (the lores stream, as :meth:`SoftwareCamera.analysis_frame`
    does). Frame ``i`` gets ``timestamp0 + i / fps`` and ``monotonic0 + i / fps`` as its times (s).
    For replaying real video through the detector in tests and benchmarks.

    Raises:
        av.error.FFmpegError: the file cannot be opened or decoded.
    """
    import av

    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        for i, decoded in enumerate(container.decode(stream)):
            i420 = reformat_to_frame(decoded, width, height, scale_mode)
            main = Frame(i420, width, height, i, timestamp=timestamp0 + i / fps, monotonic=monotonic0 + i / fps)
            frames.append(AnalysisFrame(main.resized(*detection_size), width, height))
    return frames, fps


def sample_video_path() -> Path:
    """Path of the bundled sample video (``data/carphone_pristine.mp4``)."""
    return SAMPLE_VIDEO


def video_device_present(index: int = 0) -> bool:
    """True if ``/dev/video<index>`` exists and is readable."""
    path = f"/dev/video{index}"
    return os.path.exists(path) and os.access(path, os.R_OK)
