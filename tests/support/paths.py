"""Paths the tests read: the checkout, test data, the sample video, the fake picamera2 package."""

from __future__ import annotations

from pathlib import Path

#: the checkout
ROOT = Path(__file__).resolve().parents[2]
#: tests/data (bikes.mp4, ...)
DATA = ROOT / "tests" / "data"
#: the sample video the service ships (176x144 carphone, 120 frames)
SAMPLE = ROOT / "pi_camera_service" / "data" / "carphone_pristine.mp4"
#: a street scene without a face
FACE_FREE = DATA / "bikes.mp4"
#: recordings and screenshots a test keeps for a person to look at
ARTIFACTS = ROOT / "test-artifacts"
#: the fake picamera2 package (mirrors picamera2 0.3.36; see tests/fakes/picamera2/__init__.py)
FAKES = ROOT / "tests" / "fakes"
