"""ONVIF imaging on a Pi camera (the fake picamera2): Exposure, Focus, WhiteBalance and focus moves reach
the exact libcamera controls through the one control table."""

from __future__ import annotations

import pytest
from lxml import etree

from pi_camera_service.controls.manager import CameraControls, default_store
from pi_camera_service.events import EventLog
from pi_camera_service.onvif.imaging import ImagingMapper
from pi_camera_service.onvif.soap import NS, element, parse_request
from pi_camera_service.sources.picamera2_backend import Picamera2Camera
from tests.support.fake_camera import pi_settings as settings, sent_controls as sent

pytestmark = pytest.mark.usefixtures("fake_never_leaks")


@pytest.fixture
def pi(fake, tmp_path):
    cam = Picamera2Camera(settings(tmp_path), 0)
    cam.open()
    controls = CameraControls(cam, default_store(tmp_path), EventLog())
    controls.start()
    yield cam, controls, ImagingMapper(controls)
    controls.stop()
    cam.close()


def _op(inner: str):
    xml = (f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:timg="{NS["timg"]}" xmlns:tt="{NS["tt"]}"><s:Body>'
           f'<timg:Op><timg:VideoSourceToken>video_source_0</timg:VideoSourceToken>{inner}</timg:Op>'
           f'</s:Body></s:Envelope>')
    return parse_request(xml.encode()).body  # the operation element: VideoSourceToken + fields


def _options(mapper: ImagingMapper) -> etree._Element:
    root = element("timg:ImagingOptions")
    mapper.write_options(root)
    return root


def test_options_offer_the_sensor_fields_of_a_camera_module_3(fake, pi):
    _, _, mapper = pi
    names = [etree.QName(c).localname for c in _options(mapper)]
    assert {"Brightness", "Exposure", "Focus", "WhiteBalance", "IrCutFilterModes", "Sharpness"} <= set(names)
    move = element("timg:MoveOptions")
    mapper.write_move_options(move)
    assert move.find(f"{{{NS['tt']}}}Focus/{{{NS['tt']}}}Absolute") is not None


def test_exposure_white_balance_and_focus_reach_libcamera(fake, pi):
    _, controls, mapper = pi
    patch = mapper.patch_from_settings(_op(
        "<tt:Exposure><tt:Mode>MANUAL</tt:Mode><tt:ExposureTime>20000</tt:ExposureTime><tt:Gain>6.0206</tt:Gain>"
        "</tt:Exposure><tt:WhiteBalance><tt:Mode>MANUAL</tt:Mode><tt:CrGain>2.0</tt:CrGain><tt:CbGain>1.5</tt:CbGain>"
        "</tt:WhiteBalance><tt:IrCutFilter>ON</tt:IrCutFilter>"))
    assert patch["ae_enable"] is False and patch["exposure_time"] == 20000, patch
    controls.update(patch, "onvif")
    last = {}
    for d in sent(fake):
        last.update(d)
    assert last["AeEnable"] is False and last["ExposureTime"] == 20000
    assert last["AnalogueGain"] == pytest.approx(2.0, abs=0.001)
    assert last["AwbEnable"] is False and last["ColourGains"] == (2.0, 1.5)
    controls.update(mapper.patch_from_move(_op(
        "<timg:Focus><tt:Absolute><tt:Position>2.5</tt:Position></tt:Absolute></timg:Focus>")[1]), "onvif")
    last = sent(fake)[-1]
    assert last.get("LensPosition") == 2.5 and last.get("AfMode") == 0  # manual focus at 2.5 dioptres (40 cm)
    root = element("timg:ImagingSettings")
    mapper.write_settings(root)
    text = etree.tostring(root).decode()
    assert "<tt:Mode>MANUAL</tt:Mode>" in text and "<tt:AutoFocusMode>MANUAL</tt:AutoFocusMode>" in text
    assert "<tt:IrCutFilter>ON</tt:IrCutFilter>" in text


def test_out_of_range_focus_is_refused_and_nothing_applied(fake, pi):
    from pi_camera_service.controls.manager import InvalidControls

    _, controls, mapper = pi
    before = len(sent(fake))
    with pytest.raises(InvalidControls, match="lens_position"):
        controls.update(mapper.patch_from_move(_op(
            "<timg:Focus><tt:Absolute><tt:Position>99</tt:Position></tt:Absolute></timg:Focus>")[1]))
    assert len(sent(fake)) == before


@pytest.mark.parametrize("af_range", ["normal", "macro", "full"])
def test_settings_read_back_and_sent_again_change_nothing(fake, pi, af_range):
    """ONVIF Device Manager writes back the whole ImagingSettings it read: that must be accepted as a no-op."""
    _, controls, mapper = pi
    controls.update({"af_range": af_range, "colour_gains": [1.8, 1.4], "brightness": 0.3}, "test")
    before = controls.state
    read = element("timg:ImagingSettings")
    mapper.write_settings(read)
    op = _op(etree.tostring(read).decode())
    result = controls.update(mapper.patch_from_settings(op[1]), "onvif")
    assert result.changed == {} and controls.state == before
