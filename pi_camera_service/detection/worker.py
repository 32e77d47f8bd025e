"""Face analysis in a child process at low CPU priority, so the stream never waits for it.

A thread's CPU priority does not help while it holds Python's GIL: dlib's HOG scan, its shape
predictor and ResNet, and loading their models run for milliseconds to seconds without releasing
it, and the capture and publisher threads of the same process wait meanwhile (measured: 20 gaps
over 100 ms in 30 s and a 4.3 s stall at 640x480@30 in a 0.45-core cgroup, with the analysis
thread already at ``SCHED_IDLE``). :class:`ProcessDetector` therefore runs the detector in its own
process (a fresh interpreter started by ``subprocess``: no fork of a threaded process, and unlike
``multiprocessing``'s ``spawn`` it never re-imports the caller's main script), lowered with
:func:`pi_camera_service.priority.lower`, and talks to it over a socket pair wrapped in
``multiprocessing.connection.Connection``: the analysis frame goes there pickled (a 320x240 I420 frame is 115 kB),
the :class:`~pcs_common.faces.results.DetectionResult` comes back. The waiting thread
releases the GIL while it waits. The detector keeps its state (face tracks, cached encodings)
between frames because the process lives as long as the service.

Exception tree: failures are raised as the package's own errors::

    DetectionError
    ├── ModelNotAvailable   the worker could not load a package or model file (not retried each frame
    │                       any faster than the caller retries)
    └── EncoderError        the worker died, timed out or failed an analysis (it is restarted on the
                            next call)
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from collections.abc import Callable
from typing import Any

from pi_camera_service import priority as cpu_priority
from pcs_common.faces.frames import AnalysisFrame
from pcs_common.faces.models import DetectionError, EncoderError, ModelNotAvailable

log = logging.getLogger(__name__)

_OK, _FAILED, _MISSING = "ok", "failed", "missing"
_BOOT = "import sys; from pi_camera_service.detection.worker import worker_main; worker_main(int(sys.argv[1]))"


def worker_main(fd: int) -> None:
    """Entry point of the worker process: ``fd`` is its end of the socket pair. The first message is
    ``(factory, priority)``; then :func:`_serve`."""
    conn = Connection(fd)
    try:
        factory, priority = conn.recv()
    except EOFError:
        return
    _serve(conn, factory, priority)


def _serve(conn: Any, factory: Callable[[], Any], priority: cpu_priority.Priority) -> None:
    """The worker's main loop: build the detector, then answer ``AnalysisFrame`` requests until ``None``."""
    cpu_priority.lower(0, priority)
    try:
        detector = factory()
        load = getattr(detector, "load", None)
        if load is not None:
            load()
    except ModelNotAvailable as exc:
        conn.send((_MISSING, str(exc)))
        return
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        conn.send((_FAILED, f"{type(exc).__name__}: {exc}"))
        return
    conn.send((_OK, None))
    try:
        while True:
            try:
                af = conn.recv()
            except EOFError:
                break  # the service is gone
            if af is None:
                break
            try:
                conn.send((_OK, detector.analyse(af)))
            except Exception as exc:  # noqa: BLE001 - one bad frame must not end the worker
                conn.send((_FAILED, f"{type(exc).__name__}: {exc}"))
    finally:
        closer = getattr(detector, "close", None)
        if closer is not None:
            closer()


class ProcessDetector:
    """``analyse(af)`` answered by ``factory()`` running in a child process at ``priority``.

    Args:
        factory: builds the detector in the child; must be picklable (a module-level class or
            function, or a ``functools.partial`` of one), e.g. ``partial(FaceDetector, encodings="inline")``.
        priority: CPU priority of the child (``idle`` | ``nice`` | ``normal``); None: the configured one.
        start_timeout: longest wait for the child to import and load its models, s.
        request_timeout: longest wait for one analysis, s (the child is killed after it).

    Thread-safe: requests are serialised. The child starts on the first :meth:`analyse` and again
    after a failure; :meth:`close` ends it.
    """

    def __init__(
        self,
        factory: Callable[[], Any],
        priority: cpu_priority.Priority | None = None,
        start_timeout: float = 180.0,
        request_timeout: float = 60.0,
    ) -> None:
        self.factory = factory
        self.priority: cpu_priority.Priority = cpu_priority.configured() if priority is None else priority
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Any = None

    @property
    def pid(self) -> int | None:
        """Process id of the running worker, or None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(theirs.fileno())], pass_fds=[theirs.fileno()], close_fds=True,
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        parent = Connection(ours.detach())
        applied = cpu_priority.lower(proc.pid, self.priority)
        try:
            parent.send((self.factory, self.priority))
            if not parent.poll(self.start_timeout):
                raise EncoderError(f"face analysis worker not ready after {self.start_timeout:g} s")
            status, payload = parent.recv()
        except (EOFError, OSError) as exc:
            self._kill(proc, parent)
            raise EncoderError(f"face analysis worker exited at start (status {proc.poll()}): {exc}") from None
        except BaseException:
            self._kill(proc, parent)
            raise
        if status != _OK:
            self._kill(proc, parent)
            raise ModelNotAvailable(payload) if status == _MISSING else EncoderError(payload)
        self._proc, self._conn = proc, parent
        log.info("face analysis worker started (pid %d, %s)", proc.pid, applied)

    @staticmethod
    def _kill(proc: Any, conn: Any) -> None:
        try:
            conn.send(None)
        except (OSError, ValueError):
            pass
        conn.close()
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def analyse(self, af: AnalysisFrame) -> Any:
        """The worker's ``DetectionResult`` for ``af``.

        Raises:
            ModelNotAvailable: the worker cannot load its models.
            EncoderError: the worker died, did not answer within ``request_timeout`` s, or failed.
        """
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._conn = None
                self._start()
            proc, conn = self._proc, self._conn
            try:
                conn.send(af)
                if not conn.poll(self.request_timeout):
                    raise TimeoutError(f"no answer within {self.request_timeout:g} s")
                status, payload = conn.recv()
            except (OSError, EOFError, TimeoutError) as exc:
                self._proc = self._conn = None
                self._kill(proc, conn)
                raise EncoderError(f"face analysis worker failed: {type(exc).__name__}: {exc}") from None
        if status != _OK:
            raise EncoderError(payload)
        return payload

    def close(self) -> None:
        """End the worker (idempotent); a later :meth:`analyse` starts a new one."""
        with self._lock:
            proc, conn = self._proc, self._conn
            self._proc = self._conn = None
        if proc is not None:
            self._kill(proc, conn)


def in_process(factory: Callable[[], Any]) -> Callable[[], ProcessDetector]:
    """A ``DetectionService`` detector factory running ``factory()`` in a low-priority child process."""

    def build() -> ProcessDetector:
        return ProcessDetector(factory)

    return build


__all__ = ["DetectionError", "ProcessDetector", "in_process"]
