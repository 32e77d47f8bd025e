"""Every camera control of the API, and the one place that maps it to libcamera.

Names in the API are the field's own (libcamera's, in snake case: ``ae_enable``, ``exposure_time``,
``awb_mode``, ``lens_position``...) plus a few service-level controls (``zoom``, ``roi``,
``focus_on_faces``, ``lens_correction``, ``day_night``). :data:`CONTROLS` describes each one: its
type, unit, fallback range or choices, which libcamera controls it drives and whether a source with
no ISP can honestly apply it to the frames in software. :func:`to_libcamera` turns a whole control
state into the ``Picamera2.set_controls`` dict.

libcamera facts used here come from ``src/libcamera/control_ids_core.yaml`` and
``control_ids_draft.yaml`` (raspberrypi/libcamera, checked at commit ``26bfadc6``) and REFERENCE.md:

* enum values: ``AeExposureMode`` Normal 0, Short 1, Long 2, Custom 3; ``AeMeteringMode``
  CentreWeighted 0, Spot 1, Matrix 2, Custom 3; ``AeConstraintMode`` Normal 0, Highlight 1,
  Shadows 2, Custom 3; ``AeFlickerMode`` Off 0, Manual 1, Auto 2; ``AwbMode`` Auto 0,
  Incandescent 1, Tungsten 2, Fluorescent 3, Indoor 4, Daylight 5, Cloudy 6, Custom 7; ``AfMode``
  Manual 0, Auto 1, Continuous 2; ``AfRange`` Normal 0, Macro 1, Full 2; ``AfSpeed`` Normal 0,
  Fast 1; ``AfMetering`` Auto 0, Windows 1; ``AfTrigger`` Start 0, Cancel 1; ``AfState`` Idle 0,
  Scanning 1, Focused 2, Failed 3; ``NoiseReductionMode`` Off 0, Fast 1, HighQuality 2, Minimal 3,
  ZSL 4; ``HdrMode`` Off 0, MultiExposureUnmerged 1, MultiExposure 2, SingleExposure 3, Night 4.
* ``AeEnable`` false sets ``ExposureTimeMode`` and ``AnalogueGainMode`` to manual; ``ExposureTime``
  (µs) and ``AnalogueGain`` only matter then, ``ColourGains`` only with ``AwbEnable`` false and
  ``LensPosition`` (dioptres = 1 / distance in m) only with ``AfMode`` Manual, so they are sent only
  in those states.
* ``AeFlickerPeriod`` is in µs: 10000 for 50 Hz mains (lights flicker at 100 Hz), 8333 for 60 Hz.
* ``AfWindows`` are in px of the ``ScalerCropMaximum`` rectangle; ``ScalerCrop`` is (x, y, w, h) in
  sensor (pixel array) px.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["bool", "int", "float", "enum", "pair", "rect", "action"]
#: how a control takes effect: the ISP/sensor (libcamera), the service's own software, or not at all
AppliedBy = Literal["isp", "sensor", "software", "service"]


@dataclass(frozen=True)
class ControlSpec:
    """One API control.

    Attributes:
        name: API name (snake case).
        kind: ``bool`` | ``int`` | ``float`` | ``enum`` (``choices``) | ``pair`` (two floats) |
            ``rect`` (normalised x, y, w, h) | ``action`` (one-shot, not part of the state).
        group: exposure | white_balance | focus | image | hdr | roi | lens | day_night.
        description: one line for humans (shown by ``GET /v1/camera/controls``).
        default: the value when nothing was set (None: taken from the camera at start).
        unit: µs, dioptres, m, lux, s...; None when unitless.
        minimum, maximum: fallback range of numbers (and of each item of a pair), overridden by the
            camera's advertised range (``Picamera2.camera_controls``) when it has the control.
        choices: API name -> libcamera enum value, in display order.
        libcamera: the libcamera controls this drives (empty for service-level controls).
        software: a source without an ISP (files, USB, RTSP) applies it to the frames itself.
        service: the service implements it on every source (needs no libcamera control).
        nullable: None is a valid value (e.g. ``af_window``: no window).
    """

    name: str
    kind: Kind
    group: str
    description: str
    default: Any = None
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: dict[str, int] | None = None
    libcamera: tuple[str, ...] = ()
    software: bool = False
    service: bool = False
    nullable: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def persistent(self) -> bool:
        """Actions are one-shot; everything else is part of the stored state."""
        return self.kind != "action"


AE_EXPOSURE_MODES = {"normal": 0, "short": 1, "long": 2, "custom": 3}
AE_METERING_MODES = {"centre_weighted": 0, "spot": 1, "matrix": 2, "custom": 3}
AE_CONSTRAINT_MODES = {"normal": 0, "highlight": 1, "shadows": 2, "custom": 3}
#: API flicker choice -> (AeFlickerMode, AeFlickerPeriod µs or None)
FLICKER = {"off": (0, None), "50hz": (1, 10000), "60hz": (1, 8333), "auto": (2, None)}
AWB_MODES = {
    "auto": 0, "incandescent": 1, "tungsten": 2, "fluorescent": 3,
    "indoor": 4, "daylight": 5, "cloudy": 6, "custom": 7,
}
AF_MODES = {"manual": 0, "auto": 1, "continuous": 2}
AF_RANGES = {"normal": 0, "macro": 1, "full": 2}
AF_SPEEDS = {"normal": 0, "fast": 1}
AF_TRIGGERS = {"start": 0, "cancel": 1}
AF_STATES = {0: "idle", 1: "scanning", 2: "focused", 3: "failed"}
NOISE_REDUCTION_MODES = {"off": 0, "fast": 1, "high_quality": 2, "minimal": 3, "zsl": 4}
#: Pi 5 ISP HDR (libcamera HdrMode), API name -> value; "sensor" is the IMX708's own HDR mode
ISP_HDR_MODES = {"single_exposure": 3, "multi_exposure": 2, "multi_exposure_unmerged": 1, "night": 4}
HDR_CHOICES = {"off": 0, "sensor": -1, **ISP_HDR_MODES}
DAY_NIGHT = {"auto": 0, "day": 1, "night": 2}
NOIR_PRESETS = {"off": 0, "daylight": 1, "infrared": 2}

#: ColourGains (red, blue) of the NoIR presets.
#: ``daylight``: what the Raspberry Pi NoIR tuning's own AWB calibration gives at 5753 K
#: (``src/ipa/rpi/vc4/data/imx708_noir.json``, ``rpi.awb.ct_curve`` point (5753, r/g 0.4274,
#: b/g 0.6246) -> gains 1 / 0.4274, 1 / 0.6246), i.e. daylight including the infrared an unfiltered
#: sensor sees. ``infrared``: 850/940 nm light passes the red, green and blue filters of the Bayer
#: array about equally, so equal gains give a neutral grey picture instead of a magenta cast.
NOIR_COLOUR_GAINS = {"daylight": (2.34, 1.6), "infrared": (1.0, 1.0)}

#: centred digital zoom factors offered by ``GET /v1/camera/capabilities``
ZOOM_PRESETS = (1.0, 1.5, 2.0, 3.0, 4.0)
#: largest zoom factor: ScalerCrop may not go below libcamera's minimum crop, and software zoom of
#: a small source past this only magnifies blur
MAX_ZOOM = 8.0


def _spec(*args: Any, **kwargs: Any) -> ControlSpec:
    return ControlSpec(*args, **kwargs)


CONTROLS: dict[str, ControlSpec] = {
    s.name: s
    for s in (
        # --- exposure ------------------------------------------------------------------------
        _spec("ae_enable", "bool", "exposure", "automatic exposure and gain (AEGC)", True, libcamera=("AeEnable",)),
        _spec("exposure_time", "int", "exposure", "manual exposure (shutter) time; setting it turns ae_enable off; "
              "null keeps what AE last chose", None, "µs", 26, 220_417_486, libcamera=("ExposureTime",), nullable=True),
        _spec("analogue_gain", "float", "exposure", "manual sensor analogue gain; setting it turns ae_enable off; "
              "null keeps what AE last chose", None, None, 1.0, 16.0, libcamera=("AnalogueGain",), nullable=True),
        _spec("frame_duration_limits", "pair", "exposure",
              "[min, max] frame duration: the longest shutter AE may use is max (motion blur) and the lowest "
              "frame rate 1e6/max", None, "µs", 8333, 120_000_000, libcamera=("FrameDurationLimits",)),
        _spec("ae_exposure_mode", "enum", "exposure", "AE policy: normal, short (freeze motion), long",
              "normal", choices=AE_EXPOSURE_MODES, libcamera=("AeExposureMode",)),
        _spec("ae_metering_mode", "enum", "exposure", "how AE weighs the picture", "centre_weighted",
              choices=AE_METERING_MODES, libcamera=("AeMeteringMode",)),
        _spec("ae_constraint_mode", "enum", "exposure", "AE priority: normal, highlight (keep bright areas), "
              "shadows", "normal", choices=AE_CONSTRAINT_MODES, libcamera=("AeConstraintMode",)),
        _spec("ae_flicker", "enum", "exposure", "mains flicker avoidance: 50hz (Europe...), 60hz (Americas...)",
              "off", choices={k: v[0] for k, v in FLICKER.items()}, libcamera=("AeFlickerMode", "AeFlickerPeriod")),
        _spec("exposure_value", "float", "exposure", "EV compensation of AE, stops", 0.0, "EV", -8.0, 8.0,
              libcamera=("ExposureValue",)),
        # --- white balance -------------------------------------------------------------------
        _spec("awb_enable", "bool", "white_balance", "automatic white balance", True, libcamera=("AwbEnable",)),
        _spec("awb_mode", "enum", "white_balance", "illuminant range AWB searches", "auto",
              choices=AWB_MODES, libcamera=("AwbMode",)),
        _spec("colour_gains", "pair", "white_balance", "manual [red, blue] gains; setting them turns awb_enable off; "
              "null keeps what AWB last chose", None, None, 0.0, 32.0, libcamera=("ColourGains",), nullable=True),
        _spec("noir_preset", "enum", "white_balance",
              "NoIR module gains: daylight (NoIR tuning's 5753 K calibration) or infrared (neutral under IR "
              "lighting); off = use awb_enable/colour_gains", "off", choices=NOIR_PRESETS,
              libcamera=("AwbEnable", "ColourGains")),
        # --- focus ---------------------------------------------------------------------------
        _spec("af_mode", "enum", "focus", "autofocus: manual (lens_position), auto (af_trigger scans once), "
              "continuous", "continuous", choices=AF_MODES, libcamera=("AfMode",)),
        _spec("lens_position", "float", "focus", "manual focus, dioptres = 1 / distance in m (0 = infinity); "
              "setting it selects af_mode manual; null keeps the lens where AF left it", None, "dioptres", 0.0, 32.0,
              libcamera=("LensPosition",), nullable=True),
        _spec("focus_distance", "float", "focus", "manual focus as a distance in m (sets lens_position = 1 / m; "
              "use lens_position 0 for infinity); reads null at infinity or when unset", None, "m", 1 / 32.0, 1e6,
              libcamera=("LensPosition",)),
        _spec("af_range", "enum", "focus", "distances AF searches: normal, macro (close), full", "normal",
              choices=AF_RANGES, libcamera=("AfRange",)),
        _spec("af_speed", "enum", "focus", "AF speed: normal or fast (may be jerkier)", "normal",
              choices=AF_SPEEDS, libcamera=("AfSpeed",)),
        _spec("af_window", "rect", "focus", "normalised [x, y, w, h] area AF measures; null = whole picture",
              None, libcamera=("AfMetering", "AfWindows"), nullable=True),
        _spec("focus_on_faces", "bool", "focus", "the AF window follows the largest face the detector found",
              False, libcamera=("AfMetering", "AfWindows")),
        _spec("af_trigger", "action", "focus", "start (or cancel) a one-shot AF scan; needs af_mode auto",
              None, choices=AF_TRIGGERS, libcamera=("AfTrigger",)),
        # --- image ---------------------------------------------------------------------------
        _spec("brightness", "float", "image", "0 leaves pixels unchanged; +1 adds full range", 0.0, None, -1.0, 1.0,
              libcamera=("Brightness",), software=True),
        _spec("contrast", "float", "image", "1 is normal; larger values give more contrast", 1.0, None, 0.0, 32.0,
              libcamera=("Contrast",), software=True),
        _spec("saturation", "float", "image", "1 is normal; 0 is greyscale", 1.0, None, 0.0, 32.0,
              libcamera=("Saturation",), software=True),
        _spec("sharpness", "float", "image", "1 is normal; 0 is no sharpening", 1.0, None, 0.0, 16.0,
              libcamera=("Sharpness",), software=True),
        _spec("noise_reduction", "enum", "image", "ISP denoise", "fast", choices=NOISE_REDUCTION_MODES,
              libcamera=("NoiseReductionMode",)),
        # --- HDR -----------------------------------------------------------------------------
        _spec("hdr", "enum", "hdr", "off; sensor (Camera Module 3's own HDR, re-opens the camera); or a Pi 5 "
              "ISP mode", "off", choices=HDR_CHOICES, libcamera=("HdrMode",)),
        # --- ROI / digital zoom --------------------------------------------------------------
        _spec("roi", "rect", "roi", "normalised [x, y, w, h] part of the sensor to show (digital zoom)",
              (0.0, 0.0, 1.0, 1.0), libcamera=("ScalerCrop",), software=True),
        _spec("zoom", "float", "roi", "centred digital zoom factor (sets roi)", 1.0, "x", 1.0, MAX_ZOOM,
              libcamera=("ScalerCrop",), software=True),
        # --- lens ----------------------------------------------------------------------------
        _spec("lens_correction", "bool", "lens", "undistort snapshots and analysed frames (wide 120° module; "
              "camera matrix from CAMERA_LENS_* settings)", False, service=True),
        # --- day / night ---------------------------------------------------------------------
        _spec("day_night", "enum", "day_night", "auto switches on scene light with hysteresis; day or night "
              "force a mode", "auto", choices=DAY_NIGHT, service=True),
        _spec("night_threshold", "float", "day_night", "night starts below this scene level (lux on a Pi "
              "camera, mean luma 0..255 on other sources)", None, None, 0.0, 100_000.0, service=True),
        _spec("day_threshold", "float", "day_night", "day returns above this scene level (must exceed "
              "night_threshold: the gap is the hysteresis)", None, None, 0.0, 100_000.0, service=True),
        _spec("day_night_dwell", "float", "day_night", "the level must stay past a threshold this long before "
              "the mode changes", 30.0, "s", 0.0, 3600.0, service=True),
    )
}

#: controls that need a sensor (no honest software equivalent)
SENSOR_ONLY = frozenset(n for n, s in CONTROLS.items() if not s.software and not s.service)


def zoom_to_roi(zoom: float) -> tuple[float, float, float, float]:
    """Centred normalised rectangle of a ``zoom`` x digital zoom (``1 / zoom`` of each side)."""
    side = 1.0 / zoom
    origin = (1.0 - side) / 2.0
    return (round(origin, 6), round(origin, 6), round(side, 6), round(side, 6))


def roi_to_zoom(roi: tuple[float, float, float, float]) -> float:
    """The zoom factor a rectangle amounts to (``1 / max(w, h)``), rounded to 3 decimals."""
    return round(1.0 / max(roi[2], roi[3]), 3)


def roi_to_scaler_crop(roi: tuple[float, float, float, float], crop_max: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Normalised ``roi`` -> libcamera ``ScalerCrop`` (x, y, w, h) in sensor px inside ``crop_max``
    (the ``ScalerCropMaximum`` property); sizes rounded to even px."""
    mx, my, mw, mh = crop_max
    x, y, w, h = roi
    cw = max(2, int(round(w * mw / 2)) * 2)
    ch = max(2, int(round(h * mh / 2)) * 2)
    cx = mx + min(int(round(x * mw)), mw - cw)
    cy = my + min(int(round(y * mh)), mh - ch)
    return (cx, cy, cw, ch)


