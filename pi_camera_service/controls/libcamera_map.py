"""Where a control is mapped, both ways: API names -> libcamera controls, libcamera metadata -> API names.

One table answers "where is X mapped" for every name the API shows:

* **to libcamera**: :data:`~pi_camera_service.controls.spec.CONTROLS` lists, per API control, the
  libcamera controls it drives (``ControlSpec.libcamera``); :func:`~pi_camera_service.controls.spec.to_libcamera`
  builds the ``Picamera2.set_controls`` dict from a whole state.
* **from libcamera**: :data:`METADATA` lists, per field of the camera's ``metadata`` (``GET
  /v1/camera/status``), the libcamera metadata key it is read from (``CompletedRequest.get_metadata()``),
  its unit, its conversion and the API control it reports on; :func:`from_metadata` applies it.
* :func:`mapping` / :func:`api_names` look a name up in both tables.

libcamera names are those of ``src/libcamera/control_ids_core.yaml`` / ``control_ids_draft.yaml``
(raspberrypi/libcamera, see :mod:`~pi_camera_service.controls.spec`); ``Lux``, ``FocusFoM``,
``SensorTemperature``, ``FrameDuration``, ``ColourTemperature``, ``DigitalGain`` and ``AfState``
are metadata only (no control sets them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pi_camera_service.controls.spec import AF_STATES, AF_TRIGGERS, CONTROLS


def _same(value: Any) -> Any:
    return value


def _as_list(value: Any) -> list[Any]:
    return list(value)


def _distance_m(dioptres: Any) -> float | None:
    """LensPosition (dioptres) -> m; None at infinity (0 dioptres)."""
    return round(1.0 / dioptres, 4) if dioptres else None


def af_state_name(value: Any) -> str | None:
    """libcamera ``AfState`` value -> ``idle`` | ``scanning`` | ``focused`` | ``failed`` (None if absent)."""
    return AF_STATES.get(value) if value is not None else None


@dataclass(frozen=True)
class MetadataField:
    """One field of the camera's metadata, read from one libcamera metadata key.

    Attributes:
        name: the API field (``exposure_us``).
        libcamera: the libcamera metadata key (``ExposureTime``).
        unit: µs, K, dioptres, m, °C, sensor px...; None when unitless.
        convert: libcamera value (never None) -> API value.
        control: the API control whose effect it reports (``exposure_time``), or None.
    """

    name: str
    libcamera: str
    unit: str | None = None
    convert: Callable[[Any], Any] = _same
    control: str | None = None


METADATA: tuple[MetadataField, ...] = (
    MetadataField("lux", "Lux", "lux"),
    MetadataField("exposure_us", "ExposureTime", "µs", control="exposure_time"),
    MetadataField("analogue_gain", "AnalogueGain", control="analogue_gain"),
    MetadataField("digital_gain", "DigitalGain"),
    MetadataField("colour_gains", "ColourGains", None, _as_list, "colour_gains"),
    MetadataField("colour_temperature", "ColourTemperature", "K"),
    MetadataField("lens_position", "LensPosition", "dioptres", control="lens_position"),
    MetadataField("focus_distance_m", "LensPosition", "m", _distance_m, "focus_distance"),
    MetadataField("focus_fom", "FocusFoM"),
    MetadataField("af_state", "AfState", None, af_state_name, "af_mode"),
    MetadataField("sensor_temperature", "SensorTemperature", "°C"),
    MetadataField("frame_duration_us", "FrameDuration", "µs", control="frame_duration_limits"),
    MetadataField("scaler_crop", "ScalerCrop", "sensor px", _as_list, "roi"),
    MetadataField("hdr_mode", "HdrMode", control="hdr"),
)

#: libcamera controls that are one-shot actions (not state to re-apply after a re-open)
ONE_SHOT = frozenset(lc for spec in CONTROLS.values() if not spec.persistent for lc in spec.libcamera)


def from_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """``{API field: value}`` for every :data:`METADATA` field of a ``get_metadata()`` dict; None for
    what the frame did not report."""
    out: dict[str, Any] = {}
    for field in METADATA:
        value = metadata.get(field.libcamera)
        out[field.name] = None if value is None else field.convert(value)
    return out


def af_trigger_value(action: str) -> int:
    """API ``af_trigger`` (``start`` | ``cancel``) -> libcamera ``AfTrigger`` value.

    Raises:
        KeyError: another action.
    """
    return AF_TRIGGERS[action]


def mapping(name: str) -> dict[str, Any]:
    """Where ``name`` (an API control or metadata field) is mapped, both ways.

    Returns:
        ``{"name", "to_libcamera": [libcamera controls it sets], "from_libcamera": [(metadata field,
        libcamera key)] reporting it}``.

    Raises:
        KeyError: neither a control nor a metadata field.
    """
    spec = CONTROLS.get(name)
    fields = [f for f in METADATA if f.name == name or f.control == name]
    if spec is None and not fields:
        raise KeyError(name)
    return {
        "name": name,
        "to_libcamera": list(spec.libcamera) if spec is not None else [],
        "from_libcamera": [(f.name, f.libcamera) for f in fields],
    }


def api_names(libcamera: str) -> dict[str, list[str]]:
    """The other direction: ``{"controls": [API controls setting it], "metadata": [fields read from it]}``
    for a libcamera control or metadata name (empty lists when unknown)."""
    return {
        "controls": [n for n, s in CONTROLS.items() if libcamera in s.libcamera],
        "metadata": [f.name for f in METADATA if f.libcamera == libcamera],
    }
