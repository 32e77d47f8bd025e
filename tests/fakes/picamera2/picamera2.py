"""Mirrors ``picamera2/picamera2.py`` (0.3.36, commit 3e6dff0): the ``Picamera2`` class.

Kept from upstream: method names, signatures and defaults; ``global_camera_info()`` is a
staticmethod and ``Picamera2(n)`` indexes its list (``IndexError`` when there is no camera n);
open failures become ``RuntimeError("Camera __init__ sequence did not complete.")``; only one
``Picamera2`` may hold a camera at a time; ``create_video_configuration`` builds the same dict
(``buffer_count`` 6, ``queue`` True, ``NoiseReductionMode``/``FrameDurationLimits`` defaults merged
under the caller's ``controls``); ``configure`` refuses to run while started and fills in ``stride``
and ``framesize`` of the caller's stream dicts; ``start()`` is a no-op when started; ``stop()``
releases queued requests and bumps ``stop_count``; ``close()`` stops and releases the camera;
``capture_request``/``captured_request``/``capture_metadata`` are jobs run by the event-loop thread
on the next completed request (the newest one is kept queued, as upstream with ``queue=True``);
``wait=<seconds>`` raises ``TimeoutError`` when no frame arrives; ``start_encoder`` gives the encoder
the encode stream's size/format/stride and adds it to the set the event loop feeds;
``stop_recording()`` stops the camera *and* the encoders; ``set_controls`` validates names
against ``camera_ctrl_info`` (``FrameRate`` maps to ``FrameDurationLimits``).

Also mirrored: the class-level ``_cm`` camera manager (``reset()``; libcamera enumerates cameras, and
the rpi IPA reads its tuning file, when the manager is created: on first use and again after the last
camera closes or ``_cm.reset()``); the ``tuning`` argument (str -> ``LIBCAMERA_RPI_TUNING_FILE``, dict ->
a temporary JSON file named there until ``__init__`` returns, None -> the variable removed);
``load_tuning_file``/``find_tuning_algo``; ``configure`` picking the sensor mode exactly as
``_make_libcamera_config`` scores modes and writing ``camera_config["sensor"]`` back; the controls and
properties refreshed after ``configure`` (``ScalerCropMaximum`` is ``(0, 0, 0, 0)`` until a mode is
configured, then the mode's analogue crop); ``sensor_modes`` (configures the camera once per mode,
leaving it configured for the last one); ``create_preview_configuration``.

Simulated (fake only): the effects of controls on frames and metadata (``_sim``: ScalerCrop
adjustment, autofocus, ISP HDR channels, Brightness/Saturation on the pixels, frame duration clamped
to the sensor mode's fastest).

The event loop: a thread started by ``start()`` (upstream's NullPreview thread) produces one frame
per ``FrameDurationLimits`` period while the camera is started, using one of ``buffer_count``
buffers until its request is released (no free buffer = frame dropped, as with libcamera), runs
queued jobs, feeds encoders, then releases its own reference.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
import threading
import time
from functools import partial
from typing import Any

from . import _sim
from . import platform as Platform
from .controls import Controls
from .encoders import Encoder
from .job import Job
from .outputs import FileOutput, Output  # noqa: F401  (upstream imports these here too)
from .request import CompletedRequest, Helpers, _LibcameraRequest

_YUV = {"NV21", "NV12", "YUV420", "YVU420", "YVYU", "YUYV", "UYVY", "VYUY"}
_RGB = {"BGR888", "RGB888", "XBGR8888", "XRGB8888", "RGB161616", "BGR161616"}
_BYTES_PER_PIXEL = {"BGR888": 3, "RGB888": 3, "XBGR8888": 4, "XRGB8888": 4, "RGB161616": 6, "BGR161616": 6}


class _Transform:
    """Stands in for ``libcamera.Transform()`` (no flips)."""

    hflip = vflip = transpose = False

    def __repr__(self) -> str:
        return "<Transform identity>"


class _ColorSpace:
    """Stands in for ``libcamera.ColorSpace``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<ColorSpace {self.name}>"


class _Camera:
    """Stands in for the ``libcamera.Camera`` upstream holds in ``Picamera2.camera``."""

    def __init__(self, camera_id: str) -> None:
        self.id = camera_id


def _platform_name() -> str:
    """``"vc4"`` or ``"pisp"``: the directory name upstream's ``load_tuning_file`` uses."""
    return "vc4" if Picamera2.platform == Platform.Platform.VC4 else "pisp"


class _LibcameraCameraManager:
    """Stands in for ``libcamera.CameraManager``: it enumerates the cameras once, when created.

    Simulated: at that moment the rpi pipeline loads each camera's IPA with the tuning file named by
    ``LIBCAMERA_RPI_TUNING_FILE`` (else ``<model>.json`` from the IPA data directories;
    libcamera ipa_proxy.cpp ``ipaConfigurationFile``, pipeline_base.cpp ``loadIPA``); a file that does
    not load, or whose "target" is not this platform's, makes the camera fail to register, so the
    manager lists no camera. It also caches each sensor's modes, which depend on the IMX708's HDR
    control at that moment (``sensor_hdr``).
    """

    def __init__(self) -> None:
        target = _sim.TUNING_TARGETS[_platform_name()]
        self.tuning_file = os.environ.get("LIBCAMERA_RPI_TUNING_FILE") or None
        self.tuning = None
        self.error = None
        if self.tuning_file:
            self.tuning, self.error = _sim.read_tuning_file(self.tuning_file, target)
        self.cameras = [] if self.error else [dict(info) for info in _sim.CAMERA_INFO]
        self.sensor_hdr = {info["Num"]: _sim.sensor_hdr(info["Num"]) for info in _sim.CAMERA_INFO}


