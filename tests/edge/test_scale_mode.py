"""CAMERA_SCALE_MODE: the 176x144 (11:9) sample in a 16:9 main stream, letterboxed, cropped or stretched.

Real decoding of the bundled sample (PyAV + swscale), the real capture thread of
:class:`SoftwareCamera` for snapshots, and the service's face detector for the boxes.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from pi_camera_service.config import ConfigError, load_settings
from pi_camera_service.detection.detector import FaceDetector, overlap
from pi_camera_service.frames import place_i420, scale_plan
from pi_camera_service.sources.software import SoftwareCamera, decode_analysis_frames, parse_av_source
from tests.support.paths import SAMPLE

W, H = 640, 360  # 16:9 main stream
NATIVE = (176, 144)
INDEX = 40  # a frame of the sample with the face well visible


def frame_at(width: int, height: int, mode: str, lores: tuple[int, int] | None = None):
    frames, _ = decode_analysis_frames(SAMPLE, width, height, lores or (width, height), scale_mode=mode)
    return frames[INDEX]


def test_scale_plan_keeps_the_aspect_ratio():
    assert scale_plan(176, 144, 1280, 720, "fit") == (880, 720, 200, 0)  # pillarbox, 11:9 kept
    sw, sh, x, y = scale_plan(176, 144, 1280, 720, "fill")
    assert (sw, x) == (1280, 0) and abs(sw / sh - 176 / 144) < 0.01 and y == -((sh - 720) // 4 * 2)
    assert scale_plan(176, 144, 1280, 720, "stretch") == (1280, 720, 0, 0)
    assert scale_plan(1920, 1080, 1280, 720, "fit") == (1280, 720, 0, 0)  # same aspect: plain scale
    sw, sh, x, y = scale_plan(1280, 720, 640, 480, "fit")  # letterbox: bars top and bottom
    assert (sw, x) == (640, 0) and sh == 360 and y == 60
    with pytest.raises(ValueError, match="fit, fill, stretch"):
        scale_plan(176, 144, 1280, 720, "zoom")


def test_place_i420_pads_with_black_and_crops_centred():
    src = np.full((6 * 3 // 2, 4), 200, np.uint8)  # 4x6 grey picture
    out = place_i420(src, (4, 6, 2, 0), 8, 6)
    y = out[:6]
    assert (y[:, :2] == 16).all() and (y[:, 6:] == 16).all() and (y[:, 2:6] == 200).all()
    assert (out[6:] .reshape(2, 3, 4)[:, :, :1] == 128).all()
    ramp = np.tile(np.arange(8, dtype=np.uint8), (3 * 6 // 2, 1))  # 8x6, columns 0..7
    cropped = place_i420(ramp, (8, 6, -2, 0), 4, 6)
    assert (cropped[:6] == np.arange(2, 6)).all()


def test_invalid_scale_mode_names_what_is_allowed(monkeypatch):
    monkeypatch.setenv("CAMERA_SCALE_MODE", "zoom")
    with pytest.raises(ConfigError, match="CAMERA_SCALE_MODE.*fit.*fill.*stretch"):
        load_settings()


def _content_box(y: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the non-black part of a luma plane (columns/rows whose mean is above black)."""
    cols = np.flatnonzero(y.mean(axis=0) > 24)
    rows = np.flatnonzero(y.mean(axis=1) > 24)
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def test_snapshot_of_the_sample_in_fit_mode_has_bars_and_the_native_aspect(tmp_path):
    settings = load_settings(source=str(SAMPLE), width=W, height=H, state_dir=tmp_path, scale_mode="fit")
    assert load_settings(state_dir=tmp_path).scale_mode == "fit"  # the default
    camera = SoftwareCamera(settings, parse_av_source(str(SAMPLE), W, H, 30))
    camera.open()
    try:
        jpeg = camera.snapshot_jpeg()
    finally:
        camera.close()
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert bgr.shape == (H, W, 3)
    sw, sh, x0, _ = scale_plan(*NATIVE, W, H, "fit")
    assert bgr[:, : x0 - 2].max() < 30 and bgr[:, x0 + sw + 2 :].max() < 30  # black bars left and right
    x, y, w, h = _content_box(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert abs(x - x0) <= 2 and abs(w - sw) <= 4 and h == H
    assert abs(w / h - 176 / 144) < 0.02  # 11:9 kept, not widened to 16:9


def test_face_box_lands_on_the_face_in_fit_and_fill_modes():
    """The box reported in main-stream px covers the face where the mode put it in the frame."""
    big = (NATIVE[0] * 2, NATIVE[1] * 2)  # the native picture, uniformly scaled: the true face
    faces = FaceDetector(encodings="off", profiles=False).analyse(frame_at(*big, "fit")).faces
    assert len(faces) == 1
    f = faces[0]
    for mode in ("fit", "fill"):
        sw, sh, x0, y0 = scale_plan(*NATIVE, W, H, mode)
        k = sw / big[0]
        expected = (f.x * k + x0, f.y * k + y0, f.width * k, f.height * k)  # the face in the frame
        af = frame_at(W, H, mode, load_settings(width=W, height=H).detection_size)
        found = FaceDetector(encodings="off", profiles=False).analyse(af).faces
        assert found, mode
        best = max(overlap((g.x, g.y, g.width, g.height), expected) for g in found)
        assert best > 0.5, (mode, found, expected)


def test_fill_crops_the_centre_and_stretch_distorts():
    native = frame_at(*NATIVE, "fit").frame.gray.astype(np.float32)
    fill = frame_at(W, H, "fill").frame.gray.astype(np.float32)
    stretch = frame_at(W, H, "stretch").frame.gray.astype(np.float32)
    sw, sh, _, y0 = scale_plan(*NATIVE, W, H, "fill")
    assert fill.min(axis=1).max() > 24 and fill[:, :4].mean() > 24  # no bars anywhere
    # the centre band of the native picture, scaled uniformly, is what fill shows
    band = cv2.resize(native, (sw, sh), interpolation=cv2.INTER_LINEAR)[-y0 : -y0 + H]
    assert np.abs(band - fill).mean() < 6
    # stretch shows the whole (distorted) picture: it does not match the crop
    assert np.abs(band - stretch).mean() > 2 * np.abs(band - fill).mean()
