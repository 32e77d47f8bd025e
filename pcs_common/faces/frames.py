"""Frame value types shared by every camera source, the streamer, the snapshotter, the face detectors
and the central server's enrolment.

Frames are planar YUV 4:2:0 (I420) numpy arrays of shape ``(H * 3 // 2, W)`` uint8, the layout
PyAV's ``VideoFrame.to_ndarray()`` returns for ``yuv420p`` and Picamera2's ``make_array`` returns for a
``"YUV420"`` stream once its row padding (stride > W) is stripped: the first ``H`` rows are the Y (luma) plane, then the U and V planes, each
``(H/2, W/2)`` stored row-major in ``H/4`` rows of ``W``. The first rows being luma means the Haar
detector needs no colour conversion (REFERENCE.md, Picamera2).

A frame array is never modified after it is published, so readers may hold it without copying.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np


def i420_shape(width: int, height: int) -> tuple[int, int]:
    """Shape ``(H * 3 // 2, W)`` of an I420 array for a ``width`` x ``height`` px image."""
    return height * 3 // 2, width


def i420_planes(i420: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y ``(H, W)``, U ``(H/2, W/2)`` and V ``(H/2, W/2)`` planes of an I420 array."""
    y = i420[:height]
    chroma = i420[height:].reshape(2, height // 2, width // 2)
    return y, chroma[0], chroma[1]


def resize_i420(i420: np.ndarray, width: int, height: int, out_w: int, out_h: int) -> np.ndarray:
    """Scale an I420 image to ``out_w`` x ``out_h`` px (area interpolation), returning a new I420 array.

    Each plane is scaled on its own, so no colour conversion is done (cheap on a Pi Zero 2 W).
    """
    if (out_w, out_h) == (width, height):
        return i420
    y, u, v = i420_planes(i420, width, height)
    out = np.empty(i420_shape(out_w, out_h), dtype=np.uint8)
    oy, ou, ov = i420_planes(out, out_w, out_h)
    cv2.resize(y, (out_w, out_h), dst=oy, interpolation=cv2.INTER_AREA)
    cv2.resize(u, (out_w // 2, out_h // 2), dst=ou, interpolation=cv2.INTER_AREA)
    cv2.resize(v, (out_w // 2, out_h // 2), dst=ov, interpolation=cv2.INTER_AREA)
    return out


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of the main stream.

    Attributes:
        i420: ``(H * 3 // 2, W)`` uint8 planar YUV 4:2:0.
        width, height: size in px.
        index: capture counter, starting at 0 when the source opens.
        timestamp: wall-clock capture time, s since the epoch (``time.time()``).
        monotonic: ``time.monotonic()`` at capture, s.
    """

    i420: np.ndarray
    width: int
    height: int
    index: int
    timestamp: float = field(default_factory=time.time)
    monotonic: float = field(default_factory=time.monotonic)

    @property
    def gray(self) -> np.ndarray:
        """The Y plane, ``(H, W)`` uint8 (a view, no copy)."""
        return self.i420[: self.height]

    def bgr(self) -> np.ndarray:
        """The frame as ``(H, W, 3)`` uint8 BGR (a new array)."""
        return cv2.cvtColor(self.i420, cv2.COLOR_YUV2BGR_I420)

    def rgb(self) -> np.ndarray:
        """The frame as ``(H, W, 3)`` uint8 RGB (a new array), the layout dlib expects."""
        return cv2.cvtColor(self.i420, cv2.COLOR_YUV2RGB_I420)

    def resized(self, width: int, height: int) -> "Frame":
        """A copy scaled to ``width`` x ``height`` px with the same index and timestamps."""
        return Frame(
            resize_i420(self.i420, self.width, self.height, width, height),
            width,
            height,
            self.index,
            self.timestamp,
            self.monotonic,
        )


@dataclass(frozen=True, slots=True)
class AnalysisFrame:
    """A frame of the analysis (lores) stream plus the size of the main stream it stands for.

    Detector boxes are found in lores px and reported in main-stream px: multiply x by
    ``main_width / frame.width`` and y by ``main_height / frame.height`` (:meth:`scale`).
    """

    frame: Frame
    main_width: int
    main_height: int

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy): factors from lores px to main-stream px."""
        return self.main_width / self.frame.width, self.main_height / self.frame.height


__all__ = ["AnalysisFrame", "Frame", "i420_planes", "i420_shape", "resize_i420"]