class CameraManager:
    """Mirrors upstream's ``picamera2.picamera2.CameraManager`` (``Picamera2._cm``): holds the
    libcamera camera manager in ``cms`` (created on first use), ``add``/``cleanup`` the open cameras
    (the manager is dropped when the last one closes) and ``reset()``, which replaces the manager so
    that cameras are enumerated again (``IMX708.set_sensor_hdr_mode`` calls it). No event thread.

    Fake only: ``reset_count`` counts ``reset()`` calls, ``enumerations`` counts managers created.
    """

    def __init__(self):
        self.running = False
        self.cameras = {}
        self._lock = threading.Lock()
        self._cms = None
        self.reset_count = 0
        self.enumerations = 0

    def _new_manager(self) -> _LibcameraCameraManager:
        self.enumerations += 1
        return _LibcameraCameraManager()

    @property
    def cms(self) -> _LibcameraCameraManager:
        """The libcamera camera manager, created (cameras enumerated) on first use."""
        if self._cms is None:
            self._cms = self._new_manager()
        return self._cms

    def reset(self) -> None:
        """Replace the camera manager with a new one, which enumerates the cameras again."""
        with self._lock:
            self.reset_count += 1
            self._cms = None
            self._cms = self._new_manager()

    def add(self, index, camera) -> None:
        """Register ``camera`` (a Picamera2) as camera ``index`` (upstream does this before opening)."""
        with self._lock:
            self.cameras[index] = camera
            self.running = True

    def cleanup(self, index) -> None:
        """Forget camera ``index`` (on close); with no camera left the manager is dropped."""
        with self._lock:
            self.cameras.pop(index, None)
            if self.cameras == {}:
                self.running = False
                self._cms = None


