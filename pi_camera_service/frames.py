"""Frame types shared by every camera source, the streamer, the snapshotter and the detector.

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


#: How a source whose aspect ratio differs from the main stream's is scaled to it (``CAMERA_SCALE_MODE``):
#: ``fit`` keeps the whole picture with black bars (letterbox / pillarbox), ``fill`` keeps the aspect
#: ratio and crops the centre, ``stretch`` scales each axis on its own (the picture is distorted).
SCALE_MODES = ("fit", "fill", "stretch")


def scale_plan(src_w: int, src_h: int, dst_w: int, dst_h: int, mode: str = "fit") -> tuple[int, int, int, int]:
    """How to scale a ``src_w`` x ``src_h`` px source into a ``dst_w`` x ``dst_h`` px frame.

    Returns ``(scaled_w, scaled_h, x, y)``: scale the source to ``scaled_w`` x ``scaled_h`` px, then put
    its top-left corner at ``(x, y)`` in the frame (px, all even, so the I420 chroma planes stay
    aligned). ``fit``: the scaled picture lies inside the frame (``x, y >= 0``, bars around it);
    ``fill``: it covers the frame (``x, y <= 0``, the overhang is cropped, centred); ``stretch`` (or equal
    aspect ratios): ``(dst_w, dst_h, 0, 0)``. See :data:`SCALE_MODES`.

    Raises:
        ValueError: unknown ``mode`` or a size that is not positive.
    """
    if mode not in SCALE_MODES:
        raise ValueError(f"scale mode {mode!r} is not one of {', '.join(SCALE_MODES)}")
    if min(src_w, src_h, dst_w, dst_h) <= 0:
        raise ValueError(f"sizes must be positive: {src_w}x{src_h} -> {dst_w}x{dst_h}")
    if mode == "stretch" or src_w * dst_h == src_h * dst_w:
        return dst_w, dst_h, 0, 0
    pick = min if mode == "fit" else max
    factor = pick(dst_w / src_w, dst_h / src_h)

    def even(value: float) -> int:
        return max(2, int(round(value / 2)) * 2)

    sw, sh = even(src_w * factor), even(src_h * factor)
    if mode == "fit":  # rounding must never make the picture larger than the frame
        sw, sh = min(sw, dst_w), min(sh, dst_h)
    else:
        sw, sh = max(sw, dst_w), max(sh, dst_h)
    x = (dst_w - sw) // 2 // 2 * 2 if mode == "fit" else -((sw - dst_w) // 2 // 2 * 2)
    y = (dst_h - sh) // 2 // 2 * 2 if mode == "fit" else -((sh - dst_h) // 2 // 2 * 2)
    return sw, sh, x, y


def place_i420(scaled: np.ndarray, plan: tuple[int, int, int, int], dst_w: int, dst_h: int) -> np.ndarray:
    """Put an I420 picture scaled as :func:`scale_plan` said into a ``dst_w`` x ``dst_h`` px I420 frame.

    Args:
        scaled: ``(sh * 3 // 2, sw)`` uint8 I420, ``(sw, sh)`` the plan's scaled size.
        plan: ``(sw, sh, x, y)`` from :func:`scale_plan`.

    Returns ``scaled`` itself when it already is the frame; otherwise a new array where the area not
    covered is black (Y 16, U = V 128: BT.601 limited range, what swscale's ``yuv420p`` uses).
    """
    sw, sh, x, y = plan
    if (sw, sh, x, y) == (dst_w, dst_h, 0, 0):
        return scaled
    out = np.empty(i420_shape(dst_w, dst_h), dtype=np.uint8)
    oy, ou, ov = i420_planes(out, dst_w, dst_h)
    if x > 0 or y > 0:
        oy.fill(16)
        ou.fill(128)
        ov.fill(128)
    sy, su, sv = i420_planes(scaled, sw, sh)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + sw, dst_w), min(y + sh, dst_h)
    oy[y0:y1, x0:x1] = sy[y0 - y : y1 - y, x0 - x : x1 - x]
    cx0, cy0, cx1, cy1, cx, cy = x0 // 2, y0 // 2, x1 // 2, y1 // 2, x // 2, y // 2
    ou[cy0:cy1, cx0:cx1] = su[cy0 - cy : cy1 - cy, cx0 - cx : cx1 - cx]
    ov[cy0:cy1, cx0:cx1] = sv[cy0 - cy : cy1 - cy, cx0 - cx : cx1 - cx]
    return out


def reformat_to_frame(av_frame: object, dst_w: int, dst_h: int, mode: str = "fit") -> np.ndarray:
    """A decoded PyAV ``VideoFrame`` as a ``dst_w`` x ``dst_h`` px I420 array, scaled per ``mode``.

    One swscale pass (``VideoFrame.reformat``) to the size :func:`scale_plan` gives, then
    :func:`place_i420` (bars or centre crop, numpy copies only).

    Returns:
        ``(dst_h * 3 // 2, dst_w)`` uint8 I420.
    """
    plan = scale_plan(av_frame.width, av_frame.height, dst_w, dst_h, mode)  # type: ignore[attr-defined]
    scaled = av_frame.reformat(width=plan[0], height=plan[1], format="yuv420p").to_ndarray()  # type: ignore[attr-defined]
    return place_i420(scaled, plan, dst_w, dst_h)


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


def encode_jpeg(bgr: np.ndarray, quality: int = 90) -> bytes:
    """JPEG-encode a ``(H, W, 3)`` uint8 BGR image.

    Raises:
        RuntimeError: OpenCV could not encode the image.
    """
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
