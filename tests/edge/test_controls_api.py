"""Camera control API over HTTP, on the real sample video (software adjustments) and on the Pi camera fake.

On a file source the adjustments act on the frames themselves, so each test looks at the pixels of
the next snapshot; on the Pi camera fake the tests check what reached ``Picamera2.set_controls``.
"""

from __future__ import annotations

import os
import subprocess

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from pi_camera_service.api.app import create_app
from pi_camera_service.config import load_settings
from tests.support.camera_app import first_frame, make_camera_app
from tests.support.net import wait_until
from tests.support.paths import SAMPLE

KEY = "controls-test-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)


def make_app(tmp_path, source=SAMPLE, camera=None, **overrides):
    return make_camera_app(tmp_path, api_key=KEY, source=source, camera=camera, **overrides)


def connect(app):
    client = TestClient(app, headers={"X-API-Key": KEY})
    client.__enter__()
    first_frame(client)
    return client


@pytest.fixture()
def client(tmp_path):
    c = connect(make_app(tmp_path))
    yield c
    c.__exit__(None, None, None)


def snapshot(client) -> np.ndarray:
    r = client.get("/v1/camera/snapshot")
    assert r.status_code == 200
    return cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)


def settle(client, predicate, message):
    """The next frames carry the change within a few frames (the sample runs at 30 fps)."""
    return wait_until(lambda: predicate(snapshot(client)), 5, 0.05, message)


def luma(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)


# --------------------------------------------------------------------------------- reading
def test_controls_list_every_control_with_range_and_support(client):
    body = client.get("/v1/camera/controls").json()
    controls = body["controls"]
    assert controls["brightness"] == {
        "value": 0.0, "default": 0.0, "supported": True, "type": "float", "group": "image", "unit": None,
        "description": controls["brightness"]["description"], "libcamera": ["Brightness"],
        "applied_by": "software", "min": -1.0, "max": 1.0,
    }
    assert controls["awb_mode"]["choices"][:3] == ["auto", "incandescent", "tungsten"]
    for name in ("exposure_time", "analogue_gain", "af_mode", "lens_position", "hdr", "noise_reduction"):
        assert controls[name]["supported"] is False and "has no sensor" in controls[name]["reason"], name
    for name in ("brightness", "contrast", "saturation", "sharpness", "zoom", "roi", "lens_correction", "day_night"):
        assert controls[name]["supported"] is True, name
    assert body["day_night"]["unit"] == "luma" and body["day_night"]["mode"] == "day"


def test_capabilities_of_a_file_source(client):
    caps = client.get("/v1/camera/capabilities").json()
    assert caps["backend"] == "software" and caps["model"] is None and caps["libcamera_controls"] == {}
    assert caps["hdr_modes"] == ["off"] and caps["zoom_presets"][:3] == [1.0, 1.5, 2.0]
    assert "exposure_time" in caps["unsupported"] and "brightness" in caps["supported"]


def test_status_reports_day_night_zoom_and_scene_luma(client):
    body = client.get("/v1/camera/status").json()
    assert body["day_night"]["mode"] == "day" and body["day_night"]["auto"] is True
    assert 20 < body["scene_luma"] < 235
    assert body["zoom"] == 1.0 and body["roi"] == [0.0, 0.0, 1.0, 1.0] and body["hdr"] == "off"
    assert body["lux"] is None and body["af_state"] is None


# --------------------------------------------------------------------------------- pixels
def test_brightness_raises_mean_luma_of_the_next_snapshot(client):
    base = luma(snapshot(client)).mean()
    r = client.patch("/v1/camera/controls", json={"brightness": 0.2})
    assert r.status_code == 200 and r.json()["controls"]["brightness"]["value"] == 0.2
    assert r.json()["restarted"] is False and r.json()["changed"] == {"brightness": 0.2}
    settle(client, lambda img: luma(img).mean() > base + 30, "brighter snapshot")
    client.patch("/v1/camera/controls", json={"brightness": -0.2})
    settle(client, lambda img: luma(img).mean() < base - 30, "darker snapshot")


def test_contrast_and_sharpness_change_the_picture(client):
    base = snapshot(client)
    client.patch("/v1/camera/controls", json={"contrast": 2.0})
    settle(client, lambda img: luma(img).std() > luma(base).std() * 1.2, "more contrast")
    client.patch("/v1/camera/controls", json={"contrast": 1.0, "sharpness": 8.0})

    def laplacian(img):
        return cv2.Laplacian(luma(img), cv2.CV_64F).var()

    settle(client, lambda img: laplacian(img) > laplacian(base) * 1.5, "sharper")


