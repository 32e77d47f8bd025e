"""Software image adjustments: :class:`ImageAdjust` (libcamera's Brightness, Contrast, Saturation,
Sharpness and ScalerCrop emulated in software, plus lens correction) and the per-setting tables
:class:`~pi_camera_service.imaging.processor.FrameProcessor` derives from it (LUTs, the ROI in px).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .lens import LensModel

__all__ = ["ImageAdjust", "chroma_lut", "luma_lut", "roi_pixels", "validate_roi"]


# --------------------------------------------------------------------------------------------------
# Adjustments
# --------------------------------------------------------------------------------------------------


def _check_range(name: str, value: float, lo: float, hi: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{name} must be in [{lo:g}, {hi:g}], got {value!r}")
    return value


def validate_roi(roi: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Check a normalised ``(x, y, w, h)`` rectangle and return it as floats.

    Raises:
        ValueError: not 4 finite numbers, ``x < 0`` or ``y < 0``, ``w <= 0`` or ``h <= 0``, or the
            rectangle goes past the frame (``x + w > 1`` or ``y + h > 1``).
    """
    try:
        x, y, w, h = (float(v) for v in roi)
    except (TypeError, ValueError):
        raise ValueError(f"roi must be 4 numbers (x, y, w, h) in 0..1, got {roi!r}") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f"roi must be finite, got {roi!r}")
    if x < 0 or y < 0:
        raise ValueError(f"roi x and y must be >= 0, got x={x:g}, y={y:g}")
    if w <= 0 or h <= 0:
        raise ValueError(f"roi width and height must be > 0, got w={w:g}, h={h:g}")
    eps = 1e-9
    if x + w > 1 + eps or y + h > 1 + eps:
        raise ValueError(f"roi must lie inside the frame (x + w <= 1 and y + h <= 1), got {roi!r}")
    return x, y, w, h


@dataclass(frozen=True)
class ImageAdjust:
    """Software equivalents of libcamera's image controls, plus lens correction.

    Ranges and neutral values are those libcamera's Raspberry Pi IPA declares
    (``src/ipa/rpi/common/ipa_base.cpp``: Brightness -1..1 default 0, Contrast 0..32 default 1,
    Saturation 0..32 default 1, Sharpness 0..16 default 1).

    Attributes:
        brightness: -1..1; added to luma as ``255 * brightness`` levels (0: unchanged).
        contrast: 0..32; luma scaled about mid-grey 128 (1: unchanged, 0: flat grey).
        saturation: 0..32; chroma scaled about 128 (1: unchanged, 0: greyscale).
        sharpness: 0..16; 1 leaves the frame unchanged, above 1 sharpens (unsharp mask, amount
            ``0.25 * (sharpness - 1)``), below 1 blends towards a 3x3 Gaussian blur (0: fully blurred).
        roi: normalised ``(x, y, w, h)`` of the region kept and scaled back to the full frame size
            (digital zoom, like libcamera's ScalerCrop); ``(0, 0, 1, 1)`` is the whole frame.
        lens: undistort with this lens model when set (ideally at the frame size, see
            :meth:`LensModel.scaled` and :meth:`LensModel.cropped`; :class:`FrameProcessor` rescales it
            if not, assuming a centred crop to the frame's aspect ratio).

    Raises:
        ValueError: a value out of its range or not finite, or an invalid roi (:func:`validate_roi`).
    """

    brightness: float = 0.0
    contrast: float = 1.0
    saturation: float = 1.0
    sharpness: float = 1.0
    roi: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    lens: LensModel | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "brightness", _check_range("brightness", self.brightness, -1.0, 1.0))
        object.__setattr__(self, "contrast", _check_range("contrast", self.contrast, 0.0, 32.0))
        object.__setattr__(self, "saturation", _check_range("saturation", self.saturation, 0.0, 32.0))
        object.__setattr__(self, "sharpness", _check_range("sharpness", self.sharpness, 0.0, 16.0))
        object.__setattr__(self, "roi", validate_roi(self.roi))
        if self.lens is not None and not isinstance(self.lens, LensModel):
            raise ValueError(f"lens must be a LensModel or None, got {type(self.lens).__name__}")

    @property
    def is_identity(self) -> bool:
        """True when :meth:`FrameProcessor.process` would leave every pixel unchanged (it then returns its input)."""
        return (
            self.brightness == 0.0
            and self.contrast == 1.0
            and self.saturation == 1.0
            and self.sharpness == 1.0
            and self.roi == (0.0, 0.0, 1.0, 1.0)
            and self.lens is None
        )


def luma_lut(brightness: float, contrast: float) -> np.ndarray:
    """The ``(256,)`` uint8 luma LUT of libcamera's manual brightness/contrast, on 8-bit values.

    libcamera's Raspberry Pi contrast algorithm (``src/ipa/rpi/controller/rpi/contrast.cpp``,
    ``applyManualContrast``) maps its 16-bit gamma curve output with
    ``y' = clamp((y - 32768) * contrast + 32768 + brightness, 0, 65535)`` where the IPA passes
    ``Brightness * 65536`` (``src/ipa/rpi/common/ipa_base.cpp``). On 8-bit luma this is
    ``Y' = clip(round((Y - 128) * contrast + 128 + 255 * brightness), 0, 255)``.

    Note: the ISP applies that curve to R, G and B (before the RGB->YUV matrix), so at contrast != 1 it
    also scales chroma by ``contrast``; here it is applied to Y only (colours keep their saturation).
    """
    y = (np.arange(256, dtype=np.float64) - 128.0) * contrast + 128.0 + 255.0 * brightness
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def chroma_lut(saturation: float) -> np.ndarray:
    """The ``(256,)`` uint8 LUT scaling U or V about 128: ``clip(round((U - 128) * saturation + 128), 0, 255)``.

    The same operation as libcamera's Raspberry Pi CCM saturation (``src/ipa/rpi/controller/rpi/ccm.cpp``,
    ``applySaturation``: RGB->YCbCr, multiply Cb and Cr by the saturation, back to RGB), done directly
    on the frame's chroma planes.
    """
    u = (np.arange(256, dtype=np.float64) - 128.0) * saturation + 128.0
    return np.clip(np.rint(u), 0, 255).astype(np.uint8)


_IDENTITY_LUT = np.arange(256, dtype=np.uint8)


def roi_pixels(roi: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """The luma-pixel crop ``(x0, y0, w, h)`` of a normalised roi, every value even (so U/V crops are exact halves).

    Each edge is rounded to the nearest even pixel; the crop is at least 2 x 2 px.

    Raises:
        ValueError: invalid roi (:func:`validate_roi`).
    """
    x, y, w, h = validate_roi(roi)

    def edges(start: float, length: float, size: int) -> tuple[int, int]:
        a = 2 * round(start * size / 2)
        b = 2 * round((start + length) * size / 2)
        a = min(max(a, 0), size - 2)
        b = min(max(b, a + 2), size)
        return a, b

    x0, x1 = edges(x, w, width)
    y0, y1 = edges(y, h, height)
    return x0, y0, x1 - x0, y1 - y0

