"""ONVIF Imaging (ver20) settings <-> the camera's control table.

Every ONVIF field maps onto controls of :data:`pi_camera_service.controls.spec.CONTROLS` and goes
through :meth:`CameraControls.update <pi_camera_service.controls.manager.CameraControls.update>`, so
validation, persistence and the "not supported on this source" reasons are the REST API's. A field
whose controls this source does not support is absent from GetOptions and GetImagingSettings, and
setting it is a fault quoting the control's reason.

Level fields (ONVIF ``0..100``) map piecewise-linearly onto the control's range with 50 at the
control's neutral value (its default), so 50 always means "unchanged picture":

=================  ================  =======  =========================================
ONVIF              control           neutral  ONVIF 0 / 50 / 100
=================  ================  =======  =========================================
Brightness         ``brightness``    0        min (-1) / 0 / max (+1)  (linear)
Contrast           ``contrast``      1        min (0) / 1 / max (32 or the camera's)
ColorSaturation    ``saturation``    1        min (0) / 1 / max
Sharpness          ``sharpness``     1        min (0) / 1 / max (16)
=================  ================  =======  =========================================

Other fields, in the control's own units:

* Exposure ``Mode`` AUTO/MANUAL <-> ``ae_enable``; ``ExposureTime`` (µs) <-> ``exposure_time``;
  ``Gain`` (dB, ONVIF's unit) <-> ``analogue_gain`` as ``20·log10(gain)``; ``MinExposureTime`` /
  ``MaxExposureTime`` (µs) <-> ``frame_duration_limits`` [min, max]: AE never exposes longer than the
  longest frame, so the maximum is exact; the minimum is the shortest frame duration (it caps the
  frame rate), libcamera having no lower exposure bound.
* Focus ``AutoFocusMode`` AUTO/MANUAL <-> ``af_mode`` continuous/manual; ``NearLimit``/``FarLimit``
  (m, FarLimit 0 = infinity) <-> ``af_range``: a finite FarLimit selects ``macro``, a NearLimit closer
  than :data:`NORMAL_NEAR_LIMIT` selects ``full``, anything else ``normal``; Move ``Absolute.Position``
  and ``Relative.Distance`` are dioptres of ``lens_position`` (0 = infinity).
* WhiteBalance ``Mode`` AUTO/MANUAL <-> ``awb_enable``; ``CrGain`` / ``CbGain`` <-> ``colour_gains``
  [red, blue], unitless gains in the control's range.
* IrCutFilter ON/OFF/AUTO <-> ``day_night`` day/night/auto (the filter is in by day).
* WideDynamicRange ``Mode`` ON/OFF <-> ``hdr`` (the sensor's HDR when it has one, else the first ISP
  mode)/off.
"""

from __future__ import annotations

import math
from typing import Any

from pi_camera_service.onvif.soap import Fault, find, number, sender_fault, sub, text

#: ONVIF level range of Brightness, Contrast, ColorSaturation, Sharpness
LEVEL_MIN, LEVEL_MAX = 0.0, 100.0
#: af_range "normal" excludes the macro positions; its near end, m (Camera Module 3 product brief:
#: focus from about 10 cm; the macro part is what lies closer)
NORMAL_NEAR_LIMIT = 0.1
LEVELS = {"Brightness": "brightness", "Contrast": "contrast", "ColorSaturation": "saturation",
          "Sharpness": "sharpness"}
IRCUT = {"ON": "day", "OFF": "night", "AUTO": "auto"}
IRCUT_BACK = {v: k for k, v in IRCUT.items()}


def to_control(level: float, lo: float, neutral: float, hi: float) -> float:
    """ONVIF level 0..100 -> control value (piecewise linear through (50, neutral))."""
    level = min(max(level, LEVEL_MIN), LEVEL_MAX)
    if level <= 50:
        return lo + (level / 50.0) * (neutral - lo)
    return neutral + ((level - 50.0) / 50.0) * (hi - neutral)


def to_level(value: float, lo: float, neutral: float, hi: float) -> float:
    """Control value -> ONVIF level 0..100 (inverse of :func:`to_control`), 2 decimals."""
    if value <= neutral:
        level = 50.0 * (value - lo) / (neutral - lo) if neutral > lo else 50.0
    else:
        level = 50.0 + 50.0 * (value - neutral) / (hi - neutral) if hi > neutral else 50.0
    return round(min(max(level, LEVEL_MIN), LEVEL_MAX), 2)


