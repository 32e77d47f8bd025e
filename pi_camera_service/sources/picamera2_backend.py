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

Threads and who calls what::

    capture thread      captured_request(wait=capture_timeout) -> make_array("lores"),
                        get_metadata(), release; on failure: stop encoder, close, re-open with backoff
    publisher thread    start_encoder / stop_encoder; retries with backoff after RTSP errors
    picamera2 threads   call our output's outputframe() and error_callback() (the V4L2 encoder's
                        poll thread on VC4; the camera event-loop thread, with the encoder's lock
                        held, for the libav encoder on Pi 5): they only update counters and flags

Locks, always taken in this order: ``_stream_lock`` (encoder lifecycle) -> ``_lock`` (an RLock
around every other Picamera2 call and the ``_picam2`` reference) -> ``_state_lock`` (streaming
flags and remembered controls, never held while calling picamera2). ``_picam2`` is only replaced
while holding both of the first two, so a thread holding ``_stream_lock`` may read it.

picamera2 facts this module relies on (0.3.36 source):

* ``Picamera2.global_camera_info()`` is a staticmethod returning one dict per camera, and
  ``Picamera2(n)`` indexes that list (``IndexError`` for a missing camera); open failures raise
  ``RuntimeError("Camera __init__ sequence did not complete.")``.
* ``create_video_configuration(main=, lores=, controls=)`` merges ``controls`` over its own
  ``FrameDurationLimits`` default; ``FrameRate`` is a virtual control mapped to
  ``FrameDurationLimits``; lores may not exceed main. ``configure`` writes each stream's ``stride``
  back into ``camera_configuration()``.
