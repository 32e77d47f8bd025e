"""Software image adjustments and lens correction on I420 frames.

Camera sources without an ISP (video files, USB/RTSP cameras) cannot apply libcamera's Brightness,
Contrast, Saturation, Sharpness and ScalerCrop controls, so :class:`FrameProcessor` emulates them on
the decoded ``(H * 3 // 2, W)`` uint8 I420 frames (layout in :mod:`pi_camera_service.frames`).
Lens correction (undistortion with an OpenCV camera model, :class:`LensModel`) is applied the same
way to snapshots and analysed frames on every source.

Everything is done per plane, without colour conversion, with the per-setting work (LUTs, remap
maps) done once in :class:`FrameProcessor`'s constructor, because the target is a Raspberry Pi
Zero 2 W (4 slow Cortex-A53 cores, 512 MB RAM). Per frame, :meth:`FrameProcessor.process` allocates
only its output array (plus a scratch plane for sharpening when two threads share a processor).

Order of operations in :meth:`FrameProcessor.process` (each skipped when it is a no-op):

1. geometry: ROI crop + scale back to full size (digital zoom) and/or lens undistortion, as ONE
   ``cv2.resize`` or ``cv2.remap`` per plane;
2. brightness/contrast: 256-entry LUT on Y;
3. saturation: 256-entry LUT on U and V (one ``cv2.LUT`` call: the two planes are contiguous);
4. sharpness: unsharp mask / blur on Y (3x3 Gaussian + ``cv2.addWeighted``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from .frames import i420_planes, i420_shape

__all__ = ["FrameProcessor", "ImageAdjust", "LensModel", "mean_luma"]

#: Unsharp-mask amount per unit of Sharpness above 1: Sharpness 16 gives amount 3.75 (strong, as
#: the top of libcamera's 0..16 range is meant to be), 2 gives 0.25 (a mild boost).
SHARPEN_GAIN = 0.25
#: Kernel of the blur used by the sharpness adjustment (3x3 Gaussian, sigma 0.8: OpenCV's fixed-point
#: uint8 fast path, 2.3x cheaper than 5x5 in bench/bench_imaging.py's conditions).
_BLUR_KSIZE = (3, 3)
#: OpenCV accepts these numbers of distortion coefficients (``cv::undistort`` documentation).
_DISTORTION_LENGTHS = (4, 5, 8, 12, 14)
#: Tolerance, px, on the remap maps staying inside the source frame (float rounding).
_MAP_TOLERANCE = 1e-2


# --------------------------------------------------------------------------------------------------
# Lens model
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LensModel:
    """OpenCV pinhole + radial/tangential distortion model of a lens, calibrated at ``reference_size``.

    The model is OpenCV's (``cv::initUndistortRectifyMap`` / ``cv::projectPoints``): a point at
    normalised image coordinates ``(x, y)`` (= X/Z, Y/Z) is distorted to
    ``x' = x (1 + k1 r^2 + k2 r^4 + k3 r^6) + 2 p1 x y + p2 (r^2 + 2 x^2)`` (and likewise for y) and lands
    on pixel ``(fx x' + cx, fy y' + cy)``, pixel centres at integer coordinates (OpenCV convention).
    A calibration from ``cv2.calibrateCamera`` (camera matrix + distortion vector) fits directly.

    Attributes:
        fx, fy: focal lengths, px at ``reference_size``.
        cx, cy: principal point, px at ``reference_size`` (``((w - 1) / 2, (h - 1) / 2)`` is the centre).
        distortion: OpenCV distortion coefficients ``(k1, k2, p1, p2[, k3[, k4, k5, k6[, ...]]])``,
            4, 5, 8, 12 or 14 values (unitless).
        reference_size: ``(w, h)`` px of the images the matrix was calibrated on.

    Raises:
        ValueError: non-positive or non-finite focal lengths or size, non-finite principal point or
            coefficients, or a distortion vector of a length OpenCV does not accept.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...]
    reference_size: tuple[int, int]

    def __post_init__(self) -> None:
        for name in ("fx", "fy"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"LensModel.{name} must be a finite number > 0 px, got {value!r}")
        for name in ("cx", "cy"):
            if not math.isfinite(float(getattr(self, name))):
                raise ValueError(f"LensModel.{name} must be finite, got {getattr(self, name)!r}")
        dist = tuple(float(d) for d in self.distortion)
        if len(dist) not in _DISTORTION_LENGTHS:
            raise ValueError(
                f"LensModel.distortion must have 4, 5, 8, 12 or 14 coefficients (k1, k2, p1, p2[, k3, ...]), "
                f"got {len(dist)}"
            )
        if not all(math.isfinite(d) for d in dist):
            raise ValueError(f"LensModel.distortion must be finite, got {dist!r}")
        try:
            w, h = (int(v) for v in self.reference_size)
        except (TypeError, ValueError):
            raise ValueError(
                f"LensModel.reference_size must be (width, height) px, got {self.reference_size!r}"
            ) from None
        if w <= 0 or h <= 0:
            raise ValueError(f"LensModel.reference_size must be positive, got {(w, h)!r}")
        object.__setattr__(self, "distortion", dist)
        object.__setattr__(self, "reference_size", (w, h))

    @property
    def camera_matrix(self) -> np.ndarray:
        """The ``(3, 3)`` float64 OpenCV camera matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` (px)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int, crop_to_aspect: bool = False) -> LensModel:
        """The same lens (same field of view) for images of ``width`` x ``height`` px.

        By default the image is assumed to show the whole reference field of view, each axis scaled
        on its own (``fx * width / w_ref``, ``fy * height / h_ref``): right for a video that was
        resized to another size, even with another aspect ratio (pixels then become non-square,
        which the model represents exactly with fx != fy). The principal point is scaled about pixel
        edges (``(cx + 0.5) * s - 0.5``), so the image centre stays the centre.

        With ``crop_to_aspect=True`` the image is instead assumed to be the largest centred crop of the
        reference with the aspect ratio of ``width`` x ``height``, scaled uniformly: what the Raspberry
        Pi pipeline handler does when the output aspect ratio differs from the sensor mode's
        (libcamera ``src/libcamera/pipeline/rpi/vc4/vc4.cpp``: ``boundedToAspectRatio`` then
        ``centeredTo``), e.g. 640x480 from a 16:9 Camera Module 3.

        Raises:
            ValueError: ``width`` or ``height`` not positive.
        """
        if width <= 0 or height <= 0:
            raise ValueError(f"size must be positive, got {width}x{height}")
        ref_w, ref_h = self.reference_size
        crop_w, crop_h = float(ref_w), float(ref_h)
        if crop_to_aspect:
            if width * ref_h < height * ref_w:  # narrower than the reference: crop the sides
                crop_w = ref_h * width / height
            else:  # wider: crop top and bottom
                crop_h = ref_w * height / width
        return self.cropped(((ref_w - crop_w) / 2, (ref_h - crop_h) / 2, crop_w, crop_h), width, height)

    def cropped(self, crop: tuple[float, float, float, float], width: int, height: int) -> LensModel:
        """The lens for images showing the rectangle ``crop`` of the reference image, scaled to ``width`` x ``height``.

        Args:
            crop: ``(x, y, w, h)`` px at ``reference_size``, for instance libcamera's ``ScalerCrop``
                metadata of a Raspberry Pi camera (native sensor px) with a model calibrated on the
                full pixel array (as :meth:`camera_module_3_wide` is).
            width, height: output size, px.

        Pixel edges map to pixel edges: ``cx' = (cx - x + 0.5) * width / w - 0.5``, ``fx' = fx * width / w``.

        Raises:
            ValueError: non-positive output or crop size.
        """
        x, y, cw, ch = (float(v) for v in crop)
        if width <= 0 or height <= 0 or not (cw > 0 and ch > 0):
            raise ValueError(f"crop and size must be positive, got crop {crop!r}, size {width}x{height}")
        sx, sy = width / cw, height / ch
        return LensModel(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx - x + 0.5) * sx - 0.5,
            cy=(self.cy - y + 0.5) * sy - 0.5,
            distortion=self.distortion,
            reference_size=(int(width), int(height)),
        )

    @classmethod
    def camera_module_3_wide(cls) -> LensModel:
        """An ESTIMATE for the Raspberry Pi Camera Module 3 Wide (Sony IMX708, wide lens), at 4608x2592.

        Derived from the datasheet figures of the Raspberry Pi Camera Module 3 product brief, not from
        a calibration: focal length 2.75 mm, pixel size 1.4 um, active array 4608 x 2592 px, 120 deg
        diagonal field of view.

        * ``fx = fy = 2.75 mm / 1.4 um = 1964.3 px``; principal point at the centre, (2303.5, 1295.5).
        * Radial distortion with k1 only: a pinhole would put the 60 deg half-diagonal at
          ``1964.3 * tan(60 deg) = 3402.2 px`` but the sensor's half-diagonal is
          ``hypot(2304, 1296) = 2643.5 px``, so ``1 + k1 tan^2(60 deg) = 2643.5 / 3402.2 = 0.7770`` and
          ``k1 = (0.7770 - 1) / 3 = -0.0743`` (barrel distortion).
        * The distorted radius ``r (1 + k1 r^2)`` increases while ``r^2 < -1 / (3 k1) = 4.48``
          (r < 2.12, 64.7 deg); the sensor corner is at r = tan(60 deg) = 1.73, so the model is
          monotonic (invertible) over the whole sensor.
        * Consistency check: this model gives about 107 deg horizontal and 69 deg vertical field of
          view, where the product brief states 102 deg and 67 deg, so the real lens is not a pure k1
          lens; treat this as a rough default. A real calibration (``cv2.calibrateCamera`` on
          chessboard images) should replace it through configuration.

        Use :meth:`scaled` for the actual output size (``crop_to_aspect=True`` for 4:3 outputs of the
        16:9 sensor on a Raspberry Pi).
        """
        w, h = 4608, 2592
        f = 2.75e-3 / 1.4e-6
        half_diag = math.hypot(w / 2, h / 2)
        tan_half_fov = math.tan(math.radians(120 / 2))
        k1 = (half_diag / (f * tan_half_fov) - 1) / tan_half_fov**2
        return cls(
            fx=f, fy=f, cx=(w - 1) / 2, cy=(h - 1) / 2, distortion=(k1, 0.0, 0.0, 0.0, 0.0), reference_size=(w, h)
        )


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


# --------------------------------------------------------------------------------------------------
# Lens correction maps
# --------------------------------------------------------------------------------------------------


def _chroma_matrix(k: np.ndarray) -> np.ndarray:
    """Camera matrix of the half-size chroma planes of an image with camera matrix ``k``.

    Chroma pixel ``j`` is centred on luma coordinate ``2 j + 0.5`` (JPEG/"centre" 4:2:0 siting, which is
    also what scaling each plane with ``cv2.resize`` assumes), so ``u_c = (u - 0.5) / 2``.
    """
    kc = k.copy()
    kc[0, 0] /= 2
    kc[1, 1] /= 2
    kc[0, 2] = (k[0, 2] - 0.5) / 2
    kc[1, 2] = (k[1, 2] - 0.5) / 2
    return kc


def _undistorted_camera_matrix(k: np.ndarray, dist: np.ndarray, width: int, height: int) -> np.ndarray:
    """New camera matrix for the undistorted image: largest view with no invalid pixels, same pixel aspect.

    Like ``cv2.getOptimalNewCameraMatrix(k, dist, (w, h), alpha=0)`` (inner rectangle of the undistorted
    sensor border), except that one zoom factor is used for both axes: OpenCV scales x and y
    independently to fill the inner rectangle, which changes the pixel aspect ratio (about 10% for the
    Camera Module 3 Wide estimate at 16:9: circles would become ellipses). The output is centred on the
    inner rectangle. Border points are undistorted with ``cv2.undistortPointsIter`` to 1e-10.
    """
    n = 129
    xs = np.linspace(0, width - 1, n)
    ys = np.linspace(0, height - 1, n)
    border = np.concatenate(
        [
            np.stack([np.zeros(n), ys], 1),  # left
            np.stack([np.full(n, width - 1.0), ys], 1),  # right
            np.stack([xs, np.zeros(n)], 1),  # top
            np.stack([xs, np.full(n, height - 1.0)], 1),  # bottom
        ]
    ).reshape(-1, 1, 2)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-10)
    und = cv2.undistortPointsIter(border, k, dist, None, None, criteria).reshape(4, n, 2)
    x_min = und[0, :, 0].max()
    x_max = und[1, :, 0].min()
    y_min = und[2, :, 1].max()
    y_max = und[3, :, 1].min()
    if not (x_max > x_min and y_max > y_min):
        raise ValueError("lens model has no valid undistorted region (is the distortion model plausible?)")
    zoom = max((width - 1) / (k[0, 0] * (x_max - x_min)), (height - 1) / (k[1, 1] * (y_max - y_min)))
    fx, fy = k[0, 0] * zoom, k[1, 1] * zoom
    cx = (width - 1) / 2 - fx * (x_min + x_max) / 2
    cy = (height - 1) / 2 - fy * (y_min + y_max) / 2
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _fold_roi(k: np.ndarray, crop: tuple[int, int, int, int], width: int, height: int) -> np.ndarray:
    """Camera matrix of the image ``k`` cropped to ``crop`` (px) and scaled back to ``width`` x ``height``.

    Uses the pixel-centre convention of ``cv2.resize``: output pixel ``u`` samples input
    ``x0 + (u + 0.5) * cw / W - 0.5``, so zoom-by-remap and crop-then-resize agree.
    """
    x0, y0, cw, ch = crop
    sx, sy = width / cw, height / ch
    out = k.copy()
    out[0, 0] *= sx
    out[1, 1] *= sy
    out[0, 2] = (k[0, 2] - x0 + 0.5) * sx - 0.5
    out[1, 2] = (k[1, 2] - y0 + 0.5) * sy - 0.5
    return out


def _check_monotonic(k: np.ndarray, dist: np.ndarray, new_k: np.ndarray, width: int, height: int) -> None:
    """Raise ValueError if the distortion folds over (is not one-to-one) inside the output view.

    Rays from the principal point to each output corner are distorted (``cv2.projectPoints``); their
    distance from the principal point in the source image must increase along each ray.
    """
    t = np.linspace(0.0, 1.0, 257)[1:]
    inv = np.linalg.inv(new_k)
    for u, v in ((0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)):
        corner = inv @ np.array([u, v, 1.0])
        pts = np.stack([t * corner[0], t * corner[1], np.ones_like(t)], 1)
        img, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), k, dist)
        img = img.reshape(-1, 2)
        r = np.hypot(img[:, 0] - k[0, 2], img[:, 1] - k[1, 2])
        if not np.all(np.diff(r) > 0):
            raise ValueError(
                "lens distortion is not monotonic over the frame (the model folds back on itself): "
                "check the calibration"
            )


def _remap_maps(
    k: np.ndarray, dist: np.ndarray, new_k: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point remap maps (``CV_16SC2`` + ``CV_16UC1``, as ``cv2.convertMaps`` makes them) for one plane.

    Raises:
        ValueError: the maps sample outside the source plane (more than a rounding error).
    """
    map_x, map_y = cv2.initUndistortRectifyMap(k, dist, None, new_k, (width, height), cv2.CV_32FC1)
    lo, hi_x, hi_y = -0.5 - _MAP_TOLERANCE, width - 0.5 + _MAP_TOLERANCE, height - 0.5 + _MAP_TOLERANCE
    if map_x.min() < lo or map_x.max() > hi_x or map_y.min() < lo or map_y.max() > hi_y:
        raise ValueError("lens correction would sample outside the frame (invalid lens model for this size)")
    fixed_xy, fixed_frac = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
    fixed_xy.flags.writeable = False
    fixed_frac.flags.writeable = False
    return fixed_xy, fixed_frac


