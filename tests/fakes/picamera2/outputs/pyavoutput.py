"""Mirrors ``picamera2/outputs/pyavoutput.py`` (0.3.36): ``PyavOutput``.

Kept from upstream:

* ``PyavOutput(output_name, format=None, pts=None, options=None)``; ``error_callback = None`` is a
  plain attribute the user sets; ``needs_add_stream = True``.
* ``start()`` opens the container (upstream: ``av.open(output_name, "w", format=format,
  options=options)``; for RTSP that makes no connection yet: the ANNOUNCE/SETUP/RECORD happen on the
  first mux) and sets ``recording``; ``stop()`` closes it and forgets the streams.
* ``outputframe(frame, keyframe=True, timestamp=None, packet=None, audio=False)`` muxes only while
  ``recording`` and the container is open; packets from a libav encoder are held back until a
  keyframe was seen; when ``mux`` raises, the container is closed, dropped, and
  ``error_callback(exc)`` is called **synchronously on the thread that called outputframe** (the
  encoder's poll thread for the V4L2 encoder, the camera event-loop thread for the libav one);
  later frames are ignored until the output is started again.

Fake only: the container is a :class:`_Container` that talks to a simulated RTSP server whose
availability is ``PyavOutput.server_up`` (with ``_sim.REAL_AV`` set, it is upstream's real ``av``
container and packets, talking to a real RTSP server); ``PyavOutput.open_error`` makes ``start()`` raise;
:meth:`PyavOutput.fail_next_write` makes one mux raise; ``init_kwargs`` holds the constructor arguments and ``created`` the ``time.monotonic()`` of creation; ``muxed_frames``/``muxed_bytes`` count
what reached the server; ``PyavOutput.callback_log`` records ``(thread name, seconds spent, exc)``
for every ``error_callback`` call; ``PyavOutput.instances`` lists every output created.
"""

import threading
import time
from fractions import Fraction

from .. import _sim
from .output import Output


class _OutStream:
    def __init__(self, codec_name, kwargs):
        self.codec_name = codec_name
        self.kwargs = kwargs


class _Packet:
    """Stands in for ``av.Packet(data)`` / ``av.Packet(packet)``."""

    def __init__(self, source):
        self.data = bytes(source) if source is not None else b""
        self.size = len(self.data)
        self.stream = None
        self.pts = self.dts = None
        self.time_base = None
        self.is_keyframe = False


def _new_packet(source):
    """``av.Packet(source)`` as upstream under ``_sim.REAL_AV``, else the stand-in."""
    if _sim.REAL_AV:
        import av

        return av.Packet(source)
    return _Packet(source)


class _Container:
    """Stands in for the ``av`` output container; ``mux`` talks to the simulated RTSP server."""

    def __init__(self, owner, name, format, options):
        self.owner = owner
        self.name = name
        self.format = format
        self.options = options
        self.streams = []
        self.connected = False
        self.closed = False

    def add_stream(self, codec_name, **kwargs):
        stream = _OutStream(codec_name, kwargs)
        self.streams.append(stream)
        return stream

    def mux(self, packet):
        if self.closed:
            raise ValueError("I/O operation on closed container")
        failure, self.owner._fail_next = self.owner._fail_next, None
        if failure is not None:
            raise failure
        if not PyavOutput.server_up:
            if self.connected:
                raise BrokenPipeError(32, f"Broken pipe: '{self.name}'")
            raise ConnectionRefusedError(111, f"Connection refused: '{self.name}'")
        self.connected = True
        self.owner.muxed_frames += 1
        self.owner.muxed_bytes += packet.size

    def close(self):
        self.closed = True


class PyavOutput(Output):
    # fake only
    server_up = True
    open_error = None
    instances: list["PyavOutput"] = []
    callback_log: list[tuple[str, float, BaseException]] = []

    def __init__(self, output_name, format=None, pts=None, options=None):
        super().__init__(pts=pts)
        self._output_name = output_name
        self._format = format
        self._streams = {}
        self._container = None
        self._options = options
        self.error_callback = None
        self.needs_add_stream = True
        self._seen_keyframe = {}
        # fake only
        self._fail_next = None
        self.muxed_frames = 0
        self.muxed_bytes = 0
        self.starts = 0
        self.stops = 0
        self.init_kwargs = {"output_name": output_name, "format": format, "pts": pts, "options": options}
        self.created = time.monotonic()
        PyavOutput.instances.append(self)

    def fail_next_write(self, exc=None):
        """Fake only: the next mux raises ``exc`` (default ``BrokenPipeError``)."""
        self._fail_next = exc if exc is not None else BrokenPipeError(32, "Broken pipe")

    def _add_stream(self, encoder_stream, codec_name, **kwargs):
        stream = self._container.add_stream(codec_name, **kwargs)
        self._streams[encoder_stream] = stream

    def start(self):
        """Start the PyavOutput."""
        self.starts += 1
        if PyavOutput.open_error is not None:
            raise PyavOutput.open_error
        if _sim.REAL_AV:  # as upstream
            import av

            self._container = av.open(self._output_name, "w", format=self._format, options=self._options)
        else:
            self._container = _Container(self, self._output_name, self._format, self._options)
        super().start()

    def stop(self):
        """Stop the PyavOutput."""
        self.stops += 1
        super().stop()
        if self._container:
            try:
                self._container.close()
            except Exception:
                pass
            self._container = None
            self._streams = {}
            self._seen_keyframe = {}

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        """Output an encoded frame using PyAv."""
        if self.recording and self._container:
            if not packet:
                packet = _new_packet(frame)
                packet.dts = timestamp
                packet.pts = timestamp
                packet.time_base = Fraction(1, 1000000)
                packet.is_keyframe = keyframe
                packet.stream = self._streams["video"]
            else:
                new_packet = _new_packet(packet)
                if packet.stream not in self._streams:
                    raise RuntimeError("Stream not found in PyavOutput")
                new_packet.stream = self._streams[packet.stream]
                new_packet.dts = timestamp
                new_packet.pts = timestamp
                new_packet.time_base = Fraction(1, 1000000)
                new_packet.is_keyframe = keyframe
                packet = new_packet
                seen_keyframe = self._seen_keyframe.get(packet.stream, False)
                seen_keyframe |= keyframe
                self._seen_keyframe[packet.stream] = seen_keyframe
                if not seen_keyframe:
                    return

            try:
                self._container.mux(packet)
                if _sim.REAL_AV:
                    self.muxed_frames += 1
                    self.muxed_bytes += packet.size
            except Exception as e:
                try:
                    self._container.close()
                except Exception:
                    pass
                self._container = None
                if self.error_callback:
                    started = time.monotonic()
                    self.error_callback(e)
                    PyavOutput.callback_log.append((threading.current_thread().name, time.monotonic() - started, e))

            self.outputtimestamp(timestamp)
