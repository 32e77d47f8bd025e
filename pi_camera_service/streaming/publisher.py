"""The one H.264 -> RTSP state machine, shared by every camera source.

Picamera2's split is the model: an *encoder* makes H.264 access units, an *output* ships them.
Here the encoder side is an :class:`H264Source` (libx264 through PyAV for software sources,
:mod:`pi_camera_service.streaming.libx264`; picamera2's ``H264Encoder`` + ``PyavOutput`` on a Pi,
:mod:`pi_camera_service.sources.pi.encoding`) and :class:`Publisher` owns everything the two used to
implement twice: the thread, the states, the statistics (:class:`~pi_camera_service.sources.base.StreamStats`,
read by ``/v1/streaming/status``, ``/health`` and ``/metrics``), the reconnect count and the back-off.

States (``StreamStats.state``)::

    stopped --start()--> connecting --first frame muxed--> streaming
                             ^   |                            |
                             |   +--- error ---+              | error (server gone, refused,
                             |                 v              |        encoder failure) or the
                             +--- back-off --- reconnecting <-+        camera went away
    any --stop()--> stopped

One session is one RTSP connection (ANNOUNCE/SETUP/RECORD, interleaved TCP): ``source.publish(pub)``
starts encoding and muxing to ``pub.url`` and returns (or raises) when it ends. The first frame a
session muxes switches the state to ``streaming``, clears ``last_error`` and resets the back-off; a
session that worked and then failed makes the next working one count in ``reconnects``. Between
failed attempts the thread waits ``initial_delay``, then twice as long each time, up to
``max_delay`` s (:class:`pcs_common.backoff.Backoff`); a source that has nothing to encode for a
while (a camera being re-opened) raises :class:`SourceNotReady` and is retried when :meth:`Publisher.wake`
is called, without counting a failure.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Protocol

from pcs_common.backoff import Backoff
from pi_camera_service.sources.base import StreamingStatus, StreamStats, describe, redact_url

log = logging.getLogger(__name__)

__all__ = ["H264Source", "Publisher", "SourceNotReady", "steady_backoff"]


def _nominal() -> float:
    return 1.0


def steady_backoff(initial: float, cap: float, jitter: bool = False) -> Backoff:
    """A :class:`~pcs_common.backoff.Backoff` of ``initial``, ``2 * initial`` ... ``cap`` s.

    Without ``jitter`` every delay is the nominal one (``rng`` always 1.0): a camera retrying its own
    device or its own MediaMTX has no fleet to spread out. With it, equal jitter as the central link.
    ``cap`` below ``initial`` is raised to ``initial``.
    """
    return Backoff(initial, max(cap, initial), rng=random.random if jitter else _nominal)


class SourceNotReady(Exception):
    """Raised by :meth:`H264Source.publish` when there is nothing to encode right now (the camera is
    being re-opened): the publisher waits for :meth:`Publisher.wake` (or 1 s) and tries again, without
    counting a failure or backing off."""


class H264Source(Protocol):
    """The encoder half of a publisher (picamera2's ``Encoder``; the :class:`Publisher` is the output)."""

    def publish(self, publisher: "Publisher") -> None:
        """Run one RTSP session to ``publisher.url`` on the publisher's thread.

        Report each muxed frame with :meth:`Publisher.sent` and each frame that will never be sent
        with :meth:`Publisher.dropped`; return when :attr:`Publisher.stopping` is set or the source
        ended the session itself; close everything before returning.

        Raises:
            SourceNotReady: nothing to encode now.
            Exception: the session failed (network, RTSP server, encoder); retried after back-off.
        """


class Publisher:
    """Publishes one :class:`H264Source` to an RTSP server, reconnecting with back-off until stopped.

    Args:
        url: RTSP publish URL, e.g. ``rtsp://127.0.0.1:8554/cam`` (credentials may be in it; they are
            masked in every status, log line and error message).
        source: the encoder side (:class:`H264Source`).
        stats: the :class:`~pi_camera_service.sources.base.StreamStats` this publisher updates (kept by
            the camera across start/stop, so counters survive a restart of streaming).
        max_delay: longest wait between attempts, s.
        initial_delay: first wait after a failure, s (doubles each failure).
        jitter: spread retries (see :func:`steady_backoff`).
        name: the thread's name.

    Thread-safety: :meth:`sent`, :meth:`dropped`, :meth:`fail`, :meth:`interrupt` and :meth:`wake`
    may be called from any thread (picamera2's encoder threads call them); :meth:`start` and
    :meth:`stop` from one controlling thread at a time, never while holding a lock the source's
    ``publish`` takes.
    """

    def __init__(
        self,
        url: str,
        source: H264Source,
        stats: StreamStats,
        max_delay: float = 10.0,
        initial_delay: float = 0.5,
        jitter: bool = False,
        name: str = "rtsp-publisher",
    ) -> None:
        self.url = url
        self.source = source
        self.stats = stats
        self.max_delay = max_delay
        self.backoff = steady_backoff(initial_delay, max_delay, jitter)
        self.name = name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._live = False  # the current session muxed a frame
        self._connected_once = False  # some session since start() muxed a frame
        self._pending_reconnect = False  # a working session failed: the next working one is a re-connection
        self._last_exc: BaseException | None = None

    # ----------------------------------------------------------------------------------- control
    @property
    def running(self) -> bool:
        """True while the publishing thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called: a session must end."""
        return self._stop.is_set()

    def start(self) -> None:
        """Start the publishing thread (idempotent); the state is ``connecting`` until a frame is muxed."""
        if self.running:
            return
        self._stop.clear()
        with self._lock:
            self._live = self._connected_once = self._pending_reconnect = False
        self.backoff.reset()
        self.stats.state = "connecting"
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the session and the thread (idempotent); waits up to ``timeout`` s; state ``stopped``."""
        thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        self.stats.state = "stopped"

    def status(self) -> StreamingStatus:
        """Current :class:`~pi_camera_service.sources.base.StreamingStatus` (URL credentials masked)."""
        return self.stats.snapshot(self.url)

    # ----------------------------------------------------------------------------------- for sources
    def sent(self, nbytes: int) -> None:
        """One frame of ``nbytes`` bytes of H.264 was muxed; the first of a session means connected."""
        self.stats.record(nbytes)
        if self._live:
            return
        with self._lock:
            if self._live or self._stop.is_set():
                return
            self._live = True
            self.stats.state = "streaming"
            self.stats.last_error = None
            if self._pending_reconnect:
                self.stats.reconnects += 1
                self._pending_reconnect = False
            self._connected_once = True
            self._last_exc = None
        self.backoff.reset()
        log.info("publishing H.264 to %s", redact_url(self.url))

    def dropped(self, frames: int = 1) -> None:
        """``frames`` frames were produced but will never be published."""
        self.stats.drop(frames)

    def fail(self, exc: BaseException) -> None:
        """The session failed with ``exc`` (may be called from the thread that saw it, e.g. an output's
        ``error_callback``): state ``reconnecting``, ``last_error`` set, the publishing thread woken.
        Reporting the same exception again is a no-op."""
        with self._lock:
            if exc is self._last_exc:
                return
            self._last_exc = exc
        self._ended(self.redact(exc))
        log.warning("RTSP publishing to %s failed: %s", redact_url(self.url), self.redact(exc))

    def interrupt(self, message: str) -> None:
        """The source ended the session itself because of a fault outside RTSP (``message``, e.g.
        ``camera: no frame ...``): reported like a failure, but the source decides when to go on."""
        self._ended(message)

    def wake(self) -> None:
        """Wake the publishing thread (the source can publish again, or its session should look at its state)."""
        self._wake.set()

    def wait(self, timeout: float) -> bool:
        """For ``publish``: sleep up to ``timeout`` s or until :meth:`wake`/:meth:`stop`; True if woken."""
        woken = self._wake.wait(timeout)
        self._wake.clear()
        return woken

    def redact(self, exc: BaseException) -> str:
        """``Type: message`` with the URL's password masked (PyAV puts the full URL in its errors)."""
        return describe(exc).replace(self.url, redact_url(self.url))

    # ----------------------------------------------------------------------------------- thread
    def _ended(self, message: str) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self.stats.last_error = message
            self.stats.state = "reconnecting"
            if self._live or self._connected_once:
                self._pending_reconnect = True
            self._live = False
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._live = False
            try:
                self.source.publish(self)
            except SourceNotReady:
                self.wait(1.0)
                continue
            except Exception as exc:  # noqa: BLE001 - any encoder/network fault ends this session
                if self._stop.is_set():
                    break
                self.fail(exc)
                delay = self.backoff.next_delay()
                log.info("retrying RTSP publishing to %s in %.1f s", redact_url(self.url), delay)
                if self._stop.wait(delay):
                    break
                self._wake.clear()