# --------------------------------------------------------------------------------------------------
# Processor
# --------------------------------------------------------------------------------------------------


class FrameProcessor:
    """Applies one :class:`ImageAdjust` to I420 frames of one size.

    Everything that depends only on the settings and the size (LUTs, remap maps, crop rectangle,
    sharpening weights) is computed in the constructor; :meth:`process` then costs a few OpenCV
    passes per plane. The processor is immutable after construction: ``process()`` may run in one
    thread while another builds a new processor to swap in (the swap of a reference is atomic), and
    concurrent ``process()`` calls on the same processor are also safe (the sharpening scratch plane
    is guarded by a non-blocking lock; a concurrent caller allocates its own).

    Args:
        width, height: frame size, px (both even and >= 2, as I420 requires).
        adjust: the settings. A ``lens`` whose ``reference_size`` differs from ``(width, height)``
            is rescaled with ``LensModel.scaled(width, height, crop_to_aspect=True)``: the largest
            centred crop of the reference with the frame's aspect ratio, which is what a Raspberry Pi
            camera delivers (and the same as the full field of view when the aspect ratios match).
            Pass a lens already at the frame size when that is wrong (a stretched video:
            ``scaled(w, h)``; a known ScalerCrop: :meth:`LensModel.cropped`).

    Attributes:
        width, height: frame size, px.
        adjust: the settings applied.
        new_camera_matrix: ``(3, 3)`` float64 camera matrix (px) of the processed image when a lens
            is set (undistorted, ROI folded in: a pinhole camera, so detections in processed frames
            can be turned into angles with it), else None.

    Raises:
        ValueError: odd or non-positive size, or a lens model that cannot be undistorted at this size
            (distortion folding over inside the view, or no valid region).
    """

    def __init__(self, width: int, height: int, adjust: ImageAdjust) -> None:
        if width < 2 or height < 2 or width % 2 or height % 2:
            raise ValueError(f"I420 frame size must be even and >= 2 px, got {width}x{height}")
        self.width, self.height, self.adjust = int(width), int(height), adjust
        self._shape = i420_shape(self.width, self.height)
        self._identity = adjust.is_identity

        # Geometry: a crop rectangle for cv2.resize, or remap maps (lens, with any ROI folded in).
        self._crop: tuple[int, int, int, int] | None = None
        self._maps_y: tuple[np.ndarray, np.ndarray] | None = None
        self._maps_c: tuple[np.ndarray, np.ndarray] | None = None
        full = (0, 0, self.width, self.height)
        crop = roi_pixels(adjust.roi, self.width, self.height)
        if adjust.lens is not None:
            lens = adjust.lens
            if lens.reference_size != (self.width, self.height):
                lens = lens.scaled(self.width, self.height, crop_to_aspect=True)
            k = lens.camera_matrix
            dist = np.array(lens.distortion, dtype=np.float64)
            new_k = _undistorted_camera_matrix(k, dist, self.width, self.height)
            _check_monotonic(k, dist, new_k, self.width, self.height)
            if crop != full:
                # ROI of the undistorted image, folded into the new camera matrix: one remap per plane.
                new_k = _fold_roi(new_k, crop, self.width, self.height)
            self._maps_y = _remap_maps(k, dist, new_k, self.width, self.height)
            self._maps_c = _remap_maps(
                _chroma_matrix(k), dist, _chroma_matrix(new_k), self.width // 2, self.height // 2
            )
            new_k.flags.writeable = False
            self.new_camera_matrix = new_k
        else:
            self.new_camera_matrix = None
            if crop != full:
                self._crop = crop

        lut_y = luma_lut(adjust.brightness, adjust.contrast)
        lut_c = chroma_lut(adjust.saturation)
        self._lut_y = None if np.array_equal(lut_y, _IDENTITY_LUT) else lut_y
        self._lut_c = None if np.array_equal(lut_c, _IDENTITY_LUT) else lut_c

        # Sharpness: out = Y + a (Y - blur(Y)) = (1 + a) Y - a blur(Y).
        s = adjust.sharpness
        self._sharpen = None if s == 1.0 else (SHARPEN_GAIN * (s - 1.0) if s > 1.0 else s - 1.0)
        self._scratch = np.empty((self.height, self.width), np.uint8) if self._sharpen is not None else None
        self._scratch_lock = threading.Lock()

    @property
    def is_identity(self) -> bool:
        """True when :meth:`process` returns its input unchanged."""
        return self._identity

    def process(self, i420: np.ndarray) -> np.ndarray:
        """Apply the adjustments to one frame.

        Args:
            i420: ``(H * 3 // 2, W)`` uint8 I420 frame of the processor's size. Never modified.

        Returns:
            A new ``(H * 3 // 2, W)`` uint8 I420 array, or ``i420`` itself when the adjustment is the
            identity (zero cost).

        Raises:
            ValueError: wrong shape or dtype.
        """
        if self._identity:
            return i420
        if i420.shape != self._shape or i420.dtype != np.uint8:
            raise ValueError(
                f"expected a {self._shape} uint8 I420 frame for {self.width}x{self.height}, "
                f"got {i420.shape} {i420.dtype}"
            )
        w, h = self.width, self.height
        out = np.empty(self._shape, np.uint8)
        y, u, v = i420_planes(i420, w, h)
        oy, ou, ov = i420_planes(out, w, h)
        chroma, out_chroma = i420[h:], out[h:]  # U then V: (H/2, W), contiguous, same LUT for both

        # 1. Geometry, straight into the output planes.
        if self._maps_y is not None:
            cv2.remap(y, *self._maps_y, cv2.INTER_LINEAR, dst=oy, borderMode=cv2.BORDER_REPLICATE)
            cv2.remap(u, *self._maps_c, cv2.INTER_LINEAR, dst=ou, borderMode=cv2.BORDER_REPLICATE)
            cv2.remap(v, *self._maps_c, cv2.INTER_LINEAR, dst=ov, borderMode=cv2.BORDER_REPLICATE)
            y_src, c_src = oy, out_chroma
        elif self._crop is not None:
            x0, y0, cw, ch = self._crop
            cv2.resize(y[y0 : y0 + ch, x0 : x0 + cw], (w, h), dst=oy, interpolation=cv2.INTER_LINEAR)
            cx0, cy0, ccw, cch = x0 // 2, y0 // 2, cw // 2, ch // 2
            cv2.resize(u[cy0 : cy0 + cch, cx0 : cx0 + ccw], (w // 2, h // 2), dst=ou, interpolation=cv2.INTER_LINEAR)
            cv2.resize(v[cy0 : cy0 + cch, cx0 : cx0 + ccw], (w // 2, h // 2), dst=ov, interpolation=cv2.INTER_LINEAR)
            y_src, c_src = oy, out_chroma
        else:
            y_src, c_src = y, chroma

        # 2. Brightness/contrast LUT on Y.
        if self._lut_y is not None:
            cv2.LUT(y_src, self._lut_y, dst=oy)
            y_src = oy

        # 3. Saturation LUT on U and V (one call over both planes).
        if self._lut_c is not None:
            cv2.LUT(c_src, self._lut_c, dst=out_chroma)
        elif c_src is not out_chroma:
            np.copyto(out_chroma, c_src)

        # 4. Sharpness on Y.
        if self._sharpen is not None:
            a = self._sharpen
            if self._scratch_lock.acquire(blocking=False):
                try:
                    blurred = cv2.GaussianBlur(y_src, _BLUR_KSIZE, 0, dst=self._scratch)
                    cv2.addWeighted(y_src, 1.0 + a, blurred, -a, 0.0, dst=oy)
                finally:
                    self._scratch_lock.release()
            else:  # another thread is using the scratch plane
                blurred = cv2.GaussianBlur(y_src, _BLUR_KSIZE, 0)
                cv2.addWeighted(y_src, 1.0 + a, blurred, -a, 0.0, dst=oy)
        elif y_src is not oy:
            np.copyto(oy, y_src)
        return out


def mean_luma(i420: np.ndarray, width: int, height: int, step: int = 8) -> float:
    """Mean of the Y plane sampled every ``step`` px in x and y, 0..255 (for day/night switching).

    Args:
        i420: ``(H * 3 // 2, W)`` uint8 I420 frame (only its first ``height`` rows, the luma, are read;
            a ``(H, W)`` luma plane works too).
        width, height: frame size, px.
        step: sampling step, px (>= 1); 8 reads 1/64 of the pixels (4800 at 640x480): a few us on
            x86-64, far below a frame copy.

    Raises:
        ValueError: ``step < 1`` or an array smaller than ``height`` x ``width``.
    """
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    if i420.ndim != 2 or i420.shape[0] < height or i420.shape[1] < width:
        raise ValueError(f"expected a ({height * 3 // 2}, {width}) I420 array, got {i420.shape}")
    off = step // 2 if step // 2 < min(width, height) else 0  # centre of each step x step cell
    # cv2.mean on the strided view (OpenCV copies the few samples out): ~2x faster than ndarray.mean
    return float(cv2.mean(i420[off:height:step, off:width:step])[0])
