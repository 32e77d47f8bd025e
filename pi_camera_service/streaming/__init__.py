"""H.264 to RTSP: one publisher state machine (:mod:`.publisher`) fed by an encoder.

* :mod:`pi_camera_service.streaming.publisher`: :class:`Publisher`, the thread, states, statistics,
  reconnect count and back-off every source shares.
* :mod:`pi_camera_service.streaming.libx264`: the software encoder (PyAV libx264 + RTSP muxer) and
  :class:`RtspPublisher`, the publisher of software sources.
* The Raspberry Pi camera's encoder (picamera2's ``H264Encoder`` + ``PyavOutput``) is
  :mod:`pi_camera_service.sources.pi.encoding`.

The names this module had as a single file (``RtspPublisher``, ``EncoderSettings``, ``next_pts``,
``RTP_VIDEO_CLOCK``, ``MIN_PTS_STEP``) are still importable from here.
"""

from pi_camera_service.streaming.libx264 import (
    MIN_PTS_STEP,
    RTP_VIDEO_CLOCK,
    EncoderSettings,
    Libx264Encoder,
    RtspPublisher,
    next_pts,
)
from pi_camera_service.streaming.publisher import H264Source, Publisher, SourceNotReady, steady_backoff

__all__ = [
    "MIN_PTS_STEP",
    "RTP_VIDEO_CLOCK",
    "EncoderSettings",
    "H264Source",
    "Libx264Encoder",
    "Publisher",
    "RtspPublisher",
    "SourceNotReady",
    "next_pts",
    "steady_backoff",
]
