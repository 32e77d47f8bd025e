"""A fake ``picamera2`` package for tests on machines without a Raspberry Pi camera stack.

It mirrors the names, signatures and observable behaviour of raspberrypi/picamera2 **0.3.36**
(commit ``3e6dff099d3982c8fbdb25f7cbe2e4c17bac34f7``, 2026-05-12) for the parts this project uses;
nothing here talks to libcamera, V4L2 or the network.

Module layout, each mirroring the upstream file of the same path:

========================================  =====================================================
fake module                               upstream file (and what is mirrored)
========================================  =====================================================
``picamera2/__init__.py``                 ``picamera2/__init__.py``: exports ``Picamera2``,
                                          ``CompletedRequest``, ``Controls``, ``CancelledError``
``picamera2/picamera2.py``                ``picamera2/picamera2.py``: ``Picamera2`` (constructor,
                                          ``global_camera_info``, ``create_video_configuration``,
                                          ``configure``, ``start``/``stop``/``close``, the job
                                          queue behind ``capture_request``/``captured_request``/
                                          ``capture_metadata``, ``set_controls``,
                                          ``camera_controls``, ``start_encoder``/``stop_encoder``,
                                          ``start_recording``/``stop_recording``, ``options``)
``picamera2/request.py``                  ``picamera2/request.py``: ``CompletedRequest``
                                          (reference counting, ``make_array``, ``get_metadata``,
                                          ``save``)
``picamera2/controls.py``                 ``picamera2/controls.py``: ``Controls`` (the virtual
                                          ``FrameRate`` -> ``FrameDurationLimits`` field)
``picamera2/job.py``                      ``picamera2/job.py``: ``Job`` (a Future per request)
``picamera2/platform.py``                 ``picamera2/platform.py``: ``Platform``, ``get_platform``
``picamera2/encoders/*``                  ``picamera2/encoders/{__init__,encoder,h264_encoder,``
                                          ``libav_h264_encoder}.py``
``picamera2/outputs/*``                   ``picamera2/outputs/{__init__,output,pyavoutput}.py``
``picamera2/_sim.py``                     fake only: synthetic sensor (frames, metadata, controls)
========================================  =====================================================

Switches for tests (all class attributes, reset by re-importing the package):

* ``Picamera2.simulate_no_camera = True``: ``Picamera2.global_camera_info()`` returns ``[]`` and
  ``Picamera2()`` raises ``IndexError`` exactly as upstream does with no camera attached.
* ``Picamera2.simulate_unplugged = True``: the sensor stops delivering frames (what a dislodged
  ribbon cable does); a ``capture_request(wait=<seconds>)`` then raises ``TimeoutError`` after that
  many seconds, and opening a new ``Picamera2`` raises ``RuntimeError("Camera __init__ sequence did
  not complete.")``.
* ``PyavOutput.server_up = False``: the simulated RTSP server is gone; the next mux raises
  (``ConnectionRefusedError`` before the connection was made, ``BrokenPipeError`` after) and the
  output calls its ``error_callback`` from the encoder's thread, as upstream.
* ``PyavOutput.fail_next_write(exc)`` makes one output's next mux raise ``exc``.
* ``FAKE_PICAMERA2_PLATFORM=pisp`` in the environment before import makes
  ``picamera2.encoders.H264Encoder`` the libav software encoder (Pi 5), as upstream does when no
  hardware encoder exists; the default is ``vc4`` (Pi Zero 2 W .. Pi 4, hardware encoder).

Every ``Picamera2`` instance records its public calls in ``calls`` (``(name, args, kwargs)``;
``calls_named(name)`` filters them), a deep copy of the last configuration given to ``configure``
in ``last_configuration`` and the last dict given to ``set_controls`` in ``last_set_controls``;
``buffers_in_use`` counts camera buffers held by unreleased requests and ``frames`` the frames the
event loop handled (as upstream). ``Picamera2.instances``, ``H264Encoder.instances``,
``LibavH264Encoder.instances`` and ``PyavOutput.instances`` list every object created; encoders and
outputs keep their constructor arguments in ``init_kwargs``.

Deviations from upstream, on purpose:

* ``capture_request(wait=None)`` (wait forever upstream) gives up after ``Picamera2.max_block``
  seconds with ``TimeoutError`` so a broken test fails instead of hanging.
* No raw stream buffers, previews, DNG, audio, MJPEG or mode switching.
"""

from .controls import Controls
from .job import CancelledError
from .picamera2 import Picamera2
from .request import CompletedRequest

__all__ = ["CancelledError", "CompletedRequest", "Controls", "Picamera2"]