class Picamera2:
    """Fake of upstream's ``Picamera2`` (see the module docstring for what is mirrored)."""

    platform = Platform.get_platform()
    _cm = CameraManager()

    # --- test switches and registries (fake only) -------------------------------------------
    simulate_no_camera = False
    simulate_unplugged = False
    simulate_model: str | None = None
    simulate_lux: float | None = None
    simulate_sensor_temperature: float | None = None
    max_block = 10.0
    instances: list["Picamera2"] = []
    global_calls: list[tuple[str, tuple, dict]] = []
    _held_cameras: set[int] = set()
    _class_lock = threading.Lock()

    @staticmethod
    def load_tuning_file(tuning_file, dir=None) -> dict[str, Any]:
        """Load the named tuning file (JSON) and return it as a dict.

        As upstream: if ``dir`` is given only that directory is checked, otherwise
        ``~/libcamera/src/ipa/rpi/<vc4|pisp>/data``, ``/usr/local/share/libcamera/ipa/rpi/<vc4|pisp>`` and
        ``/usr/share/libcamera/ipa/rpi/<vc4|pisp>`` (by ``Picamera2.platform``); ``RuntimeError("Tuning file
        not found")`` when none has it. Fake only: with ``dir`` None and no real file, the IMX708 family's
        names (``imx708.json``, ``imx708_wide.json``, ``imx708_noir.json``, ``imx708_wide_noir.json``) come
        from a built-in table of abridged stand-ins (``_sim.builtin_tuning``).
        """
        Picamera2.global_calls.append(("load_tuning_file", (tuning_file,), {"dir": dir}))
        platform_dir = "vc4" if Picamera2.platform == Platform.Platform.VC4 else "pisp"
        if dir is not None:
            dirs = [dir]
        else:
            dirs = [
                os.path.expanduser("~/libcamera/src/ipa/rpi/" + platform_dir + "/data"),
                "/usr/local/share/libcamera/ipa/rpi/" + platform_dir,
                "/usr/share/libcamera/ipa/rpi/" + platform_dir,
            ]
        for directory in dirs:
            file = os.path.join(directory, tuning_file)
            if os.path.isfile(file):
                with open(file, 'r') as fp:
                    return json.load(fp)
        if dir is None:
            builtin = _sim.builtin_tuning(tuning_file, _sim.TUNING_TARGETS[platform_dir])
            if builtin is not None:
                return builtin
        raise RuntimeError("Tuning file not found")

    @staticmethod
    def find_tuning_algo(tuning, name) -> dict[str, dict]:
        """Return the parameters for the named algorithm in the given camera tuning (version 1 or 2)."""
        version = tuning.get("version", 1)
        if version == 1:
            return tuning[name]
        return next(algo for algo in tuning["algorithms"] if name in algo)[name]

    @staticmethod
    def global_camera_info() -> list[dict]:
        """Return Id string and Model name for all attached cameras, one dict per camera.

        The cameras are those the (cached) camera manager ``Picamera2._cm.cms`` enumerated; ``Model``
        follows ``Picamera2.simulate_model`` (fake switch) when set.
        """
        Picamera2.global_calls.append(("global_camera_info", (), {}))
        if Picamera2.simulate_no_camera:
            return []
        model = Picamera2.simulate_model
        return [dict(info, Model=model or info["Model"]) for info in Picamera2._cm.cms.cameras]

    def __init__(self, camera_num=0, verbose_console=None, tuning=None, allocator=None):
        """Initialise camera system and open the camera for use.

        ``tuning``: a tuning file path (str, set as ``LIBCAMERA_RPI_TUNING_FILE``; libcamera opens it as
        given, relative to the working directory), a tuning dict (written to a temporary JSON file that
        is deleted when ``__init__`` returns), or None (``LIBCAMERA_RPI_TUNING_FILE`` is removed so the
        default ``<model>.json`` applies). As upstream, libcamera only reads it when the camera manager
        enumerates cameras. Fake only: ``tuning`` keeps the argument, ``tuning_file_used`` the file the
        IPA loaded and ``tuning_used`` its content.
        """
        self.calls: list[tuple[str, tuple, dict]] = []
        self._record("__init__", (camera_num,), {"verbose_console": verbose_console, "tuning": tuning, "allocator": allocator})
        tuning_file = None
        if tuning is not None:
            if isinstance(tuning, str):
                os.environ["LIBCAMERA_RPI_TUNING_FILE"] = tuning
            else:
                tuning_file = tempfile.NamedTemporaryFile('w')
                json.dump(tuning, tuning_file)
                tuning_file.flush()  # but leave it open as closing it will delete it
                os.environ["LIBCAMERA_RPI_TUNING_FILE"] = tuning_file.name
        else:
            os.environ.pop("LIBCAMERA_RPI_TUNING_FILE", None)  # Use default tuning
        self._preview = None
        self.is_open = False
        camera_num = self.global_camera_info()[camera_num]["Num"]
        self._cm.add(camera_num, self)
        self.camera_idx = camera_num
        self.request_lock = threading.Lock()
        self._requestslock = threading.Lock()
        self._requests = []
        self.tuning = tuning
        self._reset_flags()
        self.helpers = Helpers(self)
        try:
            self._open_camera()
        except Exception as e:
            raise RuntimeError("Camera __init__ sequence did not complete.") from e
        finally:
            if tuning_file is not None:
                tuning_file.close()  # delete the temporary file
        self.allocator = allocator
        Picamera2.instances.append(self)

    @property
    def camera_manager(self):
        """The libcamera camera manager in use (``Picamera2._cm.cms``)."""
        return Picamera2._cm.cms

    # --- fake bookkeeping -------------------------------------------------------------------
    def _record(self, name: str, args: tuple = (), kwargs: dict | None = None) -> None:
        self.calls.append((name, args, dict(kwargs or {})))

    def calls_named(self, name: str) -> list[tuple[tuple, dict]]:
        """(args, kwargs) of every recorded call to ``name`` (fake only)."""
        return [(a, k) for n, a, k in self.calls if n == name]

    @property
    def buffers_in_use(self) -> int:
        """Camera buffers currently held by requests (fake only; at most ``buffer_count``)."""
        with self.request_lock:
            return self._buffers_in_use

    def _reset_flags(self):
        self.camera = None
        self.camera_ctrl_info = {}
        self.camera_config = {}
        self.libcamera_config = {}
        self.streams = []
        self.stream_map = {}
        self.started = False
        self.stop_count = 0
        self.configure_count = 0
        self.frames = 0
        self._job_list = []
        self.options = {}
        self._encoders = set()
        self.pre_callback = None
        self.post_callback = None
        self.completed_requests = []
        self.lock = threading.Lock()
        self._event_loop_running = False
        self._preview_stopped = threading.Event()
        self.camera_properties_ = {}
        self.controls = Controls(self)
        self.sensor_modes_ = []
        self._max_queue_len = 1
        # fake only
        self.tuning_file_used = None
        self.tuning_used = None
        self.sensor_hdr = False
        self.last_af_windows = None
        self.last_af_metering = None
        self._raw_modes = _sim.SENSOR_MODES
        self._sensor_mode = None
        self._isp_crop = None
        self._isp_min_crop = None
        self._hdr_mode = _sim.HDR_MODE_OFF
        self._af = _sim.AfSim()
        self.last_configuration = None
        self.last_set_controls = None
        self._applied_controls = {}
        self._buffers_in_use = 0
        self._sequence = 0
        self.dropped_frames = 0
        self._loop_thread = None
        self._loop_stop = threading.Event()
        self._loop_wake = threading.Event()

    def _open_camera(self):
        if Picamera2.simulate_unplugged:
            raise OSError(5, "Input/output error")
        with Picamera2._class_lock:
            if self.camera_idx in Picamera2._held_cameras:
                raise RuntimeError("Failed to acquire camera: Device or resource busy")
            Picamera2._held_cameras.add(self.camera_idx)
        cms = self._cm.cms
        model = Picamera2.simulate_model or _sim.CAMERA_INFO[self.camera_idx]["Model"]
        self.camera = _Camera(_sim.CAMERA_INFO[self.camera_idx]["Id"])
        if cms.tuning_file:
            self.tuning_file_used, self.tuning_used = cms.tuning_file, cms.tuning
        else:
            self.tuning_file_used = f"/usr/share/libcamera/ipa/rpi/{_platform_name()}/{model}.json"
            try:
                self.tuning_used = Picamera2.load_tuning_file(f"{model}.json")
            except RuntimeError:
                self.tuning_used = None
        self.sensor_hdr = cms.sensor_hdr.get(self.camera_idx, False)
        self._raw_modes = _sim.sensor_modes_for(self.sensor_hdr)
        self._af = _sim.AfSim(_sim.find_algorithm(self.tuning_used, "rpi.af"))
        self.camera_ctrl_info = _sim.camera_ctrl_info()
        self.camera_properties_ = {
            "Model": model,
            "ColorFilterArrangement": 0,
            "PixelArraySize": _sim.SENSOR_SIZE,
            "PixelArrayActiveAreas": list(_sim.PIXEL_ARRAY_ACTIVE_AREAS),
            "UnitCellSize": _sim.UNIT_CELL_SIZE,
            "ScalerCropMaximum": (0, 0, 0, 0),
            "Location": 2,
            "Rotation": 180,
        }
        native = max(self._raw_modes, key=lambda m: m["size"][0] * m["size"][1])
        self.sensor_resolution = native["size"]
        self.sensor_format = _sim.SENSOR_FORMAT
        self.is_open = True

    # --- properties ---------------------------------------------------------------------------
    @property
    def camera_properties(self) -> dict[str, Any]:
        """Camera properties (libcamera names, rectangles and sizes as tuples): ``Model``,
        ``ColorFilterArrangement``, ``PixelArraySize``, ``PixelArrayActiveAreas`` (list), ``UnitCellSize``
        (nm), ``ScalerCropMaximum`` ((0, 0, 0, 0) until configured), ``Location``, ``Rotation``; {} when closed."""
        return {} if self.camera is None else self.camera_properties_

    @property
    def camera_controls(self) -> dict[str, tuple[Any, Any, Any]]:
        return {k: (v[1].min, v[1].max, v[1].default) for k, v in self.camera_ctrl_info.items()}

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_traceback):
        self.close()

    # --- preview / event loop ------------------------------------------------------------------
    def start_preview(self, preview=None, **kwargs) -> None:
        """Upstream starts a preview (a NullPreview thread when ``preview`` is False) that runs the
        event loop; the fake starts its event-loop thread."""
        self._record("start_preview", (preview,), kwargs)
        self._loop_stop.clear()
        self._loop_thread = threading.Thread(target=self._event_loop, name="picamera2-event-loop", daemon=True)
        self._event_loop_running = True
        self._loop_thread.start()

    def stop_preview(self) -> None:
        self._record("stop_preview")
        self._loop_stop.set()
        self._loop_wake.set()
        thread = self._loop_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        self._loop_thread = None
        self._event_loop_running = False

    def _frame_duration_us(self) -> int:
        """Frame period, µs: the requested minimum frame duration, never faster than the sensor mode."""
        limits = self._applied_controls.get("FrameDurationLimits", (33333, 33333))
        floor = _sim.mode_min_frame_duration_us(self._sensor_mode) if self._sensor_mode else 1000
        return max(int(limits[0]), floor, 1000)

    def _apply_controls(self, pending: dict) -> None:
        """Fake only: what libcamera does with the controls of one request (``_sim`` simulates it)."""
        if not pending:
            return
        self._applied_controls.update({k: v for k, v in pending.items() if k not in ("AfTrigger", "AfPause")})
        if "ScalerCrop" in pending and self._sensor_mode is not None:
            self._isp_crop = _sim.apply_scaler_crop(pending["ScalerCrop"], self._sensor_mode, self._isp_min_crop)
        if "HdrMode" in pending and int(pending["HdrMode"]) in _sim.HDR_MODES_BY_PLATFORM[_platform_name()]:
            self._hdr_mode = int(pending["HdrMode"])
        if "AfMetering" in pending:
            self.last_af_metering = int(pending["AfMetering"])
        if "AfWindows" in pending:
            windows = pending["AfWindows"]
            if windows and not isinstance(windows[0], (list, tuple)):
                windows = [windows]  # upstream Controls accepts one rectangle or a list of them
            self.last_af_windows = [tuple(w) for w in windows]
            pending = dict(pending, AfWindows=self.last_af_windows)
        self._af.apply(pending)

    def _scaler_crop(self) -> tuple[int, int, int, int]:
        """The crop the pipeline applies, in native sensor px (as metadata ``ScalerCrop`` reports it)."""
        if self._sensor_mode is None:
            return (0, 0, 0, 0)
        return _sim.scale_isp_crop(self._isp_crop, self._sensor_mode)

    def _event_loop(self) -> None:
        next_due = None
        while not self._loop_stop.is_set():
            timeout = 0.05
            if self.started and not Picamera2.simulate_unplugged:
                now = time.monotonic()
                period = self._frame_duration_us() / 1e6
                if next_due is None:
                    next_due = now + period
                if now >= next_due:
                    next_due = max(next_due + period, now)
                    self._produce_frame()
                    continue
                timeout = next_due - now
            else:
                next_due = None
            if self._loop_wake.wait(timeout):
                self._loop_wake.clear()
                if not self._loop_stop.is_set():
                    self.process_requests(None)

    def _produce_frame(self) -> None:
        with self.request_lock:
            if self._buffers_in_use >= self.camera_config.get("buffer_count", 6):
                self.dropped_frames += 1
                return
        pending = self.controls.make_dict()
        if pending:
            self._apply_controls(pending)
            self.controls = Controls(self)
        seq = self._sequence
        self._sequence += 1
        metadata = _sim.frame_metadata(
            seq, time.monotonic_ns(), self._frame_duration_us(), self._applied_controls, self._scaler_crop(),
            af=self._af.step(), hdr=_sim.hdr_metadata(self._hdr_mode, seq),
            lux=Picamera2.simulate_lux, sensor_temperature=Picamera2.simulate_sensor_temperature,
        )
        image = {
            "brightness": float(self._applied_controls.get("Brightness", 0.0)),
            "saturation": float(self._applied_controls.get("Saturation", 1.0)),
        }
        request = CompletedRequest(_LibcameraRequest(seq, metadata, image), self)
        self.process_requests(None, [request])

    def process_requests(self, display, new_requests=None) -> None:
        requests = list(new_requests or [])
        self.frames += len(requests)
        with self.lock:
            for req in requests:
                req.acquire()
            self.completed_requests += requests
            finished_jobs = []
            while self._job_list:
                if self._job_list[0].execute():
                    finished_jobs.append(self._job_list.pop(0))
                else:
                    break
            for req in requests:
                for encoder in list(self._encoders):
                    if encoder.name in self.stream_map:
                        encoder.encode(encoder.name, req)
                req.release()
            while len(self.completed_requests) > self._max_queue_len:
                self.completed_requests.pop(0).release()
        for job in finished_jobs:
            job.signal()

    # --- configuration --------------------------------------------------------------------------
    @staticmethod
    def _make_initial_stream_config(stream_config, updates, ignore_list=[]):
        if updates is None:
            return updates
        valid = ("format", "size", "stride", "preserve_ar")
        for key, value in updates.items():
            if key in valid:
                stream_config[key] = value
            elif key in ignore_list:
                pass
            else:
                raise ValueError(f"Bad key {key!r}: valid stream configuration keys are {valid}")
        return stream_config

    def _is_rpi_camera(self):
        return "ColorFilterArrangement" in self.camera_properties

    @staticmethod
    def _add_display_and_encode(config, display, encode):
        if display is not None and config.get(display, None) is None:
            raise RuntimeError(f"Display stream {display} was not defined")
        if encode is not None and config.get(encode, None) is None:
            raise RuntimeError(f"Encode stream {encode} was not defined")
        config["display"] = display
        config["encode"] = encode

    _raw_stream_ignore_list = ["bit_depth", "crop_limits", "exposure_limits", "fps", "unpacked"]

    def create_preview_configuration(
        self,
        main={},
        lores=None,
        raw={},
        transform=None,
        colour_space=None,
        buffer_count=4,
        controls={},
        display="main",
        encode="main",
        queue=True,
        sensor={},
        use_case="preview",
    ) -> dict[str, Any]:
        """Make a configuration suitable for camera preview (as upstream: main 640x480 XBGR8888,
        ``buffer_count`` 4, ``NoiseReductionMode`` Minimal (3) and ``FrameDurationLimits`` (100, 83333))."""
        self._record(
            "create_preview_configuration",
            (),
            {"main": main, "lores": lores, "raw": raw, "transform": transform, "colour_space": colour_space,
             "buffer_count": buffer_count, "controls": controls, "display": display, "encode": encode,
             "queue": queue, "sensor": sensor, "use_case": use_case},
        )
        if self.camera is None:
            raise RuntimeError("Camera not opened")
        if transform is None:  # upstream's default argument is libcamera.Transform()
            transform = _Transform()
        if colour_space is None:  # upstream's default argument is libcamera.ColorSpace.Sycc()
            colour_space = _ColorSpace("Sycc")
        main = self._make_initial_stream_config({"format": "XBGR8888", "size": (640, 480), "preserve_ar": True}, main)
        self.align_stream(main, optimal=False)
        lores = self._make_initial_stream_config({"format": "YUV420", "size": main["size"], "preserve_ar": False}, lores)
        if lores is not None:
            self.align_stream(lores, optimal=False)
        raw = self._make_initial_stream_config(
            {"format": self.sensor_format, "size": main["size"]}, raw, self._raw_stream_ignore_list
        )
        if "NoiseReductionMode" in self.camera_controls and "FrameDurationLimits" in self.camera_controls:
            controls = {"NoiseReductionMode": 3, "FrameDurationLimits": (100, 83333)} | controls
        config = {
            "use_case": use_case,
            "transform": transform,
            "colour_space": colour_space,
            "buffer_count": buffer_count,
            "queue": queue,
            "main": main,
            "lores": lores,
            "raw": raw,
            "controls": controls,
            "sensor": sensor,
        }
        self._add_display_and_encode(config, display, encode)
        return config

    def create_video_configuration(
        self,
        main={},
        lores=None,
        raw={},
        transform=None,
        colour_space=None,
        buffer_count=6,
        controls={},
        display="main",
        encode="main",
        queue=True,
        sensor={},
        use_case="video",
    ) -> dict[str, Any]:
        """Make a configuration suitable for video recording."""
        self._record(
            "create_video_configuration",
            (),
            {"main": main, "lores": lores, "raw": raw, "transform": transform, "colour_space": colour_space,
             "buffer_count": buffer_count, "controls": controls, "display": display, "encode": encode,
             "queue": queue, "sensor": sensor, "use_case": use_case},
        )
        if self.camera is None:
            raise RuntimeError("Camera not opened")
        if transform is None:  # upstream's default argument is libcamera.Transform()
            transform = _Transform()
        main = self._make_initial_stream_config({"format": "XBGR8888", "size": (1280, 720), "preserve_ar": True}, main)
        self.align_stream(main, optimal=False)
        lores = self._make_initial_stream_config({"format": "YUV420", "size": main["size"], "preserve_ar": False}, lores)
        if lores is not None:
            self.align_stream(lores, optimal=False)
        raw = self._make_initial_stream_config(
            {"format": self.sensor_format, "size": main["size"]}, raw, self._raw_stream_ignore_list
        )
        if colour_space is None:
            if main["size"][0] < 1280 or main["size"][1] < 720:
                colour_space = _ColorSpace("Smpte170m")
            else:
                colour_space = _ColorSpace("Rec709")
        if "NoiseReductionMode" in self.camera_controls and "FrameDurationLimits" in self.camera_controls:
            controls = {"NoiseReductionMode": 1, "FrameDurationLimits": (33333, 33333)} | controls
        config = {
            "use_case": use_case,
            "transform": transform,
            "colour_space": colour_space,
            "buffer_count": buffer_count,
            "queue": queue,
            "main": main,
            "lores": lores,
            "raw": raw,
            "controls": controls,
            "sensor": sensor,
        }
        self._add_display_and_encode(config, display, encode)
        return config

    @staticmethod
    def align_stream(stream_config, optimal=True) -> None:
        if optimal:
            align = 32 if Picamera2.platform == Platform.Platform.VC4 else 64
            if stream_config["format"] in ("YUV420", "YVU420"):
                align *= 2
            elif stream_config["format"] in ("XBGR8888", "XRGB8888", "RGB161616", "BGR161616"):
                align //= 2
        else:
            align = 2
        size = stream_config["size"]
        stream_config["size"] = (size[0] - size[0] % align, size[1] - size[1] % 2)

    def check_stream_config(self, stream_config, name) -> None:
        if type(stream_config) is not dict:
            raise RuntimeError(name + " stream should be a dictionary")
        if "format" not in stream_config:
            raise RuntimeError("format not found in " + name + " stream")
        if "size" not in stream_config:
            raise RuntimeError("size not found in " + name + " stream")
        fmt = stream_config["format"]
        if type(fmt) is not str:
            raise RuntimeError("format in " + name + " stream should be a string")
        if name != "raw" and fmt not in _YUV and fmt not in _RGB and fmt != "MJPEG":
            raise RuntimeError("Bad format " + fmt + " in stream " + name)
        size = stream_config["size"]
        if type(size) is not tuple or len(size) != 2:
            raise RuntimeError("size in " + name + " stream should be (width, height)")
        if size[0] % 2 or size[1] % 2:
            raise RuntimeError("width and height should be even")

    def check_camera_config(self, camera_config) -> None:
        for name in ["colour_space", "transform", "main", "lores", "raw"]:
            if name not in camera_config:
                raise RuntimeError(f"{name!r} key expected in camera configuration")
        self.check_stream_config(camera_config["main"], "main")
        if camera_config["lores"] is not None:
            self.check_stream_config(camera_config["lores"], "lores")
            main_w, main_h = camera_config["main"]["size"]
            lores_w, lores_h = camera_config["lores"]["size"]
            if lores_w > main_w or lores_h > main_h:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
            if Picamera2.platform == Platform.Platform.VC4 and camera_config["lores"]["format"] not in _YUV:
                raise RuntimeError("lores stream must be YUV")
        if camera_config["raw"] is not None:
            self.check_stream_config(camera_config["raw"], "raw")

    def _fill_stream(self, stream_config) -> None:
        """What libcamera's validate() writes back: stride (bytes per row) and frame size."""
        width, height = stream_config["size"]
        fmt = stream_config["format"]
        align = 32 if Picamera2.platform == Platform.Platform.VC4 else 64
        if fmt in ("YUV420", "YVU420"):
            stride = _sim.yuv420_stride(width, align)
            framesize = stride * height * 3 // 2
        else:
            row = width * _BYTES_PER_PIXEL.get(fmt, 2)
            stride = (row + align - 1) // align * align
            framesize = stride * height
        stream_config["stride"] = stride
        stream_config["framesize"] = framesize

    def configure_(self, camera_config):
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        if isinstance(camera_config, str):
            camera_config = self.create_video_configuration()
        elif isinstance(camera_config, dict):
            camera_config = camera_config.copy()
        else:
            raise TypeError("Invalid type for `camera_config` given")
        self.camera_config = {}
        self.check_camera_config(camera_config)
        self._configure_sensor(camera_config)
        self._fill_stream(camera_config["main"])
        if camera_config["lores"] is not None:
            self._fill_stream(camera_config["lores"])
        self.stream_map = {
            "main": "main-stream",
            "lores": "lores-stream" if camera_config["lores"] is not None else None,
            "raw": "raw-stream" if camera_config["raw"] is not None else None,
        }
        self.display_stream_name = camera_config["display"]
        self.encode_stream_name = camera_config["encode"]
        if self.encode_stream_name is not None and self.encode_stream_name not in camera_config:
            raise RuntimeError(f"Encode stream {self.encode_stream_name} was not defined")
        self._max_queue_len = 1 if camera_config["queue"] and camera_config["buffer_count"] > 1 else 0
        self.camera_config = camera_config
        self.controls = Controls(self, controls=self.camera_config["controls"])
        self.configure_count += 1

    def _configure_sensor(self, camera_config) -> None:
        """Pick the sensor mode as upstream ``_make_libcamera_config`` does (``sensor`` output_size, else
        the raw stream's size, else main's), write ``camera_config["sensor"]`` back as upstream's
        ``_update_camera_config``, and refresh what libcamera changes on configure: the controls'
        limits (``FrameDurationLimits``, ``ExposureTime``, ``ScalerCrop``, ``LensPosition``) and the
        ``ScalerCropMaximum`` property (the mode's analogue crop). The ISP crop restarts at its default."""
        sensor = camera_config.get("sensor") or {}
        raw = camera_config.get("raw")
        if sensor.get("output_size") is not None:
            output_size = tuple(sensor["output_size"])
        elif raw is not None and raw.get("size") is not None:
            output_size = tuple(raw["size"])
        else:
            output_size = tuple(camera_config["main"]["size"])
        if sensor.get("bit_depth") is not None:
            bit_depth = int(sensor["bit_depth"])
        elif raw is not None and raw.get("format"):
            digits = "".join(c for c in str(raw["format"]).split("_")[0] if c.isdigit())
            bit_depth = int(digits) if digits else _sim.SENSOR_BIT_DEPTH
        else:
            bit_depth = _sim.SENSOR_BIT_DEPTH
        mode = _sim.select_sensor_mode(self._raw_modes, output_size, bit_depth)
        camera_config["sensor"] = {"bit_depth": _sim.SENSOR_BIT_DEPTH, "output_size": mode["size"]}
        main_size = tuple(camera_config["main"]["size"])
        self._sensor_mode = mode
        self._isp_min_crop = _sim.isp_min_crop_size(_platform_name(), main_size)
        self._isp_crop = _sim.default_isp_crop(mode, main_size)
        lens_min, lens_max = self._af.lens_limits
        base = _sim.CONTROL_INFO
        self.camera_ctrl_info = _sim.camera_ctrl_info({
            "FrameDurationLimits": _sim.ControlInfo(
                _sim.mode_min_frame_duration_us(mode), base["FrameDurationLimits"].max, base["FrameDurationLimits"].default),
            "ExposureTime": _sim.ControlInfo(
                _sim.mode_min_exposure_us(mode), base["ExposureTime"].max, base["ExposureTime"].default),
            "ScalerCrop": _sim.ControlInfo(
                _sim.scale_isp_crop((0, 0) + tuple(self._isp_min_crop), mode),
                tuple(mode["crop"]),
                _sim.scale_isp_crop(self._isp_crop, mode)),
            "LensPosition": _sim.ControlInfo(lens_min, lens_max, self._af.default_position),
        })
        self.camera_properties_["ScalerCropMaximum"] = tuple(mode["crop"])

    def configure(self, camera_config=None) -> None:
        """Configure the camera system with the given configuration. Defaults to the 'preview' configuration."""
        self._record("configure", (camera_config,))
        self.last_configuration = copy.deepcopy(camera_config)
        self.configure_("preview" if camera_config is None else camera_config)

    def camera_configuration(self) -> dict[str, Any]:
        return self.camera_config

    @property
    def sensor_modes(self) -> list[dict[str, Any]]:
        """The available sensor modes, as upstream builds them: for each raw mode it configures the
        camera (a preview configuration with that raw size; so the camera must be stopped, and is left
        configured for the last mode) and reads ``fps`` (from ``FrameDurationLimits``), ``crop_limits``
        (``ScalerCrop`` maximum, native px) and ``exposure_limits`` (``ExposureTime``, µs). Cached.
        ``format`` is a plain string here (upstream: a ``SensorFormat``). With the IMX708's sensor HDR
        on (when this camera was opened) there is one mode, 2304x1296 at 30 fps."""
        if self.sensor_modes_:
            return self.sensor_modes_
        self.sensor_modes_ = []
        for raw_mode in self._raw_modes:
            cam_mode = {"format": _sim.SENSOR_FORMAT, "unpacked": _sim.SENSOR_FORMAT.split("_")[0], "bit_depth": _sim.SENSOR_BIT_DEPTH}
            cam_mode["size"] = raw_mode["size"]
            temp_config = self.create_preview_configuration(raw={"format": _sim.SENSOR_FORMAT, "size": cam_mode["size"]})
            self.configure(temp_config)
            frameDurationMin = self.camera_controls["FrameDurationLimits"][0]
            cam_mode["fps"] = round(1e6 / frameDurationMin, 2)
            _, scaler_crop_max, _ = self.camera_controls["ScalerCrop"]
            cam_mode["crop_limits"] = scaler_crop_max
            cam_mode["exposure_limits"] = tuple(i for i in self.camera_controls["ExposureTime"] if i != 0)
            self.sensor_modes_.append(cam_mode)
        return self.sensor_modes_

    def stream_configuration(self, name="main") -> dict[str, Any]:
        return self.camera_config[name]

    # --- start / stop / close -------------------------------------------------------------------
    def start_(self):
        if not self.camera_config:
            raise RuntimeError("Camera has not been configured")
        if self.started:
            return
        self._apply_controls(self.controls.make_dict())
        self.controls = Controls(self)
        self._af.start()
        self.started = True
        _sim.set_streaming(self.camera_idx, True)

    def start(self, config=None, show_preview=False) -> None:
        """Start the camera system running."""
        self._record("start", (), {"config": config, "show_preview": show_preview})
        if not self.camera_config and config is None:
            config = "preview"
        if config is not None:
            self.configure(config)
        if not self.camera_config:
            raise RuntimeError("Camera has not been configured")
        if show_preview is not None and not self._event_loop_running:
            self.start_preview(show_preview)
        self.start_()

    def cancel_all_and_flush(self) -> None:
        self._record("cancel_all_and_flush")
        with self.lock:
            for job in self._job_list:
                job.cancel()
            self._job_list = []

    def stop_(self, request=None):
        if self.started:
            self.stop_count += 1
            self.started = False
            _sim.set_streaming(self.camera_idx, False)
            with self.lock:
                while len(self.completed_requests) > 0:
                    self.completed_requests.pop(0).release()
                self.completed_requests = []
            with self.request_lock:
                self._buffers_in_use = 0
        return (True, None)

    def stop(self) -> None:
        """Stop the camera."""
        self._record("stop")
        if not self.started:
            return
        self.stop_()

    def close(self) -> None:
        """Close camera"""
        self._record("close")
        if self._preview or self._event_loop_running:
            self.stop_preview()
        if not self.is_open:
            return
        self.stop()
        with Picamera2._class_lock:
            Picamera2._held_cameras.discard(self.camera_idx)
        self._cm.cleanup(self.camera_idx)
        self.is_open = False
        self.streams = []
        self.stream_map = {}
        self.camera = None
        self.camera_ctrl_info = {}
        self.camera_config = {}

    # --- controls ---------------------------------------------------------------------------------
    def set_controls(self, controls) -> None:
        """Set camera controls. These will be delivered with the next request that gets submitted."""
        self._record("set_controls", (controls,))
        self.last_set_controls = dict(controls) if isinstance(controls, dict) else controls
        self.controls.set_controls(controls)

    # --- jobs -------------------------------------------------------------------------------------
    def dispatch_functions(self, functions, wait, signal_function=None, immediate=False):
        if wait is None:
            wait = signal_function is None
        timeout = wait
        if timeout is True:
            timeout = None
        with self.lock:
            only_job = not self._job_list
            job = Job(functions, signal_function)
            self._job_list.append(job)
            if only_job and (self.completed_requests or immediate):
                self._loop_wake.set()
        if wait:
            return job.get_result(timeout=Picamera2.max_block if timeout is None else timeout)
        return job

    def wait_for_timestamp_(self, timestamp_ns):
        if timestamp_ns is None:
            return (True, None)
        while self.completed_requests:
            if self.completed_requests[0].request.metadata["SensorTimestamp"] >= timestamp_ns:
                return (True, None)
            self.completed_requests.pop(0).release()
        return (False, None)

    def capture_request_(self):
        if not self.completed_requests:
            return (False, None)
        return (True, self.completed_requests.pop(0))

    def capture_request(self, wait=None, signal_function=None, flush=None):
        """Fetch the next completed request from the camera system (the caller must release it)."""
        self._record("capture_request", (), {"wait": wait, "signal_function": signal_function, "flush": flush})
        if flush is True:
            flush = time.monotonic_ns()
        functions = [partial(self.wait_for_timestamp_, flush), self.capture_request_]
        return self.dispatch_functions(functions, wait, signal_function)

    @contextlib.contextmanager
    def captured_request(self, wait=None, flush=None):
        """Capture a completed request using the context manager which guarantees its release."""
        self._record("captured_request", (), {"wait": wait, "flush": flush})
        request = self.capture_request(wait=wait, flush=flush)
        try:
            yield request
        finally:
            request.release()

    def capture_metadata_(self):
        if not self.completed_requests:
            return (False, None)
        request = self.completed_requests.pop(0)
        result = request.get_metadata()
        request.release()
        return (True, result)

    def capture_metadata(self, wait=None, signal_function=None):
        """Fetch the metadata from the next camera frame."""
        self._record("capture_metadata", (), {"wait": wait, "signal_function": signal_function})
        return self.dispatch_functions([self.capture_metadata_], wait, signal_function)

    def capture_array_(self, name):
        if not self.completed_requests:
            return (False, None)
        request = self.completed_requests.pop(0)
        result = request.make_array(name)
        request.release()
        return (True, result)

    def capture_array(self, name="main", wait=None, signal_function=None):
        self._record("capture_array", (name,), {"wait": wait, "signal_function": signal_function})
        return self.dispatch_functions([partial(self.capture_array_, name)], wait, signal_function)

    # --- encoders ---------------------------------------------------------------------------------
    def start_encoder(self, encoder=None, output=None, pts=None, quality=None, name=None) -> None:
        """Start encoder"""
        self._record("start_encoder", (encoder, output), {"pts": pts, "quality": quality, "name": name})
        _encoder = None
        if encoder is not None:
            _encoder = encoder
        else:
            if len(self._encoders) > 1:
                raise RuntimeError("Multiple possible encoders, need to pass encoder")
            elif len(self._encoders) == 1:
                _encoder = list(self._encoders)[0]
        if _encoder is None:
            raise RuntimeError("No encoder specified")
        if output is not None:
            if isinstance(output, str):
                output = FileOutput(output, pts=pts)
            _encoder.output = output
        streams = self.camera_configuration()
        if not streams:
            raise RuntimeError("Camera has not been configured")
        if name is None:
            name = self.encode_stream_name
        if streams.get(name, None) is None:
            raise RuntimeError(f"Encode stream {name} was not defined")
        _encoder.name = name
        _encoder.width, _encoder.height = streams[name]["size"]
        _encoder.format = streams[name]["format"]
        _encoder.stride = streams[name]["stride"]
        min_frame_duration = self.camera_ctrl_info["FrameDurationLimits"][1].min
        min_frame_duration = max(min_frame_duration, 33333)
        try:
            if _encoder.framerate is None:
                _encoder.framerate = 1000000 / min_frame_duration
        except AttributeError:
            pass
        _encoder.start(quality=quality)
        with self.lock:
            self._encoders.add(_encoder)

    def stop_encoder(self, encoders=None) -> None:
        """Stops the encoder"""
        self._record("stop_encoder", (encoders,))
        remove = []
        if encoders is None:
            for encoder in self._encoders:
                encoder.stop()
                remove += [encoder]
        elif isinstance(encoders, Encoder):
            encoders.stop()
            remove += [encoders]
        elif isinstance(encoders, (list, set)):
            for encoder in encoders:
                encoder.stop()
                remove += [encoder]
        with self.lock:
            for encoder in remove:
                self._encoders.remove(encoder)

    @property
    def encoders(self):
        return self._encoders

    def start_recording(self, encoder, output, pts=None, config=None, quality=None, name=None) -> None:
        """Start recording a video using the given encoder and to the given output."""
        self._record("start_recording", (encoder, output), {"pts": pts, "config": config, "quality": quality, "name": name})
        if not self.camera_config and config is None:
            config = "video"
        if config is not None:
            self.configure(config)
        self.start_encoder(encoder, output, pts=pts, quality=quality, name=name)
        self.start()

    def stop_recording(self) -> None:
        """Stop recording a video. The encode and output are stopped and closed."""
        self._record("stop_recording")
        self.stop()
        self.stop_encoder()
