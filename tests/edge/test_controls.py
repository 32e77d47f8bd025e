"""Camera controls: the spec's mapping to libcamera, validation, day/night, persistence, focus on faces.

Pi camera behaviour runs against the fake picamera2 (tests/fakes, mirrors picamera2 0.3.36), which
records every ``set_controls`` call: the tests check the exact libcamera names and values each API
change sends, and that they lie inside the ranges the camera advertises (REFERENCE.md).
"""

from __future__ import annotations

import json
import os

import pytest

from pi_camera_service.controls.daynight import DayNightSwitch
from pi_camera_service.controls.manager import (
    CameraControls,
    ControlConflict,
    InvalidControls,
    UnsupportedControls,
    default_store,
)
from pi_camera_service.controls.spec import (
    CONTROLS,
    NOIR_COLOUR_GAINS,
    roi_to_scaler_crop,
    roi_to_zoom,
    scaler_crop_to_roi,
    zoom_to_roi,
)
from pi_camera_service.controls.store import ControlStore
from pi_camera_service.detection.detector import DetectionResult, Face
from pi_camera_service.events import EventLog
from pi_camera_service.sources.picamera2_backend import Picamera2Camera
from tests.support.fake_camera import pi_settings as settings, sent_controls as sent
from tests.support.net import wait_until

pytestmark = pytest.mark.usefixtures("fake_never_leaks")

FULL = (0, 0, 4608, 2592)  # IMX708 pixel array


# ------------------------------------------------------------------------------------ pure logic
def test_zoom_roi_and_scaler_crop_conversions():
    assert zoom_to_roi(2.0) == (0.25, 0.25, 0.5, 0.5)
    assert roi_to_zoom((0.25, 0.25, 0.5, 0.5)) == 2.0
    assert roi_to_scaler_crop((0.25, 0.25, 0.5, 0.5), FULL) == (1152, 648, 2304, 1296)
    assert roi_to_scaler_crop((0.0, 0.0, 1.0, 1.0), FULL) == FULL
    # crop inside an offset ScalerCropMaximum (e.g. a cropped sensor mode) stays inside it
    crop = roi_to_scaler_crop((0.5, 0.5, 0.5, 0.5), (768, 432, 3072, 1728))
    assert crop == (2304, 1296, 1536, 864)
    assert scaler_crop_to_roi(crop, (768, 432, 3072, 1728)) == (0.5, 0.5, 0.5, 0.5)


def test_day_night_switch_does_not_flap_at_dusk():
    sw = DayNightSwitch(night_threshold=5.0, day_threshold=20.0, dwell=30.0)
    # dusk: the level hovers around the night threshold, with brief dips and a passing headlight
    readings = [(0, 30), (10, 6), (20, 4), (30, 6), (40, 4), (50, 4.5), (60, 3), (65, 25), (70, 3)]
    assert [sw.update(level, t) for t, level in readings] == [None] * len(readings)
    assert sw.mode == "day"
    assert sw.update(2.0, 99) is None
    assert sw.update(2.0, 100) == "night"  # 30 s below 5 lux without interruption (since t=70)
    # between the thresholds nothing happens, however long
    assert all(sw.update(12.0, t) is None for t in range(101, 500, 10))
    assert sw.mode == "night"
    assert sw.update(25.0, 500) is None and sw.update(25.0, 529) is None
    assert sw.update(25.0, 530) == "day"


def test_day_night_switch_refuses_inverted_thresholds():
    with pytest.raises(ValueError, match="greater than night_threshold"):
        DayNightSwitch(10.0, 10.0, 5.0)
    with pytest.raises(ValueError, match="dwell"):
        DayNightSwitch(1.0, 10.0, -1.0)


