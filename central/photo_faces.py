"""Faces of uploaded photos (enrolment): their 128-d encodings by the cameras' own detector, the face a
photo enrols, and the error every people operation raises.

Encodings are computed with :class:`pcs_common.faces.detector.FaceDetector` (dlib HOG + 5-point
alignment + ResNet, face_recognition's ``face_encodings(model="small")`` numbers), so server and camera
encodings compare like for like. Re-exported by :mod:`central.people`.
"""

from __future__ import annotations

import numpy as np

from pcs_common.limits import ImageTooLarge, check_jpeg_pixels

#: photos are scaled so their long side is at most this, px, before detection (bounds the HOG cost)
MAX_DETECT_SIDE = 1280
#: most pixels an enrolment photo may declare (checked before decoding): 24 Mpx is a 6000x4000 camera
#: photo, 72 MB once decoded to BGR
MAX_ENROL_PIXELS = 24_000_000
#: ... and at least this (small photos are scaled up so faces reach HOG's 40 px minimum with upsample 1)
MIN_DETECT_SIDE = 640
#: a photo with several faces enrols its largest when every other face is at most this share of its
#: width, a quarter of its area (a person in front of a crowd); above it the photo is ambiguous and refused
DOMINANT_WIDTH_RATIO = 0.5

class PeopleError(ValueError):
    """A people operation cannot be done; ``status`` is the HTTP status (404, 409, 422), ``str()`` why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- encodings of uploaded photos -----------------------------------------------------------------


def encode_faces(jpeg: bytes) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Every frontal face of a JPEG photo and its 128-d encoding.

    The photo is scaled to a long side between 640 and 1280 px, converted to I420 as the camera's
    frames are, and run through the camera's :class:`FaceDetector` (HOG upsampled once, so faces down
    to ~40 px of the scaled photo; Haar corroboration; ResNet encodings in this process).

    Returns:
        ``(N, 128)`` float64 encodings and N boxes ``(x, y, w, h)`` in the photo's px.

    Raises:
        PeopleError: 422 when the bytes are not a decodable image.
        pcs_common.faces.models.ModelNotAvailable: dlib or its model files are missing.
    """
    import cv2

    from pcs_common.faces.frames import AnalysisFrame, Frame
    from pcs_common.faces.registry import HogDetectorConfig, create_detector

    try:
        check_jpeg_pixels(jpeg, MAX_ENROL_PIXELS, "the photo")
    except ImageTooLarge as exc:
        raise PeopleError(422, str(exc)) from None
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise PeopleError(422, "the file is not a decodable JPEG image")
    height, width = bgr.shape[:2]
    long_side = max(width, height)
    scale = min(max(1.0, MIN_DETECT_SIDE / long_side), MAX_DETECT_SIDE / long_side)
    w2, h2 = max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2)
    if (w2, h2) != (width, height):
        bgr = cv2.resize(bgr, (w2, h2), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    config = HogDetectorConfig(upsample=1, profiles=False, full_scan_interval=0)
    detector = create_detector(config, encodings="inline", encoding_max_age=0)
    result = detector.analyse(AnalysisFrame(Frame(i420, w2, h2, 0), width, height))
    encodings = np.array([f.encoding for f in result.faces], dtype=np.float64).reshape(-1, 128)
    return encodings, [(f.x, f.y, f.width, f.height) for f in result.faces]


def dominant_face(boxes: list[tuple[int, int, int, int]]) -> int | None:
    """Index of the face to enrol among ``(x, y, w, h)`` boxes: the only one, or the widest when
    every other is at most :data:`DOMINANT_WIDTH_RATIO` of its width; None when there is no face or
    the photo is ambiguous (two faces of similar size)."""
    if not boxes:
        return None
    order = sorted(range(len(boxes)), key=lambda i: -boxes[i][2])
    if len(order) > 1 and boxes[order[1]][2] > DOMINANT_WIDTH_RATIO * boxes[order[0]][2]:
        return None
    return order[0]