* ``make_array(name)`` returns a *copy* shaped ``(h * 3 // 2, stride)`` for YUV420, padding
  columns included when ``stride > width``; the U and V planes follow Y with stride
  ``stride // 2`` (the layout ``CompletedRequest.save`` slices). ``align_stream`` notes that the
  hardware pads each plane's rows to 32 (VC4) or 64 (Pi 5) bytes, so e.g. a 320 px YUV420 lores on
  a Pi 5 is expected to arrive with padded rows: :func:`yuv420_to_i420` removes them.
* ``captured_request(wait=s)`` waits for the next completed request and releases it on exit; with a
  number it raises ``TimeoutError`` when no frame comes (a dislodged cable stops frames without any
  error), leaving the job queued, hence ``cancel_all_and_flush()`` before closing.
* ``CompletedRequest.save(name, file, format="jpeg")`` takes its JPEG quality from
  ``picam2.options["quality"]`` (default 90), not from an argument.
* ``stop_recording()`` stops the camera *and* every encoder (the seed's v1.0 bug: streaming could
  not restart because the camera stayed stopped), so streaming uses ``start_encoder(encoder,
  output)`` / ``stop_encoder(encoder)`` and the camera keeps running for detection and snapshots.
* ``Encoder.start`` calls ``output.start()`` before starting the codec; if it raises, the encoder is
  left half-started, so every attempt builds a new encoder and output.
* ``picamera2.encoders.H264Encoder`` is the V4L2 hardware encoder (``enable_sps_framerate``
  accepted) on VC4 boards and ``LibavH264Encoder`` (no ``enable_sps_framerate``; ``framerate`` goes
  to PyAV's ``add_stream(rate=)``, which rejects floats) on a Pi 5.
* ``PyavOutput(url, format="rtsp", options={...})``: ``start()`` opens the container, which for RTSP
  makes no connection; the RTSP handshake happens in the first ``mux``. When a mux raises, the
  output closes its container and calls ``error_callback(exc)`` synchronously from the thread that
  called ``outputframe``; joining that thread (``stop_encoder``) from inside the callback would
  raise (V4L2) or deadlock (libav), so recovery runs on the publisher thread.
"""

from __future__ import annotations

import functools
import inspect
import io
import json
import logging
import os
import tempfile
import threading
import time
from fractions import Fraction
from typing import Any

import cv2
import numpy as np

from pi_camera_service.config import Settings
from pi_camera_service.frames import AnalysisFrame, Frame, encode_jpeg
from pi_camera_service.sources.base import (
    Camera,
    CameraError,
    CameraUnavailable,
    NotSupported,
    SourceCapabilities,
    SourceOpenError,
    StreamingStatus,
    StreamStats,
    redact_url,
)

log = logging.getLogger(__name__)

#: first wait before retrying RTSP or re-opening the camera, s (doubles after each failure)
INITIAL_RETRY_DELAY = 0.5


def picamera2_available(camera_num: int = 0) -> bool:
    """True if ``picamera2`` imports and ``Picamera2.global_camera_info()`` lists camera ``camera_num``.

    Never raises: a missing picamera2/libcamera (any machine that is not a Pi, or a venv created
    without ``--system-site-packages``) or a failing camera manager gives False. The camera is not
    opened, so this is safe while another process owns it.

    Relies on: ``Picamera2(n)`` opens ``global_camera_info()[n]``, so camera ``n`` exists when the
    list has more than ``n`` entries.
    """
    try:
        from picamera2 import Picamera2
    except Exception as exc:  # noqa: BLE001 - ImportError, or libcamera failing at import
        log.debug("picamera2 is not importable: %s", exc)
        return False
    try:
        cameras = Picamera2.global_camera_info()
    except Exception as exc:  # noqa: BLE001
        log.debug("Picamera2.global_camera_info() failed: %s", exc)
        return False
    return 0 <= camera_num < len(cameras)


def yuv420_to_i420(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """Turn a Picamera2 YUV420 array into a packed I420 ``(height * 3 // 2, width)`` uint8 array.

    Args:
        array: ``(height * 3 // 2, stride)`` uint8 as ``CompletedRequest.make_array`` returns for a
            ``"YUV420"`` stream: ``height`` rows of Y (``stride`` bytes each, ``width`` used), then
            U and V, each ``height / 2`` rows of ``stride / 2`` bytes (``width / 2`` used).
        width, height: the stream size, px (even).

    Returns:
        ``array`` itself when there is no padding (``stride == width``), else a new packed array.

    Raises:
        ValueError: ``array`` does not have that layout.
    """
    rows, stride = array.shape
    if rows != height * 3 // 2 or stride < width or stride % 2:
        raise ValueError(f"expected a ({height * 3 // 2}, >= {width}) YUV420 array, got {array.shape}")
    if stride == width:
        return np.ascontiguousarray(array)
    out = np.empty((height * 3 // 2, width), dtype=np.uint8)
    out[:height] = array[:height, :width]
    half_rows = array.reshape(height * 3, stride // 2)
    cw, ch = width // 2, height // 2
    chroma = out[height:].reshape(2 * ch, cw)
    chroma[:ch] = half_rows[2 * height : 2 * height + ch, :cw]
    chroma[ch:] = half_rows[2 * height + ch :, :cw]
    return out


def analysis_rate(settings: Settings) -> float:
    """Frames per second the capture thread pulls from the lores stream.

    The camera runs at ``settings.framerate`` regardless (the encoder is fed by picamera2's event
    loop, and picamera2 recycles requests nobody asks for), so the capture thread only needs to be
    fast enough that the detector, which runs ``detection_fps`` times a second on the newest frame,
    never analyses a frame older than half its period: ``2 * detection_fps``, at least 5/s so sensor
    metadata stays fresh, and never above the camera rate. Without detection, 2/s keeps metadata
    current. Pulling all 30 frames/s would cost a Pi Zero 2 W a lores copy, a metadata conversion
    and a request round trip per frame for nothing.
    """
    wanted = max(2.0 * settings.detection_fps, 5.0) if settings.detection_enabled else 2.0
    return min(float(settings.framerate), wanted)


def _accepts(cls: type, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def make_h264_encoder(encoder_cls: type, settings: Settings, framerate: float) -> Any:
    """Build picamera2's ``H264Encoder`` for ``settings``.

    ``H264Encoder(bitrate=settings.bitrate, repeat=True, iperiod=round(framerate *
    keyframe_interval), framerate=Fraction(framerate))``, plus ``enable_sps_framerate=True`` when
    the class accepts it (the VC4 hardware encoder; Pi 5's ``LibavH264Encoder`` does not). ``repeat``
    puts SPS/PPS before every keyframe so a viewer can join at any IDR; the framerate is a
    ``Fraction`` because Pi 5's encoder hands it to PyAV's ``add_stream(rate=)``, which rejects
    floats.
    """
    kwargs: dict[str, Any] = {
        "bitrate": settings.bitrate,
        "repeat": True,
        "iperiod": max(1, round(framerate * settings.keyframe_interval)),
        "framerate": Fraction(framerate).limit_denominator(1001),
    }
    if _accepts(encoder_cls, "enable_sps_framerate"):
        kwargs["enable_sps_framerate"] = True
    return encoder_cls(**kwargs)


_OUTPUT_CLASSES: dict[type, type] = {}


def _stats_output_class(base: type) -> type:
    """A subclass of picamera2's ``PyavOutput`` (``base``) that reports every muxed frame.

    ``on_frame(output, nbytes)`` is called after each frame the base class muxed without error;
    frames after a failure (the base drops them once its container is closed) are not counted.
    ``failed`` is set by the owner's ``error_callback``, which the base calls from inside
    ``outputframe``. Only picamera2's encoder thread calls ``outputframe``.

    Timestamps (µs, from the frames' ``SensorTimestamp``, what the base stamps as PTS = DTS) go
    through :func:`sensor_pts`: a missing one is replaced by the time since the first frame, and
    consecutive ones are kept at least half a frame duration apart, so the RTSP muxer and every
    receiver get strictly increasing DTS. A jump of more than 1.5 frame durations means the sensor
    delivered frames nobody encoded: ``on_drop(n)`` is told how many.
    """
    cls = _OUTPUT_CLASSES.get(base)
    if cls is None:

        class StatsPyavOutput(base):  # type: ignore[misc, valid-type]
            def __init__(
                self, output_name: str, on_frame: Any, framerate: float = 30.0, on_drop: Any = None, **kwargs: Any
            ) -> None:
                super().__init__(output_name, **kwargs)
                self.on_frame = on_frame
                self.on_drop = on_drop
                self.framerate = framerate
                self.failed = False
                self.frames_written = 0
                self.last_timestamp: int | None = None
                self.first_monotonic: float | None = None

            def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
                live = self.recording and not self.failed and not audio and frame is not None
                if live:
                    now = time.monotonic()
                    if self.first_monotonic is None:
                        self.first_monotonic = now
                    if timestamp is None:
                        timestamp = round((now - self.first_monotonic) * 1_000_000)
                    timestamp, dropped = sensor_pts(timestamp, self.last_timestamp, self.framerate)
                    self.last_timestamp = timestamp
                    if dropped and self.on_drop is not None:
                        self.on_drop(dropped)
                super().outputframe(frame, keyframe, timestamp, packet, audio)
                if live and not self.failed:
                    self.frames_written += 1
                    self.on_frame(self, len(frame))

        cls = _OUTPUT_CLASSES[base] = StatsPyavOutput
    return cls


def sensor_pts(timestamp_us: int, last_us: int | None, framerate: float) -> tuple[int, int]:
    """(PTS to use, frames missing before it) for a frame stamped ``timestamp_us`` after ``last_us``.

    PTS in µs: ``timestamp_us`` unless it is less than half a frame duration (at ``framerate``
    frames/s) after ``last_us``, then ``last_us`` plus that half duration (strictly increasing DTS
    for the muxer). Frames missing: ``round(interval / duration) - 1`` when the interval exceeds 1.5
    frame durations, else 0 (the sensor produced frames that were not encoded).
    """
    if last_us is None:
        return max(int(timestamp_us), 0), 0
    duration = 1_000_000 / framerate
    interval = timestamp_us - last_us
    missing = max(round(interval / duration) - 1, 0) if interval > 1.5 * duration else 0
    return max(int(timestamp_us), last_us + max(int(duration / 2), 1000)), missing


def _dispose(encoder: Any, output: Any) -> None:
    """Best-effort cleanup of an encoder/output pair that picamera2 could not start or stop."""
    if getattr(encoder, "running", False):
        try:
            encoder.stop()
        except Exception as exc:  # noqa: BLE001
            log.debug("stopping a failed encoder: %s", exc)
    if output is not None:
        try:
            output.stop()
        except Exception as exc:  # noqa: BLE001
            log.debug("stopping a failed output: %s", exc)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _describe_chain(exc: BaseException) -> str:
    """``RuntimeError: Camera __init__ sequence did not complete. (caused by OSError: ...)``."""
    cause = exc.__cause__
    return _describe(exc) + (f" (caused by {_describe(cause)})" if cause is not None else "")


class _StreamSession:
    """One start_streaming() .. stop_streaming() period: its publisher thread and its signals."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def cancel(self) -> None:
        self.cancelled.set()
        self.wake.set()


class Picamera2Camera(Camera):
    """A Raspberry Pi camera through Picamera2: main stream H.264 to RTSP, lores for analysis.

    Args:
        settings: size (``width`` x ``height`` px), ``framerate`` (frames/s), ``bitrate`` (bit/s),
            ``keyframe_interval`` (s), ``rtsp_url``, ``rtsp_reconnect_max_delay`` (s),
            ``detection_size`` (lores px), ``detection_fps``.
        camera_num: index into ``Picamera2.global_camera_info()``.

    Attributes:
        width, height: main stream size actually configured, px (from ``camera_configuration()``).
        lores_size: analysis stream size actually configured, (w, h) px.
        stats: :class:`StreamStats` shared by every streaming session.
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
        self._tuning: str | None = None
        self._tuning_tmp: Any = None  # NamedTemporaryFile holding a tuning found by name
        self._tuning_name: str | None = None
        self._caps = SourceCapabilities(backend="picamera2", level_unit="lux")
        self._sensor_hdr = False
        self._lens_adjust: Any = None  # ImageAdjust(lens=...) or None
        self._lens_lores: Any = None  # FrameProcessor for the lores size
        self._lens_main: Any = None  # FrameProcessor for the main size (built on first snapshot)

        self._session: _StreamSession | None = None
        self._encoder: Any = None
        self._output: Any = None
        self._output_failed = False
        self._connected_once = False
        self._pending_reconnect = False
        self._retry_delay = INITIAL_RETRY_DELAY

    # ------------------------------------------------------------------------------- lifecycle
    def open(self) -> None:
        """Open the camera, configure main + lores YUV420 at ``framerate``, start it and the capture thread.

        Idempotent. Calls ``Picamera2(camera_num)``, ``create_video_configuration(main={"size": (W, H),
        "format": "YUV420"}, lores={"size": detection_size, "format": "YUV420"},
        controls={"FrameRate": framerate})``, ``configure`` and ``start()``.

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
                    f"--system-site-packages): {_describe(exc)}"
                ) from exc
            try:
                self._model = self._sensor_model()
                self._tuning = self._resolve_tuning()
                if self._has_sensor_hdr():
                    # a previous run may have left the sensor in HDR mode: make it what is wanted
                    try:
                        self._apply_sensor_hdr(self._sensor_hdr)
                    except Exception as exc:  # noqa: BLE001 - an old picamera2 without devices.imx708
                        log.warning("cannot set the IMX708 HDR mode (%s); keeping the sensor's", _describe(exc))
                self._picam2 = self._create_picam2()
            except SourceOpenError:
                raise
            except IndexError as exc:
                raise SourceOpenError(f"no Raspberry Pi camera number {self.camera_num} is attached") from exc
            except Exception as exc:  # noqa: BLE001
                raise SourceOpenError(f"cannot open Raspberry Pi camera {self.camera_num}: {_describe_chain(exc)}") from exc
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

        if self._tuning is not None:
            # libcamera reads LIBCAMERA_RPI_TUNING_FILE only when a camera manager is created, and
            # picamera2 keeps the one global_camera_info() made: set the file, then a fresh manager
            os.environ["LIBCAMERA_RPI_TUNING_FILE"] = self._tuning
            Picamera2._cm.reset()
        picam2 = Picamera2(self.camera_num, tuning=self._tuning)
        try:
            extra: dict[str, Any] = {}
            sensor_size = self._sensor_output_size()
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
        self._caps = self._read_capabilities(picam2)
        return picam2

    # ------------------------------------------------------------------------------- sensor facts
    def _sensor_model(self) -> str | None:
        """libcamera's model name of camera ``camera_num`` (``imx708_wide_noir``...) from
        ``Picamera2.global_camera_info()`` (no camera opened).

        Raises:
            IndexError: no such camera.
        """
        from picamera2 import Picamera2

        return Picamera2.global_camera_info()[self.camera_num].get("Model")

    def _sensor_output_size(self) -> tuple[int, int] | None:
        """The sensor mode to ask for: the IMX708's 2304x1296 2x2-binned mode (full field of view, up to
        56 fps) whenever the main stream fits in it, else None (libcamera's choice).

        Without it picamera2 picks the mode closest to the main size, which for 1280x720 or 640x480 is
        the 1536x864 mode: a centre crop of the sensor that throws away a third of a wide module's
        field of view (its ``ScalerCropMaximum`` is (768, 432, 3072, 1728)). The HDR mode is also
        2304x1296.
        """
        if not self._has_sensor_hdr():  # i.e. an IMX708 (Camera Module 3, any variant)
            return None
        if self.settings.width > 2304 or self.settings.height > 1296 or self.framerate > 56.0:
            return None
        return (2304, 1296)

    def _resolve_tuning(self) -> str | None:
        """Path of the tuning file for ``Picamera2(tuning=...)``, or None: libcamera then picks
        ``<model>.json``, which for a NoIR module is already its ``_noir`` tuning.

        ``CAMERA_TUNING_FILE`` wins (a path, or a name looked up with ``Picamera2.load_tuning_file``
        where libcamera installs them and written to a temporary file kept while the camera is
        used: picamera2 passes a string to libcamera as a path relative to the working directory);
        else ``CAMERA_NOIR=true`` on a sensor libcamera does not name ``_noir`` loads
        ``<model>_noir.json``.

        Raises:
            SourceOpenError: the named tuning file is not installed, or the path does not exist.
        """
        from picamera2 import Picamera2

        name = self.settings.tuning_file
        model = self._model or ""
        if name is None and self.settings.noir == "true" and model and "_noir" not in model:
            name = f"{model}_noir.json"
        if name is None:
            self._tuning_name = f"{model}.json (libcamera default)" if model else None
            return None
        if os.sep in name or os.path.isfile(name):
            path = os.path.abspath(os.path.expanduser(name))
            if not os.path.isfile(path):
                raise SourceOpenError(f"CAMERA_TUNING_FILE={name!r}: no such file")
            self._tuning_name = path
            return path
        try:
            tuning = Picamera2.load_tuning_file(name)
        except RuntimeError as exc:
            raise SourceOpenError(
                f"tuning file {name!r} not found where libcamera installs them (/usr/share/libcamera/ipa/rpi/...): {exc}"
            ) from exc
        if self._tuning_tmp is not None:
            self._tuning_tmp.close()
        self._tuning_tmp = tempfile.NamedTemporaryFile("w", prefix="tuning-", suffix=".json")
        json.dump(tuning, self._tuning_tmp)
        self._tuning_tmp.flush()
        self._tuning_name = name
        return self._tuning_tmp.name

    def _has_sensor_hdr(self) -> bool:
        return bool(self._model) and self._model.startswith("imx708")

    def _apply_sensor_hdr(self, enabled: bool) -> None:
        """Set the IMX708's HDR mode with ``picamera2.devices.imx708.IMX708(n).set_sensor_hdr_mode``.

        Must run while no Picamera2 holds the camera: the driver refuses the control while streaming,
        and picamera2 then only prints a message. picamera2 resets its camera manager afterwards so
        the next ``Picamera2`` sees the new sensor modes.

        Raises:
            CameraError: the IMX708 device node cannot be found.
        """
        from picamera2.devices.imx708 import IMX708

        try:
            with IMX708(self.camera_num) as sensor:
                sensor.set_sensor_hdr_mode(enabled)
        except RuntimeError as exc:
            raise CameraError(f"cannot set sensor HDR on camera {self.camera_num}: {exc}") from exc

    def _read_capabilities(self, picam2: Any) -> SourceCapabilities:
        from picamera2.platform import Platform, get_platform

        props = picam2.camera_properties
        controls = dict(picam2.camera_controls)
        model = props.get("Model") or self._model
        platform = "pisp" if get_platform() == Platform.PISP else "vc4"
        crop_max = props.get("ScalerCropMaximum")
        size = props.get("PixelArraySize")
        return SourceCapabilities(
            backend="picamera2",
            model=model,
            noir=self.settings.noir == "true" or (self.settings.noir == "auto" and "_noir" in (model or "")),
            platform=platform,
            tuning=self._tuning_name,
            libcamera_controls=controls,
            pixel_array_size=tuple(size) if size else None,
            scaler_crop_maximum=tuple(crop_max) if crop_max else ((0, 0, *size) if size else None),
            sensor_hdr=bool(model) and model.startswith("imx708"),
            isp_hdr=platform == "pisp" and "HdrMode" in controls,
            level_unit="lux",
        )

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
                retrying with backoff, as after any camera fault).
        """
        if not self._has_sensor_hdr():
            raise NotSupported(f"sensor HDR needs a Camera Module 3 (IMX708), this is {self._model}")
        start = time.monotonic()
        with self._stream_lock:
            if not self._opened:
                raise CameraUnavailable(f"{self.source} is not open")
            self._stop_encoder_locked()
            with self._lock:
                self._teardown_picam2()
                self._sensor_hdr = enabled
                try:
                    self._apply_sensor_hdr(enabled)
                    self._picam2 = self._create_picam2()
                except Exception as exc:  # noqa: BLE001 - the capture thread re-opens with backoff
                    self.last_error = f"re-opening for sensor HDR failed: {_describe_chain(exc)}"
                    raise CameraUnavailable(self.last_error) from exc
        with self._state_lock:
            session = self._session
        if session is not None:
            session.wake.set()
        elapsed = (time.monotonic() - start) * 1000
        log.info("sensor HDR %s: camera re-opened in %.0f ms", "on" if enabled else "off", elapsed)
        return elapsed

    @property
    def sensor_hdr(self) -> bool:
        """True when the sensor HDR mode was requested (:meth:`set_sensor_hdr`)."""
        return self._sensor_hdr

    def set_image_adjust(self, adjust: Any) -> None:
        """Only ``adjust.lens`` applies on the Pi camera (its ISP does brightness, crop...): lens correction
        of analysed frames and snapshots; None or no lens turns it off.

        The lens model (calibrated on the full pixel array) is cropped to what the frames show: the
        ``ScalerCrop`` requested for ``adjust.roi``, bounded to the stream's aspect ratio and centred
        as libcamera's Raspberry Pi pipeline handler does (``boundedToAspectRatio`` + ``centeredTo``).
        """
        from pi_camera_service.imaging import ImageAdjust

        lens = getattr(adjust, "lens", None)
        if lens is None:
            self._lens_adjust = self._lens_lores = self._lens_main = None
            return
        roi = tuple(getattr(adjust, "roi", (0.0, 0.0, 1.0, 1.0)))
        key = ImageAdjust(roi=roi, lens=lens)
        if self._lens_adjust == key:
            return
        self._lens_lores = self._lens_processor(lens, roi, *self.lores_size)
        self._lens_main = None
        self._lens_adjust = key

    def _lens_processor(self, lens: Any, roi: tuple[float, float, float, float], width: int, height: int) -> Any:
        """A :class:`~pi_camera_service.imaging.FrameProcessor` undistorting ``width`` x ``height`` frames."""
        from pi_camera_service.controls.spec import roi_to_scaler_crop
        from pi_camera_service.imaging import FrameProcessor, ImageAdjust

        crop_max = self._caps.scaler_crop_maximum
        if crop_max is not None:
            x, y, w, h = roi_to_scaler_crop(roi, crop_max)
            if w * height > h * width:  # wider than the output: narrow it, centred
                x, w = x + (w - h * width / height) / 2, h * width / height
            else:
                y, h = y + (h - w * height / width) / 2, w * height / width
            lens = lens.cropped((x, y, w, h), width, height)
        return FrameProcessor(width, height, ImageAdjust(lens=lens))

    def scene_level(self) -> float | None:
        """libcamera's ``Lux`` of the newest frame (None before one)."""
        lux = self._metadata.get("Lux")
        return None if lux is None else float(lux)

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

        Waits up to ``capture_timeout + 2`` s for the capture thread.
        """
        with self._lock:
            if not self._opened:
                return
            self._opened = False
            closing = self._closing
            closing.set()
        with self._state_lock:
            session, self._session = self._session, None
        if session is not None:
            session.cancel()
        for thread in (self._capture_thread, session.thread if session else None):
            if thread is not None and thread is not threading.current_thread():
                thread.join(self.capture_timeout + 2.0)
        with self._stream_lock:
            self._stop_encoder_locked()
            with self._lock:
                self._teardown_picam2()
        with self._state_lock:
            self.stats.state = "stopped"
        self._capture_thread = None
        if self._tuning_tmp is not None:
            if os.environ.get("LIBCAMERA_RPI_TUNING_FILE") == self._tuning_tmp.name:
                del os.environ["LIBCAMERA_RPI_TUNING_FILE"]  # the file is about to be deleted
            self._tuning_tmp.close()
            self._tuning_tmp = None
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

    # ------------------------------------------------------------------------------- capture
    def _capture_loop(self, closing: threading.Event) -> None:
        """The one thread that reads frames: newest lores frame + metadata, ``analysis_rate`` times a second."""
        period = 1.0 / self.analysis_rate
        next_due = time.monotonic()
        while not closing.is_set():
            try:
                with self._lock:
                    picam2 = self._picam2
                    if picam2 is None:
                        raise CameraUnavailable("camera is not open")
                    with picam2.captured_request(wait=self.capture_timeout) as request:
                        lores = request.make_array("lores")
                        metadata = request.get_metadata()
            except Exception as exc:  # noqa: BLE001 - timeout, device error: recover, never die
                if closing.is_set():
                    break
                self._recover(exc, closing)
                next_due = time.monotonic()
                continue
            try:
                self._publish_analysis(lores, metadata)
            except Exception as exc:  # noqa: BLE001 - an unexpected buffer layout must not end capture
                self.last_error = f"bad lores frame: {_describe(exc)}"
                log.error("%s: %s", self.source, self.last_error)
            next_due += period
            delay = next_due - time.monotonic()
            if delay > 0:
                closing.wait(delay)
            else:
                next_due = time.monotonic()

    def _publish_analysis(self, lores: np.ndarray, metadata: dict[str, Any]) -> None:
        lw, lh = self.lores_size
        i420 = yuv420_to_i420(lores, lw, lh)
        lens = self._lens_lores
        if lens is not None:
            i420 = lens.process(i420)
        frame = Frame(i420=i420, width=lw, height=lh, index=self._frames_pulled)
        self._frames_pulled += 1
        self._analysis = AnalysisFrame(frame, main_width=self.width, main_height=self.height)
        self._metadata = metadata

    def _recover(self, exc: BaseException, closing: threading.Event) -> None:
        """The camera stopped delivering: stop publishing, close it, re-open with backoff, resume."""
        if isinstance(exc, TimeoutError):
            message = f"no frame from the camera within {self.capture_timeout:g} s"
        else:
            message = _describe(exc)
        self.last_error = message
        log.warning("%s failed (%s); closing and re-opening it", self.source, message)
        with self._stream_lock:
            self._stop_encoder_locked()
            with self._state_lock:
                if self._session is not None:
                    self.stats.state = "reconnecting"
                    self.stats.last_error = f"camera: {message}"
                    if self._connected_once:
                        self._pending_reconnect = True
            with self._lock:
                self._teardown_picam2()
        delay = INITIAL_RETRY_DELAY
        while not closing.wait(delay):
            try:
                with self._stream_lock, self._lock:
                    if closing.is_set():
                        return
                    self._picam2 = self._create_picam2()
            except Exception as reopen_exc:  # noqa: BLE001
                self.last_error = f"re-opening camera {self.camera_num} failed: {_describe_chain(reopen_exc)}"
                log.warning("%s; next attempt in %.1f s", self.last_error, min(delay * 2, self.reopen_max_delay))
                delay = min(delay * 2, self.reopen_max_delay)
                continue
            self.last_error = None
            log.info("%s re-opened", self.source)
            with self._state_lock:
                session = self._session
            if session is not None:
                session.wake.set()
            return

    # ------------------------------------------------------------------------------- frames
    def analysis_frame(self) -> AnalysisFrame | None:
        """The newest lores frame: an :class:`AnalysisFrame` whose ``frame.i420`` is
        ``(lh * 3 // 2, lw)`` uint8 I420 (``lores_size`` = (lw, lh)), with ``main_width``/``main_height``
        the main stream size; None before the first frame. ``frame.index`` counts pulled frames."""
        return self._analysis

    def raw_metadata(self) -> dict[str, Any]:
        """The newest frame's metadata as ``CompletedRequest.get_metadata()`` returned it (libcamera names)."""
        return dict(self._metadata)

    def snapshot_jpeg(self, width: int | None = None, quality: int = 90) -> bytes:
        """JPEG of the next main-stream frame, taken while streaming goes on.

        Without ``width`` (or with ``width >= self.width``): ``with captured_request() as r:
        r.save("main", buf, format="jpeg")`` with ``picam2.options["quality"] = quality`` (picamera2
        reads the quality from there), a ``self.width`` x ``self.height`` JPEG with picamera2's EXIF.
        With a smaller ``width`` px: the main YUV420 array is copied (``make_array("main")``), the
        request released at once, then converted, scaled with OpenCV to ``width`` x ``round(width *
        H / W)`` (aspect ratio kept, INTER_AREA) and encoded with :func:`encode_jpeg`; this holds the
        camera buffer only for a copy instead of a full-size JPEG encode plus decode.

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
            main_w, main_h = self.width, self.height
            try:
                if not scale and lens_adjust is None:
                    buf = io.BytesIO()
                    picam2.options["quality"] = int(quality)
                    with picam2.captured_request(wait=self.capture_timeout) as request:
                        request.save("main", buf, format="jpeg")
                    return buf.getvalue()
                with picam2.captured_request(wait=self.capture_timeout) as request:
                    main = request.make_array("main")
            except TimeoutError as exc:
                # The timed-out job stays queued in picamera2 and would take (and never release) a
                # request when frames come back; ours is the only job (callers hold _lock), so
                # cancelling all of them cancels just that one.
                try:
                    picam2.cancel_all_and_flush()
                except Exception:  # noqa: BLE001
                    pass
                raise CameraUnavailable(f"no frame from {self.source} within {self.capture_timeout:g} s") from exc
            except Exception as exc:  # noqa: BLE001 - any picamera2 failure means no snapshot now
                raise CameraUnavailable(f"snapshot from {self.source} failed: {_describe(exc)}") from exc
        i420 = yuv420_to_i420(main, main_w, main_h)
        if lens_adjust is not None:
            processor = self._lens_main
            if processor is None:
                processor = self._lens_main = self._lens_processor(lens_adjust.lens, lens_adjust.roi, main_w, main_h)
            i420 = processor.process(i420)
        bgr = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
        if not scale:
            return encode_jpeg(bgr, quality)
        out_h = max(1, round(main_h * width / main_w))
        small = cv2.resize(bgr, (width, out_h), interpolation=cv2.INTER_AREA)
        return encode_jpeg(small, quality)

    def metadata(self) -> dict[str, Any]:
        """Newest frame metadata (libcamera names in brackets), each None until a frame reported it.

        ``lux`` (``Lux``), ``exposure_us`` (``ExposureTime``, µs), ``analogue_gain``
        (``AnalogueGain``), ``digital_gain`` (``DigitalGain``), ``colour_gains`` ([red, blue],
        ``ColourGains``), ``colour_temperature`` (``ColourTemperature``, K), ``lens_position``
        (``LensPosition``, dioptres), ``focus_distance_m`` (1 / LensPosition, None at infinity),
        ``focus_fom`` (``FocusFoM``, contrast figure of merit), ``af_state`` (``AfState``: idle,
        scanning, focused, failed), ``sensor_temperature`` (``SensorTemperature``, °C),
        ``frame_duration_us`` (``FrameDuration``), ``scaler_crop`` ([x, y, w, h] sensor px,
        ``ScalerCrop``), ``hdr_mode`` (``HdrMode``), ``sensor_hdr`` (the IMX708 HDR mode is on),
        ``auto_exposure``: the ``AeEnable`` last given to :meth:`set_controls` (libcamera does not
        report it), True by default.
        """
        from pi_camera_service.controls.spec import AF_STATES

        md = self._metadata
        with self._state_lock:
            auto_exposure = bool(self._controls.get("AeEnable", True))
        lens = md.get("LensPosition")
        gains = md.get("ColourGains")
        crop = md.get("ScalerCrop")
        return {
            "lux": md.get("Lux"),
            "exposure_us": md.get("ExposureTime"),
            "analogue_gain": md.get("AnalogueGain"),
            "digital_gain": md.get("DigitalGain"),
            "colour_gains": list(gains) if gains is not None else None,
            "colour_temperature": md.get("ColourTemperature"),
            "lens_position": lens,
            "focus_distance_m": (round(1.0 / lens, 4) if lens else None) if lens is not None else None,
            "focus_fom": md.get("FocusFoM"),
            "af_state": AF_STATES.get(md.get("AfState")) if md.get("AfState") is not None else None,
            "sensor_temperature": md.get("SensorTemperature"),
            "frame_duration_us": md.get("FrameDuration"),
            "scaler_crop": list(crop) if crop is not None else None,
            "hdr_mode": md.get("HdrMode"),
            "sensor_hdr": self._sensor_hdr,
            "auto_exposure": auto_exposure,
        }

    # ------------------------------------------------------------------------------- controls
    def set_controls(self, controls: dict[str, Any]) -> None:
        """Apply libcamera controls (``Picamera2.set_controls``), e.g. ``{"AeEnable": False, "ExposureTime": 10000}``.

        They take effect a few frames later and are re-applied after the camera is re-opened.
        Names and units are libcamera's (REFERENCE.md, Picamera2 controls).

        Raises:
            CameraUnavailable: the camera is not open.
            CameraError: picamera2 refused a control (``Control X is not advertised by libcamera``);
                controls listed before it were already applied.
        """
        if not controls:
            return
        with self._lock:
            picam2 = self._picam2
            if picam2 is None:
                raise CameraUnavailable(f"{self.source} is not open")
            try:
                picam2.set_controls(dict(controls))
            except RuntimeError as exc:
                raise CameraError(str(exc)) from exc
            with self._state_lock:  # one-shot triggers are not state to re-apply after a re-open
                self._controls.update({k: v for k, v in controls.items() if k != "AfTrigger"})

    def camera_controls(self) -> dict[str, tuple[Any, Any, Any]]:
        """``{name: (min, max, default)}`` of every control the camera advertises (``Picamera2.camera_controls``).

        Raises:
            CameraUnavailable: the camera is not open.
        """
        with self._lock:
            picam2 = self._picam2
            if picam2 is None:
                raise CameraUnavailable(f"{self.source} is not open")
            return dict(picam2.camera_controls)

    @property
    def controls(self) -> dict[str, Any]:
        """The controls set through :meth:`set_controls` since construction (a copy)."""
        with self._state_lock:
            return dict(self._controls)

    # ------------------------------------------------------------------------------- streaming
    def start_streaming(self) -> StreamingStatus:
        """Start publishing the main stream as H.264 to ``settings.rtsp_url`` (idempotent); returns at once.

        A publisher thread builds ``H264Encoder`` (:func:`make_h264_encoder`) and a ``PyavOutput``
        subclass (``format="rtsp", options={"rtsp_transport": "tcp"}``, ``error_callback`` set) and
        calls ``start_encoder(encoder, output)``. State is ``connecting`` until the first frame is
        muxed, then ``streaming``; after an RTSP/encoder error ``reconnecting`` with ``last_error``,
        and the publisher stops the encoder and starts a new one after 0.5 s, 1 s, 2 s ... up to
        ``settings.rtsp_reconnect_max_delay`` (reset once a frame goes out again). ``reconnects``
        counts sessions re-established after one had worked.

        Raises:
            CameraUnavailable: :meth:`open` has not been called (or :meth:`close` was).
        """
        with self._lock:  # close() clears _opened under _lock, then ends the session
            if not self._opened:
                raise CameraUnavailable(f"{self.source} is not open")
            with self._state_lock:
                if self._session is None:
                    session = _StreamSession()
                    self._session = session
                    self._connected_once = False
                    self._pending_reconnect = False
                    self._output_failed = False
                    self._retry_delay = INITIAL_RETRY_DELAY
                    self.stats.state = "connecting"
                    session.thread = threading.Thread(
                        target=self._publisher_loop, args=(session,), name="picamera2-publisher", daemon=True
                    )
                    session.thread.start()
        return self.streaming_status()

    def stop_streaming(self) -> StreamingStatus:
        """Stop publishing (idempotent): cancel pending reconnects, ``stop_encoder`` the encoder.

        The camera keeps running, so analysis frames, metadata and snapshots go on, and
        :meth:`start_streaming` can start again at once.
        """
        with self._state_lock:
            session, self._session = self._session, None
        if session is not None:
            session.cancel()
        with self._stream_lock:
            self._stop_encoder_locked()
        if session is not None and session.thread is not None and session.thread is not threading.current_thread():
            session.thread.join(5.0)
        with self._state_lock:
            if self._session is None:
                self.stats.state = "stopped"
        return self.streaming_status()

    def streaming_status(self) -> StreamingStatus:
        """The publisher's state and counters (:class:`StreamingStatus`, URL credentials redacted)."""
        return self.stats.snapshot(self.settings.rtsp_url)

    def _publisher_loop(self, session: _StreamSession) -> None:
        """Start the encoder, and restart it with backoff after errors, until the session ends."""
        while not session.cancelled.is_set():
            with self._state_lock:
                if self._session is not session:
                    return
                failed = self._output_failed
                running = self._encoder is not None
                session.wake.clear()
            if running and not failed:
                session.wake.wait(1.0)
                continue
            if failed:
                with self._stream_lock:
                    if self._session is not session:
                        return
                    self._stop_encoder_locked()
                if not self._backoff(session):
                    return
                continue
            with self._stream_lock:
                if self._session is not session:
                    return
                started = self._start_encoder_locked()
            if started is None:  # camera being re-opened: the capture thread wakes us
                session.wake.wait(1.0)
            elif not started and not self._backoff(session):
                return

    def _backoff(self, session: _StreamSession) -> bool:
        """Wait the current retry delay (then double it); False if the session ended meanwhile."""
        with self._state_lock:
            delay = self._retry_delay
            self._retry_delay = min(delay * 2, self.settings.rtsp_reconnect_max_delay)
        log.info("retrying RTSP publishing to %s in %.1f s", redact_url(self.settings.rtsp_url), delay)
        return not session.cancelled.wait(delay)

    def _start_encoder_locked(self) -> bool | None:
        """One attempt to start encoder + output (caller holds ``_stream_lock``).

        Returns True when started, False when picamera2 raised (error recorded), None when there is
        no open camera right now.
        """
        with self._lock:
            picam2 = self._picam2
            if picam2 is None:
                return None
            from picamera2.encoders import H264Encoder
            from picamera2.outputs import PyavOutput

            encoder = output = None
            try:
                encoder = make_h264_encoder(H264Encoder, self.settings, self.framerate)
                output = _stats_output_class(PyavOutput)(
                    self.settings.rtsp_url, self._on_frame, framerate=self.framerate, on_drop=self.stats.drop,
                    format="rtsp", options={"rtsp_transport": "tcp"},
                )
                output.error_callback = functools.partial(self._on_output_error, output)
                with self._state_lock:
                    self._encoder, self._output, self._output_failed = encoder, output, False
                picam2.start_encoder(encoder, output)
            except Exception as exc:  # noqa: BLE001 - report, dispose, retry later
                with self._state_lock:
                    self._encoder = self._output = None
                    self._output_failed = False
                    self._record_stream_error(exc)
                _dispose(encoder, output)
                log.warning("starting the H.264 encoder failed: %s", self._redacted(exc))
                return False
        log.info("H.264 encoder started, publishing to %s", redact_url(self.settings.rtsp_url))
        return True

    def _stop_encoder_locked(self) -> None:
        """Stop and forget the current encoder and output (caller holds ``_stream_lock``; never
        called from a picamera2 thread, since ``stop_encoder`` joins the encoder's thread)."""
        with self._state_lock:
            encoder, output = self._encoder, self._output
            self._encoder = self._output = None
            self._output_failed = False
        if encoder is None:
            return
        picam2 = self._picam2
        try:
            if picam2 is not None:
                picam2.stop_encoder(encoder)
            else:
                encoder.stop()
        except Exception as exc:  # noqa: BLE001
            log.warning("stopping the H.264 encoder failed: %s", self._redacted(exc))
            _dispose(encoder, output)

    def _redacted(self, exc: BaseException) -> str:
        """``Type: message`` with the RTSP URL's password masked (PyAV puts the full URL in its errors)."""
        url = self.settings.rtsp_url
        return _describe(exc).replace(url, redact_url(url))

    def _record_stream_error(self, exc: BaseException) -> None:
        """Caller holds ``_state_lock``."""
        self.stats.last_error = self._redacted(exc)
        if self._session is not None:
            self.stats.state = "reconnecting"
            if self._connected_once:
                self._pending_reconnect = True

    def _on_output_error(self, output: Any, exc: BaseException) -> None:
        """``PyavOutput.error_callback``: runs on a picamera2 thread; only records and wakes the publisher."""
        output.failed = True
        with self._state_lock:
            if output is not self._output:
                return
            self._output_failed = True
            self._record_stream_error(exc)
            session = self._session
        if session is not None:
            session.wake.set()
        log.warning("RTSP publishing to %s failed: %s", redact_url(self.settings.rtsp_url), self._redacted(exc))

    def _on_frame(self, output: Any, nbytes: int) -> None:
        """Called by the output for each muxed frame (picamera2 thread): count it; the first one
        of an output switches the state to ``streaming``."""
        self.stats.record(nbytes)
        if output.frames_written != 1:
            return
        with self._state_lock:
            if output is not self._output or self._session is None:
                return
            self.stats.state = "streaming"
            self.stats.last_error = None
            if self._pending_reconnect:
                self.stats.reconnects += 1
                self._pending_reconnect = False
            self._connected_once = True
            self._retry_delay = INITIAL_RETRY_DELAY
        log.info("publishing H.264 to %s", redact_url(self.settings.rtsp_url))