def test_store_is_atomic_and_survives_damage(tmp_path, monkeypatch):
    store = ControlStore(tmp_path / "state" / "camera-controls.json")
    assert store.load() == {}
    store.save({"brightness": 0.2})
    assert store.load() == {"brightness": 0.2}
    assert [p.name for p in store.path.parent.iterdir()] == ["camera-controls.json"]  # no temp file left

    # a failure while writing (disk full) leaves the previous file untouched
    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        store.save({"brightness": 0.9})
    monkeypatch.undo()
    assert store.load() == {"brightness": 0.2}
    assert [p.name for p in store.path.parent.iterdir()] == ["camera-controls.json"]

    store.path.write_text("{ truncated")
    assert store.load() == {}
    assert (store.path.parent / "camera-controls.json.bad").exists()


def test_every_control_is_documented_and_maps_to_libcamera_or_the_service():
    for name, spec in CONTROLS.items():
        assert spec.description, name
        assert spec.libcamera or spec.service, name
        if spec.kind == "enum":
            assert spec.default in spec.choices, name


# ------------------------------------------------------------------------------------ Pi camera (fake)
@pytest.fixture
def pi(fake, tmp_path):
    """An open Picamera2Camera on the fake and its CameraControls (started)."""
    cam = Picamera2Camera(settings(tmp_path), 0)
    cam.open()
    events = EventLog()
    controls = CameraControls(cam, default_store(tmp_path), events, lens=settings(tmp_path).lens_model())
    controls.start()
    yield cam, controls, events
    controls.stop()
    cam.close()


def in_advertised_range(fake, controls: dict) -> None:
    advertised = fake.Picamera2.instances[-1].camera_controls
    for name, value in controls.items():
        lo, hi, _ = advertised[name]
        values = value if isinstance(value, (tuple, list)) else [value]
        if name in ("ScalerCrop", "AfWindows"):
            continue  # rectangles: checked against ScalerCropMaximum by the tests themselves
        for v in values:
            assert lo <= v <= hi, (name, value, (lo, hi))


def test_start_applies_the_whole_state_once_within_advertised_ranges(fake, pi):
    cam, controls, _ = pi
    first = sent(fake)[0]
    assert first["AeEnable"] is True and first["AwbEnable"] is True
    assert first["FrameDurationLimits"] == (33333, 33333)
    assert first["ScalerCrop"] == cam.capabilities().scaler_crop_maximum
    assert first["AfMode"] == 2 and first["AfMetering"] == 0
    # manual values are not sent while AE/AWB/AF are automatic (libcamera keeps its own)
    assert not {"ExposureTime", "AnalogueGain", "ColourGains", "LensPosition"} & first.keys()
    in_advertised_range(fake, first)


