"""H.264 encoding with PyAV's libx264 and publishing over RTSP/TCP (to MediaMTX in production).

The :class:`RtspPublisher` runs one thread that takes the newest frame offered by the capture
thread, encodes it and muxes it to the RTSP server (ANNOUNCE/SETUP/RECORD, interleaved TCP). The
capture thread never waits on it: :meth:`RtspPublisher.offer` only swaps a one-slot mailbox, so a
slow or dead network drops frames from the stream, never from capture.

When the server is down or goes away (write error, refused connection), the publisher closes the
connection, reports ``reconnecting`` with the error, and tries again with exponential backoff
(0.5 s doubling up to ``max_delay``); each new connection starts with a fresh encoder, so the first
frame a viewer gets is a keyframe (IDR). Connection or I/O stalls are bounded by ``io_timeout``.

Timestamps: every frame's PTS is its capture time (``Frame.monotonic``) on the 90 kHz RTP video
clock (RFC 3551 §5) counted from the session's first frame; DTS equals PTS (no B-frames). Frames
the capture thread delivers in a burst (after the machine was busy) would get PTS a few ticks
apart, which receivers that store milliseconds (Matroska, MP4 in ms) see as equal or reordered
timestamps; so consecutive PTS are kept at least :data:`MIN_PTS_STEP` of a frame duration apart
(the clock then runs up to a fraction of a frame ahead and re-joins capture time at the next
regular frame). A frame the publisher had no time for is dropped and counted in
``StreamStats.frames_dropped``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pi_camera_service.frames import Frame
from pi_camera_service.sources.base import StreamStats, StreamingStatus, redact_url

log = logging.getLogger(__name__)

#: RTP clock rate for video (RFC 3551 §5), used as the encoder time base.
RTP_VIDEO_CLOCK = 90_000

#: smallest PTS step between consecutive frames, as a fraction of the nominal frame duration
MIN_PTS_STEP = 0.5


def next_pts(capture_pts: int, last_pts: int | None, framerate: float) -> int:
    """The PTS (90 kHz ticks) to give a frame captured at ``capture_pts`` after one stamped ``last_pts``.

    ``capture_pts`` itself unless it is less than ``MIN_PTS_STEP`` of a frame duration (at
    ``framerate`` frames/s) after ``last_pts``; then ``last_pts`` plus that step. Strictly increasing
    by at least 1 ms for any ``framerate`` <= 500, so no receiver sees a repeated or decreasing DTS.
    """
    if last_pts is None:
        return max(capture_pts, 0)
    step = max(int(RTP_VIDEO_CLOCK * MIN_PTS_STEP / framerate), RTP_VIDEO_CLOCK // 1000)
    return max(capture_pts, last_pts + step)


@dataclass(frozen=True)
class EncoderSettings:
    """libx264 settings.

    Attributes:
        width, height: px (even).
        framerate: nominal frames/s (rate control and keyframe spacing).
        bitrate: target bit/s.
        keyframe_interval: s between IDR frames (at least one every 2 s so viewers join quickly).
        preset: x264 preset; ``superfast`` keeps CPU low on a Pi while compressing better than
            ``ultrafast``.
    """

    width: int
    height: int
    framerate: float
    bitrate: int
    keyframe_interval: float = 1.0
    preset: str = "superfast"

    @property
    def gop_size(self) -> int:
        """Frames between keyframes: ``round(framerate * keyframe_interval)``, at least 1."""
        return max(1, round(self.framerate * self.keyframe_interval))

    def x264_options(self) -> dict[str, str]:
        """Low-latency libx264 options: no B-frames, no lookahead (``tune=zerolatency``), fixed GOP.

        The same options drive the ffmpeg CLI baseline in ``bench/``.
        """
        gop = str(self.gop_size)
        return {
            "preset": self.preset,
            "tune": "zerolatency",
            "bf": "0",
            "g": gop,
            "keyint_min": gop,
            "sc_threshold": "0",
            "x264-params": "repeat-headers=1",  # SPS/PPS before every IDR for late joiners
        }


class RtspPublisher:
    """Encodes offered frames with libx264 and publishes them to an RTSP server, reconnecting forever.

    Args:
        url: RTSP publish URL, e.g. ``rtsp://127.0.0.1:8554/cam`` (credentials may be in it).
        encoder: :class:`EncoderSettings`.
        stats: shared :class:`StreamStats` updated on every published frame.
        max_delay: longest wait between reconnect attempts, s.
        io_timeout: socket connect/read/write timeout, s.

    Thread-safety: :meth:`offer` may be called from any thread; :meth:`start` and :meth:`stop` from
    one controlling thread at a time.
    """

    def __init__(
        self,
        url: str,
        encoder: EncoderSettings,
        stats: StreamStats,
        max_delay: float = 10.0,
        io_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.encoder = encoder
        self.stats = stats
        self.max_delay = max_delay
        self.io_timeout = io_timeout
        self._cond = threading.Condition()
        self._pending: Frame | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames_dropped = 0
        self._sessions_announced = 0

    # ----------------------------------------------------------------------------------- control
    @property
    def running(self) -> bool:
        """True while the publishing thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the publishing thread (idempotent)."""
        if self.running:
            return
        self._stop.clear()
        self.stats.state = "connecting"
        self._thread = threading.Thread(target=self._run, name="rtsp-publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop publishing and close the connection (idempotent); waits up to ``timeout`` s."""
        thread = self._thread
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)
        self._thread = None
        self.stats.state = "stopped"

    def offer(self, frame: Frame) -> None:
        """Hand the newest frame to the publisher without blocking; an unsent older frame is dropped."""
        with self._cond:
            if self._pending is not None:
                self.frames_dropped += 1
                self.stats.drop()
            self._pending = frame
            self._cond.notify()

    def status(self) -> StreamingStatus:
        """Current :class:`StreamingStatus`."""
        return self.stats.snapshot(self.url)

    # ----------------------------------------------------------------------------------- thread
    def _next_frame(self, timeout: float) -> Frame | None:
        with self._cond:
            if self._pending is None and not self._stop.is_set():
                self._cond.wait(timeout)
            frame, self._pending = self._pending, None
            return frame

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            announced_before = self._sessions_announced
            try:
                self._publish_session()
            except Exception as exc:  # noqa: BLE001 - any encoder/network fault ends this session
                if self._stop.is_set():
                    break
                if self._sessions_announced > announced_before:
                    delay = 0.5  # the connection worked for a while: retry quickly
                # PyAV puts the full URL, password included, in its messages
                message = f"{type(exc).__name__}: {exc}".replace(self.url, redact_url(self.url))
                self.stats.last_error = message
                self.stats.state = "reconnecting"
                log.warning(
                    "RTSP publish to %s failed (%s); retrying in %.1f s", redact_url(self.url), message, delay
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self.max_delay)

    def _open(self) -> tuple[Any, Any]:
        import av  # lazy: PyAV is only needed when a software encoder streams

        timeout_us = str(int(self.io_timeout * 1_000_000))
        container = av.open(
            self.url,
            mode="w",
            format="rtsp",
            options={"rtsp_transport": "tcp", "timeout": timeout_us},
            timeout=(self.io_timeout, self.io_timeout),
        )
        try:
            enc = self.encoder
            stream = container.add_stream("libx264", rate=Fraction(enc.framerate).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = enc.width, enc.height, "yuv420p"
            stream.bit_rate = enc.bitrate
            ctx = stream.codec_context
            ctx.time_base = Fraction(1, RTP_VIDEO_CLOCK)
            ctx.gop_size = enc.gop_size
            ctx.options = enc.x264_options()
        except Exception:
            container.close()
            raise
        return container, stream

    def _publish_session(self) -> None:
        """One RTSP connection: open, encode and mux until stopped or an error is raised."""
        import av

        container, stream = self._open()
        t0: float | None = None
        last_pts: int | None = None
        announced = False
        try:
            while not self._stop.is_set():
                frame = self._next_frame(timeout=0.5)
                if frame is None:
                    continue
                if (frame.width, frame.height) != (self.encoder.width, self.encoder.height):
                    frame = frame.resized(self.encoder.width, self.encoder.height)
                if t0 is None:
                    t0 = frame.monotonic
                pts = next_pts(round((frame.monotonic - t0) * RTP_VIDEO_CLOCK), last_pts, self.encoder.framerate)
                last_pts = pts
                vf = av.VideoFrame.from_ndarray(frame.i420, format="yuv420p")
                vf.pts = pts
                vf.time_base = Fraction(1, RTP_VIDEO_CLOCK)
                for packet in stream.encode(vf):
                    size = packet.size
                    container.mux(packet)
                    if not announced:
                        announced = True
                        if self._sessions_announced:
                            self.stats.reconnects += 1
                        self._sessions_announced += 1
                        self.stats.state = "streaming"
                        self.stats.last_error = None
                        log.info("publishing H.264 to %s", redact_url(self.url))
                    self.stats.record(size)
        finally:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - the peer may already be gone
                pass
