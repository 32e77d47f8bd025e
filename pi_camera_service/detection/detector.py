"""Old import path of the face detectors, now in :mod:`pcs_common.faces` (shared by the camera and
the central server): every name this module had, re-exported from where it lives now
(:mod:`~pcs_common.faces.detector`, :mod:`~pcs_common.faces.haar`, :mod:`~pcs_common.faces.results`,
:mod:`~pcs_common.faces.candidates`, :mod:`pcs_common.geometry`)."""

from pcs_common.faces import models  # noqa: F401
from pcs_common.faces.candidates import (  # noqa: F401
    THUMB_PX,
    Box,
    Candidate as _Candidate,
    Encoder,
    EncoderMode,
    InlineEncoder as _InlineEncoder,
    Tracked as _Tracked,
    appearance_change,
    appearance_thumb as _thumb,
    css_to_box as _css_to_box,
    css_to_rect as _css_to_rect,
    nms as _nms,
    rect_to_css as _rect_to_css,
    suppress_nested,
    trim_css_to_bounds as _trim_css_to_bounds,
)
from pcs_common.faces.detector import HOG_WINDOW_PX, FaceDetector  # noqa: F401
from pcs_common.faces.haar import HaarFaceDetector  # noqa: F401
from pcs_common.faces.results import DetectionResult, Face, Profile  # noqa: F401
from pcs_common.geometry import intersection as _intersection, iou, overlap  # noqa: F401

__all__ = [
    "HOG_WINDOW_PX", "THUMB_PX", "Box", "DetectionResult", "Encoder", "EncoderMode", "Face", "FaceDetector",
    "HaarFaceDetector", "Profile", "appearance_change", "iou", "overlap", "suppress_nested",
]
