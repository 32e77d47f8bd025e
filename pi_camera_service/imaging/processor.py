"""The frame processor: one :class:`~pi_camera_service.imaging.adjust.ImageAdjust` applied to I420 frames
of one size, with everything that depends on the setting computed once (see the package docstring for
the order of operations), and :func:`mean_luma` for day/night switching.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from ..frames import i420_planes, i420_shape
from .adjust import _IDENTITY_LUT, ImageAdjust, chroma_lut, luma_lut, roi_pixels
from .lens import _check_monotonic, _chroma_matrix, _fold_roi, _remap_maps, _undistorted_camera_matrix

__all__ = ["FrameProcessor", "mean_luma"]

#: Unsharp-mask amount per unit of Sharpness above 1: Sharpness 16 gives amount 3.75 (strong, as
#: the top of libcamera's 0..16 range is meant to be), 2 gives 0.25 (a mild boost).
SHARPEN_GAIN = 0.25
#: Kernel of the blur used by the sharpness adjustment (3x3 Gaussian, sigma 0.8: OpenCV's fixed-point
#: uint8 fast path, 2.3x cheaper than 5x5 in bench/bench_imaging.py's conditions).
_BLUR_KSIZE = (3, 3)


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
