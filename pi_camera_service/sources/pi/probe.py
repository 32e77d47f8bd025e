"""What a Raspberry Pi camera is, read without (or right after) opening it.

picamera2 facts (0.3.36 source): ``Picamera2.global_camera_info()`` is a staticmethod returning one
dict per camera (``Model``: libcamera's sensor name, ``imx708_wide_noir``...), and ``Picamera2(n)``
indexes that list (``IndexError`` for a missing camera). ``camera_properties`` holds
``PixelArraySize`` and ``ScalerCropMaximum``; ``camera_controls`` ``{name: (min, max, default)}``;
``picamera2.platform.get_platform()`` tells VC4 (Pi Zero 2 W .. Pi 4) from PiSP (Pi 5).
"""

from __future__ import annotations

import logging
from typing import Any

from pi_camera_service.config import Settings
from pi_camera_service.sources.base import SourceCapabilities

log = logging.getLogger(__name__)


def picamera2_available(camera_num: int = 0) -> bool:
    """True if ``picamera2`` imports and ``Picamera2.global_camera_info()`` lists camera ``camera_num``.

    Never raises: a missing picamera2/libcamera (any machine that is not a Pi, or a venv created
    without ``--system-site-packages``) or a failing camera manager gives False. The camera is not
    opened, so this is safe while another process owns it.

    Relies on: ``Picamera2(n)`` opens ``global_camera_info()[n]``, so camera ``n`` exists when the
    list has more than ``n`` entries.
    """
    try:
        from picamera2 import Picamera2
    except Exception as exc:  # noqa: BLE001 - ImportError, or libcamera failing at import
        log.debug("picamera2 is not importable: %s", exc)
        return False
    try:
        cameras = Picamera2.global_camera_info()
    except Exception as exc:  # noqa: BLE001
        log.debug("Picamera2.global_camera_info() failed: %s", exc)
        return False
    return 0 <= camera_num < len(cameras)


def sensor_model(camera_num: int) -> str | None:
    """libcamera's model name of camera ``camera_num`` (``imx708_wide_noir``...) from
    ``Picamera2.global_camera_info()`` (no camera opened).

    Raises:
        IndexError: no such camera.
    """
    from picamera2 import Picamera2

    return Picamera2.global_camera_info()[camera_num].get("Model")


def has_sensor_hdr(model: str | None) -> bool:
    """True for an IMX708 (Camera Module 3, any variant), the sensor with its own HDR mode."""
    return bool(model) and model.startswith("imx708")


def sensor_output_size(model: str | None, width: int, height: int, framerate: float) -> tuple[int, int] | None:
    """The sensor mode to ask for: the IMX708's 2304x1296 2x2-binned mode (full field of view, up to
    56 fps) whenever a ``width`` x ``height`` px main stream at ``framerate`` fits in it, else None
    (libcamera's choice).

    Without it picamera2 picks the mode closest to the main size, which for 1280x720 or 640x480 is
    the 1536x864 mode: a centre crop of the sensor that throws away a third of a wide module's
    field of view (its ``ScalerCropMaximum`` is (768, 432, 3072, 1728)). The HDR mode is also
    2304x1296.
    """
    if not has_sensor_hdr(model):
        return None
    if width > 2304 or height > 1296 or framerate > 56.0:
        return None
    return (2304, 1296)


def read_capabilities(picam2: Any, settings: Settings, model: str | None, tuning: str | None) -> SourceCapabilities:
    """:class:`SourceCapabilities` of a configured ``picam2``: model (``camera_properties["Model"]``,
    else ``model``), NoIR (``_noir`` in the model or ``CAMERA_NOIR``), platform, ``tuning`` (the name
    shown), advertised controls, pixel array, ``ScalerCropMaximum`` (the pixel array when absent) and
    HDR abilities."""
    from picamera2.platform import Platform, get_platform

    props = picam2.camera_properties
    controls = dict(picam2.camera_controls)
    model = props.get("Model") or model
    platform = "pisp" if get_platform() == Platform.PISP else "vc4"
    crop_max = props.get("ScalerCropMaximum")
    size = props.get("PixelArraySize")
    return SourceCapabilities(
        backend="picamera2",
        model=model,
        noir=settings.noir == "true" or (settings.noir == "auto" and "_noir" in (model or "")),
        platform=platform,
        tuning=tuning,
        libcamera_controls=controls,
        pixel_array_size=tuple(size) if size else None,
        scaler_crop_maximum=tuple(crop_max) if crop_max else ((0, 0, *size) if size else None),
        sensor_hdr=has_sensor_hdr(model),
        isp_hdr=platform == "pisp" and "HdrMode" in controls,
        level_unit="lux",
    )
