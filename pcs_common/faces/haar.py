"""The ``haar`` face detector: OpenCV's frontal Viola-Jones cascade alone decides (no HOG), the cheapest."""

from __future__ import annotations

from typing import Any

import numpy as np

from pcs_common.faces.candidates import Box, Candidate, Tracked, trim_css_to_bounds
from pcs_common.faces.detector import FaceDetector
from pcs_common.geometry import iou


class HaarFaceDetector(FaceDetector):
    """The ``haar`` detector, the cheapest: OpenCV's frontal Viola-Jones cascade alone decides
    (no HOG), with the profile cascade, the same region tracking, nested-box suppression and the
    same dlib 5-point + ResNet encodings (the 5-point predictor runs on the Haar box).

    Haar boxes are less sure than HOG's: ``haar_min_neighbors`` defaults to 5 here (3 in
    :class:`FaceDetector`, where HOG has the last word), and a face needs the previous analysed
    frame's face at the same place (IoU >= ``track_iou``) or ``confirm_neighbors`` cascade
    neighbours to be reported. ``Face.score`` is the number of neighbouring cascade detections
    merged into the box (OpenCV's ``detectMultiScale2`` ``numDetections``).

    Args:
        confirm_neighbors: neighbours that report a face seen for the first time. Default (None):
            ``haar_min_neighbors``, 5 (on
            ``bench/bench_face_eval.py``'s set at 320 px: recall 0.64, 0.015 false faces per frame;
            8 gives recall 0.56 for the same false faces).
        **kwargs: as :class:`FaceDetector` (HOG-only parameters are ignored).
    """

    type_key = "haar"

    def __init__(self, *, confirm_neighbors: int | None = None, haar_min_neighbors: int = 5, **kwargs: Any) -> None:
        super().__init__(haar_min_neighbors=haar_min_neighbors, **kwargs)
        confirm_neighbors = haar_min_neighbors if confirm_neighbors is None else confirm_neighbors
        if confirm_neighbors < haar_min_neighbors:
            raise ValueError("confirm_neighbors must be >= haar_min_neighbors")
        self.confirm_neighbors = confirm_neighbors

    def _boxes(self, rgb: np.ndarray, gray: np.ndarray, dx: int = 0, dy: int = 0) -> list[Candidate]:
        found, neighbours = self._frontal.detectMultiScale2(
            gray, scaleFactor=self.haar_scale_factor, minNeighbors=self.haar_min_neighbors,
            minSize=(self.min_face_px, self.min_face_px),
        )
        out = []
        for (x, y, w, h), n in zip(found, np.ravel(neighbours) if len(found) else ()):
            css = trim_css_to_bounds((int(y + dy), int(x + dx + w), int(y + dy + h), int(x + dx)), rgb.shape)
            out.append(Candidate((float(x + dx), float(y + dy), float(w), float(h)), float(n), rgb, css))
        return out

    def _full_scan(self, rgb: np.ndarray, gray: np.ndarray, previous: list[Tracked]) -> tuple[list[Candidate], list[Box]]:
        return self._boxes(rgb, gray), []

    def _region_scan(
        self, rgb: np.ndarray, gray: np.ndarray, rois: list[tuple[int, int, int, int, float]]
    ) -> tuple[list[Candidate], list[Box]]:
        out: list[Candidate] = []
        for x0, y0, x1, y1, _ in rois:
            out += self._boxes(rgb, gray[y0:y1, x0:x1], x0, y0)
        return out, []

    def _supported(self, cand: Candidate, haar: list[Box], previous: list[Tracked]) -> bool:
        return cand.score >= self.confirm_neighbors or any(iou(cand.box, p.box) >= self.track_iou for p in previous)


__all__ = ["HaarFaceDetector"]
