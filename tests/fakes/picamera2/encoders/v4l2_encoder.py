"""Mirrors ``picamera2/encoders/v4l2_encoder.py`` (0.3.36): ``V4L2Encoder``.

Kept: ``_start()`` starts the ``thread_poll`` thread; ``_encode`` (camera event-loop thread)
acquires the request, takes one of 16 codec input buffers (blocking when none is free) and queues
the frame; ``thread_poll`` releases the request and calls ``outputframe(bytes, keyframe,
timestamp_us)`` **from the poll thread**, so an output's ``error_callback`` runs on that thread;
``_stop()`` joins the poll thread, which ends once ``_running`` is False and every queued frame
was output (so calling ``stop()`` from inside a callback raises ``RuntimeError: cannot join current
thread``, as upstream). The codec is replaced by
:meth:`Encoder._fake_access_unit`.
"""

import queue
import threading

from .encoder import Encoder

NUM_OUTPUT_BUFFERS = 16


class V4L2Encoder(Encoder):
    def __init__(self, bitrate, pixformat):
        super().__init__()
        self.bufs = {}
        self.bitrate = bitrate
        self._pixformat = pixformat
        self._controls = []
        self.vd = None
        self.framerate = None
        self._enable_framerate = False
        self._key_frames_requested = 0
        self._key_frames_generated = 0
        self._frame_count = 0

    def _start(self):
        self.vd = object()
        self.buf_available = queue.Queue()
        self.buf_frame = queue.Queue()
        for i in range(NUM_OUTPUT_BUFFERS):
            self.buf_available.put(i)
        self.thread = threading.Thread(target=self.thread_poll, args=(self.buf_available,), name="V4L2Encoder.thread_poll")
        self.thread.daemon = True
        self.thread.start()

    def _stop(self):
        self.thread.join()
        self.vd = None

    def _is_keyframe(self) -> bool:
        iperiod = getattr(self, "iperiod", None) or 60
        key = self._frame_count % iperiod == 0 or self._key_frames_requested > self._key_frames_generated
        if self._key_frames_requested > self._key_frames_generated:
            self._key_frames_generated += 1
        self._frame_count += 1
        return key

    def thread_poll(self, buf_available):
        while self._running or self.buf_frame.qsize() > 0:
            try:
                request, index, timestamp_us, keyframe = self.buf_frame.get(timeout=0.02)
            except queue.Empty:
                continue
            b = self._fake_access_unit(keyframe)
            buf_available.put(index)
            request.release()
            self.outputframe(b, keyframe, timestamp_us)

    def _encode(self, stream, request):
        if self._output is None:
            return
        if self.vd is None:
            return
        request.acquire()
        timestamp_us = self._timestamp(request)
        index = self.buf_available.get()
        self.buf_frame.put((request, index, timestamp_us, self._is_keyframe()))
