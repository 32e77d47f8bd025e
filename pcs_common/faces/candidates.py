"""The parts the face detectors share between scanning and reporting (lores px, boxes ``(x, y, w, h)``).

* :class:`Candidate` (a possible face) and :class:`Tracked` (a face of the previous analysed frame);
* face_recognition's box conventions (``css`` = ``(top, right, bottom, left)``) and dlib rectangles;
* the appearance thumbnail that decides whether a tracked face is encoded again;
* the encoders: :class:`Encoder` and :class:`InlineEncoder` (the worker process is
  :class:`pcs_common.faces.models.EncoderProcess`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import cv2
import numpy as np

from pcs_common.faces import models
from pcs_common.geometry import Box, iou, overlap

EncoderMode = Literal["process", "inline", "off"]


class Encoder(Protocol):
    """Turns ``(N, 150, 150, 3)`` uint8 RGB aligned face chips into ``(N, 128)`` float64 encodings."""

    def encode(self, chips: np.ndarray, num_jitters: int = 1) -> np.ndarray: ...  # pragma: no cover


class InlineEncoder:
    """dlib's ResNet in this process (holds the GIL while computing; simplest, for tests and tools)."""

    def encode(self, chips: np.ndarray, num_jitters: int = 1) -> np.ndarray:
        """``(N, 150, 150, 3)`` uint8 RGB chips -> ``(N, 128)`` float64 (:func:`~pcs_common.faces.models.encode_chips_inline`)."""
        return models.encode_chips_inline(chips, num_jitters)

    def close(self) -> None:
        """Nothing to release (same interface as :class:`~pcs_common.faces.models.EncoderProcess`)."""


def rect_to_css(rect: Any) -> tuple[int, int, int, int]:
    """dlib rectangle -> ``(top, right, bottom, left)`` (face_recognition ``_rect_to_css``)."""
    return rect.top(), rect.right(), rect.bottom(), rect.left()


def trim_css_to_bounds(css: tuple[int, int, int, int], image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Clip css to the image (face_recognition ``_trim_css_to_bounds``)."""
    return max(css[0], 0), min(css[1], image_shape[1]), min(css[2], image_shape[0]), max(css[3], 0)


def css_to_rect(dlib: Any, css: tuple[int, int, int, int]) -> Any:
    """``(top, right, bottom, left)`` -> dlib rectangle (face_recognition ``_css_to_rect``)."""
    return dlib.rectangle(css[3], css[0], css[1], css[2])


def css_to_box(css: tuple[int, int, int, int], scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> Box:
    """``(top, right, bottom, left)`` in an image scaled by ``scale`` and offset ``(dx, dy)`` -> ``(x, y, w, h)`` lores px."""
    top, right, bottom, left = css
    return left / scale + dx, top / scale + dy, (right - left) / scale, (bottom - top) / scale


def nms(boxes: list[Box], threshold: float) -> list[Box]:
    """Greedy non-maximum suppression: ``boxes`` in order, without any whose IoU with a kept one reaches ``threshold``."""
    kept: list[Box] = []
    for box in boxes:
        if all(iou(box, k) < threshold for k in kept):
            kept.append(box)
    return kept


@dataclass
class Candidate:
    """A possible face found by a scan, before the decision (step 4 of :mod:`pcs_common.faces.detector`).

    Attributes:
        box: ``(x, y, w, h)`` lores px.
        score: HOG SVM score (the Haar detector: cascade neighbours).
        image: ``(h, w, 3)`` uint8 RGB the detection was made in (the frame, or a scaled-up crop).
        css: trimmed ``(top, right, bottom, left)`` in ``image`` px (face_recognition's order).
        corroborated: another detector agreed.
        proposal: found by a HOG re-check of a small Haar box (the Haar box is no extra support).
        encoding: 128 floats once encoded, else ``()``.
        encoded_at: frame ``monotonic`` time, s, the encoding was computed for.
        thumb: the appearance when encoded (:func:`appearance_thumb`).
    """

    box: Box  # lores px
    score: float
    image: np.ndarray  # (h, w, 3) RGB the detection was made in (the frame, or a scaled-up crop)
    css: tuple[int, int, int, int]  # trimmed (top, right, bottom, left) in ``image`` px
    corroborated: bool = False
    proposal: bool = False  # found by a HOG re-check of a small Haar box (the Haar box is not extra support)
    encoding: tuple[float, ...] = ()
    encoded_at: float = 0.0
    thumb: np.ndarray | None = None  # appearance when encoded (:func:`appearance_thumb`)


@dataclass
class Tracked:
    """A face reported in the previous analysed frame: its lores ``box``, ``encoding`` (``()`` if none),
    ``encoded_at`` (frame ``monotonic`` s) and appearance ``thumb``, for temporal confirmation and reuse."""

    box: Box
    encoding: tuple[float, ...]
    encoded_at: float  # frame monotonic time the encoding was computed for
    thumb: np.ndarray | None = None


#: side of the appearance thumbnail compared to decide whether a tracked face is re-encoded, px
THUMB_PX = 16


def appearance_thumb(gray: np.ndarray, box: Box) -> np.ndarray | None:
    """The face's appearance: the ``box`` region of the ``(h, w)`` uint8 Y plane scaled to
    ``(THUMB_PX, THUMB_PX)`` and standardised (zero mean, unit variance, so exposure changes do not
    count), float32; None for an empty region."""
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(box[0] + box[2]) + 1, gray.shape[1]), min(int(box[1] + box[3]) + 1, gray.shape[0])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    t = cv2.resize(gray[y0:y1, x0:x1], (THUMB_PX, THUMB_PX), interpolation=cv2.INTER_AREA).astype(np.float32)
    return (t - t.mean()) / (t.std() + 1.0)


def appearance_change(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Mean absolute difference of two :func:`appearance_thumb` s, in standard deviations (0 = same picture;
    0.2-0.85 for the sample face one sample later at 5 samples/s); inf when either is missing."""
    if a is None or b is None:
        return float("inf")
    return float(np.abs(a - b).mean())


def suppress_nested(faces: list[Candidate], nested_overlap: float = 0.5) -> list[Candidate]:
    """``faces`` largest first, without any whose box lies ``nested_overlap`` or more inside a larger
    kept face (:func:`overlap`: intersection over the smaller box): a face never lies inside another."""
    kept: list[Candidate] = []
    for cand in sorted(faces, key=lambda c: -c.box[2] * c.box[3]):
        if all(overlap(cand.box, k.box) < nested_overlap for k in kept):
            kept.append(cand)
    return kept


__all__ = [
    "THUMB_PX", "Box", "Candidate", "Encoder", "EncoderMode", "InlineEncoder", "Tracked", "appearance_change",
    "appearance_thumb", "css_to_box", "css_to_rect", "nms", "rect_to_css", "suppress_nested",
    "trim_css_to_bounds",
]
