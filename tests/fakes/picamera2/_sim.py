"""Fake-only: the simulated sensor behind the fake Picamera2 (no upstream counterpart).

* :data:`CAMERA_INFO`: what ``Picamera2.global_camera_info()`` lists for one Camera Module 3 Wide
  (keys ``Model``, ``Location``, ``Rotation``, ``Id``, ``Num``, as upstream builds them).
* :data:`CONTROL_INFO`: ``(min, max, default)`` of the controls an IMX708 advertises, the shape of
  upstream's ``Picamera2.camera_controls``.
* :func:`yuv420_frame`: a moving synthetic picture laid out like a libcamera YUV420 buffer as
  upstream's ``Helpers._make_array_shared`` reshapes it: ``(h * 3 // 2, stride)`` uint8, Y rows
  first, then the U and V planes with stride ``stride // 2``.
* :func:`frame_metadata`: a metadata dict with the keys libcamera's Raspberry Pi pipeline reports.
"""

from __future__ import annotations

import math
from collections import namedtuple
from functools import lru_cache

import numpy as np

ControlInfo = namedtuple("ControlInfo", "min max default")


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


def camera_ctrl_info() -> dict:
    """``{name: (ControlId, ControlInfo)}``, the shape of upstream's ``Picamera2.camera_ctrl_info``."""
    return {name: (ControlId(name), info) for name, info in CONTROL_INFO.items()}


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


def yuv420_frame(width: int, height: int, stride: int, n: int) -> np.ndarray:
    """Frame ``n`` of a moving pattern as a ``(height * 3 // 2, stride)`` uint8 YUV420 buffer.

    A diagonal gradient scrolls by 3 levels per frame and a white square moves across it; padding
    bytes (columns ``width..stride`` of Y, ``width/2..stride/2`` of U and V) are 0.
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
    return buf


def frame_metadata(n: int, timestamp_ns: int, frame_duration_us: int, applied: dict, scaler_crop) -> dict:
    """Metadata of frame ``n`` as ``CompletedRequest.get_metadata()`` returns it (libcamera names).

    Auto exposure/gain/white balance drift slowly; values fixed through ``applied`` controls
    (``ExposureTime``, ``AnalogueGain``, ``ColourGains``, ``LensPosition``) are reported back.
    """
    wobble = math.sin(n / 25.0)
    exposure = int(applied.get("ExposureTime") or 0) or int(min(frame_duration_us - 500, 12000 + 3000 * wobble))
    again = float(applied.get("AnalogueGain") or 0) or round(2.0 + 0.5 * wobble, 4)
    gains = tuple(applied["ColourGains"]) if applied.get("AwbEnable") is False and applied.get("ColourGains") else (
        round(1.85 + 0.05 * wobble, 4),
        round(1.62 - 0.05 * wobble, 4),
    )
    return {
        "SensorTimestamp": timestamp_ns,
        "ScalerCrop": tuple(scaler_crop),
        "DigitalGain": round(1.0 + 0.01 * abs(wobble), 4),
        "ColourGains": gains,
        "SensorBlackLevels": (4096, 4096, 4096, 4096),
        "AeLocked": abs(wobble) < 0.5,
        "Lux": round(350.0 + 40.0 * wobble, 3),
        "FrameDuration": frame_duration_us,
        "ColourCorrectionMatrix": (1.72, -0.53, -0.19, -0.38, 1.72, -0.34, -0.06, -0.62, 1.68),
        "AnalogueGain": again,
        "ColourTemperature": int(4800 + 200 * wobble),
        "ExposureTime": exposure,
        "FocusFoM": 1100 + n % 50,
        "AfState": 0,
        "AfPauseState": 0,
        "LensPosition": float(applied.get("LensPosition", 1.0)),
        "SensorTemperature": 41.0,
    }
