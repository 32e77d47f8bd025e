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

The package: :mod:`.lens` (the lens model and remap geometry), :mod:`.adjust` (the settings and
their LUTs), :mod:`.processor` (:class:`FrameProcessor`, :func:`mean_luma`). Every name stays
importable from ``pi_camera_service.imaging`` as before.
"""

from __future__ import annotations

import cv2  # noqa: F401 - ``pi_camera_service.imaging.cv2``: the module the processor calls (tests patch it)

from .adjust import ImageAdjust, chroma_lut, luma_lut, roi_pixels, validate_roi
from .lens import LensModel
from .processor import SHARPEN_GAIN, FrameProcessor, mean_luma

__all__ = ["FrameProcessor", "ImageAdjust", "LensModel", "mean_luma"]
__all__ += ["SHARPEN_GAIN", "chroma_lut", "luma_lut", "roi_pixels", "validate_roi"]
