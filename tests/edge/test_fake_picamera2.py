"""The fake picamera2's IMX708 control surface (tests/fakes/picamera2) behaves as documented.

Covers what the fake mirrors from picamera2 0.3.36 / libcamera (the IMX708 sensor-HDR helper, tuning
files, the model switch, properties and limits, ScalerCrop adjustment, the autofocus state machine,
ISP HDR metadata, the Lux switch, Brightness/Saturation on the pixels). Each test imports a fresh copy
of the fake (so its switches start clean) and removes it from ``sys.modules`` afterwards.
"""

from __future__ import annotations

import importlib
import io
import json
import os
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from tests.support.fake_camera import forget_picamera2
from tests.support.paths import FAKES
TUNING_ENV = "LIBCAMERA_RPI_TUNING_FILE"
HDR_BUSY = "IMX708: Unable to set HDR control in the device node: [Errno 16] Device or resource busy"


pytestmark = pytest.mark.usefixtures("fake_never_leaks")


def _import_fake(platform: str, monkeypatch) -> SimpleNamespace:
    monkeypatch.setenv("FAKE_PICAMERA2_PLATFORM", platform)
    forget_picamera2()
    monkeypatch.syspath_prepend(str(FAKES))
    picamera2 = importlib.import_module("picamera2")
    assert Path(picamera2.__file__).is_relative_to(FAKES), "the fake must shadow any real picamera2"
    return SimpleNamespace(
        platform=platform,
        Picamera2=picamera2.Picamera2,
        IMX708=importlib.import_module("picamera2.devices").IMX708,
        sim=importlib.import_module("picamera2._sim"),
    )


@pytest.fixture(params=["vc4", "pisp"])
def fake(request, monkeypatch):
    """A freshly imported fake for ``vc4`` (Pi 4) or ``pisp`` (Pi 5); LIBCAMERA_RPI_TUNING_FILE is
    restored afterwards (Picamera2's ``tuning`` argument sets it in this process)."""
    monkeypatch.setenv(TUNING_ENV, "")  # records the original value for undo ...
    monkeypatch.delenv(TUNING_ENV)  # ... and starts without it
    ns = _import_fake(request.param, monkeypatch)
    yield ns
    for cam in list(ns.Picamera2.instances):
        cam.close()
    forget_picamera2()


def start(picam2, size=(1280, 720), **kwargs):
    """Configure a YUV420 video stream of ``size`` and start the camera."""
    config = picam2.create_video_configuration(main={"size": size, "format": "YUV420"}, **kwargs)
    picam2.configure(config)
    picam2.start()
    return picam2


def until(picam2, predicate, limit: int = 150, what: str = "metadata") -> list[dict]:
    """Metadata of successive frames up to and including the first for which ``predicate`` holds."""
    seen = []
    for _ in range(limit):
        md = picam2.capture_metadata(wait=5)
        seen.append(md)
        if predicate(md):
            return seen
    raise AssertionError(f"no frame with {what} in {limit} frames; last: {seen[-1]}")


def frames(picam2, n: int) -> list[dict]:
    return [picam2.capture_metadata(wait=5) for _ in range(n)]


# --- IMX708 sensor HDR -------------------------------------------------------------------------