CASES = [
    ({"exposure_time": 10000}, {"AeEnable": False, "ExposureTime": 10000}),
    ({"analogue_gain": 4.0}, {"AeEnable": False, "AnalogueGain": 4.0}),
    ({"ae_enable": False}, {"AeEnable": False}),
    ({"frame_duration_limits": [33333, 66666]}, {"FrameDurationLimits": (33333, 66666)}),
    ({"ae_exposure_mode": "short"}, {"AeExposureMode": 1}),
    ({"ae_exposure_mode": "long"}, {"AeExposureMode": 2}),
    ({"ae_metering_mode": "spot"}, {"AeMeteringMode": 1}),
    ({"ae_constraint_mode": "highlight"}, {"AeConstraintMode": 1}),
    ({"ae_flicker": "50hz"}, {"AeFlickerMode": 1, "AeFlickerPeriod": 10000}),
    ({"ae_flicker": "60hz"}, {"AeFlickerMode": 1, "AeFlickerPeriod": 8333}),
    ({"exposure_value": -1.5}, {"ExposureValue": -1.5}),
    ({"awb_enable": False}, {"AwbEnable": False}),
    ({"awb_mode": "daylight"}, {"AwbMode": 5}),
    ({"awb_mode": "incandescent"}, {"AwbMode": 1}),
    ({"colour_gains": [2.0, 1.5]}, {"AwbEnable": False, "ColourGains": (2.0, 1.5)}),
    ({"noir_preset": "infrared"}, {"AwbEnable": False, "ColourGains": NOIR_COLOUR_GAINS["infrared"]}),
    ({"noir_preset": "daylight"}, {"AwbEnable": False, "ColourGains": NOIR_COLOUR_GAINS["daylight"]}),
    ({"af_mode": "manual"}, {"AfMode": 0}),
    ({"lens_position": 2.0}, {"AfMode": 0, "LensPosition": 2.0}),
    ({"focus_distance": 0.5}, {"AfMode": 0, "LensPosition": 2.0}),
    ({"af_range": "macro"}, {"AfRange": 1}),
    ({"af_speed": "fast"}, {"AfSpeed": 1}),
    ({"af_window": [0.25, 0.25, 0.5, 0.5]}, {"AfMetering": 1, "AfWindows": lambda x, y, w, h: [(w // 4, h // 4, w // 2, h // 2)]}),
    ({"brightness": 0.3}, {"Brightness": 0.3}),
    ({"contrast": 1.5}, {"Contrast": 1.5}),
    ({"saturation": 0.0}, {"Saturation": 0.0}),
    ({"sharpness": 4.0}, {"Sharpness": 4.0}),
    ({"noise_reduction": "high_quality"}, {"NoiseReductionMode": 2}),
    ({"zoom": 2.0}, {"ScalerCrop": lambda x, y, w, h: (x + w // 4, y + h // 4, w // 2, h // 2)}),
    ({"roi": [0, 0, 0.5, 0.5]}, {"ScalerCrop": lambda x, y, w, h: (x, y, w // 2, h // 2)}),
    ({"lens_correction": True}, {}),
]


@pytest.mark.parametrize("patch,expected", CASES, ids=[next(iter(p)) + "=" + str(next(iter(p.values()))) for p, _ in CASES])
def test_each_control_sends_exactly_its_libcamera_controls(fake, pi, patch, expected):
    cam, controls, events = pi
    # rectangles are written relative to ScalerCropMaximum (x, y, w, h), which depends on the sensor mode
    x, y, w, h = cam.capabilities().scaler_crop_maximum
    expected = {k: v(x, y, w, h) if callable(v) else v for k, v in expected.items()}
    before = len(sent(fake))
    result = controls.update(patch)
    calls = sent(fake)[before:]
    assert calls == ([expected] if expected else []), calls
    assert result.libcamera == expected
    in_advertised_range(fake, expected)
    for name, value in patch.items():
        state = controls.state[name]
        assert (list(state) if isinstance(state, tuple) else state) == value
    assert events.since(0, "controls")[-1].data["changed"]
    # what was sent reaches the sensor's request (the fake applies controls to the next frames)
    picam2 = fake.Picamera2.instances[-1]
    wait_until(lambda: all(picam2._applied_controls.get(k) == v for k, v in expected.items()), 3, 0.02, "applied")


def test_seed_manual_then_auto_exposure(fake, pi):
    cam, controls, _ = pi
    before = len(sent(fake))
    controls.update({"ae_enable": False, "exposure_time": 20000, "analogue_gain": 2.0})
    controls.update({"ae_enable": True})
    assert sent(fake)[before:] == [{"AeEnable": False, "ExposureTime": 20000, "AnalogueGain": 2.0}, {"AeEnable": True}]
    assert cam.metadata()["auto_exposure"] is True


@pytest.mark.parametrize(
    "patch,words",
    [
        ({"brightness": 1.5}, ["brightness=1.5", "-1..1"]),
        ({"contrast": -1}, ["contrast=-1", "0..32"]),
        ({"exposure_time": 1.5}, ["exposure_time=1.5", "whole number"]),
        ({"exposure_time": 10**12}, ["exposure_time", "..220417486 µs"]),
        ({"analogue_gain": 0.5}, ["analogue_gain=0.5", "16"]),
        ({"awb_mode": "purple"}, ["awb_mode='purple'", "daylight"]),
        ({"ae_flicker": "auto"}, ["ae_flicker='auto'", "off, 50hz, 60hz"]),  # IMX708 advertises AeFlickerMode 0..1
        ({"ae_enable": "yes"}, ["ae_enable='yes'", "true or false"]),
        ({"frame_duration_limits": [66666, 33333]}, ["min must not exceed max"]),
        ({"colour_gains": [1.0]}, ["colour_gains", "[a, b]"]),
        ({"roi": [0.8, 0.0, 0.5, 0.5]}, ["roi", "x + w <= 1"]),
        ({"zoom": 20}, ["zoom=20", "1..8"]),
        ({"lens_position": 99}, ["lens_position=99", "dioptres"]),
        ({"focus_distance": 0.01}, ["focus_distance=0.01"]),
        ({"zoom": 2, "roi": [0, 0, 1, 1]}, ["zoom and roi"]),
        ({"no_such_control": 1}, ["no_such_control: unknown control", "brightness"]),
        ({"night_threshold": 50, "day_threshold": 10}, ["day_threshold (10) must be greater"]),
        ({"hdr": "hdr10"}, ["hdr='hdr10'", "off, sensor"]),
    ],
)
def test_invalid_values_are_refused_and_nothing_is_applied(fake, pi, patch, words):
    cam, controls, _ = pi
    # a valid value in the same request must not be applied either
    patch = {"brightness": 0.25, **patch} if "brightness" not in patch else patch
    state, calls = controls.state, len(sent(fake))
    with pytest.raises(InvalidControls) as info:
        controls.update(patch)
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)
    assert controls.state == state and len(sent(fake)) == calls
    assert not controls.store.path.exists()


def test_af_trigger_needs_auto_mode_and_is_one_shot(fake, pi):
    cam, controls, _ = pi
    with pytest.raises(ControlConflict, match="af_mode=auto"):
        controls.trigger_autofocus()
    controls.update({"af_mode": "auto"})
    before = len(sent(fake))
    controls.trigger_autofocus("start")
    assert sent(fake)[before:] == [{"AfTrigger": 0}]
    assert "AfTrigger" not in cam.controls  # not re-applied after a camera re-open
    assert "af_trigger" not in controls.state
    controls.trigger_autofocus("cancel")
    assert sent(fake)[-1] == {"AfTrigger": 1}


def test_focus_on_faces_points_af_windows_at_the_largest_face(fake, pi):
    cam, controls, _ = pi
    controls.update({"focus_on_faces": True})
    before = len(sent(fake))
    x, y, w, h = cam.capabilities().scaler_crop_maximum
    faces = (Face(10, 10, 20, 20), Face(160, 120, 80, 80))  # 640x480 main stream
    controls.on_detection(DetectionResult(1, 0.0, 0.0, 1.0, 640, 480, faces))
    # AfWindows are in ScalerCropMaximum px: w/640 and h/480 of them per main-stream px
    assert sent(fake)[before:] == [{"AfMetering": 1, "AfWindows": [(w // 4, h // 4, w // 8, h // 6)]}]
    # the same face again (still within FACE_FOCUS_INTERVAL and overlapping): nothing new is sent
    controls.on_detection(DetectionResult(2, 0.0, 0.0, 1.0, 640, 480, faces))
    assert len(sent(fake)) == before + 1
    # zoomed in 2x: the face box maps into the crop
    controls.update({"zoom": 2.0})
    controls._face_sent_at = 0.0
    controls.on_detection(DetectionResult(3, 0.0, 0.0, 1.0, 640, 480, (Face(0, 0, 320, 240),)))
    assert sent(fake)[-1]["AfWindows"] == [(w // 4, h // 4, w // 4, h // 4)]
    # without a face for a while metering goes back to auto
    controls._face_seen_at -= 10
    controls.tick()
    assert sent(fake)[-1] == {"AfMetering": 0}


def test_state_persists_and_is_reapplied_at_the_next_start(fake, tmp_path):
    cam = Picamera2Camera(settings(tmp_path), 0)
    cam.open()
    first = CameraControls(cam, default_store(tmp_path), EventLog())
    first.start()
    first.update({"ae_flicker": "50hz", "brightness": 0.2, "zoom": 2.0, "exposure_time": 8000})
    first.stop()
    cam.close()
    stored = json.loads((tmp_path / "camera-controls.json").read_text())["controls"]
    assert stored["ae_flicker"] == "50hz" and stored["roi"] == [0.25, 0.25, 0.5, 0.5]

    cam = Picamera2Camera(settings(tmp_path), 0)
    cam.open()
    second = CameraControls(cam, default_store(tmp_path), EventLog())
    second.start()
    try:
        assert second.state["brightness"] == 0.2 and second.state["zoom"] == 2.0
        assert second.state["ae_enable"] is False and second.state["exposure_time"] == 8000
        applied = sent(fake)[0]
        assert applied["AeFlickerMode"] == 1 and applied["AeFlickerPeriod"] == 10000
        x, y, w, h = cam.capabilities().scaler_crop_maximum
        assert applied["Brightness"] == 0.2 and applied["ScalerCrop"] == (x + w // 4, y + h // 4, w // 2, h // 2)
        assert applied["AeEnable"] is False and applied["ExposureTime"] == 8000
    finally:
        second.stop()
        cam.close()


def test_a_stored_value_the_camera_no_longer_accepts_is_dropped(fake, tmp_path, caplog):
    ControlStore(tmp_path / "camera-controls.json").save({"brightness": 0.4, "contrast": 99, "bogus": 1})
    cam = Picamera2Camera(settings(tmp_path), 0)
    cam.open()
    controls = CameraControls(cam, default_store(tmp_path), EventLog())
    controls.start()
    try:
        assert controls.state["brightness"] == 0.4 and controls.state["contrast"] == 1.0
        assert "ignoring stored control contrast=99" in caplog.text
    finally:
        controls.stop()
        cam.close()


def test_control_changes_never_restart_the_encoder(fake, pi):
    cam, controls, _ = pi
    cam.start_streaming()
    wait_until(lambda: cam.streaming_status().state == "streaming", 5, 0.02, "streaming")
    picam2 = fake.Picamera2.instances[-1]
    encoders = len(picam2.calls_named("start_encoder"))
    for i in range(20):
        controls.update({"brightness": (i % 5) / 10, "zoom": 1 + i % 3, "ae_flicker": ("50hz", "off")[i % 2]})
    frames = cam.streaming_status().frames_sent
    wait_until(lambda: cam.streaming_status().frames_sent > frames + 10, 5, 0.02, "frames still flowing")
    assert len(picam2.calls_named("start_encoder")) == encoders
    assert not picam2.calls_named("stop_encoder") and not picam2.calls_named("stop_recording")
    assert fake.Picamera2.instances[-1] is picam2  # never re-opened


def test_unsupported_controls_on_a_camera_without_autofocus(fake, tmp_path):
    # an IMX708 always has AF; a sensor without a lens driver does not advertise AfMode
    cam = Picamera2Camera(settings(tmp_path), 0)
    cam.open()
    caps = cam.capabilities()
    for name in ("AfMode", "AfTrigger", "AfWindows", "AfMetering", "AfRange", "AfSpeed", "LensPosition", "AfPause"):
        caps.libcamera_controls.pop(name, None)
    controls = CameraControls(cam, default_store(tmp_path), EventLog())
    try:
        assert controls.describe()["af_mode"]["supported"] is False
        with pytest.raises(UnsupportedControls, match="does not advertise AfMode"):
            controls.update({"af_mode": "auto", "brightness": 0.3})
        assert controls.state["brightness"] == 0.0
    finally:
        cam.close()


# ------------------------------------------------------------------------------------ sensor mode, HDR, NoIR
def test_wide_module_keeps_its_full_field_of_view(fake, pi):
    cam, _, _ = pi
    picam2 = fake.Picamera2.instances[-1]
    (_, kwargs), = picam2.calls_named("create_video_configuration")
    # without this picamera2 picks the 1536x864 mode for a 640x480 stream: a centre crop of the sensor
    assert kwargs["sensor"] == {"output_size": (2304, 1296)}
    assert cam.capabilities().scaler_crop_maximum == FULL


def test_sensor_hdr_reopens_the_camera_and_streaming_resumes(fake, pi):
    import importlib

    sim = importlib.import_module("picamera2._sim")
    cam, controls, events = pi
    cam.start_streaming()
    wait_until(lambda: cam.streaming_status().state == "streaming", 5, 0.02, "streaming")
    old = fake.Picamera2.instances[-1]
    controls.update({"brightness": 0.2})
    result = controls.update({"hdr": "sensor"})
    assert result.restarted and result.restart_ms > 0 and "sensor HDR on" in result.restart_reason
    assert sim.sensor_hdr(0) is True
    new = fake.Picamera2.instances[-1]
    assert new is not old and not old.is_open and new.sensor_hdr is True
    assert new.sensor_resolution == (2304, 1296)
    # the controls in force were re-applied to the new camera, and the encoder restarted on it
    assert new.calls_named("set_controls")[0][0][0]["Brightness"] == 0.2
    wait_until(lambda: new.calls_named("start_encoder"), 5, 0.02, "encoder on the new camera")
    frames = cam.streaming_status().frames_sent
    wait_until(lambda: cam.streaming_status().frames_sent > frames + 10, 5, 0.02, "frames after HDR")
    assert cam.metadata()["sensor_hdr"] is True
    assert events.since(0, "camera_restart")[-1].data["restart_ms"] == result.restart_ms

    result = controls.update({"hdr": "off"})
    assert result.restarted and sim.sensor_hdr(0) is False
    # a change that needs no new configuration does not restart
    assert controls.update({"contrast": 1.2}).restarted is False


def test_sensor_hdr_state_is_restored_at_start(fake, tmp_path):
    import importlib

    sim = importlib.import_module("picamera2._sim")
    ControlStore(tmp_path / "camera-controls.json").save({"hdr": "sensor"})
    cam = Picamera2Camera(settings(tmp_path), 0)
    cam.open()
    controls = CameraControls(cam, default_store(tmp_path), EventLog())
    controls.start()
    try:
        assert sim.sensor_hdr(0) is True and fake.Picamera2.instances[-1].sensor_hdr is True
    finally:
        controls.stop()
        cam.close()
    # the next start with HDR off in the state resets a sensor left in HDR mode
    ControlStore(tmp_path / "camera-controls.json").save({"hdr": "off"})
    cam = Picamera2Camera(settings(tmp_path), 0)
    cam.open()
    try:
        assert sim.sensor_hdr(0) is False
    finally:
        cam.close()


def test_sensor_hdr_refuses_a_main_stream_larger_than_its_mode(fake, tmp_path):
    cam = Picamera2Camera(settings(tmp_path, width=2560, height=1440, detection_width=320), 0)
    cam.open()
    controls = CameraControls(cam, default_store(tmp_path), EventLog())
    try:
        with pytest.raises(InvalidControls, match="at most 2304x1296"):
            controls.update({"hdr": "sensor"})
    finally:
        cam.close()


@pytest.mark.parametrize("fake", ["pisp"], indirect=True)
def test_pi5_isp_hdr_modes(fake, pi):
    cam, controls, _ = pi
    assert controls.describe()["hdr"]["choices"] == [
        "off", "sensor", "single_exposure", "multi_exposure", "multi_exposure_unmerged", "night"]
    before = len(sent(fake))
    result = controls.update({"hdr": "night"})
    assert not result.restarted and sent(fake)[before:] == [{"HdrMode": 4}]
    wait_until(lambda: cam.raw_metadata().get("HdrMode") == 4, 3, 0.02, "HdrMode in metadata")
    assert cam.metadata()["hdr_mode"] == 4


def test_vc4_offers_only_the_sensor_hdr(fake, pi):
    _, controls, _ = pi
    assert controls.describe()["hdr"]["choices"] == ["off", "sensor"]
    with pytest.raises(InvalidControls, match="hdr='night'"):
        controls.update({"hdr": "night"})


def test_noir_night_mode_uses_ir_gains_longer_exposures_and_grey(fake, tmp_path):
    fake.Picamera2.simulate_model = "imx708_wide_noir"
    cam = Picamera2Camera(settings(tmp_path), 0)
    cam.open()
    events = EventLog()
    controls = CameraControls(cam, default_store(tmp_path), events, night_max_frame_duration=100_000)
    controls.start()
    try:
        assert cam.capabilities().noir is True and cam.capabilities().model == "imx708_wide_noir"
        controls.update({"day_night_dwell": 10, "noir_preset": "daylight"})
        fake.Picamera2.simulate_lux = 1.5
        wait_until(lambda: cam.scene_level() == 1.5, 3, 0.02, "dark metadata")
        before = len(sent(fake))
        controls.tick(now=1000.0)
        assert controls.mode == "day"  # not yet: the dwell has not passed
        controls.tick(now=1010.0)
        assert controls.mode == "night"
        assert sent(fake)[before:] == [{
            "FrameDurationLimits": (33333, 100000), "ColourGains": NOIR_COLOUR_GAINS["infrared"], "Saturation": 0.0,
        }]
        event = events.since(0, "day_night")[-1].data
        assert event == {"mode": "night", "reason": "auto", "level": 1.5, "unit": "lux"}
        assert controls.state["saturation"] == 1.0  # the stored state is untouched

        fake.Picamera2.simulate_lux = 400.0
        wait_until(lambda: cam.scene_level() == 400.0, 3, 0.02, "bright metadata")
        before = len(sent(fake))
        controls.tick(now=2000.0)
        controls.tick(now=2010.0)
        assert controls.mode == "day"
        assert sent(fake)[before:] == [{
            "FrameDurationLimits": (33333, 33333), "ColourGains": NOIR_COLOUR_GAINS["daylight"], "Saturation": 1.0,
        }]
    finally:
        controls.stop()
        cam.close()


def test_explicit_tuning_file_is_loaded_by_name(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("LIBCAMERA_RPI_TUNING_FILE", raising=False)
    cam = Picamera2Camera(settings(tmp_path, tuning_file="imx708_wide_noir.json"), 0)
    cam.open()
    try:
        picam2 = fake.Picamera2.instances[-1]
        assert picam2.tuning_used == fake.Picamera2.load_tuning_file("imx708_wide_noir.json")
        assert cam.capabilities().tuning == "imx708_wide_noir.json"
    finally:
        cam.close()
    assert "LIBCAMERA_RPI_TUNING_FILE" not in os.environ  # the temporary tuning file is gone with the camera


def test_noir_forced_loads_the_noir_tuning_and_missing_tuning_is_clear(fake, tmp_path, monkeypatch):
    from pi_camera_service.sources.base import SourceOpenError

    monkeypatch.delenv("LIBCAMERA_RPI_TUNING_FILE", raising=False)
    fake.Picamera2.global_camera_info()  # a camera manager already exists, as after CAMERA_SOURCE=auto
    cam = Picamera2Camera(settings(tmp_path, noir="true"), 0)
    cam.open()
    try:
        assert fake.Picamera2.instances[-1].tuning_used == fake.Picamera2.load_tuning_file("imx708_wide_noir.json")
        assert cam.capabilities().noir is True
    finally:
        cam.close()
    with pytest.raises(SourceOpenError, match="tuning file 'nope.json' not found"):
        Picamera2Camera(settings(tmp_path, tuning_file="nope.json"), 0).open()