def test_saturation_zero_gives_greyscale(client):
    def spread(img):
        return float(np.abs(img.astype(int) - img.mean(axis=2, keepdims=True)).mean())

    assert spread(snapshot(client)) > 3
    client.patch("/v1/camera/controls", json={"saturation": 0.0})
    settle(client, lambda img: spread(img) < 1.5, "greyscale")


def test_zoom_narrows_the_field_of_view_at_the_same_size(client):
    wide = luma(snapshot(client))
    r = client.patch("/v1/camera/controls", json={"zoom": 2.0})
    assert r.json()["controls"]["roi"]["value"] == [0.25, 0.25, 0.5, 0.5]
    # the centre half of the wide picture, scaled up, is what a 2x zoom shows (the sample moves a little)
    centre = cv2.resize(wide[60:180, 80:240], (320, 240), interpolation=cv2.INTER_LINEAR)

    def zoomed(img):
        y = luma(img)
        return img.shape == (240, 320, 3) and np.corrcoef(y.ravel(), centre.ravel())[0, 1] > 0.8 and (
            np.corrcoef(y.ravel(), wide.ravel())[0, 1] < 0.6)

    settle(client, zoomed, "a 2x zoomed picture of the same size")
    assert client.get("/v1/camera/status").json()["zoom"] == 2.0


def test_lens_correction_changes_snapshots(client):
    before = luma(snapshot(client))
    r = client.patch("/v1/camera/controls", json={"lens_correction": True})
    assert r.status_code == 200
    settle(client, lambda img: np.abs(luma(img) - before).mean() > 5, "undistorted picture")


def test_forced_night_mode_is_greyscale_and_an_event(client):
    r = client.patch("/v1/camera/controls", json={"day_night": "night"})
    assert r.status_code == 200
    settle(client, lambda img: float(np.abs(img.astype(int) - img.mean(axis=2, keepdims=True)).mean()) < 1.5, "grey")
    status = client.get("/v1/camera/status").json()["day_night"]
    assert status["mode"] == "night" and status["auto"] is False
    events = client.get("/v1/events").json()
    assert [e["type"] for e in events["events"]] == ["day_night", "controls"]
    assert events["events"][0]["data"]["mode"] == "night" and events["events"][0]["data"]["reason"] == "manual"
    later = client.get("/v1/events", params={"since": events["last_id"]}).json()
    assert later["events"] == [] and later["last_id"] == events["last_id"]


def test_auto_day_night_switches_on_a_dark_real_video(tmp_path, ffmpeg_available):
    dark = tmp_path / "dark.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=0x181818:s=320x240:r=15", "-t", "2",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(dark)], check=True, timeout=60)
    c = connect(make_app(tmp_path, source=dark))
    try:
        r = c.patch("/v1/camera/controls", json={"day_night_dwell": 0, "night_threshold": 40, "day_threshold": 60})
        assert r.status_code == 200
        app = c.app
        app.state.controls.tick()
        status = c.get("/v1/camera/status").json()["day_night"]
        assert status["mode"] == "night" and status["level"] < 40
        event = c.get("/v1/events", params={"type": "day_night"}).json()["events"][-1]
        assert event["data"]["reason"] == "auto" and event["data"]["unit"] == "luma"
    finally:
        c.__exit__(None, None, None)


# --------------------------------------------------------------------------------- refusals
def test_sensor_only_controls_are_409_and_nothing_is_applied(client):
    r = client.patch("/v1/camera/controls", json={"brightness": 0.5, "exposure_time": 10000})
    assert r.status_code == 409
    body = r.json()
    assert "exposure_time is not supported here" in body["detail"] and "has no sensor" in body["detail"]
    assert body["errors"][0]["control"] == "exposure_time"
    assert client.get("/v1/camera/controls").json()["controls"]["brightness"]["value"] == 0.0

    for path, payload in [("/v1/camera/manual_exposure", {"exposure_us": 20000, "gain": 2.0}),
                          ("/v1/camera/auto_exposure", {"enabled": True}),
                          ("/v1/camera/awb", {"enabled": False}),
                          ("/v1/camera/autofocus", {"action": "start"})]:
        r = client.post(path, json=payload)
        assert r.status_code == 409, (path, r.status_code, r.text)
        assert "not supported here" in r.json()["detail"]


