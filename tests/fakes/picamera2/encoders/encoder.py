"""Mirrors ``picamera2/encoders/encoder.py`` (0.3.36): the ``Encoder`` base class (audio and camera
sync left out).

Kept: ``start()`` raises ``RuntimeError("Encoder already running")``, ``stop()`` raises
``RuntimeError("Encoder already stopped")``; ``start`` calls ``out.start()`` on every output
*before* ``_start()``; ``stop`` runs ``_stop()`` then ``out.stop()``; ``encode`` holds the
(non-reentrant) ``_lock`` around ``_encode``; ``outputframe`` holds ``_output_lock`` and calls
``out.outputframe(frame, keyframe, timestamp, packet, audio)`` on each output; the ``output``
setter only accepts ``Output`` objects.
"""

import threading
from enum import Enum
from fractions import Fraction

from ..outputs import Output

_FORMATS = {"YUV420", "YVU420", "NV12", "NV21", "YUYV", "YVYU", "UYVY", "VYUY",
            "BGR888", "RGB888", "XBGR8888", "XRGB8888", "RGB161616", "BGR161616", "MJPEG"}


class Quality(Enum):
    VERY_LOW = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    VERY_HIGH = 4


class Encoder:
    def __init__(self, framerate=30):
        self._width = 0
        self._height = 0
        self._stride = 0
        self._format = None
        self._output = []
        self._running = False
        self._name = None
        self._framerate = framerate
        self._lock = threading.Lock()
        self.firsttimestamp = None
        self.frame_skip_count = 1
        self._skip_count = 0
        self._output_lock = threading.Lock()
        self.audio = False
        self.frames_encoded = 0
        self.sync_enable = False

    @property
    def running(self):
        return self._running

    @property
    def width(self):
        return self._width

    @width.setter
    def width(self, value):
        if not isinstance(value, int):
            raise RuntimeError("Width must be integer")
        self._width = value

    @property
    def height(self):
        return self._height

    @height.setter
    def height(self, value):
        if not isinstance(value, int):
            raise RuntimeError("Height must be integer")
        self._height = value

    @property
    def size(self):
        return (self._width, self._height)

    @size.setter
    def size(self, value):
        if not isinstance(value, tuple) or len(value) != 2:
            raise RuntimeError("Size must be a tuple of two integers")
        self.width, self.height = value

    @property
    def stride(self):
        return self._stride

    @stride.setter
    def stride(self, value):
        if not isinstance(value, int):
            raise RuntimeError("Stride must be integer")
        self._stride = value

    @property
    def format(self):
        return self._format

    @format.setter
    def format(self, value):
        if value not in _FORMATS:
            raise ValueError(f"Invalid format: {value}")
        self._format = value

    @property
    def output(self):
        if len(self._output) == 1:
            return self._output[0]
        return self._output

    @output.setter
    def output(self, value):
        if isinstance(value, list):
            for out in value:
                if not isinstance(out, Output):
                    raise RuntimeError("Must pass Output")
        elif isinstance(value, Output):
            value = [value]
        else:
            raise RuntimeError("Must pass Output")
        for output in value:
            if self._running and output not in self._output:
                self.send_streams(output)
        self._output = value

    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, value):
        if not isinstance(value, str):
            raise RuntimeError("Name must be string")
        self._name = value

    def encode(self, stream, request):
        if self._skip_count == 0:
            with self._lock:
                if not self._running:
                    return
                self._encode(stream, request)
        self._skip_count = (self._skip_count + 1) % self.frame_skip_count
        self.frames_encoded += 1

    def _encode(self, stream, request):
        timestamp_us = self._timestamp(request)
        self.outputframe(request.make_buffer(stream if isinstance(stream, str) else "main").tobytes(), True, timestamp_us)

    def send_streams(self, output):
        self._send_streams(output)

    def _send_streams(self, output):
        table = {"YUV420": "yuv420p", "BGR888": "rgb24", "RGB888": "bgr24", "XBGR8888": "rgba", "XRGB8888": "bgra"}
        pix_fmt = table.get(self._format)
        rate = Fraction(1000000, self._framerate)
        if pix_fmt is None and output.needs_add_stream:
            raise RuntimeError(f"Output does not support {self._format}")
        output._add_stream("video", "rawvideo", pix_fmt=pix_fmt, rate=rate, width=self.width, height=self.height)

    def start(self, quality=None):
        with self._lock:
            if self._running:
                raise RuntimeError("Encoder already running")
            self.frames_encoded = 0
            self._setup(quality)
            self._running = True
            self.firsttimestamp = None
            for out in self._output:
                out.start()
            self._start()

    def _start(self):
        for out in self._output:
            self._send_streams(out)

    def stop(self):
        with self._lock:
            if not self._running:
                raise RuntimeError("Encoder already stopped")
            self._running = False
            self._stop()
            for out in self._output:
                out.stop()

    def _stop(self):
        pass

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        with self._output_lock:
            for out in self._output:
                out.outputframe(frame, keyframe, timestamp, packet, audio)

    def _setup(self, quality):
        pass

    def _timestamp(self, request):
        ts = int(request.request.metadata["SensorTimestamp"] / 1000)  # ns to us
        if self.firsttimestamp is None:
            self.firsttimestamp = ts
            timestamp_us = 0
        else:
            timestamp_us = ts - self.firsttimestamp
        return timestamp_us

    # fake only: a stand-in H.264 access unit of about the size the bitrate allows
    def _fake_access_unit(self, keyframe: bool) -> bytes:
        rate = getattr(self, "framerate", None) or 30
        bitrate = getattr(self, "bitrate", None) or 4_000_000
        size = max(64, int(bitrate / 8 / rate) * (4 if keyframe else 1))
        nal = b"\x00\x00\x00\x01\x67\x64\x00\x28\x00\x00\x00\x01\x68\xee\x3c\x80\x00\x00\x00\x01\x65" if keyframe else b"\x00\x00\x00\x01\x41"
        return nal + bytes(size - len(nal))
