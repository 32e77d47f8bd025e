"""The background face detection task: samples the newest analysis frame at a fixed rate.

:class:`DetectionService` runs one daemon thread that, every ``1 / fps`` s, takes
``camera.analysis_frame()`` (always the newest lores frame: it never reads a queue, so capture and
encoding are never held back), skips it if it is the frame analysed last time, analyses it and
caches the result. When an analysis takes longer than the period the next one starts at once and the
samples that fell due meanwhile are skipped (counted in ``samples_skipped``), never queued. An
exception in an analysis is logged and counted, and the loop goes on.

The stream wins over analysis when CPU is short: the thread lowers its own CPU priority when it
starts (``SCHED_IDLE`` by default, :mod:`pi_camera_service.priority`; the encoder worker process it
starts inherits it), and with a ``backpressure`` signal (the RTSP publisher falling behind,
:meth:`~pi_camera_service.sources.base.StreamStats.falling_behind`) the sampling rate is halved, at
most once a second, down to ``min_fps``, and raised again by steps of 1.5x after 3 s without it.

``run_now()`` analyses the newest frame on the caller's thread, serialised with the loop by a lock;
``latest()`` answers at once from the cache. Listeners get every new result.

Exception tree (all are :class:`~pcs_common.faces.models.DetectionError`)::

    DetectionError
    ├── ModelNotAvailable        (models.py) a package or model file is missing
    ├── EncoderError             (models.py) the encoder worker process failed
    ├── NoFrameAvailable         run_now(): the camera has not produced a frame yet (HTTP 503)
    └── DetectionBusy            run_now(): the running analysis did not finish within the timeout
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from pi_camera_service import priority as cpu_priority
from pcs_common.faces.frames import AnalysisFrame
from pcs_common.faces.models import DetectionError
from pcs_common.faces.results import DetectionResult

log = logging.getLogger(__name__)

Listener = Callable[[DetectionResult], None]
"""Called with each new :class:`DetectionResult`, on the thread that analysed the frame."""


class NoFrameAvailable(DetectionError):
    """The camera has not produced an analysis frame yet."""


class DetectionBusy(DetectionError, TimeoutError):
    """An analysis already running did not finish within ``run_now``'s timeout."""


class FrameSource(Protocol):
    """Anything with the camera's ``analysis_frame()``: the newest lores frame, or None before the first."""

    def analysis_frame(self) -> AnalysisFrame | None: ...  # pragma: no cover


class Detector(Protocol):
    """Anything with :meth:`FaceDetector.analyse <pcs_common.faces.detector.FaceDetector.analyse>`."""

    def analyse(self, af: AnalysisFrame) -> DetectionResult: ...  # pragma: no cover