class ImagingMapper:
    """ONVIF imaging on top of one :class:`~pi_camera_service.controls.manager.CameraControls`."""

    def __init__(self, controls: Any) -> None:
        self.controls = controls

    # ------------------------------------------------------------------- support
    def supported(self, name: str) -> bool:
        """Whether control ``name`` is supported on this source."""
        eff = self.controls.effective.get(name)
        return bool(eff and eff.supported)

    def _eff(self, name: str) -> Any:
        return self.controls.effective[name]

    def _range(self, name: str) -> tuple[float, float, float]:
        eff = self._eff(name)
        return float(eff.minimum), float(eff.spec.default), float(eff.maximum)

    def _require(self, field: str, *names: str) -> None:
        for name in names:
            eff = self.controls.effective.get(name)
            if eff is None or not eff.supported:
                reason = eff.reason if eff is not None else "unknown control"
                raise sender_fault(f"{field} is not supported on this video source: {name}: {reason}",
                                   "ter:InvalidArgVal", "ter:SettingsInvalid")

    def _hdr_on(self) -> str | None:
        choices = self._eff("hdr").choices or ()
        for candidate in ("sensor", "single_exposure", "multi_exposure", "night"):
            if candidate in choices:
                return candidate
        return None

    # ------------------------------------------------------------------- reading
    def write_settings(self, parent: Any) -> None:
        """Append a ``tt:ImagingSettings20`` body (XSD element order) to ``parent``."""
        s = self.controls.state
        for field, name in (("Brightness", "brightness"), ("ColorSaturation", "saturation"),
                            ("Contrast", "contrast")):
            if self.supported(name):
                sub(parent, f"tt:{field}", to_level(float(s[name]), *self._range(name)))
        if self.supported("ae_enable"):
            exp = sub(parent, "tt:Exposure")
            sub(exp, "tt:Mode", "AUTO" if s["ae_enable"] else "MANUAL")
            fdl = s.get("frame_duration_limits")
            if fdl and self.supported("frame_duration_limits"):
                sub(exp, "tt:MinExposureTime", float(fdl[0]))
                sub(exp, "tt:MaxExposureTime", float(fdl[1]))
            if s.get("exposure_time") is not None:
                sub(exp, "tt:ExposureTime", float(s["exposure_time"]))
            if s.get("analogue_gain") is not None:
                sub(exp, "tt:Gain", round(20 * math.log10(max(float(s["analogue_gain"]), 1e-6)), 3))
        if self.supported("af_mode"):
            focus = sub(parent, "tt:Focus")
            sub(focus, "tt:AutoFocusMode", "MANUAL" if s["af_mode"] == "manual" else "AUTO")
            near, far = self._af_limits(s.get("af_range", "normal"))
            sub(focus, "tt:NearLimit", near)
            sub(focus, "tt:FarLimit", far)
        sub(parent, "tt:IrCutFilter", IRCUT_BACK[s["day_night"]])
        if self.supported("sharpness"):
            sub(parent, "tt:Sharpness", to_level(float(s["sharpness"]), *self._range("sharpness")))
        if self.supported("hdr"):
            wdr = sub(parent, "tt:WideDynamicRange")
            sub(wdr, "tt:Mode", "OFF" if s["hdr"] == "off" else "ON")
        if self.supported("awb_enable"):
            wb = sub(parent, "tt:WhiteBalance")
            sub(wb, "tt:Mode", "AUTO" if s["awb_enable"] else "MANUAL")
            if s.get("colour_gains") is not None:
                sub(wb, "tt:CrGain", float(s["colour_gains"][0]))
                sub(wb, "tt:CbGain", float(s["colour_gains"][1]))

    def _af_limits(self, af_range: str) -> tuple[float, float]:
        lp_max = self._eff("lens_position").maximum or 32.0
        closest = round(1.0 / lp_max, 4) if lp_max > 0 else 0.0
        if af_range == "macro":
            return closest, 1.0
        if af_range == "full":
            return closest, 0.0
        return NORMAL_NEAR_LIMIT, 0.0

    def write_options(self, parent: Any) -> None:
        """Append a ``tt:ImagingOptions20`` body: only the fields this source supports."""
        def frange(tag: str, lo: float, hi: float, into: Any = parent) -> None:
            _float_range(into, tag, lo, hi)

        for field, name in (("Brightness", "brightness"), ("ColorSaturation", "saturation"),
                            ("Contrast", "contrast")):
            if self.supported(name):
                frange(f"tt:{field}", LEVEL_MIN, LEVEL_MAX)
        if self.supported("ae_enable"):
            exp = _choices(parent, "tt:Exposure", "tt:Mode", "AUTO", "MANUAL")
            if self.supported("frame_duration_limits"):
                e = self._eff("frame_duration_limits")
                frange("tt:MinExposureTime", float(e.minimum), float(e.maximum), exp)
                frange("tt:MaxExposureTime", float(e.minimum), float(e.maximum), exp)
            if self.supported("exposure_time"):
                e = self._eff("exposure_time")
                frange("tt:ExposureTime", float(e.minimum), float(e.maximum), exp)
            if self.supported("analogue_gain"):
                e = self._eff("analogue_gain")
                frange("tt:Gain", round(20 * math.log10(max(float(e.minimum), 1e-6)), 3),
                       round(20 * math.log10(float(e.maximum)), 3), exp)
        if self.supported("af_mode"):
            focus = _choices(parent, "tt:Focus", "tt:AutoFocusModes", "AUTO", "MANUAL")
            closest = self._af_limits("full")[0]
            frange("tt:NearLimit", closest, 1000.0, focus)
            frange("tt:FarLimit", 0.0, 1000.0, focus)
        for mode in ("ON", "OFF", "AUTO"):
            sub(parent, "tt:IrCutFilterModes", mode)
        if self.supported("sharpness"):
            frange("tt:Sharpness", LEVEL_MIN, LEVEL_MAX)
        if self.supported("hdr") and self._hdr_on():
            _choices(parent, "tt:WideDynamicRange", "tt:Mode", "OFF", "ON")
        if self.supported("awb_enable"):
            wb = _choices(parent, "tt:WhiteBalance", "tt:Mode", "AUTO", "MANUAL")
            if self.supported("colour_gains"):
                e = self._eff("colour_gains")
                frange("tt:YrGain", float(e.minimum), float(e.maximum), wb)
                frange("tt:YbGain", float(e.minimum), float(e.maximum), wb)

    def write_move_options(self, parent: Any) -> None:
        """Append ``timg:MoveOptions`` content: Absolute and Relative focus in dioptres (Pi camera AF only)."""
        if not self.supported("lens_position"):
            return
        e = self._eff("lens_position")
        focus = sub(parent, "tt:Focus")
        for kind, field, lo in (("tt:Absolute", "tt:Position", float(e.minimum)),
                                ("tt:Relative", "tt:Distance", -float(e.maximum))):
            move = sub(focus, kind)
            _float_range(move, field, lo, float(e.maximum))
            _float_range(move, "tt:Speed", 0.0, 1.0)

    # ------------------------------------------------------------------- writing
    def patch_from_settings(self, settings: Any) -> dict[str, Any]:
        """The control patch of a ``timg:ImagingSettings`` element.

        Raises:
            Fault: a field this source does not support, an unknown mode, a non-number.
        """
        patch: dict[str, Any] = {}
        for field, name in LEVELS.items():
            value = number(settings, f"tt:{field}")
            if value is None:
                continue
            self._require(field, name)
            if not LEVEL_MIN <= value <= LEVEL_MAX:
                raise sender_fault(f"{field}={value:g} is out of range; allowed {LEVEL_MIN:g}..{LEVEL_MAX:g}",
                                   "ter:InvalidArgVal", "ter:SettingsInvalid")
            patch[name] = round(to_control(value, *self._range(name)), 6)
        exp = find(settings, "tt:Exposure")
        if exp is not None:
            self._require("Exposure", "ae_enable")
            mode = _mode(exp, "Mode", ("AUTO", "MANUAL"))
            if mode:
                patch["ae_enable"] = mode == "AUTO"
            lo, hi = number(exp, "tt:MinExposureTime"), number(exp, "tt:MaxExposureTime")
            if lo is not None or hi is not None:
                self._require("Exposure/MinExposureTime, MaxExposureTime", "frame_duration_limits")
                cur = self.controls.state["frame_duration_limits"]
                patch["frame_duration_limits"] = [int(round(lo if lo is not None else cur[0])),
                                                  int(round(hi if hi is not None else cur[1]))]
            t = number(exp, "tt:ExposureTime")
            if t is not None and mode != "AUTO":
                self._require("Exposure/ExposureTime", "exposure_time")
                patch["exposure_time"] = int(round(t))
            g = number(exp, "tt:Gain")
            if g is not None and mode != "AUTO":
                self._require("Exposure/Gain", "analogue_gain")
                patch["analogue_gain"] = round(10 ** (g / 20.0), 4)
            for unsupported in ("MinGain", "MaxGain", "MinIris", "MaxIris", "Iris", "Window", "Priority"):
                if find(exp, f"tt:{unsupported}") is not None:
                    raise sender_fault(f"Exposure/{unsupported} is not supported: libcamera has no such control",
                                       "ter:InvalidArgVal", "ter:SettingsInvalid")
        focus = find(settings, "tt:Focus")
        if focus is not None:
            self._require("Focus", "af_mode")
            mode = _mode(focus, "AutoFocusMode", ("AUTO", "MANUAL"))
            if mode:
                patch["af_mode"] = "continuous" if mode == "AUTO" else "manual"
            near, far = number(focus, "tt:NearLimit"), number(focus, "tt:FarLimit")
            if near is not None or far is not None:
                self._require("Focus/NearLimit, FarLimit", "af_range")
                if far is not None and far < 0 or near is not None and near < 0:
                    raise sender_fault("NearLimit and FarLimit are distances in m, >= 0 (FarLimit 0 = infinity)")
                if far is not None and 0 < far <= 1.0:
                    patch["af_range"] = "macro"
                elif near is not None and near < NORMAL_NEAR_LIMIT:
                    patch["af_range"] = "full"
                else:
                    patch["af_range"] = "normal"
        ircut = text(settings, "tt:IrCutFilter")
        if ircut is not None:
            if ircut.upper() not in IRCUT:
                raise sender_fault(f"IrCutFilter={ircut!r}: allowed ON, OFF, AUTO")
            patch["day_night"] = IRCUT[ircut.upper()]
        wdr = find(settings, "tt:WideDynamicRange")
        if wdr is not None:
            self._require("WideDynamicRange", "hdr")
            mode = _mode(wdr, "Mode", ("ON", "OFF"))
            if mode == "ON":
                on = self._hdr_on()
                if on is None:
                    raise sender_fault("WideDynamicRange ON: this camera has no HDR mode",
                                       "ter:InvalidArgVal", "ter:SettingsInvalid")
                patch["hdr"] = on
            elif mode == "OFF":
                patch["hdr"] = "off"
            if find(wdr, "tt:Level") is not None:
                raise sender_fault("WideDynamicRange/Level is not supported: HDR is on or off",
                                   "ter:InvalidArgVal", "ter:SettingsInvalid")
        wb = find(settings, "tt:WhiteBalance")
        if wb is not None:
            self._require("WhiteBalance", "awb_enable")
            mode = _mode(wb, "Mode", ("AUTO", "MANUAL"))
            if mode:
                patch["awb_enable"] = mode == "AUTO"
            cr, cb = number(wb, "tt:CrGain"), number(wb, "tt:CbGain")
            if (cr is not None or cb is not None) and mode != "AUTO":
                self._require("WhiteBalance/CrGain, CbGain", "colour_gains")
                cur = self.controls.state.get("colour_gains") or (1.0, 1.0)
                patch["colour_gains"] = [cr if cr is not None else cur[0], cb if cb is not None else cur[1]]
        for unsupported in ("BacklightCompensation", "ImageStabilization", "ToneCompensation", "Defogging",
                            "NoiseReduction"):
            if find(settings, f"tt:{unsupported}") is not None:
                raise sender_fault(f"{unsupported} is not supported by this camera",
                                   "ter:InvalidArgVal", "ter:SettingsInvalid")
        return patch

    def patch_from_move(self, focus: Any) -> dict[str, Any]:
        """The control patch of a ``timg:Move`` ``Focus`` element (Absolute or Relative, dioptres).

        Raises:
            Fault: no autofocus lens, Continuous move, or no move given.
        """
        self._require("Move/Focus", "lens_position")
        if find(focus, "tt:Continuous") is not None:
            raise sender_fault("Continuous focus moves are not supported (the lens moves to positions); "
                               "use Absolute or Relative", "ter:InvalidArgVal", "ter:NoSuchMoveOption")
        absolute = find(focus, "tt:Absolute")
        if absolute is not None:
            pos = number(absolute, "tt:Position")
            if pos is None:
                raise sender_fault("Absolute needs a Position (dioptres)")
            return {"lens_position": pos}
        relative = find(focus, "tt:Relative")
        if relative is not None:
            dist = number(relative, "tt:Distance")
            if dist is None:
                raise sender_fault("Relative needs a Distance (dioptres)")
            e = self._eff("lens_position")
            current = self.controls.state.get("lens_position") or 0.0
            return {"lens_position": round(min(max(current + dist, e.minimum), e.maximum), 6)}
        raise sender_fault("Move/Focus needs Absolute or Relative", "ter:InvalidArgVal", "ter:NoSuchMoveOption")


def _choices(parent: Any, tag: str, item: str, *values: str) -> Any:
    """Append ``<tag>`` holding one ``<item>`` per value (an options list); returns ``<tag>``."""
    el = sub(parent, tag)
    for value in values:
        sub(el, item, value)
    return el


def _float_range(parent: Any, tag: str, lo: float, hi: float) -> None:
    """Append a ``tt:FloatRange`` ``<tag><tt:Min/><tt:Max/></tag>``."""
    r = sub(parent, tag)
    sub(r, "tt:Min", lo)
    sub(r, "tt:Max", hi)


def _mode(parent: Any, field: str, allowed: tuple[str, ...]) -> str | None:
    value = text(parent, f"tt:{field}")
    if value is None:
        return None
    if value.upper() not in allowed:
        raise sender_fault(f"{field}={value!r}: allowed {', '.join(allowed)}")
    return value.upper()


__all__ = ["Fault", "ImagingMapper", "to_control", "to_level"]
