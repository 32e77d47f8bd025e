"""Box geometry shared by the face detectors, the face tracks and autofocus windows.

Boxes are ``(x, y, width, height)`` tuples (top-left corner and size, any unit as long as both
boxes use the same, e.g. px); a box with no area overlaps nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[float, float, float, float]
"""``(x, y, width, height)``: top-left corner and size."""


def intersection(a: Sequence[float], b: Sequence[float]) -> float:
    """Area shared by two ``(x, y, w, h)`` boxes (0 when they do not overlap), in the boxes' unit squared."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union (Jaccard index) of two ``(x, y, w, h)`` boxes, 0..1 (0 when both have no area)."""
    inter = intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over the smaller box's area, 0..1 (robust to two detectors' different box sizes)."""
    smaller = min(a[2] * a[3], b[2] * b[3])
    return intersection(a, b) / smaller if smaller > 0 else 0.0


__all__ = ["Box", "intersection", "iou", "overlap"]