class DetectionService:
    """Samples ``camera.analysis_frame()`` at ``fps`` in a daemon thread and keeps the latest result.

    Thread-safe. The detector is built by ``detector_factory()`` on the first analysis (so models
    load in the background thread, not at start-up); if it has a ``close()`` method, :meth:`stop`
    calls it (ending the encoder worker process).

    Args:
        camera: any object with ``analysis_frame() -> AnalysisFrame | None`` (a
            :class:`~pi_camera_service.sources.base.Camera`, or a test double).
        detector_factory: builds the detector, e.g. ``FaceDetector``.
        fps: target analysed frames per second (``CAMERA_DETECTION_FPS``), > 0.
        listener: optional callback for each new result (more with :meth:`add_listener`).
        rate_window: s of history over which ``analysed_fps`` is measured.
        priority: CPU priority of the analysis thread (``idle`` | ``nice`` | ``normal``, the default;
            the service passes ``CAMERA_DETECTION_PRIORITY``).
        backpressure: called after each sample; True means the stream is falling behind and the
            sampling rate backs off (``CAMERA_DETECTION_ADAPTIVE``). None: always ``fps``.
        min_fps: the lowest rate back-off goes to, frames/s (default ``fps / 8``).

    Raises:
        ValueError: ``fps`` or ``min_fps`` is not positive, or ``min_fps`` > ``fps``.
    """

    #: s between two back-off steps, and without back-pressure before a recovery step
    BACKOFF_INTERVAL = 1.0
    RECOVER_AFTER = 3.0

    def __init__(
        self,
        camera: FrameSource,
        detector_factory: Callable[[], Detector],
        fps: float = 5.0,
        listener: Listener | None = None,
        *,
        rate_window: float = 5.0,
        priority: cpu_priority.Priority = "normal",
        backpressure: Callable[[], bool] | None = None,
        min_fps: float | None = None,
    ) -> None:
        if not fps > 0:
            raise ValueError("fps must be > 0")
        min_fps = fps / 8 if min_fps is None else float(min_fps)
        if not 0 < min_fps <= fps:
            raise ValueError(f"min_fps must be in (0, fps={fps:g}], not {min_fps:g}")
        self._priority = priority
        self._backpressure = backpressure
        self._max_period = 1.0 / min_fps
        self._current_period = 1.0 / float(fps)
        self._last_backoff = float("-inf")
        self._calm_since: float | None = None
        self._backoffs = 0
        self._priority_applied = "normal"
        self.camera = camera
        self.fps = float(fps)
        self.period = 1.0 / self.fps
        self._factory = detector_factory
        self._detector: Detector | None = None
        self._listeners: list[Listener] = [listener] if listener is not None else []
        self._rate_window = rate_window
        self._analyse_lock = threading.Lock()  # one analysis at a time (loop and run_now)
        self._state_lock = threading.Lock()  # start/stop and counters
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest: DetectionResult | None = None
        self._last_index: int | None = None
        self._done_at: deque[float] = deque()
        self._frames_analysed = 0
        self._samples_skipped = 0
        self._errors = 0
        self._last_error: str | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """True while the background thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stop.is_set()

    def start(self) -> None:
        """Start the background thread (idempotent); returns at once."""
        with self._state_lock:
            if self.active:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,), name="face-detection", daemon=True)
            self._thread.start()
        log.info("face detection started at %.3g fps", self.fps)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread (idempotent), waiting up to ``timeout`` s for a running
        analysis to end, then close the detector (its encoder worker process) if it can be closed."""
        with self._state_lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("face detection thread still busy %.1f s after stop", timeout)
                return
        if self._analyse_lock.acquire(timeout=timeout):
            try:
                closer = getattr(self._detector, "close", None)
                if closer is not None:
                    closer()
            finally:
                self._analyse_lock.release()
        if thread is not None:
            log.info("face detection stopped")

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(result)`` for every new result (on the analysing thread; keep it quick)."""
        with self._state_lock:
            self._listeners = [*self._listeners, listener]

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener`` (no error if it was not registered)."""
        with self._state_lock:
            self._listeners = [fn for fn in self._listeners if fn != listener]

    # --- results ----------------------------------------------------------------------------------

    def latest(self) -> DetectionResult | None:
        """The most recent result, or None before the first analysis. Never blocks."""
        return self._latest

    def run_now(self, timeout: float = 10.0) -> DetectionResult:
        """Analyse the newest analysis frame now, on this thread, and return (and cache) the result.

        Waits up to ``timeout`` s for an analysis already running in the background to end; the
        analysis itself is not interrupted.

        Raises:
            NoFrameAvailable: the camera has no frame yet.
            DetectionBusy: the running analysis did not end within ``timeout`` s.
            DetectionError: the models are missing or the encoder failed (also counted in ``errors``).
        """
        if not self._analyse_lock.acquire(timeout=max(timeout, 0.0)):
            raise DetectionBusy(f"an analysis is still running after {timeout:g} s")
        try:
            af = self.camera.analysis_frame()
            if af is None:
                raise NoFrameAvailable("no analysis frame yet: the camera has not produced a frame")
            result = self._analyse(af)
        finally:
            self._analyse_lock.release()
        self._notify(result)
        return result

    def stats(self) -> dict[str, Any]:
        """``{active, analysed_fps, frames_analysed, samples_skipped, last_analysis_ms, errors, last_error,
        target_fps, backoffs, priority}``.

        ``analysed_fps``: analyses per second measured over the last ``rate_window`` s (0 when
        fewer than two). ``samples_skipped``: sampling times that led to no analysis (missed while
        an analysis overran the period, or no new frame since the last one). ``last_analysis_ms``:
        ms of the latest analysis, or None. ``errors``: exceptions from the camera, the detector
        factory or an analysis; ``last_error`` the latest one's message. ``target_fps``: the sampling
        rate in force (below ``fps`` while backing off for the stream); ``backoffs``: times it was
        halved; ``priority``: the analysis thread's CPU priority (``SCHED_IDLE``, ``nice 19``, ``normal``).
        """
        latest = self._latest
        with self._state_lock:
            now = time.monotonic()
            self._trim(now)
            times = list(self._done_at)
            return {
                "active": self.active,
                "analysed_fps": round((len(times) - 1) / (times[-1] - times[0]), 3)
                if len(times) >= 2 and times[-1] > times[0]
                else 0.0,
                "frames_analysed": self._frames_analysed,
                "samples_skipped": self._samples_skipped,
                "last_analysis_ms": round(latest.analysis_ms, 3) if latest is not None else None,
                "errors": self._errors,
                "last_error": self._last_error,
                "target_fps": round(1.0 / self._current_period, 3),
                "backoffs": self._backoffs,
                "priority": self._priority_applied,
            }

    # --- internals --------------------------------------------------------------------------------

    def _trim(self, now: float) -> None:
        while self._done_at and now - self._done_at[0] > self._rate_window:
            self._done_at.popleft()

    def _analyse(self, af: AnalysisFrame) -> DetectionResult:
        """Analyse ``af`` (caller holds ``_analyse_lock``); count and re-raise failures."""
        try:
            if self._detector is None:
                self._detector = self._factory()
            result = self._detector.analyse(af)
        except Exception as exc:
            self._record_error(exc)
            raise
        with self._state_lock:
            self._latest = result
            self._last_index = af.frame.index
            self._frames_analysed += 1
            now = time.monotonic()
            self._done_at.append(now)
            self._trim(now)
        return result

    def _record_error(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        with self._state_lock:
            self._errors += 1
            repeated = message == self._last_error
            self._last_error = message
        if repeated:
            log.debug("face detection failed again: %s", message)
        else:
            log.error("face detection failed: %s", message, exc_info=exc)

    def _notify(self, result: DetectionResult) -> None:
        for listener in self._listeners:
            try:
                listener(result)
            except Exception:
                log.exception("detection listener %r failed", listener)

    def _sample(self) -> None:
        """One sampling time: take the newest frame and analyse it unless it was analysed already."""
        try:
            af = self.camera.analysis_frame()
        except Exception as exc:
            self._record_error(exc)
            return
        if af is None or af.frame.index == self._last_index:
            with self._state_lock:
                self._samples_skipped += 1
            return
        with self._analyse_lock:
            if af.frame.index == self._last_index:  # run_now analysed it meanwhile
                return
            try:
                result = self._analyse(af)
            except Exception:
                return  # counted and logged by _analyse
        self._notify(result)

    def _adapt(self, now: float) -> None:
        """Back off or recover the sampling period from the back-pressure signal."""
        if self._backpressure is None:
            return
        try:
            behind = bool(self._backpressure())
        except Exception:  # noqa: BLE001 - a broken signal must not stop detection
            log.debug("detection back-pressure signal failed", exc_info=True)
            return
        with self._state_lock:
            if behind:
                self._calm_since = None
                if now - self._last_backoff >= self.BACKOFF_INTERVAL and self._current_period < self._max_period:
                    self._current_period = min(self._current_period * 2, self._max_period)
                    self._last_backoff = now
                    self._backoffs += 1
                    log.info("stream falling behind: face detection backs off to %.2f fps", 1 / self._current_period)
            elif self._current_period > self.period:
                if self._calm_since is None:
                    self._calm_since = now
                elif now - self._calm_since >= self.RECOVER_AFTER:
                    self._current_period = max(self._current_period / 1.5, self.period)
                    self._calm_since = now

    def _run(self, stop: threading.Event) -> None:
        self._priority_applied = cpu_priority.lower(0, self._priority)
        log.debug("face detection thread runs at %s", self._priority_applied)
        next_due = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if now < next_due:
                stop.wait(next_due - now)
                continue
            period = self._current_period
            missed = int((now - next_due) // period)  # samples that fell due during the last analysis
            if missed:
                with self._state_lock:
                    self._samples_skipped += missed
            next_due += (missed + 1) * period
            self._sample()
            self._adapt(time.monotonic())
