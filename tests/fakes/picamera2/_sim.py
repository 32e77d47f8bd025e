"""Fake-only: the simulated sensor behind the fake Picamera2 (no upstream counterpart).

* :data:`CAMERA_INFO`: what ``Picamera2.global_camera_info()`` lists for one Camera Module 3 Wide
  (keys ``Model``, ``Location``, ``Rotation``, ``Id``, ``Num``, as upstream builds them).
* :data:`CONTROL_INFO`: ``(min, max, default)`` of the controls an IMX708 advertises, the shape of
  upstream's ``Picamera2.camera_controls``.
* :func:`yuv420_frame`: a moving synthetic picture laid out like a libcamera YUV420 buffer as
  upstream's ``Helpers._make_array_shared`` reshapes it: ``(h * 3 // 2, stride)`` uint8, Y rows
  first, then the U and V planes with stride ``stride // 2``.
* :func:`frame_metadata`: a metadata dict with the keys libcamera's Raspberry Pi pipeline reports.
* :data:`SENSOR_MODES` / :data:`SENSOR_MODES_HDR`: the IMX708 kernel driver's mode tables, the
  sensor's own HDR switch (:func:`sensor_hdr`, :func:`set_sensor_hdr`) and its "streaming" state.
* :func:`apply_scaler_crop`: how libcamera's Raspberry Pi pipeline adjusts a requested ScalerCrop.
* :class:`AfSim`: the Raspberry Pi autofocus algorithm's observable AfMode/AfTrigger/AfState behaviour.
* :func:`builtin_tuning`: small stand-ins for the IMX708 family's libcamera tuning files.

Everything here simulates hardware or libcamera internals; sources are named where a value or rule
was taken from them.
"""

from __future__ import annotations

import copy
import errno
import json
import math
import os
from collections import namedtuple
from functools import lru_cache

import numpy as np

ControlInfo = namedtuple("ControlInfo", "min max default")

#: Fake only: when True, ``LibavH264Encoder`` (Pi 5's ``H264Encoder``) really encodes with libx264
#: through PyAV and ``PyavOutput`` really muxes with PyAV, both as upstream does, so a real RTSP
#: server (``ffmpeg -rtsp_flags listen``) receives decodable H.264. Reset by re-importing the fake.
REAL_AV = False


