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
``picamera2/picamera2.py``                ``picamera2/picamera2.py``: ``Picamera2`` (constructor
                                          incl. ``tuning``, ``global_camera_info``,
                                          ``load_tuning_file``, ``find_tuning_algo``,
                                          ``create_video_configuration``,
                                          ``create_preview_configuration``, ``configure`` (sensor
                                          mode choice, ``camera_config["sensor"]``), ``sensor_modes``,
                                          ``start``/``stop``/``close``, the job
                                          queue behind ``capture_request``/``captured_request``/
                                          ``capture_metadata``, ``set_controls``,
                                          ``camera_controls``, ``camera_properties``,
                                          ``start_encoder``/``stop_encoder``,
                                          ``start_recording``/``stop_recording``, ``options``) and
                                          ``CameraManager`` (``Picamera2._cm``: ``cms``, ``reset``)
``picamera2/request.py``                  ``picamera2/request.py``: ``CompletedRequest``
                                          (reference counting, ``make_array``, ``get_metadata``,
                                          ``save``)
``picamera2/controls.py``                 ``picamera2/controls.py``: ``Controls`` (the virtual
                                          ``FrameRate`` -> ``FrameDurationLimits`` field)
``picamera2/job.py``                      ``picamera2/job.py``: ``Job`` (a Future per request)
``picamera2/platform.py``                 ``picamera2/platform.py``: ``Platform``, ``get_platform``
``picamera2/devices/__init__.py``         ``picamera2/devices/__init__.py``: exports ``IMX708`` only
                                          (not the Hailo/IMX500 helpers)
