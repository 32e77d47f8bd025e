"""Configuration validation, source parsing, frame helpers, stream statistics and the capture loop."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pi_camera_service.config import ConfigError, load_settings
from pi_camera_service.frames import Frame, i420_planes, resize_i420
from pi_camera_service.sources import create_camera, resolve_source
from pi_camera_service.sources.base import SourceOpenError, StreamStats, redact_url
from pi_camera_service.sources.software import SoftwareCamera, parse_av_source, sample_video_path
from pi_camera_service.streaming import EncoderSettings
from tests.support.net import free_port, wait_until
from tests.support.paths import SAMPLE


@pytest.fixture(autouse=True)
def _no_camera_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)


# ----------------------------------------------------------------------------------- settings
def test_defaults_match_the_documented_ones():
    s = load_settings()
    assert (s.source, s.width, s.height, s.port, s.detection_fps) == ("auto", 1280, 720, 8000, 5.0)
    assert s.rtsp_url == "rtsp://127.0.0.1:8554/cam" and s.stream_on_start is True
    assert s.detection_size == (320, 180)


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("CAMERA_PORT", "99999", "less than or equal to 65535"),
        ("CAMERA_FRAMERATE", "fast", "valid number"),
        ("CAMERA_WIDTH", "641", "even"),
        ("CAMERA_RTSP_URL", "http://x/cam", "rtsp://"),
        ("CAMERA_LOG_LEVEL", "LOUD", "DEBUG"),
        ("CAMERA_SOURCE", "v4l2:cam", "v4l2:N"),
        ("CAMERA_STREAM_ON_START", "maybe", "boolean"),
        ("CAMERA_LENS_CAMERA_MATRIX", "1000,1000,640", "needs 4 comma-separated numbers, got 3"),
        ("CAMERA_LENS_DISTORTION", "a,b,c,d", "comma-separated numbers"),
        ("CAMERA_LENS_CALIBRATION_SIZE", "big", "WIDTHxHEIGHT"),
        ("CAMERA_NOIR", "perhaps", "'auto', 'true' or 'false'"),
        ("CAMERA_NIGHT_MAX_FRAME_DURATION", "5", "greater than or equal to 10000"),
    ],
)
def test_an_invalid_value_gives_one_line_naming_variable_value_and_rule(monkeypatch, var, value, expected):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{var}={value!r}") or message.startswith(f"{var}=")
    assert repr(value) in message or value in message
    assert expected in message


def test_lens_model_from_settings(monkeypatch):
    default = load_settings().lens_model()
    assert default.reference_size == (4608, 2592) and default.fx == pytest.approx(2.75 / 0.0014)
    assert default.distortion[0] == pytest.approx(-0.0743, abs=1e-3)
    monkeypatch.setenv("CAMERA_LENS_CAMERA_MATRIX", "1000, 1001, 640, 360")
    monkeypatch.setenv("CAMERA_LENS_DISTORTION", "-0.1,0.01,0,0")
    monkeypatch.setenv("CAMERA_LENS_CALIBRATION_SIZE", "1280x720")
    monkeypatch.setenv("CAMERA_NOIR", "TRUE")
    s = load_settings()
    lens = s.lens_model()
    assert (lens.fx, lens.fy, lens.cx, lens.cy) == (1000, 1001, 640, 360)
    assert lens.distortion == (-0.1, 0.01, 0, 0) and lens.reference_size == (1280, 720)
    assert s.noir == "true"


def test_detection_width_cannot_exceed_main_width(monkeypatch):
    monkeypatch.setenv("CAMERA_WIDTH", "256")
    monkeypatch.setenv("CAMERA_HEIGHT", "144")
    monkeypatch.setenv("CAMERA_DETECTION_WIDTH", "320")
    with pytest.raises(ConfigError, match="CAMERA_DETECTION_WIDTH"):
        load_settings()


def test_empty_env_values_mean_unset(monkeypatch):
    monkeypatch.setenv("CAMERA_API_KEY", "")
    assert load_settings().api_key is None


# ----------------------------------------------------------------------------------- sources
def test_parse_sources():
    v = parse_av_source("v4l2:2", 640, 480, 30)
    assert (v.url, v.format, v.options["video_size"], v.is_file) == ("/dev/video2", "video4linux2", "640x480", False)
    assert parse_av_source("/dev/video0", 640, 480, 15).options["framerate"] == "15"
    r = parse_av_source("rtsp://viewer:pw@cam.local/stream", 640, 480, 30)
    assert r.options["rtsp_transport"] == "tcp" and not r.is_file
    assert r.url == "rtsp://viewer:pw@cam.local/stream" and r.label == "url:rtsp://viewer:***@cam.local/stream"
    f = parse_av_source(str(SAMPLE), 640, 480, 30)
    assert f.is_file and f.label.startswith("file:")
    with pytest.raises(SourceOpenError, match="no such file"):
        parse_av_source("/nonexistent/video.mp4", 640, 480, 30)


def test_auto_falls_back_to_the_bundled_sample_without_camera():
    # no Pi camera stack and no /dev/video0 on the test machines
    import os

    if os.path.exists("/dev/video0"):
        pytest.skip("a V4L2 device is present")
    assert resolve_source("auto") == str(sample_video_path())
    cam = create_camera(load_settings())
    assert isinstance(cam, SoftwareCamera) and cam.source.endswith("carphone_pristine.mp4")


# ----------------------------------------------------------------------------------- frames
def test_resize_i420_scales_each_plane():
    w, h = 64, 48
    i420 = np.zeros((h * 3 // 2, w), np.uint8)
    y, u, v = i420_planes(i420, w, h)
    y[:] = 200
    u[:] = 90
    v[:] = 160
    out = resize_i420(i420, w, h, 32, 24)
    assert out.shape == (36, 32)
    oy, ou, ov = i420_planes(out, 32, 24)
    assert (oy == 200).all() and (ou == 90).all() and (ov == 160).all()
    frame = Frame(i420, w, h, 0)
    assert frame.bgr().shape == (h, w, 3) and frame.gray.shape == (h, w)


def test_encoder_settings_keyframe_at_least_every_two_seconds():
    enc = EncoderSettings(1280, 720, 30, 2_000_000, keyframe_interval=2.0)
    assert enc.gop_size == 60
    opts = enc.x264_options()
    assert opts["g"] == "60" and opts["bf"] == "0" and opts["tune"] == "zerolatency"
    with pytest.raises(ConfigError):
        load_settings(keyframe_interval=2.5)


def test_stream_stats_rates_and_redaction():
    stats = StreamStats(window=2.0)
    t0 = 1000.0
    for i in range(31):
        stats.record(1000, now=t0 + i / 30)
    fps, bps = stats.rates(now=t0 + 1.0)
    assert 29 < fps < 32 and 230_000 < bps < 260_000
    assert stats.frames_sent == 31
    assert redact_url("rtsp://pub:secret@127.0.0.1:8554/cam") == "rtsp://pub:***@127.0.0.1:8554/cam"
    assert redact_url("rtsp://127.0.0.1:8554/cam") == "rtsp://127.0.0.1:8554/cam"


# ----------------------------------------------------------------------------------- capture
def test_file_source_loops_at_its_native_rate_and_scales():
    settings = load_settings(width=320, height=240)
    cam = SoftwareCamera(settings, parse_av_source(str(SAMPLE), 320, 240, 30))
    cam.open()
    try:
        assert abs(cam.framerate - 30000 / 1001) < 1e-6
        t0, n0 = time.monotonic(), cam.frames_captured
        # 120 frames at 29.97 fps = 4.0 s: run past the end to prove looping
        wait_until(lambda: cam.frames_captured >= n0 + 150, 15, message="looping past the end of the file")
        rate = (cam.frames_captured - n0) / (time.monotonic() - t0)
        assert 24 < rate < 36, rate  # paced like a live camera, not decoded as fast as possible
        frame = cam.latest_frame()
        assert frame.i420.shape == (360, 320)
        af = cam.analysis_frame()
        assert (af.frame.width, af.frame.height) == settings.detection_size == (320, 240)
        assert af.scale == (1.0, 1.0)
        assert cam.snapshot_jpeg(width=160)[:2] == b"\xff\xd8"
        assert cam.streaming_status().state == "stopped"
    finally:
        cam.close()
    assert not cam.is_open


def test_publisher_errors_never_show_the_rtsp_password():
    from pi_camera_service.streaming import RtspPublisher

    port = free_port()  # nothing listens there
    stats = StreamStats()
    pub = RtspPublisher(f"rtsp://pub:hunter2@127.0.0.1:{port}/cam", EncoderSettings(64, 48, 10, 100_000), stats)
    pub.start()
    try:
        frame = Frame(np.zeros((72, 64), np.uint8), 64, 48, 0)
        wait_until(lambda: (pub.offer(frame), stats.last_error)[1], 10, message="a connection error")
    finally:
        pub.stop()
    assert "hunter2" not in stats.last_error and "pub:***@" in stats.last_error
    assert pub.status().url == f"rtsp://pub:***@127.0.0.1:{port}/cam"