def test_invalid_values_are_422_naming_control_value_and_range(client):
    r = client.patch("/v1/camera/controls", json={"brightness": 0.5, "contrast": 99, "zoom": "big"})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "contrast=99: out of range; allowed 0..32" in detail
    assert "zoom='big': expected a number" in detail
    assert {e["control"] for e in r.json()["errors"]} == {"contrast", "zoom"}
    assert client.get("/v1/camera/controls").json()["controls"]["brightness"]["value"] == 0.0

    assert client.patch("/v1/camera/controls", json={"nope": 1}).status_code == 422
    assert client.patch("/v1/camera/controls", json=[1, 2]).status_code == 422
    r = client.post("/v1/camera/auto_exposure", json={"enabled": "maybe"})
    assert r.status_code == 422 and "enabled" in r.json()["detail"]


# --------------------------------------------------------------------------------- persistence
def test_controls_survive_a_restart_and_apply_to_frames_again(tmp_path):
    c = connect(make_app(tmp_path))
    try:
        base = luma(snapshot(c)).mean()
        assert c.patch("/v1/camera/controls", json={"brightness": 0.3, "saturation": 0.0}).status_code == 200
    finally:
        c.__exit__(None, None, None)
    stored = (tmp_path / "camera-controls.json").read_text()
    assert '"brightness": 0.3' in stored

    c = connect(make_app(tmp_path))
    try:
        controls = c.get("/v1/camera/controls").json()["controls"]
        assert controls["brightness"]["value"] == 0.3 and controls["saturation"]["value"] == 0.0
        settle(c, lambda img: luma(img).mean() > base + 40, "brightness re-applied after restart")
    finally:
        c.__exit__(None, None, None)


# --------------------------------------------------------------------------------- Pi camera over HTTP
def test_seed_endpoints_on_the_pi_camera_send_libcamera_controls(fake, tmp_path):
    from pi_camera_service.sources.picamera2_backend import Picamera2Camera

    settings = load_settings(width=640, height=480, api_key=KEY, state_dir=tmp_path, stream_on_start=False,
                             detection_enabled=False)
    app = create_app(settings, camera=Picamera2Camera(settings, 0))
    c = connect(app)
    try:
        picam2 = fake.Picamera2.instances[-1]

        def last():
            return picam2.calls_named("set_controls")[-1][0][0]

        r = c.post("/v1/camera/manual_exposure", json={"exposure_us": 20000, "gain": 2.0})
        assert r.status_code == 200, r.text
        assert last() == {"AeEnable": False, "ExposureTime": 20000, "AnalogueGain": 2.0}
        assert r.json()["libcamera_controls_sent"] == {"AeEnable": False, "ExposureTime": 20000, "AnalogueGain": 2.0}
        wait_until(lambda: c.get("/v1/camera/status").json()["exposure_us"] == 20000, 3, 0.05, "exposure reported")
        assert c.get("/v1/camera/status").json()["auto_exposure"] is False

        assert c.post("/v1/camera/auto_exposure", json={"enabled": True}).status_code == 200
        assert last() == {"AeEnable": True}
        assert c.post("/v1/camera/awb", json={"enabled": False}).status_code == 200
        assert last() == {"AwbEnable": False}

        caps = c.get("/v1/camera/capabilities").json()
        shortest = caps["libcamera_controls"]["ExposureTime"]["min"]
        r = c.post("/v1/camera/manual_exposure", json={"exposure_us": shortest - 1, "gain": 2.0})
        assert r.status_code == 422 and f"exposure_time={shortest - 1}: out of range" in r.json()["detail"]

        assert caps["backend"] == "picamera2" and caps["model"].startswith("imx708")
        assert caps["libcamera_controls"]["Brightness"] == {"min": -1.0, "max": 1.0, "default": 0.0}
        assert caps["pixel_array_size"] == [4608, 2592]
        x, y, w, h = caps["scaler_crop_maximum"]
        assert 0 <= x and 0 <= y and x + w <= 4608 and y + h <= 2592
        assert "sensor" in caps["hdr_modes"]

        status = c.get("/v1/camera/status").json()
        for key in ("lux", "exposure_us", "analogue_gain", "colour_temperature", "lens_position", "focus_fom",
                    "af_state", "sensor_temperature", "scaler_crop"):
            assert status[key] is not None, key
        assert status["day_night"]["unit"] == "lux"
    finally:
        c.__exit__(None, None, None)