class ControlId:
    """Stands in for a ``libcamera.ControlId``: only ``name`` is used."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"ControlId({self.name})"


CAMERA_INFO = [
    {
        "Model": "imx708_wide",
        "Location": 2,
        "Rotation": 180,
        "Id": "/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a",
        "Num": 0,
    }
]

SENSOR_FORMAT = "SRGGB10_CSI2P"
SENSOR_SIZE = (4608, 2592)

CONTROL_INFO = {
    "AeEnable": ControlInfo(False, True, None),
    "AeMeteringMode": ControlInfo(0, 3, 0),
    "AeExposureMode": ControlInfo(0, 3, 0),
    "AeConstraintMode": ControlInfo(0, 3, 0),
    "AeFlickerMode": ControlInfo(0, 1, 0),
    "AeFlickerPeriod": ControlInfo(100, 1000000, None),
    "ExposureTime": ControlInfo(26, 220417486, 20000),
    "ExposureValue": ControlInfo(-8.0, 8.0, 0.0),
    "AnalogueGain": ControlInfo(1.1228070259094238, 16.0, 1.0),
    "AwbEnable": ControlInfo(False, True, None),
    "AwbMode": ControlInfo(0, 7, 0),
    "ColourGains": ControlInfo(0.0, 32.0, None),
    "Brightness": ControlInfo(-1.0, 1.0, 0.0),
    "Contrast": ControlInfo(0.0, 32.0, 1.0),
    "Saturation": ControlInfo(0.0, 32.0, 1.0),
    "Sharpness": ControlInfo(0.0, 16.0, 1.0),
    "NoiseReductionMode": ControlInfo(0, 4, 0),
    # min: the 1536x864 120 fps video mode of an IMX708; the fake runs whatever rate is asked for
    "FrameDurationLimits": ControlInfo(8333, 120000000, 33333),
    "ScalerCrop": ControlInfo((0, 0, 64, 64), (0, 0, 4608, 2592), (576, 0, 3456, 2592)),
    "AfMode": ControlInfo(0, 2, 0),
    "AfTrigger": ControlInfo(0, 1, 0),
    "AfRange": ControlInfo(0, 2, 0),
    "AfSpeed": ControlInfo(0, 1, 0),
    "AfMetering": ControlInfo(0, 1, 0),
    "AfWindows": ControlInfo((0, 0, 0, 0), (65535, 65535, 65535, 65535), (0, 0, 0, 0)),
    "AfPause": ControlInfo(0, 2, 0),
    "LensPosition": ControlInfo(0.0, 32.0, 1.0),
    "HdrMode": ControlInfo(0, 4, 0),
}


def camera_ctrl_info(overrides: dict | None = None) -> dict:
    """``{name: (ControlId, ControlInfo)}``, the shape of upstream's ``Picamera2.camera_ctrl_info``;
    ``overrides`` replaces some ``ControlInfo`` (libcamera updates limits when a mode is configured)."""
    infos = dict(CONTROL_INFO, **(overrides or {}))
    return {name: (ControlId(name), info) for name, info in infos.items()}


def yuv420_stride(width: int, align: int) -> int:
    """Bytes per Y row for a YUV420 stream ``width`` px wide when each plane's rows are padded to
    ``align`` bytes (the U and V rows are half as long, so Y rows are padded to ``2 * align``)."""
    step = 2 * align
    return (width + step - 1) // step * step


@lru_cache(maxsize=16)
def _base_pattern(width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width]
    luma = ((xx * 255) // max(width - 1, 1) // 2 + (yy * 255) // max(height - 1, 1) // 2).astype(np.uint8)
    cy, cx = np.mgrid[0 : height // 2, 0 : width // 2]
    u = (96 + (cx * 64) // max(width // 2 - 1, 1)).astype(np.uint8)
    v = (160 - (cy * 64) // max(height // 2 - 1, 1)).astype(np.uint8)
    return luma, u, v


def yuv420_frame(width: int, height: int, stride: int, n: int, brightness: float = 0.0, saturation: float = 1.0) -> np.ndarray:
    """Frame ``n`` of a moving pattern as a ``(height * 3 // 2, stride)`` uint8 YUV420 buffer.

    A diagonal gradient scrolls by 3 levels per frame and a white square moves across it; padding
    bytes (columns ``width..stride`` of Y, ``width/2..stride/2`` of U and V) are 0.

    ``brightness`` (the ``Brightness`` control, -1..1) adds ``round(255 * brightness)`` levels to the
    Y plane, clipped to 0..255: libcamera's rpi ``contrast.cpp`` adds ``brightness * 65536`` to its
    16-bit gamma curve output (clipped to 0..65535). ``saturation`` (the ``Saturation`` control,
    0..32) scales U and V about 128, clipped, so 0 gives a grey picture (U = V = 128), as rpi
    ``ccm.cpp`` scales the colour-difference part of the matrix. Both are simulated.
    """
    luma, u, v = _base_pattern(width, height)
    buf = np.zeros((height * 3 // 2, stride), dtype=np.uint8)
    y_plane = buf[:height, :width]
    np.add(luma, np.uint8((3 * n) % 256), out=y_plane, casting="unsafe")
    side = max(4, min(width, height) // 6)
    x0 = (8 * n) % max(width - side, 1)
    y0 = (height - side) // 2
    y_plane[y0 : y0 + side, x0 : x0 + side] = 235
    chroma = buf.reshape(height * 3, stride // 2)
    chroma[2 * height : 2 * height + height // 2, : width // 2] = u
    chroma[2 * height + height // 2 :, : width // 2] = v
    if brightness:
        offset = round(255 * float(brightness))
        shifted = y_plane.astype(np.int16)
        shifted += offset
        np.clip(shifted, 0, 255, out=shifted)
        y_plane[...] = shifted
    if saturation != 1.0:
        for plane in (chroma[2 * height : 2 * height + height // 2, : width // 2], chroma[2 * height + height // 2 :, : width // 2]):
            scaled = (plane.astype(np.float32) - 128.0) * float(saturation) + 128.0
            np.clip(np.rint(scaled), 0, 255, out=scaled)
            plane[...] = scaled.astype(np.uint8)
    return buf


def frame_metadata(
    n: int,
    timestamp_ns: int,
    frame_duration_us: int,
    applied: dict,
    scaler_crop,
    *,
    af: dict | None = None,
    hdr: dict | None = None,
    lux: float | None = None,
    sensor_temperature: float | None = None,
) -> dict:
    """Metadata of frame ``n`` as ``CompletedRequest.get_metadata()`` returns it (libcamera names).

    Auto exposure/gain/white balance drift slowly; values fixed through ``applied`` controls
    (``ExposureTime``, ``AnalogueGain``, ``ColourGains``, ``LensPosition``) are reported back.
    ``scaler_crop`` is the crop the pipeline applied (x, y, w, h sensor px). ``af`` (from
    :meth:`AfSim.step`) supplies ``AfState``/``AfPauseState``/``LensPosition`` (dioptres)/``FocusFoM``;
    ``hdr`` supplies ``HdrMode``/``HdrChannel`` (only present while an ISP HDR mode is on, as the
    rpi IPA reports them); ``lux`` and ``sensor_temperature`` (deg C) override the simulated values.
    """
    wobble = math.sin(n / 25.0)
    exposure = int(applied.get("ExposureTime") or 0) or int(min(frame_duration_us - 500, 12000 + 3000 * wobble))
    again = float(applied.get("AnalogueGain") or 0) or round(2.0 + 0.5 * wobble, 4)
    gains = tuple(applied["ColourGains"]) if applied.get("AwbEnable") is False and applied.get("ColourGains") else (
        round(1.85 + 0.05 * wobble, 4),
        round(1.62 - 0.05 * wobble, 4),
    )
    metadata = {
        "SensorTimestamp": timestamp_ns,
        "ScalerCrop": tuple(scaler_crop),
        "DigitalGain": round(1.0 + 0.01 * abs(wobble), 4),
        "ColourGains": gains,
        "SensorBlackLevels": (4096, 4096, 4096, 4096),
        "AeLocked": abs(wobble) < 0.5,
        "Lux": round(350.0 + 40.0 * wobble, 3) if lux is None else float(lux),
        "FrameDuration": frame_duration_us,
        "ColourCorrectionMatrix": (1.72, -0.53, -0.19, -0.38, 1.72, -0.34, -0.06, -0.62, 1.68),
        "AnalogueGain": again,
        "ColourTemperature": int(4800 + 200 * wobble),
        "ExposureTime": exposure,
        "FocusFoM": 1100 + n % 50,
        "AfState": 0,
        "AfPauseState": 0,
        "LensPosition": float(applied.get("LensPosition", 1.0)),
        "SensorTemperature": 41.0 if sensor_temperature is None else float(sensor_temperature),
    }
    if af is not None:
        metadata.update(af)
    if hdr:
        metadata.update(hdr)
    return metadata


# --- sensor models, properties and modes (IMX708, simulated) ---------------------------------------

#: Model names libcamera reports for the Camera Module 3 family. The imx708 kernel driver names its
#: subdev ``"imx708" + "_wide" + "_noir"`` from the module ID (raspberrypi/linux
#: drivers/media/i2c/imx708.c, ``imx708_identify_module``) and libcamera's ``Model`` property is that
#: name; all four are driven by the one ``imx708`` kernel module.
IMX708_MODELS = ("imx708", "imx708_wide", "imx708_noir", "imx708_wide_noir")
DEFAULT_MODEL = CAMERA_INFO[0]["Model"]

#: ``UnitCellSize`` property, nm (libcamera src/libcamera/sensor/camera_sensor_properties.cpp, "imx708").
UNIT_CELL_SIZE = (1400, 1400)
#: ``PixelArrayActiveAreas`` property: the driver's V4L2_SEL_TGT_CROP_DEFAULT rectangle
#: (IMX708_PIXEL_ARRAY_LEFT/TOP = 16/24, 4608x2592), which libcamera's CameraSensorLegacy reports as is.
PIXEL_ARRAY_ACTIVE_AREAS = [(16, 24, 4608, 2592)]

#: The imx708 driver's mode tables (``supported_modes_10bit_no_hdr`` / ``supported_modes_10bit_hdr``),
#: in the ascending order libcamera lists sizes. ``crop`` is the analogue crop relative to the
#: active area (what becomes ``ScalerCropMaximum``); frame timing gives the fastest frame duration:
#: ``line_length * (height + vblank_min) / pixel_rate``.
SENSOR_MODES = (
    {"size": (1536, 864), "crop": (768, 432, 3072, 1728), "line_length": 0x1460, "vblank_min": 40, "pixel_rate": 566_400_000},
    {"size": (2304, 1296), "crop": (0, 0, 4608, 2592), "line_length": 0x1E90, "vblank_min": 40, "pixel_rate": 585_600_000},
    {"size": (4608, 2592), "crop": (0, 0, 4608, 2592), "line_length": 0x3D20, "vblank_min": 58, "pixel_rate": 595_200_000},
)
#: With the sensor's HDR control on, the driver offers only this mode (2304x1296, full field of view,
#: 30.0 fps at most).
SENSOR_MODES_HDR = (
    {"size": (2304, 1296), "crop": (0, 0, 4608, 2592), "line_length": 0x1460, "vblank_min": 3673, "pixel_rate": 777_600_000},
)
SENSOR_BIT_DEPTH = 10


def sensor_modes_for(hdr: bool) -> tuple[dict, ...]:
    """The simulated IMX708's raw modes with the sensor HDR control ``hdr`` (see :data:`SENSOR_MODES`)."""
    return SENSOR_MODES_HDR if hdr else SENSOR_MODES


def mode_min_frame_duration_us(mode: dict) -> int:
    """Fastest frame duration of a sensor mode, µs (libcamera's ``minFrameDuration``, truncated)."""
    height = mode["size"][1]
    return int(mode["line_length"] * (height + mode["vblank_min"]) * 1_000_000 // mode["pixel_rate"])


def mode_min_exposure_us(mode: dict) -> int:
    """Shortest exposure of a sensor mode, µs: one line (the driver's V4L2 exposure minimum is 1 line)."""
    return int(mode["line_length"] * 1_000_000 // mode["pixel_rate"])


def select_sensor_mode(modes, output_size, bit_depth: int = SENSOR_BIT_DEPTH) -> dict:
    """The mode upstream ``Picamera2._make_libcamera_config`` picks for ``output_size`` (its
    ``score_mode``: larger modes cost ``(actual - desired) / 4`` per dimension, smaller ones
    ``(desired - actual) * 2``, plus ``1500 *`` the aspect-ratio score and ``500 *`` the bit-depth
    difference; the lowest score wins, the first on ties)."""

    def score_format(desired, actual):
        score = desired - actual
        return -score / 4 if score < 0 else score * 2

    def score(mode):
        w, h = mode["size"]
        s = score_format(output_size[0], w) + score_format(output_size[1], h)
        s += 1500 * score_format(output_size[0] / output_size[1], w / h)
        s += 500 * abs(bit_depth - SENSOR_BIT_DEPTH)
        return s

    return min(modes, key=score)


# --- sensor state: HDR control and streaming (what the imx708 subdev node sees) -------------------

_sensor_hdr: dict[int, bool] = {}
_streaming: set[int] = set()


def sensor_hdr(camera_num: int) -> bool:
    """Whether the simulated sensor of camera ``camera_num`` has its HDR control
    (V4L2_CID_WIDE_DYNAMIC_RANGE) on. Off at power-up, as the imx708 driver's default."""
    return _sensor_hdr.get(camera_num, False)


def set_sensor_hdr(camera_num: int, enable: bool) -> None:
    """Set the simulated sensor's HDR control, as VIDIOC_S_CTRL on its subdev would.

    While the sensor streams, the imx708 driver has the control grabbed (``__v4l2_ctrl_grab(hdr_mode,
    enable)`` in ``imx708_set_stream``), so the ioctl fails with EBUSY: this raises
    ``OSError(EBUSY)`` and leaves the flag unchanged."""
    if camera_num in _streaming:
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
    _sensor_hdr[camera_num] = bool(enable)


def set_streaming(camera_num: int, streaming: bool) -> None:
    """Record whether camera ``camera_num``'s sensor is streaming (the fake Picamera2 calls this from
    ``start``/``stop``)."""
    if streaming:
        _streaming.add(camera_num)
    else:
        _streaming.discard(camera_num)


def is_streaming(camera_num: int) -> bool:
    """Whether camera ``camera_num``'s sensor is streaming (a ``Picamera2`` for it is started)."""
    return camera_num in _streaming


class SubdevNode:
    """Stands in for the ``/dev/v4l-subdevN`` file upstream's ``IMX708`` opens (``open(..., 'rb+',
    buffering=0)``): only ``name``, ``closed`` and ``close()``; ``camera_num`` is fake only."""

    def __init__(self, index: int, camera_num: int) -> None:
        self.name = f"/dev/v4l-subdev{index}"
        self.camera_num = camera_num
        self.closed = False

    def close(self) -> None:
        """Close the node (a file's ``close``)."""
        self.closed = True

    def fileno(self) -> int:
        """A file's ``fileno``: -1 here (there is no descriptor); ValueError once closed."""
        if self.closed:
            raise ValueError("I/O operation on closed file")
        return -1

    def __repr__(self) -> str:
        return f"<SubdevNode {self.name}{' closed' if self.closed else ''}>"


def open_imx708_subdev(camera_id: str, camera_info: list[dict]) -> SubdevNode | None:
    """The subdev node of the sensor with libcamera Id ``camera_id`` if the ``imx708`` kernel
    driver drives it (any of :data:`IMX708_MODELS`), else None (no such node: upstream scans
    ``/sys/class/video4linux/v4l-subdev*/device/driver/module`` for ``imx708``)."""
    for info in camera_info:
        if info["Id"] == camera_id and str(info["Model"]).startswith("imx708"):
            return SubdevNode(2 + info["Num"], info["Num"])
    return None


# --- ScalerCrop (libcamera src/libcamera/pipeline/rpi/common/pipeline_base.cpp, simulated ISP) -----

ISP_MIN_CROP_VC4 = (64, 64)  # bcm2835-isp MIN_DIM (drivers/staging/vc04_services/bcm2835-isp)


def _tdiv(a: int, b: int) -> int:
    """C++ integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _scale_rect(rect, num, den):
    x, y, w, h = rect
    return (_tdiv(x * num[0], den[0]), _tdiv(y * num[1], den[1]), w * num[0] // den[0], h * num[1] // den[1])


def _expanded_to_aspect_ratio(size, ratio):
    w, h = size
    r1, r2 = w * ratio[1], ratio[0] * h
    return (r2 // ratio[1], h) if r1 < r2 else (w, r1 // ratio[0])


def _bounded_to_aspect_ratio(size, ratio):
    w, h = size
    r1, r2 = w * ratio[1], ratio[0] * h
    return (r2 // ratio[1], h) if r1 > r2 else (w, r1 // ratio[0])


def _centered_to(size, center):
    return (center[0] - size[0] // 2, center[1] - size[1] // 2, size[0], size[1])


def _enclosed_in(rect, boundary):
    x, y, w, h = rect
    bx, by, bw, bh = boundary
    # Rectangle::enclosedIn: boundedTo(Rectangle{x, y, boundary.size()}), then clamp the position
    w, h = max(min(w, bw), 0), max(min(h, bh), 0)
    x = min(max(x, bx), bx + bw - w)
    y = min(max(y, by), by + bh - h)
    return (x, y, w, h)


def isp_min_crop_size(platform_name: str, output_size) -> tuple[int, int]:
    """Smallest ISP input crop, in sensor-mode px: on PiSP ``max(32, (out - 1) // 16 + 2)`` per
    dimension (pisp.cpp ``platformConfigureStreams``); on VC4 what the bcm2835-isp driver allows
    (its MIN_DIM, 64)."""
    if platform_name == "pisp":
        return (max(32, (output_size[0] - 1) // 16 + 2), max(32, (output_size[1] - 1) // 16 + 2))
    return ISP_MIN_CROP_VC4


def scale_isp_crop(isp_crop, mode: dict):
    """``CameraData::scaleIspCrop``: an ISP (sensor-mode px) rectangle in native sensor px."""
    ax, ay, aw, ah = mode["crop"]
    x, y, w, h = _scale_rect(isp_crop, (aw, ah), mode["size"])
    return (x + ax, y + ay, w, h)


def default_isp_crop(mode: dict, output_size):
    """The ISP crop the pipeline starts with: the largest rectangle of the output's aspect ratio
    centred in the sensor mode (vc4.cpp/pisp.cpp ``boundedToAspectRatio`` + ``centeredTo``)."""
    size = _bounded_to_aspect_ratio(mode["size"], output_size)
    return _centered_to(size, (mode["size"][0] // 2, mode["size"][1] // 2))


def apply_scaler_crop(requested, mode: dict, isp_min_size, current_isp_crop=None):
    """``CameraData::applyScalerCrop`` for one ISP output: returns the ISP crop (sensor-mode px) the
    pipeline applies for a requested ``ScalerCrop`` (x, y, w, h native px).

    A zero width or height becomes (0, 0, 1, 1); the crop is moved into sensor-mode px, grown to at
    least the ISP minimum (itself grown to the request's aspect ratio) about its centre, then moved
    (not shrunk further) to lie inside the mode. Report it with :func:`scale_isp_crop`."""
    x, y, w, h = (int(v) for v in requested)
    if not w or not h:
        x, y, w, h = 0, 0, 1, 1
    ax, ay = mode["crop"][0], mode["crop"][1]
    isp = _scale_rect((x - ax, y - ay, w, h), mode["size"], mode["crop"][2:])
    min_size = _expanded_to_aspect_ratio(isp_min_size, (w, h))
    size = (max(isp[2], min_size[0]), max(isp[3], min_size[1]))
    center = (isp[0] + isp[2] // 2, isp[1] + isp[3] // 2)
    return _enclosed_in(_centered_to(size, center), (0, 0) + tuple(mode["size"]))


# --- autofocus (libcamera src/ipa/rpi/controller/rpi/af.cpp, simulated) -----------------------------

AF_MODE_MANUAL, AF_MODE_AUTO, AF_MODE_CONTINUOUS = 0, 1, 2
AF_TRIGGER_START, AF_TRIGGER_CANCEL = 0, 1
AF_PAUSE_IMMEDIATE, AF_PAUSE_DEFERRED, AF_PAUSE_RESUME = 0, 1, 2
AF_STATE_IDLE, AF_STATE_SCANNING, AF_STATE_FOCUSED, AF_STATE_FAILED = 0, 1, 2, 3
AF_PAUSE_STATE_RUNNING, AF_PAUSE_STATE_PAUSING, AF_PAUSE_STATE_PAUSED = 0, 1, 2
AF_MAX_WINDOWS = 10  # af.cpp MaxWindows


class AfSim:
    """The Raspberry Pi AF algorithm as an application sees it (control_ids_core.yaml AfMode/AfTrigger/
    AfPause/AfState semantics, rpi af.cpp + ipa_base.cpp), over a simulated scene.

    * Manual (the initial mode): AfState Idle; ``LensPosition`` (dioptres, clamped to the tuning
      "map" domain) moves the lens by at most ``max_slew`` dioptres per frame; ignored in other modes.
    * Auto: Idle until ``AfTrigger`` Start; Scanning for :attr:`scan_frames` frames, then Focused
      (Failed when the subject lies outside the AfRange); ``AfTrigger`` Cancel returns to Idle. A
      trigger is one-shot: :meth:`apply` acts on the controls of one request only.
    * Continuous: scans at once, then Focused; re-scans when ``AfMetering`` changes or (metering
      Windows) ``AfWindows`` change (the real algorithm re-weights its PDAF/contrast statistics to the
      new windows and drives the lens there; the fake models that as a new scan). ``AfPause``
      Immediate/Deferred/Resume as documented.
    * The simulated subject is at :attr:`subject_dioptres`; ``FocusFoM`` peaks (2000) with the lens
      there and falls off away from it.
    """

    subject_dioptres = 1.6  # ~0.6 m
    scan_frames_by_speed = (8, 5)  # AfSpeed Normal, Fast

    def __init__(self, tuning_af: dict | None = None) -> None:
        af = tuning_af or {}
        ranges = af.get("ranges", {})
        normal = ranges.get("normal", {})
        n_min, n_max, n_def = normal.get("min", 0.0), normal.get("max", 12.0), normal.get("default", 1.0)
        macro = {"min": n_min, "max": n_max, "default": n_def} | ranges.get("macro", {})
        full = {"min": min(n_min, macro["min"]), "max": max(n_max, macro["max"]), "default": n_def} | ranges.get("full", {})
        self.ranges = [(n_min, n_max), (macro["min"], macro["max"]), (full["min"], full["max"])]
        self.default_position = float(n_def)
        lens_map = af.get("map", [0.0, 445, 15.0, 925])
        self.lens_limits = (float(lens_map[0]), float(lens_map[-2]))
        speeds = af.get("speeds", {})
        slew_normal = speeds.get("normal", {}).get("max_slew", 2.0)
        self.max_slew = (slew_normal, speeds.get("fast", {}).get("max_slew", slew_normal))
        self.mode = AF_MODE_MANUAL
        self.range = 0
        self.speed = 0
        self.metering = 0
        self.windows: list[tuple[int, int, int, int]] = []
        self.paused = False
        self.report_state = AF_STATE_IDLE
        self.scanning = 0  # frames left in the current scan
        self.lens: float | None = None  # None until the first start (no lens position known)
        self.target: float | None = None
        self._scan_from = self._scan_to = 0.0
        self._scan_len = 1

    # --- libcamera controls --------------------------------------------------------------------
    def apply(self, controls: dict) -> None:
        """Act on the AF controls of one request (AfMode first, as ipa_base.cpp does)."""
        if "AfMode" in controls:
            self._set_mode(int(controls["AfMode"]))
        if "AfRange" in controls and 0 <= int(controls["AfRange"]) <= 2:
            self.range = int(controls["AfRange"])
        if "AfSpeed" in controls:
            self.speed = 1 if int(controls["AfSpeed"]) == 1 else 0
        rescan = False
        if "AfMetering" in controls:
            metering = 1 if int(controls["AfMetering"]) == 1 else 0
            rescan |= metering != self.metering
            self.metering = metering
        if "AfWindows" in controls:
            windows = [tuple(int(v) for v in w) for w in list(controls["AfWindows"])[:AF_MAX_WINDOWS]]
            rescan |= self.metering == 1 and windows != self.windows
            self.windows = windows
        if rescan and self.mode == AF_MODE_CONTINUOUS and not self.paused:
            self._start_scan()
        if "AfPause" in controls and self.mode == AF_MODE_CONTINUOUS:
            self._pause(int(controls["AfPause"]))
        if "AfTrigger" in controls and self.mode == AF_MODE_AUTO:
            if int(controls["AfTrigger"]) == AF_TRIGGER_START:
                if not self.scanning:
                    self._start_scan()
            else:
                self._go_idle()
        if "LensPosition" in controls and self.mode == AF_MODE_MANUAL:
            lo, hi = self.lens_limits
            self.target = min(max(float(controls["LensPosition"]), lo), hi)

    def start(self) -> None:
        """Camera start: with no lens position yet, drive the lens to the default (ipa_base.cpp start)."""
        if self.lens is None:
            self.lens = self.target if self.target is not None else self.default_position
            if self.target is None:
                self.target = self.lens

    def _set_mode(self, mode: int) -> None:
        if mode not in (AF_MODE_MANUAL, AF_MODE_AUTO, AF_MODE_CONTINUOUS) or mode == self.mode:
            return
        self.mode = mode
        self.paused = False
        if mode == AF_MODE_CONTINUOUS:
            self._start_scan()
        else:
            self._go_idle()
            self.target = self.lens

    def _pause(self, pause: int) -> None:
        if pause == AF_PAUSE_RESUME and self.paused:
            self.paused = False
            if not self.scanning:
                self._start_scan()
        elif pause in (AF_PAUSE_IMMEDIATE, AF_PAUSE_DEFERRED) and not self.paused:
            self.paused = True
            if pause == AF_PAUSE_IMMEDIATE:
                self.scanning = 0  # stops where it is; AfState keeps what it reported

    def _go_idle(self) -> None:
        self.scanning = 0
        self.report_state = AF_STATE_IDLE

    def _start_scan(self) -> None:
        lo, hi = self.ranges[self.range]
        self._scan_from = self.lens if self.lens is not None else self.default_position
        self._scan_to = min(max(self.subject_dioptres, lo), hi)
        self._scan_len = self.scan_frames_by_speed[self.speed]
        self.scanning = self._scan_len
        self.report_state = AF_STATE_SCANNING

    # --- per frame -----------------------------------------------------------------------------
    def step(self) -> dict:
        """Advance one frame; returns the frame's ``AfState``, ``AfPauseState``, ``LensPosition``
        (dioptres) and ``FocusFoM`` metadata."""
        if self.lens is None:
            self.start()
        if self.scanning:
            self.scanning -= 1
            done = self._scan_len - self.scanning
            self.lens = self._scan_from + (self._scan_to - self._scan_from) * done / self._scan_len
            if not self.scanning:
                self.lens = self._scan_to
                lo, hi = self.ranges[self.range]
                self.report_state = AF_STATE_FOCUSED if lo <= self.subject_dioptres <= hi else AF_STATE_FAILED
            self.target = self.lens
        elif self.mode == AF_MODE_MANUAL and self.target is not None and self.target != self.lens:
            slew = self.max_slew[self.speed]
            self.lens = min(max(self.target, self.lens - slew), self.lens + slew)
        if self.paused:
            pause_state = AF_PAUSE_STATE_PAUSING if self.scanning else AF_PAUSE_STATE_PAUSED
        else:
            pause_state = AF_PAUSE_STATE_RUNNING
        if self.mode == AF_MODE_MANUAL:
            state = AF_STATE_IDLE
        elif self.mode == AF_MODE_AUTO and self.scanning:
            state = AF_STATE_SCANNING
        else:
            state = self.report_state
        miss = self.lens - self.subject_dioptres
        fom = round(250 + 1750 * math.exp(-(miss * miss) / 0.18))
        return {"AfState": state, "AfPauseState": pause_state, "LensPosition": float(self.lens), "FocusFoM": fom}


# --- ISP HDR (HdrMode; libcamera src/ipa/rpi/common/ipa_base.cpp + rpi hdr.cpp, simulated) ----------

HDR_MODE_OFF, HDR_MODE_MULTI_EXPOSURE_UNMERGED, HDR_MODE_MULTI_EXPOSURE, HDR_MODE_SINGLE_EXPOSURE, HDR_MODE_NIGHT = range(5)
HDR_CHANNEL_NONE, HDR_CHANNEL_SHORT, HDR_CHANNEL_MEDIUM, HDR_CHANNEL_LONG = range(4)
#: HdrMode values the IMX708 tuning files configure per platform ("Off" is always implicit in hdr.cpp).
#: vc4 tuning files define only MultiExposureUnmerged; others log "No such HDR mode" and are ignored.
HDR_MODES_BY_PLATFORM = {
    "vc4": (HDR_MODE_OFF, HDR_MODE_MULTI_EXPOSURE_UNMERGED),
    "pisp": (HDR_MODE_OFF, HDR_MODE_MULTI_EXPOSURE_UNMERGED, HDR_MODE_MULTI_EXPOSURE, HDR_MODE_SINGLE_EXPOSURE, HDR_MODE_NIGHT),
}


def hdr_metadata(mode: int, n: int) -> dict:
    """``HdrMode``/``HdrChannel`` metadata for frame ``n`` in ISP HDR mode ``mode``: nothing when Off;
    the two multi-exposure modes alternate Short/Long channels (tuning cadence [1, 2] = short, long);
    SingleExposure and Night report the Short channel."""
    if mode == HDR_MODE_OFF:
        return {}
    if mode in (HDR_MODE_MULTI_EXPOSURE_UNMERGED, HDR_MODE_MULTI_EXPOSURE):
        channel = HDR_CHANNEL_SHORT if n % 2 == 0 else HDR_CHANNEL_LONG
    else:
        channel = HDR_CHANNEL_SHORT
    return {"HdrMode": mode, "HdrChannel": channel}


# --- tuning files (libcamera src/ipa/rpi/{vc4,pisp}/data/imx708*.json, abridged) --------------------

TUNING_TARGETS = {"vc4": "bcm2835", "pisp": "pisp"}

_IMX708_LUX = {
    ("imx708", "bcm2835"): (10672, 1.12, 977, 8627),
    ("imx708_wide", "bcm2835"): (9989, 1.23, 980, 8345),
    ("imx708", "pisp"): (20716, 1.12, 810, 13994),
    ("imx708_wide", "pisp"): (41985, 1.12, 810, 13859),
}


def builtin_tuning(name: str, target: str) -> dict | None:
    """Fake only: a small stand-in for the real tuning file ``name`` (e.g. ``"imx708_noir.json"``)
    for platform ``target`` (``"bcm2835"`` or ``"pisp"``), or None if the table has no such name.

    Shaped like a real version-2.0 file and abridged to a few algorithms whose values are copied
    from libcamera's files: ``rpi.black_level``, ``rpi.lux``, ``rpi.awb`` (only ``bayes``: 0 on the NoIR
    variants, whose tuning disables the Bayesian AWB), ``rpi.contrast``, ``rpi.af`` (ranges, speeds,
    lens map) and ``rpi.hdr`` (the mode names each platform's file defines). A fresh copy each call.
    """
    stem = name[:-5] if name.endswith(".json") else None
    if stem not in IMX708_MODELS or target not in TUNING_TARGETS.values():
        return None
    wide = "_wide" in stem
    noir = stem.endswith("_noir")
    shutter, gain, lux, y = _IMX708_LUX[("imx708_wide" if wide else "imx708", target)]
    af = {
        "ranges": {
            "normal": {"min": 0.0, "max": 12.0, "default": 1.0},
            "macro": {"min": 4.0, "max": 32.0, "default": 6.0} if wide else {"min": 3.0, "max": 15.0, "default": 4.0},
        },
        "speeds": {
            "normal": {"step_coarse": 2.0, "step_fine": 0.5, "max_slew": 3.0, "step_frames": 5},
            "fast": {"step_coarse": 2.5, "step_fine": 0.0, "max_slew": 4.0, "step_frames": 4},
        },
        "map": [0.0, 420, 35.0, 920] if wide else [0.0, 445, 15.0, 925],
    }
    hdr_modes = ["MultiExposureUnmerged"] if target == "bcm2835" else ["Off", "MultiExposureUnmerged", "SingleExposure", "MultiExposure", "Night"]
    return copy.deepcopy(
        {
            "version": 2.0,
            "target": target,
            "algorithms": [
                {"rpi.black_level": {"black_level": 4096}},
                {"rpi.lux": {"reference_shutter_speed": shutter, "reference_gain": gain, "reference_aperture": 1.0,
                             "reference_lux": lux, "reference_Y": y}},
                {"rpi.awb": {"bayes": 0 if noir else 1}},
                {"rpi.contrast": {"ce_enable": 1}},
                {"rpi.af": af},
                {"rpi.hdr": {mode: {} for mode in hdr_modes}},
            ],
        }
    )


def find_algorithm(tuning: dict | None, name: str) -> dict | None:
    """The parameters of algorithm ``name`` in a version 1 or 2 tuning dict, or None."""
    if not tuning:
        return None
    if tuning.get("version", 1) == 1:
        return tuning.get(name)
    return next((algo[name] for algo in tuning.get("algorithms", []) if name in algo), None)


def read_tuning_file(path: str, target: str) -> tuple[dict | None, str | None]:
    """What the rpi IPA does with the tuning file at ``path`` when libcamera enumerates cameras:
    ``(tuning, None)`` on success, ``(None, reason)`` when the camera would fail to register.

    Mirrors ``Controller::read`` (file must open and parse; version < 2.0 is accepted with a
    warning; 2.x needs an "algorithms" list; >= 3.0 is rejected; "target" defaults to "bcm2835")
    and the platform's ``platformInit`` (the target must be "bcm2835" on VC4, "pisp" on PiSP)."""
    try:
        with open(path, encoding="utf-8") as fp:
            tuning = json.load(fp)
    except OSError:
        return None, f"Failed to open tuning file '{path}'"
    except ValueError:
        return None, f"Failed to load tuning data file {path}"
    if not isinstance(tuning, dict):
        return None, f"Failed to load tuning data file {path}"
    version = float(tuning.get("version", 1.0))
    if version >= 3.0:
        return None, f"Unrecognised version {version} for the tuning file {path}"
    if version >= 2.0 and "algorithms" not in tuning:
        return None, f'Tuning file {path} does not have an "algorithms" list!'
    found = tuning.get("target", "bcm2835")
    if found != target:
        return None, f'Tuning data file target returned "{found}", expected "{target}"'
    return tuning, None
