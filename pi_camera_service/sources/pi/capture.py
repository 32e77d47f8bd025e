"""The Pi camera's capture thread: newest lores frame + metadata, and recovery when the camera goes away.

The one thread that calls ``captured_request(wait=capture_timeout)`` -> ``make_array("lores")``,
``get_metadata()``, release, ``analysis_rate`` times a second. When no frame comes within
``capture_timeout`` s (a dislodged ribbon cable stops frames without any error) or picamera2 raises,
it stops the encoder, tells the publisher (``interrupt``), closes the camera and re-opens it with
back-off (:func:`~pi_camera_service.streaming.publisher.steady_backoff`, ``initial_retry_delay``
doubling up to ``reopen_max_delay`` s), then wakes the publisher.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from pi_camera_service.frames import AnalysisFrame, Frame
from pi_camera_service.sources.base import CameraUnavailable, describe, describe_chain
from pi_camera_service.sources.pi.yuv import yuv420_to_i420
from pi_camera_service.streaming.publisher import steady_backoff

log = logging.getLogger(__name__)


class Picamera2Capture:
    """Mixin of :class:`~pi_camera_service.sources.picamera2_backend.Picamera2Camera`: the capture thread.

    Uses the camera's locks (``_stream_lock`` -> ``_lock`` -> ``_state_lock``), ``_picam2``,
    the camera's ``_create_picam2``/``_teardown_picam2``/``_wake_publisher``, the encoder (``_h264``)
    and publisher, and writes
    ``_analysis``, ``_metadata``, ``_frames_pulled`` and ``last_error``.
    """

    source: str
    camera_num: int
    capture_timeout: float
    analysis_rate: float
    reopen_max_delay: float
    initial_retry_delay: float
    lores_size: tuple[int, int]
    width: int
    height: int
    last_error: str | None
    _lock: Any
    _stream_lock: Any
    _state_lock: Any
    _picam2: Any
    _h264: Any
    _publisher: Any
    _lens_lores: Any
    _analysis: AnalysisFrame | None
    _metadata: dict[str, Any]
    _frames_pulled: int

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
                self.last_error = f"bad lores frame: {describe(exc)}"
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
        """The camera stopped delivering: stop publishing, close it, re-open with back-off, resume."""
        if isinstance(exc, TimeoutError):
            message = f"no frame from the camera within {self.capture_timeout:g} s"
        else:
            message = describe(exc)
        self.last_error = message
        log.warning("%s failed (%s); closing and re-opening it", self.source, message)
        with self._stream_lock:
            self._h264.stop_locked()
            with self._state_lock:
                publisher = self._publisher
            if publisher is not None:
                publisher.interrupt(f"camera: {message}")
            with self._lock:
                self._teardown_picam2()
        backoff = steady_backoff(self.initial_retry_delay, self.reopen_max_delay)
        while not closing.wait(backoff.next_delay()):
            try:
                with self._stream_lock, self._lock:
                    if closing.is_set():
                        return
                    self._picam2 = self._create_picam2()
            except Exception as reopen_exc:  # noqa: BLE001
                self.last_error = f"re-opening camera {self.camera_num} failed: {describe_chain(reopen_exc)}"
                log.warning("%s; trying again", self.last_error)
                continue
            self.last_error = None
            log.info("%s re-opened", self.source)
            self._wake_publisher()
            return
