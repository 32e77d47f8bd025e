"""The control map both ways (controls/libcamera_map.py) against the libcamera names the fake picamera2 mirrors."""

from __future__ import annotations

import pytest

from pi_camera_service.config import load_settings
from pi_camera_service.controls.libcamera_map import METADATA, ONE_SHOT, api_names, from_metadata, mapping
from pi_camera_service.controls.spec import CONTROLS
from tests.support.net import wait_until

pytestmark = pytest.mark.usefixtures("fake_never_leaks")


def test_every_name_in_the_map_is_one_libcamera_uses(fake):
    from pi_camera_service.sources.picamera2_backend import Picamera2Camera

    cam = Picamera2Camera(load_settings(_env_file=None, width=640, height=480, detection_width=320), 0)
    cam.open()
    try:
        advertised = set(cam.camera_controls())
        raw = wait_until(lambda: cam.raw_metadata(), 5, 0.02, "metadata")
    finally:
        cam.close()
    to_libcamera = {lc for spec in CONTROLS.values() for lc in spec.libcamera}
    assert to_libcamera - advertised == set(), "controls the API drives must be real libcamera controls"
    # HdrMode is only reported while an ISP HDR mode is on
    assert {f.libcamera for f in METADATA} - set(raw) == {"HdrMode"}
    assert ONE_SHOT == {"AfTrigger"}


def test_both_directions_agree():
    for field in METADATA:
        if field.control is not None:
            assert field.control in CONTROLS, field
            assert (field.name, field.libcamera) in mapping(field.control)["from_libcamera"]
        assert field.name in api_names(field.libcamera)["metadata"]
    for name, spec in CONTROLS.items():
        for lc in spec.libcamera:
            assert name in api_names(lc)["controls"]
    assert mapping("exposure_time") == {
        "name": "exposure_time", "to_libcamera": ["ExposureTime"], "from_libcamera": [("exposure_us", "ExposureTime")],
    }
    assert api_names("NoSuchControl") == {"controls": [], "metadata": []}
    with pytest.raises(KeyError):
        mapping("no_such_control")


def test_metadata_conversions():
    meta = from_metadata({"LensPosition": 2.0, "AfState": 2, "ColourGains": (1.5, 2.0), "ScalerCrop": (0, 0, 8, 6)})
    assert meta["lens_position"] == 2.0 and meta["focus_distance_m"] == 0.5
    assert meta["af_state"] == "focused"
    assert meta["colour_gains"] == [1.5, 2.0] and meta["scaler_crop"] == [0, 0, 8, 6]
    assert meta["lux"] is None and meta["hdr_mode"] is None
    assert from_metadata({"LensPosition": 0.0})["focus_distance_m"] is None, "infinity"
