"""The Pi camera's H.264 encoder for the shared publisher: picamera2's ``H264Encoder`` + ``PyavOutput``.

:class:`Picamera2H264` is the :class:`~pi_camera_service.streaming.publisher.H264Source` of
:class:`~pi_camera_service.sources.picamera2_backend.Picamera2Camera`: each session builds an encoder
(:func:`make_h264_encoder`) and a counting ``PyavOutput`` (:func:`stats_output_class`,
``format="rtsp", options={"rtsp_transport": "tcp"}``) and calls ``start_encoder(encoder, output)``;
picamera2's threads then encode and mux, and report each frame to the publisher.

picamera2 facts this module relies on (0.3.36 source):

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
  called ``outputframe`` (the V4L2 encoder's poll thread on VC4; the camera event-loop thread, with
  the encoder's lock held, for the libav encoder on Pi 5); joining that thread (``stop_encoder``)
  from inside the callback would raise (V4L2) or deadlock (libav), so the callback only records and
  wakes the publisher, whose thread stops the encoder.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from pi_camera_service.config import Settings
from pi_camera_service.sources.base import describe, redact_url
from pi_camera_service.streaming.publisher import Publisher, SourceNotReady

if TYPE_CHECKING:
    from pi_camera_service.sources.picamera2_backend import Picamera2Camera

log = logging.getLogger(__name__)


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


def stats_output_class(base: type) -> type:
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
                self.error: BaseException | None = None
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


class Picamera2H264:
    """Encoder + output pairs on one :class:`Picamera2Camera`, one pair per RTSP session.

    Locks: the camera's ``_stream_lock`` (encoder lifecycle) -> the camera's ``_lock`` (Picamera2
    calls) -> this object's ``_lock`` (the current pair; never held while calling picamera2).
    """

    def __init__(self, camera: "Picamera2Camera") -> None:
        self.camera = camera
        self._lock = threading.Lock()
        self._encoder: Any = None
        self._output: Any = None

    @property
    def running(self) -> bool:
        """True while an encoder is started."""
        return self._encoder is not None

    def publish(self, publisher: Publisher) -> None:
        """One session: start an encoder + output, wait until it fails, is stopped by the camera
        (re-open, sensor HDR) or the publisher stops, then stop it.

        Raises:
            SourceNotReady: the camera is being re-opened.
            Exception: picamera2 could not start the pair, or the output's mux failed (its error).
        """
        camera = self.camera
        with camera._stream_lock:
            if publisher.stopping:
                return
            output = self._start_locked(publisher)
        try:
            while not publisher.stopping:
                with self._lock:
                    if self._output is not output or output.failed:
                        break
                publisher.wait(1.0)
        finally:
            with camera._stream_lock:
                if self._output is output:
                    self.stop_locked()
        if output.error is not None:
            raise output.error

    def _start_locked(self, publisher: Publisher) -> Any:
        """Start a new encoder + output (caller holds ``_stream_lock``); returns the output.

        Raises:
            SourceNotReady: no open camera right now.
            Exception: what picamera2 raised (the pair is disposed first).
        """
        camera = self.camera
        if self._encoder is not None:
            self.stop_locked()
        with camera._lock:
            picam2 = camera._picam2
            if picam2 is None:
                raise SourceNotReady(f"{camera.source} is being re-opened")
            from picamera2.encoders import H264Encoder
            from picamera2.outputs import PyavOutput

            encoder = output = None
            try:
                encoder = make_h264_encoder(H264Encoder, camera.settings, camera.framerate)
                output = stats_output_class(PyavOutput)(
                    publisher.url, functools.partial(self._on_frame, publisher), framerate=camera.framerate,
                    on_drop=publisher.dropped, format="rtsp", options={"rtsp_transport": "tcp"},
                )
                output.error_callback = functools.partial(self._on_error, publisher, output)
                with self._lock:
                    self._encoder, self._output = encoder, output
                picam2.start_encoder(encoder, output)
            except Exception:
                with self._lock:
                    self._encoder = self._output = None
                _dispose(encoder, output)
                raise
        log.info("H.264 encoder started, publishing to %s", redact_url(publisher.url))
        return output

    def stop_locked(self) -> None:
        """Stop and forget the current encoder and output (caller holds ``_stream_lock``; never
        called from a picamera2 thread, since ``stop_encoder`` joins the encoder's thread)."""
        with self._lock:
            encoder, output = self._encoder, self._output
            self._encoder = self._output = None
        if encoder is None:
            return
        picam2 = self.camera._picam2
        try:
            if picam2 is not None:
                picam2.stop_encoder(encoder)
            else:
                encoder.stop()
        except Exception as exc:  # noqa: BLE001
            url = self.camera.settings.rtsp_url
            log.warning("stopping the H.264 encoder failed: %s", describe(exc).replace(url, redact_url(url)))
            _dispose(encoder, output)

    def _on_error(self, publisher: Publisher, output: Any, exc: BaseException) -> None:
        """``PyavOutput.error_callback``: runs on a picamera2 thread; only records and wakes the publisher."""
        output.error = exc
        output.failed = True
        with self._lock:
            current = output is self._output
        if current:
            publisher.fail(exc)

    @staticmethod
    def _on_frame(publisher: Publisher, output: Any, nbytes: int) -> None:
        publisher.sent(nbytes)