def test_sensor_hdr_refused_while_started_applied_while_closed(fake, capsys):
    Picamera2, IMX708, sim = fake.Picamera2, fake.IMX708, fake.sim
    cam = start(Picamera2(0))

    with IMX708(0) as imx:
        assert imx.device_fd is not None and not imx.device_fd.closed
        imx.set_sensor_hdr_mode(True)  # the driver has the control grabbed while streaming: EBUSY
    assert capsys.readouterr().out.strip() == HDR_BUSY
    assert sim.sensor_hdr(0) is False
    assert Picamera2._cm.reset_count == 1  # upstream resets the camera manager even when it failed

    cam.close()
    with IMX708(0) as imx:
        imx.set_sensor_hdr_mode(True)
    assert capsys.readouterr().out == ""
    assert sim.sensor_hdr(0) is True
    assert Picamera2._cm.reset_count == 2

    hdr = Picamera2(0)
    assert hdr.sensor_hdr is True
    assert hdr.sensor_resolution == (2304, 1296)
    assert hdr.sensor_modes == [
        {"format": "SRGGB10_CSI2P", "unpacked": "SRGGB10", "bit_depth": 10, "size": (2304, 1296),
         "fps": 30.0, "crop_limits": (0, 0, 4608, 2592), "exposure_limits": (6, 220417486, 20000)}
    ]
    start(hdr)
    assert hdr.camera_config["sensor"] == {"bit_depth": 10, "output_size": (2304, 1296)}
    assert hdr.camera_properties["ScalerCropMaximum"] == (0, 0, 4608, 2592)
    assert hdr.camera_controls["FrameDurationLimits"][0] == 33331  # 30 fps at most
    hdr.close()

    with IMX708(0) as imx:
        imx.set_sensor_hdr_mode(False)
    plain = Picamera2(0)
    assert plain.sensor_hdr is False and len(plain.sensor_modes) == 3
    plain.close()


def test_sensor_hdr_while_open_but_stopped_needs_a_new_picamera2(fake):
    """The driver accepts the control when not streaming, but an open Picamera2 keeps the modes it
    cached; only a Picamera2 opened afterwards sees the HDR mode (upstream's docstring says so)."""
    Picamera2, IMX708, sim = fake.Picamera2, fake.IMX708, fake.sim
    cam = Picamera2(0)
    with IMX708(0) as imx:
        imx.set_sensor_hdr_mode(True)
    assert sim.sensor_hdr(0) is True
    assert cam.sensor_hdr is False and [m["size"] for m in cam.sensor_modes] == [(1536, 864), (2304, 1296), (4608, 2592)]
    cam.close()
    again = Picamera2(0)
    assert again.sensor_hdr is True and [m["size"] for m in again.sensor_modes] == [(2304, 1296)]


def test_imx708_lookup_and_close(fake):
    Picamera2, IMX708 = fake.Picamera2, fake.IMX708
    # Without camera_num upstream looks for Model == "imx708" exactly: not the Wide module.
    with pytest.raises(RuntimeError, match=r"^IMX708: Requested IMX708 camera device not be found$"):
        IMX708()
    with pytest.raises(RuntimeError, match=r"^IMX708: Requested IMX708 camera device not be found$"):
        IMX708(1)
    Picamera2.simulate_model = "imx708"
    imx = IMX708()
    assert imx.device_fd.name.startswith("/dev/v4l-subdev")
    imx.close()
    imx.close()  # idempotent
    assert imx.device_fd is None
    with pytest.raises(TypeError):
        imx.set_sensor_hdr_mode(True)  # upstream: fcntl.ioctl(None, ...)
    for model in ("imx708_wide", "imx708_noir", "imx708_wide_noir"):
        Picamera2.simulate_model = model
        with IMX708(0) as imx:
            node = imx.device_fd
        assert node.closed and imx.device_fd is None
    Picamera2.simulate_model = "imx219"  # another driver: no imx708 subdev
    with pytest.raises(RuntimeError, match=r"^IMX708: Requested camera v4l2 device node not found$"):
        IMX708(0)
    Picamera2.simulate_model = None
    Picamera2.simulate_no_camera = True
    with pytest.raises(RuntimeError, match="not be found"):
        IMX708(0)


# --- tuning --------------------------------------------------------------------------------------


