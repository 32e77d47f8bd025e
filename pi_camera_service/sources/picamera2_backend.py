"""Raspberry Pi camera source: Picamera2 captures, Picamera2's H.264 encoder publishes over RTSP.

Checked against raspberrypi/picamera2 **0.3.36** (commit ``3e6dff09``, 2026-05-12); ``PyavOutput``'s
``options=`` argument needs >= 0.3.31. picamera2 and libcamera come from the OS
(``apt install python3-picamera2``) and are imported lazily, so this module imports anywhere.

One ``Picamera2`` object is configured once with two streams and never reconfigured:

* ``main``: ``settings.width`` x ``settings.height`` YUV420, fed to the H.264 encoder and used for
  snapshots;
* ``lores``: ``settings.detection_size`` YUV420 (VC4 boards require YUV for lores, and its Y plane is
  what the Haar detector reads), pulled by the capture thread as :class:`AnalysisFrame`.

On a Camera Module 3 (IMX708) the 2304x1296 sensor mode is asked for whenever the main stream fits in
it, so a wide module keeps its whole field of view. Camera controls are libcamera controls sent with
``set_controls`` while everything runs (remembered and re-applied after a re-open); only the IMX708's
sensor HDR needs the camera closed and re-opened (:meth:`Picamera2Camera.set_sensor_hdr`). A tuning
file (``CAMERA_TUNING_FILE`` or ``CAMERA_NOIR=true``) is handed to libcamera through a fresh camera
manager, the only time libcamera reads it.

This module is the camera's lifecycle and streaming; each other concern has a module
of its own in :mod:`pi_camera_service.sources.pi`:

=====================  ==========================================================================
``pi.probe``           is there a camera, which sensor, sensor mode, capabilities after configure
``pi.yuv``             YUV420 with row padding -> packed I420; how often lores frames are pulled
``pi.tuning``          tuning files and the IMX708's sensor HDR mode
``pi.lens``            lens correction cropped to the requested ``ScalerCrop``
``pi.capture``         the capture thread and recovery (close, re-open with back-off)
``pi.snapshot``        JPEG snapshots while streaming
``pi.controls``        libcamera controls (remembered, re-applied) and metadata mapped to API names
``pi.encoding``        picamera2's ``H264Encoder`` + ``PyavOutput`` for the shared publisher
=====================  ==========================================================================

The RTSP state machine, statistics and back-off are the shared
:class:`~pi_camera_service.streaming.publisher.Publisher`; the libcamera metadata -> API map is
:mod:`pi_camera_service.controls.libcamera_map`.

Threads and who calls what::

    capture thread      captured_request(wait=capture_timeout) -> make_array("lores"),
                        get_metadata(), release; on failure: stop encoder, close, re-open with back-off
    publisher thread    start_encoder / stop_encoder; retries with back-off after RTSP errors
    picamera2 threads   call our output's outputframe() and error_callback() (the V4L2 encoder's
                        poll thread on VC4; the camera event-loop thread, with the encoder's lock
                        held, for the libav encoder on Pi 5): they only update counters and flags

Locks, always taken in this order: ``_stream_lock`` (encoder lifecycle) -> ``_lock`` (an RLock
around every other Picamera2 call and the ``_picam2`` reference) -> ``_state_lock`` (the publisher
reference and remembered controls, never held while calling picamera2). ``_picam2`` is only
replaced while holding both of the first two, so a thread holding ``_stream_lock`` may read it.

"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pi_camera_service.config import Settings
from pi_camera_service.frames import AnalysisFrame
from pi_camera_service.sources.base import (
    Camera,
    CameraUnavailable,
    NotSupported,
    SourceCapabilities,
    SourceOpenError,
    StreamingStatus,
    StreamStats,
    describe,
    describe_chain,
)
from pi_camera_service.sources.pi.capture import Picamera2Capture
from pi_camera_service.sources.pi.controls import Picamera2Controls
from pi_camera_service.sources.pi.encoding import Picamera2H264, make_h264_encoder, sensor_pts, stats_output_class
from pi_camera_service.sources.pi.lens import lens_processor
from pi_camera_service.sources.pi.probe import (
    has_sensor_hdr,
    picamera2_available,
    read_capabilities,
    sensor_model,
    sensor_output_size,
)
from pi_camera_service.sources.pi.snapshot import capture_main, yuv_to_jpeg
from pi_camera_service.sources.pi.tuning import Tuning, apply_sensor_hdr, resolve_tuning, use_tuning
from pi_camera_service.sources.pi.yuv import analysis_rate, yuv420_to_i420
from pi_camera_service.streaming.publisher import Publisher

log = logging.getLogger(__name__)

__all__ = [
    "INITIAL_RETRY_DELAY",
    "Picamera2Camera",
    "analysis_rate",
    "make_h264_encoder",
    "picamera2_available",
    "sensor_pts",
    "stats_output_class",
    "yuv420_to_i420",
]

#: first wait before retrying RTSP or re-opening the camera, s (doubles after each failure)
INITIAL_RETRY_DELAY = 0.5


class Picamera2Camera(Picamera2Capture, Picamera2Controls, Camera):
    """A Raspberry Pi camera through Picamera2: main stream H.264 to RTSP, lores for analysis.

    Args:
        settings: size (``width`` x ``height`` px), ``framerate`` (frames/s), ``bitrate`` (bit/s),
            ``keyframe_interval`` (s), ``rtsp_url``, ``rtsp_reconnect_max_delay`` (s),
            ``detection_size`` (lores px), ``detection_fps``.
        camera_num: index into ``Picamera2.global_camera_info()``.

    Attributes:
        width, height: main stream size actually configured, px (from ``camera_configuration()``).
        lores_size: analysis stream size actually configured, (w, h) px.
        stats: :class:`StreamStats` shared by every streaming session (updated by the shared
            :class:`~pi_camera_service.streaming.publisher.Publisher`).
        last_error: the last camera (not RTSP) error, or None once frames flow again.
        capture_timeout: s to wait for a frame before the camera is declared gone.
        reopen_max_delay: longest wait between attempts to re-open a camera that went away, s.

    All public methods are thread-safe. Lifecycle: :meth:`open` -> (:meth:`start_streaming` /
    :meth:`stop_streaming`)* -> :meth:`close`; ``open`` again after ``close`` works.
    """

    reopen_max_delay = 10.0

    def __init__(self, settings: Settings, camera_num: int = 0) -> None:
        self.settings = settings
        self.camera_num = camera_num
        self.source = f"picamera2:{camera_num}"
        self.width = settings.width
        self.height = settings.height
        self.framerate = float(settings.framerate)
        self.lores_size: tuple[int, int] = settings.detection_size
        self.stats = StreamStats()
        self.last_error: str | None = None
        self.capture_timeout = max(3.0, 5.0 / self.framerate)
        self.analysis_rate = analysis_rate(settings)

        self._lock = threading.RLock()
        self._stream_lock = threading.Lock()
        self._state_lock = threading.Lock()

        self._picam2: Any = None
        self._opened = False
        self._closing = threading.Event()
        self._capture_thread: threading.Thread | None = None
        self._analysis: AnalysisFrame | None = None
        self._metadata: dict[str, Any] = {}
        self._frames_pulled = 0
        self._frames_before = 0  # frames counted by Picamera2 objects closed since open()
        self._controls: dict[str, Any] = {}
        self._model: str | None = None
        self._tuning = Tuning(None, None)
        self._caps = SourceCapabilities(backend="picamera2", level_unit="lux")
        self._sensor_hdr = False
        self._lens_adjust: Any = None  # ImageAdjust(lens=...) or None
        self._lens_lores: Any = None  # FrameProcessor for the lores size
        self._lens_main: Any = None  # FrameProcessor for the main size (built on first snapshot)

        self._h264 = Picamera2H264(self)
        self._publisher: Publisher | None = None

    # ------------------------------------------------------------------------------- lifecycle
    def open(self) -> None:
        """Open the camera, configure main + lores YUV420 at ``framerate``, start it and the capture thread.

        Idempotent. Calls ``Picamera2(camera_num)``, ``create_video_configuration(main={"size": (W, H),
        "format": "YUV420"}, lores={"size": detection_size, "format": "YUV420"},
        controls={"FrameRate": framerate})``, ``configure`` and ``start()``. picamera2 0.3.36 facts:
        open failures raise ``RuntimeError("Camera __init__ sequence did not complete.")``;
        ``create_video_configuration`` merges ``controls`` over its own ``FrameDurationLimits``
        default (``FrameRate`` is a virtual control mapped to it); lores may not exceed main;
        ``configure`` writes each stream's ``stride`` back into ``camera_configuration()``.

        Raises:
            SourceOpenError: picamera2 is not installed, there is no camera ``camera_num``, it is
                busy (another process owns it) or it cannot be configured/started.
        """
        with self._stream_lock, self._lock:
            if self._opened:
                return
            try:
                import picamera2  # noqa: F401
            except Exception as exc:  # noqa: BLE001
                raise SourceOpenError(
                    "picamera2 is not available (install python3-picamera2; a venv needs "
                    f"--system-site-packages): {describe(exc)}"
                ) from exc
            try:
                self._model = sensor_model(self.camera_num)
                self._tuning.close()
                self._tuning = resolve_tuning(self.settings, self._model)
                if has_sensor_hdr(self._model):
                    # a previous run may have left the sensor in HDR mode: make it what is wanted
                    try:
                        apply_sensor_hdr(self.camera_num, self._sensor_hdr)
                    except Exception as exc:  # noqa: BLE001 - an old picamera2 without devices.imx708
                        log.warning("cannot set the IMX708 HDR mode (%s); keeping the sensor's", describe(exc))
                self._picam2 = self._create_picam2()
            except SourceOpenError:
                raise
            except IndexError as exc:
                raise SourceOpenError(f"no Raspberry Pi camera number {self.camera_num} is attached") from exc
            except Exception as exc:  # noqa: BLE001
                raise SourceOpenError(f"cannot open Raspberry Pi camera {self.camera_num}: {describe_chain(exc)}") from exc
            self._opened = True
            self._closing = threading.Event()
            self._analysis = None
            self._metadata = {}
            self._frames_pulled = 0
            self._frames_before = 0
            self.last_error = None
            self._capture_thread = threading.Thread(
                target=self._capture_loop, args=(self._closing,), name="picamera2-capture", daemon=True
            )
            self._capture_thread.start()
        log.info(
            "opened %s: main %dx%d, lores %dx%d YUV420 at %.2f fps (analysis pulled at %.1f/s)",
            self.source, self.width, self.height, *self.lores_size, self.framerate, self.analysis_rate,
        )
        crop_max = self._caps.scaler_crop_maximum if self._caps is not None else None
        if crop_max and self.settings.scale_mode != "fill" and crop_max[2] * self.height != crop_max[3] * self.width:
            # The H.264 encoder takes the ISP's output as it is; libcamera's Raspberry Pi pipeline
            # crops the sensor to the stream's aspect ratio, so the picture is never distorted.
            log.info(
                "the sensor (%dx%d) is cropped by the ISP to the %dx%d stream's aspect ratio "
                "(CAMERA_SCALE_MODE=%s applies to non-Pi sources)",
                crop_max[2], crop_max[3], self.width, self.height, self.settings.scale_mode,
            )

    def _create_picam2(self) -> Any:
        """New, configured and started Picamera2 (caller holds ``_stream_lock`` and ``_lock``).

        Raises whatever picamera2 raises; the half-opened camera is closed first.
        """
        from picamera2 import Picamera2

        use_tuning(self._tuning.path)
        picam2 = Picamera2(self.camera_num, tuning=self._tuning.path)
        try:
            extra: dict[str, Any] = {}
            sensor_size = sensor_output_size(self._model, self.settings.width, self.settings.height, self.framerate)
            if sensor_size is not None:
                extra["sensor"] = {"output_size": sensor_size}
            config = picam2.create_video_configuration(
                main={"size": (self.settings.width, self.settings.height), "format": "YUV420"},
                lores={"size": self.settings.detection_size, "format": "YUV420"},
                controls={"FrameRate": self.framerate},
                **extra,
            )
            picam2.configure(config)
            with self._state_lock:
                controls = dict(self._controls)
            if controls:
                picam2.set_controls(controls)
            actual = picam2.camera_configuration()
            picam2.start()
        except BaseException:
            try:
                picam2.close()
            except Exception:  # noqa: BLE001
                pass
            raise
        self.width, self.height = actual["main"]["size"]
        self.lores_size = tuple(actual["lores"]["size"])
        self._caps = read_capabilities(picam2, self.settings, self._model, self._tuning.name)
        return picam2

    def _teardown_picam2(self) -> None:
        """Close the current Picamera2 (caller holds ``_stream_lock`` and ``_lock``, encoder stopped)."""
        picam2 = self._picam2
        if picam2 is None:
            return
        for step in (picam2.cancel_all_and_flush, picam2.close):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - the device may already be gone
                log.debug("Picamera2.%s failed: %s", step.__name__, exc)
        self._picam2 = None
        self._frames_before += int(getattr(picam2, "frames", 0) or 0)

    def close(self) -> None:
        """Stop streaming and capture and release the camera (idempotent).

        Waits up to ``capture_timeout + 2`` s for each thread.
        """
        with self._lock:
            if not self._opened:
                return
            self._opened = False
            closing = self._closing
            closing.set()
        with self._state_lock:
            publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.stop(self.capture_timeout + 2.0)
        thread = self._capture_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.capture_timeout + 2.0)
        with self._stream_lock:
            self._h264.stop_locked()
            with self._lock:
                self._teardown_picam2()
        self.stats.state = "stopped"
        self._capture_thread = None
        self._tuning.close()
        log.info("closed %s", self.source)

    @property
    def is_open(self) -> bool:
        """True while the capture thread runs and a configured Picamera2 is held (False while re-opening)."""
        thread = self._capture_thread
        return self._opened and self._picam2 is not None and thread is not None and thread.is_alive()

    @property
    def frames_captured(self) -> int:
        """Frames the camera delivered since :meth:`open` (picamera2's ``frames`` counter, summed over re-opens)."""
        picam2 = self._picam2
        current = getattr(picam2, "frames", None) if picam2 is not None else 0
        if current is None:
            return self._frames_pulled
        return self._frames_before + int(current)

    # ------------------------------------------------------------------------------- sensor
    def capabilities(self) -> SourceCapabilities:
        """Sensor model, NoIR, platform, tuning, ``camera_controls`` ranges, ``ScalerCropMaximum``,
        HDR abilities (read when the camera was opened)."""
        return self._caps

    def set_sensor_hdr(self, enabled: bool) -> float:
        """Switch the Camera Module 3's sensor HDR mode: stop the encoder, close the camera, set the mode,
        re-open and reconfigure it (controls re-applied) and let the publisher restart the encoder.

        The HTTP API stays up meanwhile; viewers see the RTSP session restart. Returns the time it
        took, ms.

        Raises:
            NotSupported: the sensor is not an IMX708.
            CameraUnavailable: the camera is not open, or did not re-open (the capture thread then keeps
                retrying with back-off, as after any camera fault).
        """
        if not has_sensor_hdr(self._model):
            raise NotSupported(f"sensor HDR needs a Camera Module 3 (IMX708), this is {self._model}")
        start = time.monotonic()
        with self._stream_lock:
            if not self._opened:
                raise CameraUnavailable(f"{self.source} is not open")
            self._h264.stop_locked()
            with self._lock:
                self._teardown_picam2()
                self._sensor_hdr = enabled
                try:
                    apply_sensor_hdr(self.camera_num, enabled)
                    self._picam2 = self._create_picam2()
                except Exception as exc:  # noqa: BLE001 - the capture thread re-opens with back-off
                    self.last_error = f"re-opening for sensor HDR failed: {describe_chain(exc)}"
                    raise CameraUnavailable(self.last_error) from exc
        self._wake_publisher()
        elapsed = (time.monotonic() - start) * 1000
        log.info("sensor HDR %s: camera re-opened in %.0f ms", "on" if enabled else "off", elapsed)
        return elapsed

    @property
    def sensor_hdr(self) -> bool:
        """True when the sensor HDR mode was requested (:meth:`set_sensor_hdr`)."""
        return self._sensor_hdr

    def set_image_adjust(self, adjust: Any) -> None:
        """Only ``adjust.lens`` applies on the Pi camera (its ISP does brightness, crop...): lens correction
        of analysed frames and snapshots (:func:`~pi_camera_service.sources.pi.lens.lens_processor`,
        the model cropped to the ``ScalerCrop`` of ``adjust.roi``); None or no lens turns it off."""
        from pi_camera_service.imaging import ImageAdjust

        lens = getattr(adjust, "lens", None)
        if lens is None:
            self._lens_adjust = self._lens_lores = self._lens_main = None
            return
        roi = tuple(getattr(adjust, "roi", (0.0, 0.0, 1.0, 1.0)))
        key = ImageAdjust(roi=roi, lens=lens)
        if self._lens_adjust == key:
            return
        self._lens_lores = lens_processor(lens, roi, *self.lores_size, self._caps.scaler_crop_maximum)
        self._lens_main = None
        self._lens_adjust = key

    # ------------------------------------------------------------------------------- frames
    def analysis_frame(self) -> AnalysisFrame | None:
        """The newest lores frame: an :class:`AnalysisFrame` whose ``frame.i420`` is
        ``(lh * 3 // 2, lw)`` uint8 I420 (``lores_size`` = (lw, lh)), with ``main_width``/``main_height``
        the main stream size; None before the first frame. ``frame.index`` counts pulled frames."""
        return self._analysis

    def snapshot_jpeg(self, width: int | None = None, quality: int = 90) -> bytes:
        """JPEG of the next main-stream frame, taken while streaming goes on.

        Without ``width`` (or with ``width >= self.width``) and without lens correction, picamera2's
        own ``CompletedRequest.save`` JPEG with its EXIF; else the main YUV420 array is copied, the
        request released at once, then corrected, scaled (aspect ratio kept) and encoded
        (:mod:`pi_camera_service.sources.pi.snapshot`).

        Raises:
            ValueError: ``width`` < 1 or ``quality`` outside 1..100.
            CameraUnavailable: the camera is not open, re-opening, or gave no frame within
                ``capture_timeout`` s (the pending capture job is then cancelled with
                ``cancel_all_and_flush()`` so it cannot hold a buffer later).
        """
        if width is not None and width < 1:
            raise ValueError(f"width must be >= 1 px, got {width}")
        if not 1 <= int(quality) <= 100:
            raise ValueError(f"quality must be 1..100, got {quality}")
        scale = width is not None and width < self.width
        lens_adjust = self._lens_adjust
        with self._lock:
            picam2 = self._picam2
            if picam2 is None:
                raise CameraUnavailable(f"{self.source} is not open" + (f": {self.last_error}" if self.last_error else ""))
            main_size = (self.width, self.height)
            direct = not scale and lens_adjust is None
            grabbed = capture_main(picam2, self.capture_timeout, int(quality) if direct else None, self.source)
        if direct:
            return grabbed
        lens = None
        if lens_adjust is not None:

            def lens() -> Any:
                processor = self._lens_main
                if processor is None:
                    processor = self._lens_main = lens_processor(
                        lens_adjust.lens, lens_adjust.roi, *main_size, self._caps.scaler_crop_maximum
                    )
                return processor

        return yuv_to_jpeg(grabbed, main_size, width, quality, lens)

    # ------------------------------------------------------------------------------- streaming
    @property
    def initial_retry_delay(self) -> float:
        """First wait before retrying RTSP or re-opening the camera, s (:data:`INITIAL_RETRY_DELAY`)."""
        return INITIAL_RETRY_DELAY

    def start_streaming(self) -> StreamingStatus:
        """Start publishing the main stream as H.264 to ``settings.rtsp_url`` (idempotent); returns at once.

        The shared :class:`~pi_camera_service.streaming.publisher.Publisher` runs
        :class:`~pi_camera_service.sources.pi.encoding.Picamera2H264` sessions: ``H264Encoder``
        (:func:`make_h264_encoder`) + a ``PyavOutput`` subclass (``format="rtsp",
        options={"rtsp_transport": "tcp"}``, ``error_callback`` set) started with
        ``start_encoder(encoder, output)``. State is ``connecting`` until the first frame is muxed,
        then ``streaming``; after an RTSP/encoder error ``reconnecting`` with ``last_error``, and the
        publisher stops the encoder and starts a new one after 0.5 s, 1 s, 2 s ... up to
        ``settings.rtsp_reconnect_max_delay`` (reset once a frame goes out again). ``reconnects``
        counts sessions re-established after one had worked.

        Raises:
            CameraUnavailable: :meth:`open` has not been called (or :meth:`close` was).
        """
        with self._lock:  # close() clears _opened under _lock, then stops the publisher
            if not self._opened:
                raise CameraUnavailable(f"{self.source} is not open")
            with self._state_lock:
                if self._publisher is None:
                    self._publisher = Publisher(
                        self.settings.rtsp_url, self._h264, self.stats,
                        max_delay=self.settings.rtsp_reconnect_max_delay, initial_delay=self.initial_retry_delay,
                        name="picamera2-publisher",
                    )
                    self._publisher.start()
        return self.streaming_status()

    def stop_streaming(self) -> StreamingStatus:
        """Stop publishing (idempotent): cancel pending reconnects, ``stop_encoder`` the encoder.

        The camera keeps running, so analysis frames, metadata and snapshots go on, and
        :meth:`start_streaming` can start again at once.
        """
        with self._state_lock:
            publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.stop(5.0)
        with self._stream_lock:
            self._h264.stop_locked()
        with self._state_lock:
            if self._publisher is None:
                self.stats.state = "stopped"
        return self.streaming_status()

    def streaming_status(self) -> StreamingStatus:
        """The publisher's state and counters (:class:`StreamingStatus`, URL credentials redacted)."""
        return self.stats.snapshot(self.settings.rtsp_url)

    def _wake_publisher(self) -> None:
        """The camera is back (re-opened, sensor HDR switched): let the publisher start an encoder now."""
        with self._state_lock:
            publisher = self._publisher
        if publisher is not None:
            publisher.wake()
