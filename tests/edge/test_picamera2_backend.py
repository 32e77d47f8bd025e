"""Picamera2Camera against the fake picamera2 in tests/fakes (mirrors picamera2 0.3.36).

Each test imports a fresh copy of the fake (so its class-level switches start clean) and removes it
from ``sys.modules`` afterwards, so no other test can import it by accident.
"""

from __future__ import annotations

import sys
import threading
import time
from fractions import Fraction

import cv2
import numpy as np
import pytest

from pi_camera_service.config import Settings
from pi_camera_service.sources import picamera2_backend
from pi_camera_service.frames import i420_planes
from pi_camera_service.sources.base import CameraError, CameraUnavailable, SourceOpenError
from pi_camera_service.sources.picamera2_backend import (
    Picamera2Camera,
    analysis_rate,
    make_h264_encoder,
    picamera2_available,
    yuv420_to_i420,
)

from tests.support.fake_camera import forget_picamera2  # noqa: E402
from tests.support.net import wait_until  # noqa: E402

pytestmark = pytest.mark.usefixtures("fake_never_leaks")

RTSP_URL = "rtsp://pub:s3cret@127.0.0.1:8554/cam"


def wait_for(predicate, timeout: float = 5.0, message: str = "condition"):
    """Poll ``predicate()`` every 20 ms until truthy (returned) or ``timeout`` s pass (AssertionError)."""
    return wait_until(predicate, timeout, 0.02, message)