def test_load_tuning_file_search_and_builtin_table(fake, tmp_path):
    Picamera2 = fake.Picamera2
    target = {"vc4": "bcm2835", "pisp": "pisp"}[fake.platform]
    for name in ("imx708.json", "imx708_wide.json", "imx708_noir.json", "imx708_wide_noir.json"):
        tuning = Picamera2.load_tuning_file(name)
        assert tuning["version"] == 2.0 and tuning["target"] == target
        assert Picamera2.find_tuning_algo(tuning, "rpi.black_level") == {"black_level": 4096}
        assert Picamera2.find_tuning_algo(tuning, "rpi.awb")["bayes"] == (0 if "noir" in name else 1)
        assert Picamera2.find_tuning_algo(tuning, "rpi.af")["map"][-2] == (35.0 if "wide" in name else 15.0)
    first = Picamera2.load_tuning_file("imx708.json")
    first["algorithms"].clear()
    assert Picamera2.load_tuning_file("imx708.json")["algorithms"], "each call returns a fresh dict"
    with pytest.raises(RuntimeError, match=r"^Tuning file not found$"):
        Picamera2.load_tuning_file("no_such_sensor.json")
    # With dir, only that directory is searched (the built-in table is not consulted).
    with pytest.raises(RuntimeError, match=r"^Tuning file not found$"):
        Picamera2.load_tuning_file("imx708.json", dir=str(tmp_path))
    (tmp_path / "imx708.json").write_text(json.dumps({"version": 2.0, "target": "x", "algorithms": []}))
    assert Picamera2.load_tuning_file("imx708.json", dir=str(tmp_path))["target"] == "x"


def test_tuning_argument_str_dict_none(fake, tmp_path):
    Picamera2 = fake.Picamera2
    target = {"vc4": "bcm2835", "pisp": "pisp"}[fake.platform]

    cam = Picamera2(0)  # None: the variable is removed, the model's default tuning applies
    assert TUNING_ENV not in os.environ
    assert cam.tuning is None
    assert cam.tuning_file_used == f"/usr/share/libcamera/ipa/rpi/{fake.platform}/imx708_wide.json"
    assert cam.tuning_used["target"] == target
    cam.close()

    noir = Picamera2.load_tuning_file("imx708_wide_noir.json")
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(noir))
    cam = Picamera2(0, tuning=str(path))
    assert os.environ[TUNING_ENV] == str(path)
    assert cam.tuning == str(path) and cam.tuning_file_used == str(path) and cam.tuning_used == noir
    cam.close()

    custom = Picamera2.load_tuning_file("imx708_wide.json")
    Picamera2.find_tuning_algo(custom, "rpi.awb")["bayes"] = 0
    cam = Picamera2(0, tuning=custom)
    temp = os.environ[TUNING_ENV]
    assert temp == cam.tuning_file_used and not os.path.exists(temp), "temporary file deleted after __init__"
    assert cam.tuning is custom and cam.tuning_used == custom
    cam.close()

    cam = Picamera2(0)
    assert TUNING_ENV not in os.environ and cam.tuning_file_used.endswith("/imx708_wide.json")
    cam.close()


def test_tuning_read_only_by_a_new_camera_manager(fake, tmp_path):
    """libcamera reads the tuning file when the camera manager enumerates cameras; picamera2 keeps
    that manager while a camera is open or after a bare global_camera_info() call."""
    Picamera2 = fake.Picamera2
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(Picamera2.load_tuning_file("imx708_noir.json")))

    Picamera2.global_camera_info()  # creates (and keeps) a manager without the variable
    cam = Picamera2(0, tuning=str(path))
    assert cam.tuning_file_used.endswith("/imx708_wide.json"), "tuning ignored: the manager already existed"
    cam.close()  # last camera closed: the manager is dropped
    cam = Picamera2(0, tuning=str(path))
    assert cam.tuning_file_used == str(path)
    cam.close()


