"""Real faces for the matching tests: frames of the sample video, scikit-image's astronaut, and the
128-d dlib encoding a camera computes from a frame."""

from __future__ import annotations

import functools
import hashlib

import cv2
import numpy as np

from pi_camera_service.detection.detector import FaceDetector
from pi_camera_service.frames import AnalysisFrame, Frame
from tests.support.paths import SAMPLE

#: the sample video (176x144, 120 frames)
CARPHONE = SAMPLE


@functools.cache
@functools.lru_cache(maxsize=1)
def carphone_frames() -> dict[int, np.ndarray]:
    """Frames 10, 60 and 110 (of 120) of the sample video, BGR 176x144 (decoded once per process;
    read-only arrays, so a test cannot change them for the next)."""
    cap = cv2.VideoCapture(str(CARPHONE))
    out = {}
    for i in range(111):
        ok, frame = cap.read()
        assert ok, f"cannot read frame {i} of {CARPHONE}"
        if i in (10, 60, 110):
            frame.setflags(write=False)
            out[i] = frame
    cap.release()
    return out


@functools.cache
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins, NASA, public domain) as (512, 512, 3) uint8 BGR."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


_ENCODINGS: dict[bytes, list[float]] = {}


def camera_encoding(bgr: np.ndarray) -> list[float]:
    """The encoding a camera computes: the frame analysed at 320 px wide (I420, aspect kept); computed
    once per process and frame (a fresh copy each call)."""
    key = hashlib.sha256(bgr.tobytes()).digest() + repr(bgr.shape).encode()
    if key not in _ENCODINGS:
        _ENCODINGS[key] = _camera_encoding(bgr)
    return list(_ENCODINGS[key])


def _camera_encoding(bgr: np.ndarray) -> list[float]:
    height = round(320 * bgr.shape[0] / bgr.shape[1] / 2) * 2
    lores = cv2.resize(bgr, (320, height), interpolation=cv2.INTER_AREA)
    af = AnalysisFrame(Frame(cv2.cvtColor(lores, cv2.COLOR_BGR2YUV_I420), 320, height, 0),
                       bgr.shape[1] // 2 * 2, bgr.shape[0] // 2 * 2)
    result = FaceDetector(encodings="inline", profiles=False, encoding_max_age=0).analyse(af)
    assert result.nb_faces == 1, result.nb_faces
    return list(result.faces[0].encoding)


def to_jpeg(bgr: np.ndarray) -> bytes:
    """``bgr`` ((H, W, 3) uint8 BGR) as a quality-95 JPEG."""
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
