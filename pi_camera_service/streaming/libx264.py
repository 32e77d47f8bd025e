"""The software H.264 encoder: PyAV's libx264, muxed over RTSP/TCP (to MediaMTX in production).

:class:`Libx264Encoder` is the :class:`~pi_camera_service.streaming.publisher.H264Source` of
software sources: on the :class:`~pi_camera_service.streaming.publisher.Publisher`'s thread it takes
the newest frame offered by the capture thread, encodes it and muxes it to the RTSP server
(ANNOUNCE/SETUP/RECORD, interleaved TCP). The capture thread never waits on it:
:meth:`Libx264Encoder.offer` only swaps a one-slot mailbox, so a slow or dead network drops frames
from the stream, never from capture. :class:`RtspPublisher` is the two put together.

When the server is down or goes away (write error, refused connection), the session raises; the
shared publisher reports ``reconnecting`` and tries again with back-off. Each new connection starts
with a fresh encoder, so the first frame a viewer gets is a keyframe (IDR). Connection or I/O stalls
are bounded by ``io_timeout``.

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
from pi_camera_service.sources.base import StreamStats
from pi_camera_service.streaming.publisher import Publisher

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


class Libx264Encoder:
    """Software H.264 for the shared publisher: a one-frame mailbox, libx264, a PyAV RTSP muxer.

    Args:
        encoder: :class:`EncoderSettings` (frames of another size are scaled to it).
        io_timeout: socket connect/read/write timeout, s.

    Attributes:
        frames_dropped: frames replaced in the mailbox before the encoder took them.
    """

    def __init__(self, encoder: EncoderSettings, io_timeout: float = 5.0) -> None:
        self.settings = encoder
        self.io_timeout = io_timeout
        self._cond = threading.Condition()
        self._pending: Frame | None = None
        self._publisher: Publisher | None = None
        self.frames_dropped = 0

    def offer(self, frame: Frame) -> None:
        """Hand the newest frame to the encoder without blocking; an unsent older frame is dropped."""
        with self._cond:
            if self._pending is not None:
                self.frames_dropped += 1
                publisher = self._publisher
                if publisher is not None:
                    publisher.dropped()
            self._pending = frame
            self._cond.notify()

    def attach(self, publisher: Publisher) -> None:
        """The publisher drops are reported to (set by :class:`RtspPublisher`)."""
        self._publisher = publisher

    def wake(self) -> None:
        """Make a waiting :meth:`publish` look at ``publisher.stopping`` now."""
        with self._cond:
            self._cond.notify_all()

    def _next_frame(self, publisher: Publisher, timeout: float) -> Frame | None:
        with self._cond:
            if self._pending is None and not publisher.stopping:
                self._cond.wait(timeout)
            frame, self._pending = self._pending, None
            return frame

    def _open(self, url: str) -> tuple[Any, Any]:
        import av  # lazy: PyAV is only needed when a software encoder streams

        timeout_us = str(int(self.io_timeout * 1_000_000))
        container = av.open(
            url,
            mode="w",
            format="rtsp",
            options={"rtsp_transport": "tcp", "timeout": timeout_us},
            timeout=(self.io_timeout, self.io_timeout),
        )
        try:
            enc = self.settings
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

    def publish(self, publisher: Publisher) -> None:
        """One RTSP connection: open, encode and mux until ``publisher.stopping`` or an error is raised."""
        import av

        container, stream = self._open(publisher.url)
        enc = self.settings
        t0: float | None = None
        last_pts: int | None = None
        try:
            while not publisher.stopping:
                frame = self._next_frame(publisher, timeout=0.5)
                if frame is None:
                    continue
                if (frame.width, frame.height) != (enc.width, enc.height):
                    frame = frame.resized(enc.width, enc.height)
                if t0 is None:
                    t0 = frame.monotonic
                pts = next_pts(round((frame.monotonic - t0) * RTP_VIDEO_CLOCK), last_pts, enc.framerate)
                last_pts = pts
                vf = av.VideoFrame.from_ndarray(frame.i420, format="yuv420p")
                vf.pts = pts
                vf.time_base = Fraction(1, RTP_VIDEO_CLOCK)
                for packet in stream.encode(vf):
                    size = packet.size
                    container.mux(packet)
                    publisher.sent(size)
        finally:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - the peer may already be gone
                pass


class RtspPublisher(Publisher):
    """The shared :class:`~pi_camera_service.streaming.publisher.Publisher` with a :class:`Libx264Encoder`.

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
        self.h264 = Libx264Encoder(encoder, io_timeout)
        super().__init__(url, self.h264, stats, max_delay=max_delay)
        self.h264.attach(self)
        self.encoder = encoder
        self.io_timeout = io_timeout

    @property
    def frames_dropped(self) -> int:
        """Frames replaced in the mailbox before the encoder took them."""
        return self.h264.frames_dropped

    def offer(self, frame: Frame) -> None:
        """Hand the newest frame to the encoder without blocking (see :meth:`Libx264Encoder.offer`)."""
        self.h264.offer(frame)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop publishing and close the connection (idempotent); waits up to ``timeout`` s."""
        self._stop.set()
        self.h264.wake()
        super().stop(timeout)