def test_bad_tuning_file_leaves_no_camera(fake, tmp_path):
    Picamera2 = fake.Picamera2
    other = {"vc4": "pisp", "pisp": "bcm2835"}[fake.platform]
    wrong_target = tmp_path / "wrong.json"
    wrong_target.write_text(json.dumps({"version": 2.0, "target": other, "algorithms": []}))
    with pytest.raises(IndexError):
        Picamera2(0, tuning=str(wrong_target))
    assert Picamera2.global_camera_info() == []
    os.environ.pop(TUNING_ENV)
    assert Picamera2.global_camera_info() == [], "the manager without a camera is kept"
    Picamera2._cm.reset()
    assert len(Picamera2.global_camera_info()) == 1

    os.environ[TUNING_ENV] = "imx708_noir.json"  # a bare name is a path relative to the cwd
    Picamera2._cm.reset()
    assert Picamera2.global_camera_info() == []
    with pytest.raises(IndexError):
        Picamera2(0)  # removes the variable, but the cached manager has no camera
    Picamera2._cm.reset()
    Picamera2(0).close()


# --- model switch and properties -------------------------------------------------------------------


@pytest.mark.parametrize("model", [None, "imx708", "imx708_wide", "imx708_noir", "imx708_wide_noir"])
def test_simulate_model(fake, model):
    Picamera2 = fake.Picamera2
    Picamera2.simulate_model = model
    expected = model or "imx708_wide"
    assert Picamera2.global_camera_info()[0]["Model"] == expected
    cam = Picamera2(0)
    assert cam.camera_properties["Model"] == expected
    assert cam.tuning_file_used.endswith(f"/{expected}.json")
    assert Picamera2.find_tuning_algo(cam.tuning_used, "rpi.awb")["bayes"] == (0 if "noir" in expected else 1)
    start(cam)
    assert cam.camera_controls["LensPosition"] == (0.0, 35.0 if "wide" in expected else 15.0, 1.0)


def test_switches_reset_on_reimport(fake, monkeypatch):
    fake.Picamera2.simulate_model = "imx708_noir"
    fake.Picamera2.simulate_lux = 1.0
    fake.Picamera2.simulate_sensor_temperature = 70.0
    fake.sim.set_sensor_hdr(0, True)
    fake.Picamera2._cm.reset()
    again = _import_fake(fake.platform, monkeypatch)
    assert again.Picamera2 is not fake.Picamera2
    assert again.Picamera2.simulate_model is None
    assert again.Picamera2.simulate_lux is None and again.Picamera2.simulate_sensor_temperature is None
    assert again.sim.sensor_hdr(0) is False
    assert again.Picamera2._cm.reset_count == 0


def test_properties_and_sensor_mode_choice(fake):
    cam = fake.Picamera2(0)
    props = cam.camera_properties
    assert props["ScalerCropMaximum"] == (0, 0, 0, 0), "libcamera sets it only when a mode is configured"
    assert props["UnitCellSize"] == (1400, 1400)
    assert props["PixelArraySize"] == (4608, 2592)
    assert props["PixelArrayActiveAreas"] == [(16, 24, 4608, 2592)]

    cam.configure(cam.create_video_configuration(main={"size": (1280, 720)}))
    assert cam.camera_config["sensor"] == {"bit_depth": 10, "output_size": (1536, 864)}
    assert cam.camera_properties["ScalerCropMaximum"] == (768, 432, 3072, 1728)  # 2x2 binned and cropped
    assert cam.camera_controls["ScalerCrop"][1:] == ((768, 432, 3072, 1728), (768, 432, 3072, 1728))

    cam.configure(cam.create_video_configuration(main={"size": (1280, 720)}, sensor={"output_size": (2304, 1296)}))
    assert cam.camera_config["sensor"]["output_size"] == (2304, 1296)
    assert cam.camera_properties["ScalerCropMaximum"] == (0, 0, 4608, 2592)

    cam.configure(cam.create_video_configuration(main={"size": (1920, 1080)}))
    assert cam.camera_properties["ScalerCropMaximum"] == (0, 0, 4608, 2592)

    modes = cam.sensor_modes
    assert [(m["size"], m["fps"], m["crop_limits"]) for m in modes] == [
        ((1536, 864), 120.13, (768, 432, 3072, 1728)),
        ((2304, 1296), 56.03, (0, 0, 4608, 2592)),
        ((4608, 2592), 14.35, (0, 0, 4608, 2592)),
    ]
    assert cam.camera_config["sensor"]["output_size"] == (4608, 2592), "sensor_modes leaves the last mode configured"
    assert cam.camera_config["use_case"] == "preview"