``picamera2/devices/imx708/*``            ``picamera2/devices/imx708/{__init__,imx708}.py``:
                                          ``IMX708(camera_num=None)``, ``set_sensor_hdr_mode``,
                                          ``close``, context manager; the subdev node and the HDR
                                          control are simulated by ``_sim``
``picamera2/encoders/*``                  ``picamera2/encoders/{__init__,encoder,h264_encoder,``
                                          ``libav_h264_encoder}.py``
``picamera2/outputs/*``                   ``picamera2/outputs/{__init__,output,pyavoutput}.py``
``picamera2/_sim.py``                     fake only: synthetic IMX708 and libcamera behaviour
                                          (frames, metadata, control limits, sensor modes and
                                          sensor HDR, ScalerCrop adjustment, autofocus, ISP HDR,
                                          built-in tuning files)
========================================  =====================================================

Switches for tests (class attributes or ``_sim`` state, all reset by re-importing the package, i.e.
removing every ``picamera2``/``picamera2.*`` module from ``sys.modules`` as the tests' fixtures do):

* ``Picamera2.simulate_no_camera = True``: ``Picamera2.global_camera_info()`` returns ``[]`` and
  ``Picamera2()`` raises ``IndexError`` exactly as upstream does with no camera attached.
* ``Picamera2.simulate_unplugged = True``: the sensor stops delivering frames (what a dislodged
  ribbon cable does); a ``capture_request(wait=<seconds>)`` then raises ``TimeoutError`` after that
  many seconds, and opening a new ``Picamera2`` raises ``RuntimeError("Camera __init__ sequence did
  not complete.")``.
* ``Picamera2.simulate_model = None | "imx708" | "imx708_wide" | "imx708_noir" | "imx708_wide_noir"``:
  the sensor model libcamera names (``global_camera_info()[n]["Model"]``, ``camera_properties["Model"]``,
  and the default tuning ``<model>.json``); None is the Camera Module 3 Wide, ``imx708_wide``. Another
  name simulates a sensor without the imx708 driver (``IMX708(n)`` then finds no subdev node); the
  controls stay the IMX708's.
* ``Picamera2.simulate_lux = None | float``: metadata ``Lux`` is that value (lux) instead of the
  simulated one; ``Picamera2.simulate_sensor_temperature = None | float`` likewise ``SensorTemperature``
  (deg C).
* ``_sim.set_sensor_hdr(n, enable)`` / ``_sim.sensor_hdr(n)``: the IMX708's own HDR control, as
  ``picamera2.devices.IMX708(n).set_sensor_hdr_mode(enable)`` sets it (refused with EBUSY, printed,
  while a ``Picamera2`` for camera n is started). A camera manager created afterwards (see below)
  gives a newly opened ``Picamera2`` the single HDR mode: ``sensor_modes`` is 2304x1296 at 30 fps,
  ``sensor_resolution`` (2304, 1296), ``ScalerCropMaximum`` (0, 0, 4608, 2592) once configured.
* ``PyavOutput.server_up = False``: the simulated RTSP server is gone; the next mux raises
  (``ConnectionRefusedError`` before the connection was made, ``BrokenPipeError`` after) and the
  output calls its ``error_callback`` from the encoder's thread, as upstream.
* ``PyavOutput.fail_next_write(exc)`` makes one output's next mux raise ``exc``.
* ``_sim.REAL_AV = True``: ``LibavH264Encoder`` encodes the main stream with libx264 through PyAV and
  ``PyavOutput`` muxes with PyAV, as upstream does, so a real RTSP server receives decodable H.264
  (use with ``FAKE_PICAMERA2_PLATFORM=pisp``; the V4L2 encoder keeps its placeholder access units).
* ``FAKE_PICAMERA2_PLATFORM=pisp`` in the environment before import makes
  ``picamera2.encoders.H264Encoder`` the libav software encoder (Pi 5), as upstream does when no
  hardware encoder exists; the default is ``vc4`` (Pi Zero 2 W .. Pi 4, hardware encoder).

Every ``Picamera2`` instance records its public calls in ``calls`` (``(name, args, kwargs)``;
``calls_named(name)`` filters them), a deep copy of the last configuration given to ``configure``
in ``last_configuration`` and the last dict given to ``set_controls`` in ``last_set_controls``;
``buffers_in_use`` counts camera buffers held by unreleased requests and ``frames`` the frames the
event loop handled (as upstream). ``Picamera2.instances``, ``H264Encoder.instances``,
``LibavH264Encoder.instances`` and ``PyavOutput.instances`` list every object created; encoders and
outputs keep their constructor arguments in ``init_kwargs``. Also fake only, per ``Picamera2``:
``tuning`` (the constructor argument), ``tuning_file_used``/``tuning_used`` (the file the simulated IPA
loaded and its content), ``sensor_hdr`` (sensor HDR when opened), ``last_af_windows``/
``last_af_metering`` (the last ``AfWindows``/``AfMetering`` applied); ``Picamera2._cm.reset_count`` and
``Picamera2._cm.enumerations`` count camera-manager resets and creations.

The camera manager, as upstream: ``Picamera2._cm.cms`` is created on first use (``global_camera_info``,
``IMX708(...)``, opening a camera), dropped when the last open camera closes and replaced by
``Picamera2._cm.reset()``. Only a newly created manager re-reads ``LIBCAMERA_RPI_TUNING_FILE`` (a file that
fails to load, or targets the other platform, leaves it with no camera, so ``Picamera2(n)`` raises
``IndexError``) and the sensor's HDR modes. The environment variable is process state: a test that
passes ``tuning=`` should restore it (``monkeypatch.delenv("LIBCAMERA_RPI_TUNING_FILE", raising=False)``).

Properties and limits, as a real IMX708 reports them: ``camera_properties`` has ``Model``,
``PixelArraySize`` (4608, 2592), ``PixelArrayActiveAreas`` [(16, 24, 4608, 2592)], ``UnitCellSize``
(1400, 1400) nm and ``ScalerCropMaximum``, which is (0, 0, 0, 0) until ``configure`` and then the chosen
sensor mode's field of view in sensor px: (768, 432, 3072, 1728) for the 1536x864 mode upstream picks
for outputs up to about 1536x864 (e.g. the default raw size of a 1280x720 stream), (0, 0, 4608, 2592) for
the 2304x1296 and 4608x2592 modes (choose them with ``sensor={"output_size": ...}``). ``configure`` also
updates ``camera_controls`` (``ScalerCrop`` min/max/default, ``LensPosition`` (0, lens maximum, 1.0)
dioptres, ``FrameDurationLimits`` and ``ExposureTime`` minima of the mode).

Simulated effects of controls (``_sim``): ``ScalerCrop`` is adjusted as libcamera's Raspberry Pi
pipeline does (minimum size, kept inside the sensor mode) and reported in metadata; the autofocus
follows libcamera's AfMode/AfTrigger/AfPause/AfState rules (``AfState``, ``LensPosition``, ``FocusFoM``
in metadata); ``HdrMode`` (Pi 5 modes 1-4, Pi 4 only 1) adds ``HdrMode``/``HdrChannel`` to metadata;
``Brightness`` shifts the frames' Y plane by ``255 * Brightness`` levels and ``Saturation`` scales U/V
about 128; ``FrameDurationLimits`` is never faster than the configured sensor mode.

Deviations from upstream, on purpose:

* ``capture_request(wait=None)`` (wait forever upstream) gives up after ``Picamera2.max_block``
  seconds with ``TimeoutError`` so a broken test fails instead of hanging.
* No raw stream buffers, previews, DNG, audio, MJPEG or ``switch_mode``.
* ``sensor_modes[i]["format"]`` is a str (upstream: a ``SensorFormat`` whose str is the same).
"""

from .controls import Controls
from .job import CancelledError
from .picamera2 import Picamera2
from .request import CompletedRequest

__all__ = ["CancelledError", "CompletedRequest", "Controls", "Picamera2"]