def scaler_crop_to_roi(crop: tuple[int, int, int, int], crop_max: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    """libcamera ``ScalerCrop`` (sensor px) -> normalised rectangle of ``crop_max``, 4 decimals."""
    mx, my, mw, mh = crop_max
    x, y, w, h = crop
    return (round((x - mx) / mw, 4), round((y - my) / mh, 4), round(w / mw, 4), round(h / mh, 4))


def to_libcamera(
    state: dict[str, Any],
    advertised: dict[str, Any],
    crop_max: tuple[int, int, int, int] | None,
    night: dict[str, Any] | None = None,
    af_windows: list[tuple[int, int, int, int]] | None = None,
) -> dict[str, Any]:
    """The ``Picamera2.set_controls`` dict that puts a camera in ``state`` (API names -> values).

    Only controls in ``advertised`` (``Picamera2.camera_controls``) are included. Manual values are
    included only where libcamera uses them (see the module docstring). ``night`` overrides (from
    day/night, API names) win over ``state``. Service-level controls (lens correction, day/night)
    produce nothing here; the AF windows (from ``af_window`` or a face) are computed by the caller.

    Args:
        state: full control state, API names (as :class:`~pi_camera_service.controls.manager.CameraControls` keeps it).
        advertised: ``{libcamera name: (min, max, default)}``.
        crop_max: ``ScalerCropMaximum`` (x, y, w, h) sensor px, needed for ``roi``.
        night: API-name overrides active at night (e.g. ``{"saturation": 0.0}``).
        af_windows: ``AfWindows`` rectangles in ``ScalerCropMaximum`` px; None or empty selects
            ``AfMetering`` Auto.
    """
    s = {**state, **(night or {})}
    out: dict[str, Any] = {}

    def put(name: str, value: Any) -> None:
        if name in advertised and value is not None:
            out[name] = value

    put("AeEnable", bool(s["ae_enable"]))
    if not s["ae_enable"]:  # None: libcamera keeps what AE computed last
        if s["exposure_time"] is not None:
            put("ExposureTime", int(s["exposure_time"]))
        if s["analogue_gain"] is not None:
            put("AnalogueGain", float(s["analogue_gain"]))
    if s.get("frame_duration_limits") is not None:
        put("FrameDurationLimits", tuple(int(v) for v in s["frame_duration_limits"]))
    put("AeExposureMode", AE_EXPOSURE_MODES[s["ae_exposure_mode"]])
    put("AeMeteringMode", AE_METERING_MODES[s["ae_metering_mode"]])
    put("AeConstraintMode", AE_CONSTRAINT_MODES[s["ae_constraint_mode"]])
    mode, period = FLICKER[s["ae_flicker"]]
    put("AeFlickerMode", mode)
    if period is not None:
        put("AeFlickerPeriod", period)
    put("ExposureValue", float(s["exposure_value"]))

    preset = s["noir_preset"]
    if preset != "off":
        put("AwbEnable", False)
        put("ColourGains", NOIR_COLOUR_GAINS[preset])
    else:
        put("AwbEnable", bool(s["awb_enable"]))
        if not s["awb_enable"] and s["colour_gains"] is not None:
            put("ColourGains", tuple(float(v) for v in s["colour_gains"]))
    put("AwbMode", AWB_MODES[s["awb_mode"]])

    put("AfMode", AF_MODES[s["af_mode"]])
    if s["af_mode"] == "manual" and s["lens_position"] is not None:
        put("LensPosition", float(s["lens_position"]))
    put("AfRange", AF_RANGES[s["af_range"]])
    put("AfMetering", 1 if af_windows else 0)
    if af_windows:
        put("AfWindows", [tuple(int(v) for v in w) for w in af_windows])
    put("AfSpeed", AF_SPEEDS[s["af_speed"]])

    for api, lc in (("brightness", "Brightness"), ("contrast", "Contrast"), ("saturation", "Saturation"),
                    ("sharpness", "Sharpness")):
        put(lc, float(s[api]))
    put("NoiseReductionMode", NOISE_REDUCTION_MODES[s["noise_reduction"]])
    put("HdrMode", ISP_HDR_MODES.get(s["hdr"], 0))  # "sensor" HDR is a sensor mode, not an ISP one
    if crop_max is not None:
        put("ScalerCrop", roi_to_scaler_crop(tuple(s["roi"]), crop_max))
    return out