def test_frame_duration_limited_by_sensor_mode(fake):
    cam = start(fake.Picamera2(0), size=(4608, 2592), controls={"FrameRate": 120})
    assert all(md["FrameDuration"] == 69669 for md in frames(cam, 3))


def test_unadvertised_control_raises(fake):
    cam = start(fake.Picamera2(0))
    with pytest.raises(RuntimeError, match=r"^Control Bogus is not advertised by libcamera$"):
        cam.set_controls({"Bogus": 1})
    assert cam.last_set_controls == {"Bogus": 1} and cam.calls_named("set_controls") == [(({"Bogus": 1},), {})]


# --- ScalerCrop ------------------------------------------------------------------------------------


def test_scaler_crop_clamped_like_the_pipeline(fake):
    cam = start(fake.Picamera2(0))
    (mx, my, mw, mh) = cam.camera_properties["ScalerCropMaximum"]
    min_rect, max_rect, default = cam.camera_controls["ScalerCrop"]
    assert max_rect == (mx, my, mw, mh) and default == (768, 432, 3072, 1728)
    assert until(cam, lambda md: md["ScalerCrop"] == default)

    inside = (1000, 600, 1600, 900)
    cam.set_controls({"ScalerCrop": inside})
    until(cam, lambda md: md["ScalerCrop"] == inside, what=f"ScalerCrop {inside}")

    cam.set_controls({"ScalerCrop": (-500, -500, 10000, 10000)})  # too big and outside: the maximum
    until(cam, lambda md: md["ScalerCrop"] == max_rect, what="ScalerCrop clamped to the maximum")

    cam.set_controls({"ScalerCrop": (4000, 2000, 800, 450)})  # partly outside: moved, not shrunk
    md = until(cam, lambda md: md["ScalerCrop"][2:] == (800, 450), what="moved crop")[-1]
    x, y, w, h = md["ScalerCrop"]
    assert (x + w, y + h) == (mx + mw, my + mh)

    cam.set_controls({"ScalerCrop": (1000, 600, 4, 4)})  # too small: grown about its centre
    md = until(cam, lambda md: md["ScalerCrop"][2] < 800, what="grown crop")[-1]
    x, y, w, h = md["ScalerCrop"]
    side = max(min_rect[2], min_rect[3])  # the minimum, grown to the request's 1:1 aspect ratio
    assert (w, h) == (side, side)
    assert mx <= x and x + w <= mx + mw and my <= y and y + h <= my + mh
    assert abs((x + w / 2) - 1002) <= 2 and abs((y + h / 2) - 602) <= 2

    cam.set_controls({"ScalerCrop": (0, 0, 0, 0)})  # empty: libcamera treats it as (0, 0, 1, 1)
    until(cam, lambda md: md["ScalerCrop"] == (mx, my, side, side), what="minimum crop in the corner")


# --- autofocus -------------------------------------------------------------------------------------

IDLE, SCANNING, FOCUSED, FAILED = 0, 1, 2, 3


def test_af_manual_moves_lens_and_stays_idle(fake):
    cam = start(fake.Picamera2(0))
    assert until(cam, lambda md: md["LensPosition"] == 1.0)  # the default position, lens "map" default
    cam.set_controls({"LensPosition": 10.0})
    seen = until(cam, lambda md: md["LensPosition"] == 10.0, what="lens at 10 dioptres")
    assert {md["AfState"] for md in seen} == {IDLE}
    assert any(1.0 < md["LensPosition"] < 10.0 for md in seen), "the lens slews over several frames"
    cam.set_controls({"LensPosition": 99.0})
    until(cam, lambda md: md["LensPosition"] == 35.0, what="lens clamped to the maximum")


