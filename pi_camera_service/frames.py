"""Frames of the camera: how a source is scaled into the main stream, and JPEG encoding.

The frame value types (:class:`Frame`, :class:`AnalysisFrame`) and the I420 layout helpers live in
:mod:`pcs_common.faces.frames` (the central server's enrolment uses them too) and are importable from
here as before. Frames are I420 ``(H * 3 // 2, W)`` uint8 arrays (layout described there).
"""

from __future__ import annotations

import cv2
import numpy as np

from pcs_common.faces.frames import AnalysisFrame, Frame, i420_planes, i420_shape, resize_i420

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


def encode_jpeg(bgr: np.ndarray, quality: int = 90) -> bytes:
    """JPEG-encode a ``(H, W, 3)`` uint8 BGR image.

    Raises:
        RuntimeError: OpenCV could not encode the image.
    """
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


__all__ = [
    "SCALE_MODES", "AnalysisFrame", "Frame", "encode_jpeg", "i420_planes", "i420_shape", "place_i420",
    "reformat_to_frame", "resize_i420", "scale_plan",
]
