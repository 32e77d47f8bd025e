"""Which controls a source supports, with which range, and whether a value is valid.

:func:`effective_controls` turns the spec (:data:`~pi_camera_service.controls.spec.CONTROLS`) and a
source's :class:`~pi_camera_service.sources.base.SourceCapabilities` into one :class:`Effective` per
control; :func:`check_value` validates one value against it. :class:`~pi_camera_service.controls.manager.CameraControls`
uses both for whole updates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pi_camera_service.controls.spec import CONTROLS, ISP_HDR_MODES, MAX_ZOOM, ControlSpec
from pi_camera_service.sources.base import SourceCapabilities


@dataclass(frozen=True)
class Effective:
    """A control as this source supports it: ``supported``, range/choices, how it is applied."""

    spec: ControlSpec
    supported: bool
    minimum: float | None
    maximum: float | None
    choices: tuple[str, ...] | None
    applied_by: str | None
    reason: str | None = None


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}" if isinstance(value, float) else str(value)


def effective_controls(
    caps: SourceCapabilities, source: str, lens: Any = None, detection_enabled: bool = True
) -> dict[str, Effective]:
    """Every control of :data:`CONTROLS` as ``caps`` supports it.

    On a Pi camera a control is supported when the camera advertises its first libcamera control
    (``ControlSpec.libcamera[0]`` in ``caps.libcamera_controls``), with the advertised range and enum
    values replacing the spec's; the special cases are listed here and nowhere else: ``hdr`` (sensor
    and/or ISP modes), ``focus_distance`` (its minimum is 1 / the LensPosition maximum), ``roi`` and
    ``zoom`` (need ``ScalerCropMaximum``), ``focus_on_faces`` (``AfWindows`` + ``AfMode`` + the
    detector), ``noir_preset`` (``ColourGains`` + ``AwbEnable``). Elsewhere only ``software`` and
    ``service`` controls are. ``lens_correction`` needs a ``lens`` model; day/night thresholds of a
    luma source stop at 255.

    Args:
        caps: the source's capabilities.
        source: the source's name (for reasons).
        lens: the configured lens model, or None.
        detection_enabled: focus on faces needs the detector.
    """
    adv = caps.libcamera_controls
    pi = caps.backend == "picamera2"
    out: dict[str, Effective] = {}
    for name, spec in CONTROLS.items():
        lo, hi = spec.minimum, spec.maximum
        choices = tuple(spec.choices) if spec.choices else None
        reason = None
        if pi:
            primary = spec.libcamera[0] if spec.libcamera else None
            supported = spec.service or primary in adv
            applied_by = "service" if spec.service else "isp"
            if primary in adv and spec.kind in ("int", "float", "pair"):
                amin, amax, _ = adv[primary]
                if _num(amin) and _num(amax) and name not in ("focus_distance", "zoom"):
                    lo, hi = amin, amax
            if primary in adv and spec.kind == "enum" and _num(adv[primary][1]):
                top = adv[primary][1]
                choices = tuple(c for c, v in spec.choices.items() if v <= top)
            if name == "hdr":
                choices = ("off",) + (("sensor",) if caps.sensor_hdr else ()) + (
                    tuple(ISP_HDR_MODES) if caps.isp_hdr else ())
                supported = len(choices) > 1
                applied_by = "sensor" if caps.sensor_hdr else "isp"
                if not supported:
                    reason = f"{caps.model or 'this sensor'} has no HDR mode and this board's ISP none"
            if name == "focus_distance" and "LensPosition" in adv:
                top = adv["LensPosition"][1]
                lo = 1.0 / top if _num(top) and top > 0 else lo
            if name in ("roi", "zoom") and caps.scaler_crop_maximum is None:
                supported = False
            if name == "focus_on_faces":
                supported = "AfWindows" in adv and "AfMode" in adv and detection_enabled
                if "AfWindows" in adv and not detection_enabled:
                    reason = "face detection is disabled (CAMERA_DETECTION_ENABLED=false)"
            if name == "noir_preset":
                supported = "ColourGains" in adv and "AwbEnable" in adv
            if not supported and reason is None:
                reason = f"{caps.model or 'this camera'} does not advertise {', '.join(spec.libcamera)}"
        else:
            supported = spec.software or spec.service
            applied_by = "software" if spec.software else ("service" if supported else None)
            if not supported:
                reason = (f"this source ({source}) has no sensor; {name} needs a Pi camera "
                          f"(libcamera {', '.join(spec.libcamera)})")
            if name == "hdr":
                choices = ("off",)
        if name == "lens_correction" and lens is None:
            supported, reason = False, "no lens model configured"
        if name in ("night_threshold", "day_threshold") and caps.level_unit == "luma":
            hi = 255.0
        out[name] = Effective(spec, supported, lo, hi, choices, applied_by if supported else None, reason)
    return out


def check_value(eff: Effective, value: Any) -> Any:
    """The normalised value of ``value`` for the control ``eff`` describes.

    Raises:
        ValueError: wrong type, out of range or choices, inconsistent pair or rectangle; the message
            says what is allowed.
    """
    spec = eff.spec
    lo, hi = eff.minimum, eff.maximum
    rng = f"allowed {_fmt(lo)}..{_fmt(hi)}" + (f" {spec.unit}" if spec.unit else "")
    if value is None:
        if spec.nullable:
            return None
        raise ValueError(f"null is not allowed; {rng if spec.kind in ('int', 'float') else 'give a value'}")
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value
    if spec.kind in ("int", "float"):
        if not _num(value):
            raise ValueError(f"expected a number; {rng}")
        if spec.kind == "int":
            if float(value) != int(value):
                raise ValueError(f"expected a whole number; {rng}")
            value = int(value)
        else:
            value = float(value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"out of range; {rng}")
        return value
    if spec.kind in ("enum", "action"):
        choices = eff.choices or ()
        if not isinstance(value, str) or value.lower() not in choices:
            raise ValueError(f"not one of {', '.join(choices)}")
        return value.lower()
    if spec.kind == "pair":
        if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_num(v) for v in value):
            raise ValueError(f"expected [a, b], two numbers; each {rng}")
        a, b = (int(v) for v in value) if spec.name == "frame_duration_limits" else (float(v) for v in value)
        for v in (a, b):
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ValueError(f"{v:g} out of range; each {rng}")
        if spec.name == "frame_duration_limits" and a > b:
            raise ValueError("min must not exceed max: [min, max] µs")
        return (a, b)
    if spec.kind == "rect":
        if not isinstance(value, (list, tuple)) or len(value) != 4 or not all(_num(v) for v in value):
            raise ValueError("expected [x, y, w, h], four numbers 0..1 (fractions of the full picture)")
        x, y, w, h = (float(v) for v in value)
        eps = 1e-6
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > 1 + eps or y + h > 1 + eps:
            raise ValueError("the rectangle must lie inside [0, 1]: x, y >= 0, w, h > 0, x + w <= 1, y + h <= 1")
        if spec.name == "roi" and min(w, h) < 1.0 / MAX_ZOOM - eps:
            raise ValueError(f"w and h must be at least {1 / MAX_ZOOM:g} (zoom up to {MAX_ZOOM:g}x)")
        return (x, y, min(w, 1 - x), min(h, 1 - y))
    raise ValueError(f"unsupported kind {spec.kind}")  # pragma: no cover
