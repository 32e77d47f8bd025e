"""Mirrors ``picamera2/encoders/h264_encoder.py`` (0.3.36): the VC4 hardware ``H264Encoder``.

Constructor as upstream: ``H264Encoder(bitrate=None, repeat=True, iperiod=None, framerate=None,
enable_sps_framerate=False, qp=None, profile=None)``. ``_send_streams`` announces
``output._add_stream("video", "h264", width=..., height=...)``; without a bitrate or qp the
``Quality`` table picks one (as upstream ``_setup``).
"""

from .encoder import Quality
from .v4l2_encoder import V4L2Encoder

V4L2_PIX_FMT_H264 = 0x34363248


class H264Encoder(V4L2Encoder):
    instances: list["H264Encoder"] = []

    def __init__(
        self, bitrate=None, repeat=True, iperiod=None, framerate=None, enable_sps_framerate=False, qp=None, profile=None
    ):
        super().__init__(bitrate, V4L2_PIX_FMT_H264)
        self.iperiod = iperiod
        self.repeat = repeat
        self.qp = qp
        self.profile = profile
        self.framerate = framerate
        self._enable_framerate = enable_sps_framerate
        # fake only: what the constructor was given
        self.init_kwargs = {
            "bitrate": bitrate, "repeat": repeat, "iperiod": iperiod, "framerate": framerate,
            "enable_sps_framerate": enable_sps_framerate, "qp": qp, "profile": profile,
        }
        H264Encoder.instances.append(self)

    def _send_streams(self, output):
        output._add_stream("video", "h264", width=self._width, height=self._height)

    def _start(self):
        for out in self._output:
            self._send_streams(out)
        super()._start()

    def _setup(self, quality):
        if quality is not None or (getattr(self, "bitrate", None) is None and getattr(self, "qp", None) is None):
            quality = Quality.MEDIUM if quality is None else quality
            table = {Quality.VERY_LOW: 2, Quality.LOW: 4, Quality.MEDIUM: 6, Quality.HIGH: 9, Quality.VERY_HIGH: 15}
            reference_complexity = 1920 * 1080 * 30
            actual_complexity = self.width * self.height * (getattr(self, "framerate", 30) or 30)
            self.bitrate = int(table[quality] * 1000000 * actual_complexity / reference_complexity)

    def force_key_frame(self):
        self._key_frames_requested += 1