def make_settings(**overrides) -> Settings:
    values = dict(
        width=640,
        height=480,
        framerate=30.0,
        bitrate=1_000_000,
        keyframe_interval=1.0,
        detection_width=320,
        detection_fps=5.0,
        rtsp_url=RTSP_URL,
        rtsp_reconnect_max_delay=2.0,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def cam(fake):
    camera = Picamera2Camera(make_settings(), 0)
    camera.open()
    yield camera
    camera.close()


@pytest.fixture
def fast_retries(monkeypatch):
    """First retry after 0.1 s instead of 0.5 s (the backoff test checks the real schedule)."""
    monkeypatch.setattr(picamera2_backend, "INITIAL_RETRY_DELAY", 0.1)


def newest_picam2(fake):
    return fake.Picamera2.instances[-1]


def wait_streaming(cam, timeout: float = 5.0):
    return wait_for(lambda: cam.streaming_status().state == "streaming", timeout, "state streaming")


# --------------------------------------------------------------------------------- configuration
def test_open_configures_main_and_lores_yuv420_at_framerate(fake, cam):
    picam2 = newest_picam2(fake)
    assert picam2.calls_named("__init__") == [((0,), {"verbose_console": None, "tuning": None, "allocator": None})]
    (args, kwargs), = picam2.calls_named("create_video_configuration")
    assert kwargs["main"] == {"size": (640, 480), "format": "YUV420"}
    assert kwargs["lores"] == {"size": (320, 240), "format": "YUV420"}
    assert kwargs["controls"] == {"FrameRate": 30.0}
    assert len(picam2.calls_named("configure")) == 1
    config = picam2.last_configuration
    assert config["main"]["size"] == (640, 480) and config["main"]["format"] == "YUV420"
    assert config["lores"]["size"] == (320, 240) and config["lores"]["format"] == "YUV420"
    assert config["controls"]["FrameRate"] == 30.0
    assert config["encode"] == "main"
    assert picam2.calls_named("start") and picam2.started
    # the FrameRate control reached the sensor as FrameDurationLimits
    assert picam2._applied_controls["FrameDurationLimits"] == (33333, 33333)
    assert (cam.width, cam.height, cam.lores_size) == (640, 480, (320, 240))
    assert cam.is_open and cam.source == "picamera2:0"
    assert not picam2.calls_named("stop_recording")


def test_analysis_frames_have_lores_shape_and_are_pulled_below_camera_rate(fake, cam):
    first = wait_for(cam.analysis_frame, message="first analysis frame")
    assert first.frame.i420.shape == (240 * 3 // 2, 320)
    assert first.frame.i420.dtype == np.uint8
    assert (first.frame.width, first.frame.height) == (320, 240)
    assert (first.main_width, first.main_height) == (640, 480)
    assert first.scale == (2.0, 2.0)
    later = wait_for(lambda: (f := cam.analysis_frame()) and f.frame.index >= first.frame.index + 3 and f)
    assert not np.array_equal(first.frame.gray, later.frame.gray), "the synthetic scene moves"

    # pacing: the camera runs at 30 fps, the capture thread pulls 2 x detection_fps = 10 /s
    assert cam.analysis_rate == 10.0
    picam2 = newest_picam2(fake)
    frames0, pulled0 = picam2.frames, cam.analysis_frame().frame.index
    time.sleep(0.6)
    camera_frames = picam2.frames - frames0
    pulled = cam.analysis_frame().frame.index - pulled0
    assert camera_frames >= 12  # ~18
    assert 3 <= pulled <= 9  # ~6
    assert cam.frames_captured >= picam2.frames
    assert picam2.buffers_in_use <= 2, "requests are released at once"


def test_lores_row_padding_is_removed(fake):
    # 200 px lores: the fake (like the VC4 ISP) pads YUV420 rows to 256 bytes
    camera = Picamera2Camera(make_settings(detection_width=200), 0)
    camera.open()
    try:
        assert newest_picam2(fake).camera_configuration()["lores"]["stride"] == 256
        analysis = wait_for(camera.analysis_frame)
        assert analysis.frame.i420.shape == (150 * 3 // 2, 200)
        _, u, v = i420_planes(analysis.frame.i420, 200, 150)
        # the fake's chroma is 96..160 everywhere; misplaced padding would show up as zeros
        assert u.min() >= 96 and u.max() <= 160
        assert v.min() >= 96 and v.max() <= 160
    finally:
        camera.close()


def test_yuv420_to_i420_unpads_each_plane():
    rng = np.random.default_rng(1)
    w, h, stride = 6, 4, 10
    y = rng.integers(1, 255, (h, w), dtype=np.uint8)
    u = rng.integers(1, 255, (h // 2, w // 2), dtype=np.uint8)
    v = rng.integers(1, 255, (h // 2, w // 2), dtype=np.uint8)
    padded = np.zeros((h * 3 // 2, stride), np.uint8)
    padded[:h, :w] = y
    half = padded.reshape(h * 3, stride // 2)
    half[2 * h : 2 * h + h // 2, : w // 2] = u
    half[2 * h + h // 2 :, : w // 2] = v
    out = yuv420_to_i420(padded, w, h)
    oy, ou, ov = i420_planes(out, w, h)
    assert out.shape == (h * 3 // 2, w)
    assert np.array_equal(oy, y) and np.array_equal(ou, u) and np.array_equal(ov, v)
    unpadded = np.arange(h * 3 // 2 * w, dtype=np.uint8).reshape(h * 3 // 2, w)
    assert np.array_equal(yuv420_to_i420(unpadded, w, h), unpadded)
    with pytest.raises(ValueError):
        yuv420_to_i420(padded, 12, h)


def test_analysis_rate_and_encoder_arguments():
    assert analysis_rate(make_settings(detection_fps=5)) == 10.0
    assert analysis_rate(make_settings(detection_fps=1)) == 5.0
    assert analysis_rate(make_settings(detection_fps=30, framerate=15)) == 15.0
    assert analysis_rate(make_settings(detection_enabled=False)) == 2.0

    class Pi5Encoder:  # the LibavH264Encoder signature
        def __init__(self, bitrate=None, repeat=True, iperiod=30, framerate=30, qp=None, profile=None):
            self.kwargs = dict(bitrate=bitrate, repeat=repeat, iperiod=iperiod, framerate=framerate)

    enc = make_h264_encoder(Pi5Encoder, make_settings(framerate=25, keyframe_interval=2.0), 25.0)
    assert enc.kwargs == {"bitrate": 1_000_000, "repeat": True, "iperiod": 50, "framerate": 25}
    assert isinstance(enc.kwargs["framerate"], Fraction)


# --------------------------------------------------------------------------------- streaming
@pytest.mark.parametrize("fake", ["vc4", "pisp"], indirect=True)
def test_streaming_builds_h264_encoder_and_rtsp_tcp_output(fake, cam):
    status = cam.start_streaming()
    assert status.state == "connecting"
    assert status.url == "rtsp://pub:***@127.0.0.1:8554/cam"
    wait_streaming(cam)
    picam2 = newest_picam2(fake)
    (encoder, output), _ = picam2.calls_named("start_encoder")[0]
    assert isinstance(encoder, fake.H264Encoder) and isinstance(output, fake.PyavOutput)
    expected = {"bitrate": 1_000_000, "repeat": True, "iperiod": 30, "framerate": 30}
    assert {k: encoder.init_kwargs[k] for k in expected} == expected
    if fake.platform == "vc4":
        assert encoder.init_kwargs["enable_sps_framerate"] is True
    else:  # Pi 5: H264Encoder is LibavH264Encoder, which has no enable_sps_framerate
        assert type(encoder).__name__ == "LibavH264Encoder"
        assert "enable_sps_framerate" not in encoder.init_kwargs
    assert output.init_kwargs["output_name"] == RTSP_URL
    assert output.init_kwargs["format"] == "rtsp"
    assert output.init_kwargs["options"] == {"rtsp_transport": "tcp"}
    assert callable(output.error_callback)
    assert encoder.name == "main" and encoder.size == (640, 480)
    sent = wait_for(lambda: (s := cam.streaming_status()).frames_sent >= 15 and s)
    assert sent.frames_sent <= output.muxed_frames + 1
    assert sent.fps > 0 and sent.bitrate > 0
    assert cam.start_streaming().state == "streaming"
    assert len(picam2.calls_named("start_encoder")) == 1, "start_streaming is idempotent"


def test_stop_start_stop_start_keeps_camera_running(fake, cam):
    picam2 = newest_picam2(fake)
    for cycle in range(2):
        cam.start_streaming()
        wait_streaming(cam)
        before = cam.streaming_status().frames_sent
        wait_for(lambda: cam.streaming_status().frames_sent >= before + 5, message="frames while streaming")
        encoder = picam2.calls_named("start_encoder")[-1][0][0]
        output = picam2.calls_named("start_encoder")[-1][0][1]

        status = cam.stop_streaming()
        assert status.state == "stopped"
        assert cam.stop_streaming().state == "stopped", "stop_streaming is idempotent"
        assert picam2.calls_named("stop_encoder")[-1][0] == (encoder,)
        assert not encoder.running and not output.recording
        assert picam2.started, "the camera keeps running for detection and snapshots"
        assert not picam2.calls_named("stop_recording") and not picam2.calls_named("stop")

        stopped_at = cam.streaming_status().frames_sent
        index = wait_for(cam.analysis_frame).frame.index
        wait_for(lambda: cam.analysis_frame().frame.index >= index + 3, message="analysis frames while stopped")
        assert cam.streaming_status().frames_sent == stopped_at
    assert len(picam2.calls_named("start_encoder")) == 2
    assert cam.streaming_status().reconnects == 0
    assert picam2.buffers_in_use <= 2


@pytest.mark.parametrize("fake", ["vc4", "pisp"], indirect=True)
def test_rtsp_server_going_away_reconnects(fake, cam, fast_retries):
    cam.start_streaming()
    wait_streaming(cam)
    wait_for(lambda: cam.streaming_status().frames_sent >= 5)
    picam2 = newest_picam2(fake)
    first_encoder = picam2.calls_named("start_encoder")[0][0][0]

    fake.PyavOutput.server_up = False
    failed = wait_for(lambda: (s := cam.streaming_status()).state == "reconnecting" and s)
    assert failed.last_error.startswith("BrokenPipeError")
    assert failed.fps == 0.0
    # error_callback ran on picamera2's encoder thread and returned at once; the encoder was
    # stopped later, from the publisher thread
    thread_name, seconds, exc = fake.PyavOutput.callback_log[0]
    assert thread_name == ("V4L2Encoder.thread_poll" if fake.platform == "vc4" else "picamera2-event-loop")
    assert seconds < 0.05 and isinstance(exc, BrokenPipeError)
    wait_for(lambda: not first_encoder.running, message="failed encoder stopped")
    frames_at_failure = cam.streaming_status().frames_sent

    fake.PyavOutput.server_up = True
    status = wait_for(lambda: (s := cam.streaming_status()).state == "streaming" and s, message="reconnected")
    assert status.reconnects == 1
    assert status.last_error is None
    wait_for(lambda: cam.streaming_status().frames_sent >= frames_at_failure + 10, message="frames counted again")
    assert fake.PyavOutput.instances[-1].muxed_frames > 0
    assert len(picam2.calls_named("start_encoder")) >= 2
    assert picam2.started


def test_server_down_at_start_retries_with_exponential_backoff(fake, cam):
    fake.PyavOutput.server_up = False
    cam.start_streaming()
    wait_for(lambda: len(fake.PyavOutput.instances) >= 3, timeout=5, message="three attempts")
    status = cam.streaming_status()
    assert status.state == "reconnecting"
    assert status.last_error.startswith("ConnectionRefusedError")
    assert "s3cret" not in status.last_error and "pub:***@" in status.last_error
    # waits of 0.5 s then 1 s (plus a frame or two until the first mux fails)
    starts = [o.created for o in fake.PyavOutput.instances[:3]]
    assert 0.5 <= starts[1] - starts[0] <= 0.9
    assert 1.0 <= starts[2] - starts[1] <= 1.4
    fake.PyavOutput.server_up = True
    status = wait_for(lambda: (s := cam.streaming_status()).state == "streaming" and s, timeout=5)
    assert status.reconnects == 0, "a first connection is not a re-connection"


def test_encoder_start_failure_is_reported_and_retried(fake, cam, fast_retries):
    fake.PyavOutput.open_error = OSError(22, "Invalid argument")
    cam.start_streaming()
    status = wait_for(lambda: (s := cam.streaming_status()).last_error and s)
    assert status.state == "reconnecting" and "Invalid argument" in status.last_error
    picam2 = newest_picam2(fake)
    assert not picam2.encoders, "a half-started encoder is never fed frames"
    fake.PyavOutput.open_error = None
    wait_streaming(cam)
    assert len(picam2.encoders) == 1


# --------------------------------------------------------------------------------- snapshots
def test_snapshot_is_a_main_size_jpeg_while_streaming(fake, cam):
    cam.start_streaming()
    wait_streaming(cam)
    jpeg = cam.snapshot_jpeg()
    assert jpeg[:2] == b"\xff\xd8"
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (480, 640, 3)
    assert image.std() > 10, "a real picture, not a flat frame"
    picam2 = newest_picam2(fake)
    assert picam2.options["quality"] == 90
    low = cam.snapshot_jpeg(quality=20)
    assert picam2.options["quality"] == 20 and len(low) < len(jpeg)

    before = cam.streaming_status().frames_sent
    wait_for(lambda: cam.streaming_status().frames_sent >= before + 5, message="streaming goes on")
    assert cam.streaming_status().state == "streaming"


@pytest.mark.parametrize(("width", "shape"), [(320, (240, 320, 3)), (333, (250, 333, 3)), (640, (480, 640, 3))])
def test_snapshot_scaled_keeps_aspect_ratio(fake, cam, width, shape):
    jpeg = cam.snapshot_jpeg(width=width, quality=80)
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == shape
    # colours survive the YUV -> BGR conversion (the fake's chroma is not neutral grey)
    assert np.abs(image[:, :, 0].astype(int) - image[:, :, 2].astype(int)).mean() > 5


def test_snapshot_timeout_cancels_its_pending_capture(fake):
    class SnapshotOnly(Picamera2Camera):  # no capture thread: the snapshot is the only job
        def _capture_loop(self, closing):
            closing.wait()

    camera = SnapshotOnly(make_settings(), 0)
    camera.open()
    try:
        camera.capture_timeout = 0.2
        picam2 = newest_picam2(fake)
        fake.Picamera2.simulate_unplugged = True
        time.sleep(0.1)
        with pytest.raises(CameraUnavailable, match="no frame"):
            camera.snapshot_jpeg()
        assert picam2.calls_named("cancel_all_and_flush") and not picam2._job_list
        fake.Picamera2.simulate_unplugged = False
        frames = picam2.frames
        wait_for(lambda: picam2.frames >= frames + 5, message="frames again")
        # an abandoned job would have taken a request and never released it
        assert picam2.buffers_in_use <= 1
        assert camera.snapshot_jpeg()[:2] == b"\xff\xd8"
    finally:
        camera.close()


def test_snapshot_errors(fake):
    camera = Picamera2Camera(make_settings(), 0)
    with pytest.raises(CameraUnavailable):
        camera.snapshot_jpeg()
    camera.open()
    with pytest.raises(ValueError):
        camera.snapshot_jpeg(width=0)
    camera.close()
    with pytest.raises(CameraUnavailable):
        camera.snapshot_jpeg(width=320)


# --------------------------------------------------------------------------------- metadata and controls
def test_metadata_maps_libcamera_names(fake, cam):
    assert set(cam.metadata()) == {
        "lux", "exposure_us", "analogue_gain", "digital_gain", "colour_gains", "colour_temperature",
        "lens_position", "focus_distance_m", "focus_fom", "af_state", "sensor_temperature", "frame_duration_us",
        "scaler_crop", "hdr_mode", "sensor_hdr", "auto_exposure",
    }
    names = {
        "lux": "Lux", "exposure_us": "ExposureTime", "analogue_gain": "AnalogueGain", "digital_gain": "DigitalGain",
        "colour_temperature": "ColourTemperature", "lens_position": "LensPosition", "focus_fom": "FocusFoM",
        "sensor_temperature": "SensorTemperature", "frame_duration_us": "FrameDuration",
    }

    def consistent():
        raw, mapped = cam.raw_metadata(), cam.metadata()
        same = raw and all(mapped[k] == raw[v] for k, v in names.items())
        return same and mapped["colour_gains"] == list(raw["ColourGains"]) and (
            mapped["scaler_crop"] == list(raw["ScalerCrop"])) and mapped

    meta = wait_for(consistent, message="metadata")
    assert isinstance(meta["lux"], float) and isinstance(meta["exposure_us"], int)
    assert meta["analogue_gain"] >= 1.0 and 2000 < meta["colour_temperature"] < 10000
    assert meta["auto_exposure"] is True
    assert meta["af_state"] in {"idle", "scanning", "focused", "failed"}
    assert meta["focus_distance_m"] == pytest.approx(1 / meta["lens_position"], rel=1e-3)

    cam.set_controls({"AeEnable": False, "ExposureTime": 10000, "AnalogueGain": 2.0})
    picam2 = newest_picam2(fake)
    assert picam2.last_set_controls == {"AeEnable": False, "ExposureTime": 10000, "AnalogueGain": 2.0}
    assert cam.metadata()["auto_exposure"] is False
    meta = wait_for(lambda: (m := cam.metadata())["exposure_us"] == 10000 and m, message="manual exposure")
    assert meta["analogue_gain"] == 2.0
    assert cam.camera_controls()["ExposureTime"][0] > 0

    with pytest.raises(CameraError, match="not advertised"):
        cam.set_controls({"NoSuchControl": 1})


def test_metadata_before_open_is_all_unknown(fake):
    camera = Picamera2Camera(make_settings(), 0)
    meta = camera.metadata()
    assert meta.pop("auto_exposure") is True and meta.pop("sensor_hdr") is False
    assert meta and all(value is None for value in meta.values()), meta
    with pytest.raises(CameraUnavailable):
        camera.set_controls({"AeEnable": False})


# --------------------------------------------------------------------------------- failures
def test_camera_unplugged_is_reopened_and_streaming_resumes(fake, cam, fast_retries):
    cam.capture_timeout = 0.3
    cam.set_controls({"AeEnable": False})
    cam.start_streaming()
    wait_streaming(cam)
    old = newest_picam2(fake)

    fake.Picamera2.simulate_unplugged = True
    wait_for(lambda: not cam.is_open, message="camera declared gone")
    assert "no frame from the camera" in (cam.last_error or "") or "re-opening" in (cam.last_error or "")
    assert cam.streaming_status().state == "reconnecting"
    assert old.calls_named("cancel_all_and_flush") and old.calls_named("close") and not old.is_open
    wait_for(lambda: "re-opening camera 0 failed" in (cam.last_error or ""), message="a failed re-open attempt")
    with pytest.raises(CameraUnavailable):
        cam.snapshot_jpeg()

    fake.Picamera2.simulate_unplugged = False
    wait_for(lambda: cam.is_open, timeout=5, message="camera re-opened")
    new = newest_picam2(fake)
    assert new is not old
    assert new.calls_named("create_video_configuration")[0][1]["lores"] == {"size": (320, 240), "format": "YUV420"}
    assert new.last_set_controls == {"AeEnable": False}, "controls are re-applied"
    index = wait_for(cam.analysis_frame).frame.index
    wait_for(lambda: cam.analysis_frame().frame.index > index, message="analysis frames again")
    status = wait_for(lambda: (s := cam.streaming_status()).state == "streaming" and s, message="streaming again")
    assert status.reconnects == 1
    assert cam.last_error is None


def test_close_is_idempotent_and_open_works_again(fake):
    camera = Picamera2Camera(make_settings(), 0)
    camera.open()
    camera.open()  # idempotent
    assert len(fake.Picamera2.instances) == 1
    camera.start_streaming()
    wait_streaming(camera)
    picam2 = newest_picam2(fake)
    encoder = picam2.calls_named("start_encoder")[0][0][0]
    camera.close()
    camera.close()
    assert not camera.is_open and not picam2.is_open and not encoder.running
    assert camera.streaming_status().state == "stopped"
    with pytest.raises(CameraUnavailable):
        camera.start_streaming()
    assert not [t for t in threading.enumerate() if t.name.startswith("picamera2-")], "threads ended"

    camera.open()
    try:
        assert len(fake.Picamera2.instances) == 2 and camera.is_open
        wait_for(camera.analysis_frame, message="frames after re-open")
    finally:
        camera.close()


def test_open_errors_become_source_open_error(fake, monkeypatch):
    fake.Picamera2.simulate_no_camera = True
    with pytest.raises(SourceOpenError, match="no Raspberry Pi camera number 0"):
        Picamera2Camera(make_settings(), 0).open()
    fake.Picamera2.simulate_no_camera = False

    holder = fake.Picamera2(0)  # another owner of the camera
    try:
        with pytest.raises(SourceOpenError, match="busy"):
            Picamera2Camera(make_settings(), 0).open()
    finally:
        holder.close()

    with monkeypatch.context() as patch:  # undone before the fake fixture removes the fake
        patch.setitem(sys.modules, "picamera2", None)  # not installed
        with pytest.raises(SourceOpenError, match="picamera2 is not available"):
            Picamera2Camera(make_settings(), 0).open()


# --------------------------------------------------------------------------------- availability
def test_picamera2_available_with_a_camera(fake):
    assert picamera2_available(0) is True
    assert picamera2_available(1) is False
    assert not fake.Picamera2.instances, "checking does not open the camera"


def test_picamera2_available_false_without_a_camera(fake):
    fake.Picamera2.simulate_no_camera = True
    assert picamera2_available(0) is False


def test_picamera2_available_false_when_camera_manager_fails(fake, monkeypatch):
    def broken():
        raise RuntimeError("libcamera: failed to start the camera manager")

    monkeypatch.setattr(fake.Picamera2, "global_camera_info", staticmethod(broken))
    assert picamera2_available(0) is False


def test_picamera2_available_false_when_not_importable(monkeypatch):
    forget_picamera2()
    monkeypatch.setitem(sys.modules, "picamera2", None)
    assert picamera2_available(0) is False


# --------------------------------------------------------------------------------- the fake itself
def test_fake_request_semantics_match_upstream(fake):
    picam2 = fake.Picamera2(0)
    try:
        picam2.configure(picam2.create_video_configuration(
            main={"size": (320, 240), "format": "YUV420"}, lores={"size": (160, 120), "format": "YUV420"}
        ))
        picam2.start()
        request = picam2.capture_request(wait=2)
        assert request.make_array("lores").shape == (180, 192)  # stride 192: padding included
        request.release()
        with pytest.raises(RuntimeError, match="negative ref_count"):
            request.release()
        with pytest.raises(RuntimeError, match="not defined"):
            request.make_array("lores")
        with pytest.raises(AssertionError):
            request.get_metadata()
        with pytest.raises(RuntimeError, match="must be stopped"):
            picam2.configure(picam2.camera_configuration())
        fake.Picamera2.simulate_unplugged = True
        time.sleep(0.1)
        with pytest.raises(TimeoutError):
            with picam2.captured_request(wait=0.2):
                pass
    finally:
        picam2.close()
