"""Lens correction: the OpenCV camera model of a lens (:class:`LensModel`) and the remap geometry
:class:`~pi_camera_service.imaging.processor.FrameProcessor` builds from it once per setting.

The model and its conventions are OpenCV's (``cv::initUndistortRectifyMap``, ``cv::projectPoints``);
the maps undistort the luma plane and, with the camera matrix halved, the two chroma planes of an I420
frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["LensModel"]

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

