"""Mirrors ``picamera2/encoders/libav_h264_encoder.py`` (0.3.36): ``LibavH264Encoder``, which
``picamera2.encoders`` exports as ``H264Encoder`` on a Pi 5.

Constructor as upstream: ``LibavH264Encoder(bitrate=None, repeat=True, iperiod=30, framerate=30,
qp=None, profile=None)`` (no ``enable_sps_framerate``); ``framerate`` goes to ``av``'s ``add_stream(rate=...)``, which
accepts an int or a ``Fraction`` but not a float. ``_encode`` runs on the camera event-loop
thread while ``Encoder.encode`` holds the encoder's non-reentrant ``_lock`` and calls
``outputframe(bytes(packet), packet.is_keyframe, timestamp=packet.pts, packet=packet)`` right there,
so an output's ``error_callback`` runs on the event-loop thread with that lock held (calling
``stop()`` from the callback deadlocks, as upstream). Requests are released one frame late
(``_request_release_delay = 1``). libx264 is replaced by :meth:`Encoder._fake_access_unit`.
"""

import collections
from fractions import Fraction
from math import sqrt

from .. import _sim
from .encoder import Encoder, Quality


class _Stream:
    """Stands in for the ``av`` stream of the encoder's private null container."""

    def __init__(self, codec_name: str, rate) -> None:
        # av's add_stream(rate=...) reads rate.numerator/.denominator: an int or a Fraction works,
        # a float raises AttributeError("'float' object has no attribute 'numerator'") (PyAV 18).
        rate.numerator, rate.denominator
        self.codec_name = codec_name
        self.rate = rate


class _Packet:
    """Stands in for an ``av.Packet``."""

    def __init__(self, data: bytes, stream, pts: int, is_keyframe: bool) -> None:
        self._data = data
        self.stream = stream
        self.pts = pts
        self.dts = pts
        self.time_base = Fraction(1, 1000000)
        self.is_keyframe = is_keyframe
        self.size = len(data)

    def __bytes__(self) -> bytes:
        return self._data


class LibavH264Encoder(Encoder):
    instances: list["LibavH264Encoder"] = []

    def __init__(self, bitrate=None, repeat=True, iperiod=30, framerate=30, qp=None, profile=None):
        super().__init__()
        self._codec = "h264"
        self.repeat = repeat
        self.bitrate = bitrate
        self.iperiod = iperiod
        self.framerate = framerate
        self.qp = qp
        self.profile = profile
        self.preset = None
        self.drop_final_frames = False
        self.threads = 0
        self._lasttimestamp = None
        self._use_hw = False
        self._request_release_delay = 1
        self._request_release_queue = None
        self._key_frames_requested = 0
        self._key_frames_generated = 0
        self._frame_count = 0
        # fake only
        self.init_kwargs = {"bitrate": bitrate, "repeat": repeat, "iperiod": iperiod, "framerate": framerate, "qp": qp, "profile": profile}
        LibavH264Encoder.instances.append(self)

    def _setup(self, quality):
        if quality is not None or (getattr(self, "bitrate", None) is None and getattr(self, "qp", None) is None):
            quality = Quality.MEDIUM if quality is None else quality
            table = {Quality.VERY_LOW: 3, Quality.LOW: 4, Quality.MEDIUM: 7, Quality.HIGH: 10, Quality.VERY_HIGH: 14}
            reference_complexity = 1920 * 1080 * 30
            actual_complexity = self.width * self.height * getattr(self, "framerate", 30)
            self.bitrate = int(table[quality] * 1000000 * sqrt(actual_complexity / reference_complexity))

    def _send_streams(self, output):
        output._add_stream(self._stream, self._codec, rate=self.framerate, width=self.width, height=self.height)

    def _start(self):
        if _sim.REAL_AV:
            return self._start_av()
        self._stream = _Stream(self._codec, self.framerate)
        for out in self._output:
            self._send_streams(out)
        self._request_release_queue = collections.deque()

    def _stop(self):
        if _sim.REAL_AV:
            self._container.close()
        while self._request_release_queue:
            self._request_release_queue.popleft().release()

    def _encode(self, stream, request):
        request.acquire()
        self._request_release_queue.append(request)
        timestamp_us = self._timestamp(request)
        if _sim.REAL_AV:
            self._encode_av(request, timestamp_us)
            return
        iperiod = self.iperiod or (1 << 31) - 1
        keyframe = self._frame_count % iperiod == 0 or self._key_frames_requested > self._key_frames_generated
        if self._key_frames_requested > self._key_frames_generated:
            self._key_frames_generated += 1
        self._frame_count += 1
        packet = _Packet(self._fake_access_unit(keyframe), self._stream, timestamp_us, keyframe)
        self.outputframe(bytes(packet), packet.is_keyframe, timestamp=packet.pts, packet=packet)
        while len(self._request_release_queue) > self._request_release_delay:
            self._request_release_queue.popleft().release()

    def force_key_frame(self):
        self._key_frames_requested += 1

    # --- _sim.REAL_AV: as upstream, libx264 through PyAV (a null container owns the encoder stream)
    def _start_av(self):
        import av

        self._container = av.open("/dev/null", "w", format="null")
        self._stream = self._container.add_stream(self._codec, rate=self.framerate)
        self._stream.width = self.width
        self._stream.height = self.height
        self._stream.pix_fmt = "yuv420p"
        for out in self._output:
            self._send_streams(out)
        if self.bitrate is not None:
            self._stream.codec_context.bit_rate = self.bitrate
        self._stream.codec_context.gop_size = self.iperiod or (1 << 31) - 1
        self._stream.codec_context.options["preset"] = self.preset or "ultrafast"
        self._stream.codec_context.options["deblock"] = "1"
        self._stream.codec_context.time_base = Fraction(1, 1000000)
        self._stream.codec_context.options["tune"] = "zerolatency"
        self._request_release_queue = collections.deque()

    def _encode_av(self, request, timestamp_us):
        import av

        array = request.make_array(self.name)
        frame = av.VideoFrame.from_numpy_buffer(array, format="yuv420p", width=self.width)
        frame.pts = timestamp_us
        for packet in self._stream.encode(frame):
            self.outputframe(bytes(packet), packet.is_keyframe, timestamp=packet.pts, packet=packet)
        while len(self._request_release_queue) > self._request_release_delay:
            self._request_release_queue.popleft().release()