def test_af_auto_trigger_is_one_shot(fake):
    cam = start(fake.Picamera2(0))
    cam.set_controls({"AfMode": 1})
    assert {md["AfState"] for md in frames(cam, 10)} == {IDLE}, "Auto without a trigger stays Idle"
    unfocused = frames(cam, 1)[0]["FocusFoM"]

    cam.set_controls({"AfTrigger": 0})
    seen = until(cam, lambda md: md["AfState"] == FOCUSED, what="Focused")
    states = [md["AfState"] for md in seen]
    assert SCANNING in states and states[-1] == FOCUSED
    after = frames(cam, 30)
    assert {md["AfState"] for md in after} == {FOCUSED}, "the trigger acted once"
    assert after[-1]["FocusFoM"] > unfocused
    assert after[-1]["LensPosition"] == pytest.approx(fake.sim.AfSim.subject_dioptres)

    cam.set_controls({"AfTrigger": 0})
    until(cam, lambda md: md["AfState"] == SCANNING, what="second scan")
    cam.set_controls({"AfTrigger": 1})  # cancel
    until(cam, lambda md: md["AfState"] == IDLE, what="Idle after cancel")
    assert {md["AfState"] for md in frames(cam, 15)} == {IDLE}

    cam.set_controls({"AfRange": 1, "AfTrigger": 0})  # macro: the subject is too far
    until(cam, lambda md: md["AfState"] == FAILED, what="Failed in macro range")


def test_af_trigger_ignored_outside_auto_and_mode_with_trigger(fake):
    cam = start(fake.Picamera2(0))
    cam.set_controls({"AfTrigger": 0})  # Manual: ignored
    assert {md["AfState"] for md in frames(cam, 15)} == {IDLE}
    cam.set_controls({"AfMode": 1, "AfTrigger": 0})  # together: straight to Scanning
    until(cam, lambda md: md["AfState"] == FOCUSED, what="Focused")
    cam.set_controls({"AfMode": 0})
    assert until(cam, lambda md: md["AfState"] == IDLE)


def test_af_continuous_rescans_when_windows_change(fake):
    cam = start(fake.Picamera2(0))
    cam.set_controls({"AfMode": 2})
    seen = until(cam, lambda md: md["AfState"] == FOCUSED, what="Focused")
    assert SCANNING in [md["AfState"] for md in seen]
    assert {md["AfState"] for md in frames(cam, 20)} == {FOCUSED}

    window = [(2000, 1000, 600, 600)]  # ScalerCropMaximum px
    cam.set_controls({"AfMetering": 1, "AfWindows": window})
    seen = until(cam, lambda md: md["AfState"] == SCANNING, what="re-scan")
    until(cam, lambda md: md["AfState"] == FOCUSED, what="Focused again")
    assert cam.last_af_metering == 1 and cam.last_af_windows == window

    cam.set_controls({"AfWindows": window})  # unchanged: no new scan
    assert {md["AfState"] for md in frames(cam, 20)} == {FOCUSED}
    cam.set_controls({"AfWindows": (100, 100, 400, 400)})  # a single rectangle is accepted too
    until(cam, lambda md: md["AfState"] == SCANNING, what="re-scan for a new window")
    assert cam.last_af_windows == [(100, 100, 400, 400)]

    until(cam, lambda md: md["AfState"] == FOCUSED, what="Focused")
    cam.set_controls({"AfPause": 0})
    until(cam, lambda md: md["AfPauseState"] == 2, what="Paused")
    cam.set_controls({"AfWindows": [(0, 0, 300, 300)]})
    assert {(md["AfState"], md["AfPauseState"]) for md in frames(cam, 15)} == {(FOCUSED, 2)}
    cam.set_controls({"AfPause": 2})
    until(cam, lambda md: md["AfPauseState"] == 0 and md["AfState"] == SCANNING, what="resumed scan")


# --- ISP HDR, Lux, temperature ------------------------------------------------------------------------


def test_hdr_mode_metadata(fake):
    cam = start(fake.Picamera2(0))
    assert all("HdrMode" not in md and "HdrChannel" not in md for md in frames(cam, 3))
    cam.set_controls({"HdrMode": 1})  # MultiExposureUnmerged: every platform
    until(cam, lambda md: md.get("HdrMode") == 1, what="HdrMode 1")
    assert {md["HdrChannel"] for md in frames(cam, 6)} == {1, 3}  # short, long alternately
    cam.set_controls({"HdrMode": 3})  # SingleExposure: Pi 5 tuning only
    if fake.platform == "pisp":
        until(cam, lambda md: md.get("HdrMode") == 3, what="HdrMode 3")
        assert {md["HdrChannel"] for md in frames(cam, 4)} == {1}
    else:
        assert {md.get("HdrMode") for md in frames(cam, 8)} == {1}, "ignored: no such mode in the vc4 tuning"
    cam.set_controls({"HdrMode": 0})
    until(cam, lambda md: "HdrMode" not in md and "HdrChannel" not in md, what="HDR off")


def test_lux_and_sensor_temperature_switches(fake):
    Picamera2 = fake.Picamera2
    cam = start(Picamera2(0))
    simulated = frames(cam, 2)
    assert all(300 < md["Lux"] < 400 for md in simulated)
    Picamera2.simulate_lux = 2.5
    Picamera2.simulate_sensor_temperature = 63.0
    md = until(cam, lambda md: md["Lux"] == 2.5, what="Lux 2.5")[-1]
    assert md["SensorTemperature"] == 63.0
    Picamera2.simulate_lux = None
    until(cam, lambda md: md["Lux"] > 300, what="simulated Lux")


# --- Brightness / Saturation on the pixels ---------------------------------------------------------


def _yuv_planes(array: np.ndarray, width: int, height: int):
    y = array[:height, :width]
    chroma = array.reshape(array.shape[0] * 2, array.shape[1] // 2)
    return y, chroma[2 * height : 2 * height + height // 2, : width // 2], chroma[2 * height + height // 2 :, : width // 2]


def _grab(cam, check):
    for _ in range(60):
        with cam.captured_request(wait=5) as request:
            if check(request.get_metadata()):
                return request.make_array("main"), request
    raise AssertionError("no matching frame")


def test_brightness_and_saturation_change_the_frames(fake):
    width, height = 640, 360
    cam = start(fake.Picamera2(0), size=(width, height))
    base, _ = _grab(cam, lambda md: True)
    y0, u0, _ = _yuv_planes(base, width, height)
    assert y0.min() < 64 and (u0 != 128).any()

    cam.set_controls({"Brightness": 0.25})
    for _ in range(60):
        y, _, _ = _yuv_planes(cam.capture_array("main", wait=5), width, height)
        if y.min() >= 64:
            break
    assert y.min() >= 64 and y.max() == 255  # round(255 * 0.25) levels added, clipped at 255

    cam.set_controls({"Brightness": -1.0, "Saturation": 0.0})
    for _ in range(60):
        y, u, v = _yuv_planes(cam.capture_array("main", wait=5), width, height)
        if y.max() == 0:
            break
    assert y.max() == 0 and (u == 128).all() and (v == 128).all()

    cam.set_controls({"Brightness": 1.0})
    for _ in range(60):
        with cam.captured_request(wait=5) as request:
            y, _, _ = _yuv_planes(request.make_array("main"), width, height)
            if y.min() == 255:
                jpeg = io.BytesIO()
                request.save("main", jpeg, format="jpeg")
                break
    snapshot = cv2.imdecode(np.frombuffer(jpeg.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert snapshot.shape == (height, width) and snapshot.mean() > 250
