"""The camera's control state: validation (all or nothing), application, persistence, day/night, focus on faces.

:class:`CameraControls` owns the state of every control in :data:`~pi_camera_service.controls.spec.CONTROLS`
(API names). An update is validated as a whole against what the source supports (the ranges the
camera advertises in ``Picamera2.camera_controls`` on a Pi, the fallback ranges of the spec
elsewhere); if any value is invalid nothing is applied. A valid update is applied without touching
the RTSP stream:

* Pi camera: the libcamera dict of the new state (:func:`~pi_camera_service.controls.spec.to_libcamera`)
  is diffed against what was sent last and only the changes go to ``Picamera2.set_controls``; they
  take effect a few frames later while the encoder keeps running. Only ``hdr`` between ``off`` and
  ``sensor`` re-opens the camera (the IMX708's HDR is a sensor mode), and the answer says so.
* Other sources: brightness, contrast, saturation, sharpness, roi/zoom, lens correction and night
  greyscale become an :class:`~pi_camera_service.imaging.ImageAdjust` the capture thread applies to
  every frame; sensor-only controls are ``supported: false`` and setting them raises
  :class:`~pi_camera_service.sources.base.NotSupported` (HTTP 409).

Then the state is saved atomically (:class:`~pi_camera_service.controls.store.ControlStore`) and
re-applied at the next start. A 1 s ticker drives day/night; detection results drive focus on faces.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pi_camera_service.controls.daynight import DayNightSwitch
from pi_camera_service.controls.libcamera_map import af_state_name, af_trigger_value  # noqa: F401 - af_state_name re-exported
from pi_camera_service.controls.spec import (
    CONTROLS,
    MAX_ZOOM,
    ZOOM_PRESETS,
    roi_to_scaler_crop,
    roi_to_zoom,
    to_libcamera,
    zoom_to_roi,
)
from pi_camera_service.controls.store import ControlStore
from pi_camera_service.controls.support import Effective, check_value, effective_controls
from pi_camera_service.events import EventLog
from pcs_common.geometry import iou as _iou
from pcs_common.limits import excerpt
from pi_camera_service.sources.base import Camera, CameraError, NotSupported, SourceCapabilities

log = logging.getLogger(__name__)

#: day/night thresholds when none were set: (night below, day above) per level unit
DEFAULT_THRESHOLDS = {"lux": (5.0, 20.0), "luma": (40.0, 70.0)}
#: focus on faces: at most one AfWindows update per this many s, and only when the face moved
FACE_FOCUS_INTERVAL = 0.5
#: focus on faces: metering goes back to af_window / auto after this many s without a face
FACE_FOCUS_HOLD = 3.0


class InvalidControls(ValueError):
    """Some values of an update are invalid; nothing was applied.

    Attributes:
        errors: one dict per problem: ``{control, value, message}`` (``message`` names what is allowed).
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(e["message"] for e in errors))


class UnsupportedControls(NotSupported):
    """Some controls of an update cannot be applied by this source; nothing was applied.

    Attributes:
        errors: ``{control, value, message}`` per control.
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(e["message"] for e in errors))


class ControlConflict(CameraError):
    """The update is valid but cannot act in the current state (e.g. ``af_trigger`` outside ``af_mode=auto``)."""


@dataclass
class UpdateResult:
    """What an update did: ``changed`` (API names -> new values), ``restarted`` (the camera was
    re-opened), ``restart_ms``, ``libcamera`` (the dict sent to ``set_controls``, Pi only)."""

    changed: dict[str, Any] = field(default_factory=dict)
    restarted: bool = False
    restart_ms: float | None = None
    restart_reason: str | None = None
    libcamera: dict[str, Any] = field(default_factory=dict)


class CameraControls:
    """Control state of one camera.

    Args:
        camera: the open camera (its :meth:`~pi_camera_service.sources.base.Camera.capabilities`
            decide what is supported).
        store: where the state is persisted (``CAMERA_STATE_DIR/camera-controls.json``).
        events: where ``controls``, ``day_night`` and ``camera_restart`` events go.
        lens: the lens model used by ``lens_correction`` (None: lens correction unsupported).
        night_max_frame_duration: longest frame duration allowed at night on a Pi camera, µs.
        detection_enabled: focus on faces needs the detector.

    Thread-safe: updates, the day/night ticker and detection callbacks are serialised by one lock.
    """

    def __init__(
        self,
        camera: Camera,
        store: ControlStore,
        events: EventLog,
        lens: Any = None,
        night_max_frame_duration: int = 100_000,
        detection_enabled: bool = True,
    ) -> None:
        self.camera = camera
        self.store = store
        self.events = events
        self.lens = lens
        self.night_max_frame_duration = int(night_max_frame_duration)
        self.detection_enabled = detection_enabled
        self._lock = threading.RLock()
        self.caps: SourceCapabilities = camera.capabilities()
        self.effective: dict[str, Effective] = effective_controls(self.caps, camera.source, lens, detection_enabled)
        self._state: dict[str, Any] = self._defaults()
        self._sent: dict[str, Any] = {}
        self._switch = DayNightSwitch(self._state["night_threshold"], self._state["day_threshold"],
                                      self._state["day_night_dwell"])
        self._mode_changed_at = time.time()
        self._level: float | None = None
        self._face_windows: list[tuple[int, int, int, int]] | None = None
        self._face_seen_at = 0.0
        self._face_sent_at = 0.0
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------------------- support
    def _defaults(self) -> dict[str, Any]:
        state = {name: spec.default for name, spec in CONTROLS.items() if spec.persistent}
        fd = int(round(1e6 / self.camera.framerate))
        state["frame_duration_limits"] = (fd, fd)
        night, day = DEFAULT_THRESHOLDS[self.caps.level_unit]
        state["night_threshold"], state["day_threshold"] = night, day
        state["focus_distance"] = None
        return state

    # ------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Load the stored state, drop what no longer validates (logged), apply everything, start the ticker."""
        stored = self.store.load()
        try:
            accepted = self._validate(stored, base=self._state)[0]
        except (InvalidControls, UnsupportedControls, ControlConflict):
            accepted = {}  # keep what still validates, one control at a time
            for name, value in stored.items():
                try:
                    accepted.update(self._validate({name: value}, base={**self._state, **accepted})[0])
                except (InvalidControls, UnsupportedControls, ControlConflict) as exc:
                    log.warning("ignoring stored control %s=%r: %s", name, value, exc)
        with self._lock:
            self._state.update(accepted)
            self._sync_derived()
            self._switch.configure(self._state["night_threshold"], self._state["day_threshold"],
                                   self._state["day_night_dwell"])
            if self._state["day_night"] != "auto":
                self._switch.mode = self._state["day_night"]
            result = UpdateResult()
            if self._state["hdr"] == "sensor" and self.caps.sensor_hdr:
                self._restart_for_hdr(True, result)
            self._apply(result, full=True)
        if accepted:
            log.info("re-applied stored camera controls: %s", ", ".join(f"{k}={v!r}" for k, v in sorted(accepted.items())))
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name="camera-controls", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        """Stop the day/night ticker (the state is already saved)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(3.0)
        self._ticker = None

    # ------------------------------------------------------------------------------- reading
    @property
    def state(self) -> dict[str, Any]:
        """A copy of the current state (API names -> values)."""
        with self._lock:
            return dict(self._state)

    @property
    def mode(self) -> str:
        """Current day/night mode: ``day`` or ``night``."""
        return self._switch.mode

    def describe(self) -> dict[str, dict[str, Any]]:
        """Every control: ``{value, default, supported, type, group, unit, min, max, choices,
        libcamera, applied_by, description, reason}`` (``GET /v1/camera/controls``)."""
        with self._lock:
            state = dict(self._state)
        out = {}
        defaults = self._defaults()
        for name, eff in self.effective.items():
            spec = eff.spec
            entry: dict[str, Any] = {
                "value": _jsonable(state.get(name)),
                "default": _jsonable(defaults.get(name)),
                "supported": eff.supported,
                "type": spec.kind,
                "group": spec.group,
                "unit": spec.unit if name not in ("night_threshold", "day_threshold") else self.caps.level_unit,
                "description": spec.description,
                "libcamera": list(spec.libcamera),
                "applied_by": eff.applied_by,
            }
            if spec.kind in ("int", "float", "pair"):
                entry["min"], entry["max"] = eff.minimum, eff.maximum
            if eff.choices is not None:
                entry["choices"] = list(eff.choices)
            if spec.nullable:
                entry["nullable"] = True
            if not eff.supported:
                entry["reason"] = eff.reason
            out[name] = entry
        return out

    def capabilities(self) -> dict[str, Any]:
        """``GET /v1/camera/capabilities``: backend, sensor, raw libcamera ranges, supported controls."""
        caps = self.caps
        return {
            "backend": caps.backend,
            "source": self.camera.source,
            "model": caps.model,
            "noir": caps.noir,
            "platform": caps.platform,
            "tuning": caps.tuning,
            "pixel_array_size": caps.pixel_array_size,
            "scaler_crop_maximum": caps.scaler_crop_maximum,
            "sensor_hdr": caps.sensor_hdr,
            "isp_hdr": caps.isp_hdr,
            "hdr_modes": list(self.effective["hdr"].choices or ()),
            "zoom_presets": list(ZOOM_PRESETS),
            "max_zoom": MAX_ZOOM,
            "day_night_level_unit": caps.level_unit,
            "lens_correction": self.lens is not None,
            "libcamera_controls": {
                name: {"min": _jsonable(v[0]), "max": _jsonable(v[1]), "default": _jsonable(v[2])}
                for name, v in sorted(caps.libcamera_controls.items())
            },
            "supported": sorted(n for n, e in self.effective.items() if e.supported),
            "unsupported": {n: e.reason for n, e in sorted(self.effective.items()) if not e.supported},
        }

    def status(self) -> dict[str, Any]:
        """Control-derived facts for ``GET /v1/camera/status``: hdr, day/night, crop, zoom, lens correction."""
        with self._lock:
            state = dict(self._state)
            level = self._level
        roi = tuple(state["roi"])
        crop = None
        if self.caps.scaler_crop_maximum is not None:
            crop = roi_to_scaler_crop(roi, self.caps.scaler_crop_maximum)
        return {
            "hdr": state["hdr"],
            "day_night": {
                "mode": self._switch.mode,
                "auto": state["day_night"] == "auto",
                "level": None if level is None else round(level, 2),
                "unit": self.caps.level_unit,
                "night_threshold": state["night_threshold"],
                "day_threshold": state["day_threshold"],
                "dwell_s": state["day_night_dwell"],
                "since": self._mode_changed_at,
            },
            "roi": list(roi),
            "zoom": roi_to_zoom(roi),
            "requested_scaler_crop": crop,
            "lens_correction": state["lens_correction"],
            "focus_on_faces": state["focus_on_faces"],
        }

    # ------------------------------------------------------------------------------- updating
    def update(self, patch: dict[str, Any], origin: str = "api") -> UpdateResult:
        """Validate ``patch`` as a whole and apply it; nothing is applied if anything is wrong.

        Implications (unless the same request sets the other control): ``exposure_time`` or
        ``analogue_gain`` turn ``ae_enable`` off; ``colour_gains`` turn ``awb_enable`` off and
        ``noir_preset`` off; ``lens_position``/``focus_distance`` select ``af_mode`` manual;
        ``zoom`` sets ``roi`` to the centred rectangle.

        Raises:
            InvalidControls: unknown control, wrong type, out of range or choices, inconsistent pair.
            UnsupportedControls: valid values this source cannot apply.
            ControlConflict: ``af_trigger`` outside ``af_mode=auto``.
            CameraError: the camera refused the controls (the state is rolled back).
            OSError: the state could not be saved (it is applied nonetheless).
        """
        with self._lock:
            changes, actions = self._validate(patch, base=self._state)
            old = dict(self._state)
            self._state.update(changes)
            self._sync_derived()
            touched = set(changes) | ({"zoom"} if "roi" in changes else set()) | (
                {"focus_distance"} if "lens_position" in changes else set())
            result = UpdateResult(changed={k: self._state[k] for k in sorted(touched) if old.get(k) != self._state[k]})
            try:
                if {"night_threshold", "day_threshold", "day_night_dwell"} & changes.keys():
                    self._switch.configure(self._state["night_threshold"], self._state["day_threshold"],
                                           self._state["day_night_dwell"])
                if "day_night" in changes and changes["day_night"] != "auto":
                    self._set_mode(changes["day_night"], reason="manual")
                if old["hdr"] != self._state["hdr"] and "sensor" in (old["hdr"], self._state["hdr"]):
                    self._restart_for_hdr(self._state["hdr"] == "sensor", result)
                self._apply(result, actions=actions)
            except Exception:
                self._state = old
                self._sync_derived()
                raise
            if result.changed:
                self._save()
                self.events.publish("controls", origin=origin, changed=_jsonable(result.changed),
                                    restarted=result.restarted)
            return result

    def trigger_autofocus(self, action: str = "start") -> UpdateResult:
        """``af_trigger``: start (or cancel) a one-shot AF scan (libcamera ``AfTrigger``).

        Raises:
            UnsupportedControls: no autofocus.
            ControlConflict: ``af_mode`` is not ``auto``.
        """
        return self.update({"af_trigger": action})

    def _validate(self, patch: dict[str, Any], base: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(state changes, one-shot actions) for ``patch``, or raise listing every problem."""
        if not isinstance(patch, dict):
            raise InvalidControls([{"control": None, "value": patch, "message": "expected a JSON object of controls"}])
        errors: list[dict[str, Any]] = []
        unsupported: list[dict[str, Any]] = []
        values: dict[str, Any] = {}
        for name, value in patch.items():
            eff = self.effective.get(name)
            if eff is None:
                errors.append({"control": name, "value": value, "message":
                               f"{name}: unknown control; known controls: {', '.join(sorted(CONTROLS))}"})
                continue
            try:
                values[name] = check_value(eff, value)
            except ValueError as exc:
                errors.append({"control": name, "value": value, "message": f"{name}={excerpt(value)}: {exc}"})
                continue
            if not eff.supported:
                unsupported.append({"control": name, "value": value, "message":
                                    f"{name} is not supported here: {eff.reason}"})
        for a, b in (("zoom", "roi"), ("lens_position", "focus_distance")):
            if a in values and b in values:
                errors.append({"control": b, "value": patch[b], "message":
                               f"{a} and {b} set the same thing; send only one"})
        if errors:
            raise InvalidControls(errors)
        if unsupported:
            raise UnsupportedControls(unsupported)

        actions = {k: values.pop(k) for k in list(values) if not CONTROLS[k].persistent}
        if "zoom" in values:
            values["roi"] = zoom_to_roi(values.pop("zoom"))
        if "focus_distance" in values:
            distance = values.pop("focus_distance")
            values["lens_position"] = round(1.0 / distance, 6)
            hi = self.effective["lens_position"].maximum
            if hi is not None and values["lens_position"] > hi:
                raise InvalidControls([{"control": "focus_distance", "value": distance, "message":
                                        f"focus_distance={distance!r}: closer than the lens can focus "
                                        f"(minimum {1 / hi:.3g} m)"}])
        implied = (
            ("exposure_time", "ae_enable", False), ("analogue_gain", "ae_enable", False),
            ("colour_gains", "awb_enable", False), ("colour_gains", "noir_preset", "off"),
            ("lens_position", "af_mode", "manual"),
        )
        for cause, target, value in implied:
            if values.get(cause) is not None and target not in values and self.effective[target].supported:
                values[target] = value
        merged = {**base, **values}
        if merged["day_threshold"] <= merged["night_threshold"]:
            raise InvalidControls([{"control": "day_threshold", "value": merged["day_threshold"], "message":
                                    f"day_threshold ({merged['day_threshold']:g}) must be greater than "
                                    f"night_threshold ({merged['night_threshold']:g}): the gap is the hysteresis"}])
        if "af_trigger" in actions and merged["af_mode"] != "auto":
            raise ControlConflict(
                f"af_trigger needs af_mode=auto (it is {merged['af_mode']}): in manual mode set lens_position, "
                "in continuous mode the camera focuses by itself"
            )
        if merged["hdr"] == "sensor" and self.camera.width * self.camera.height > 2304 * 1296 and "hdr" in values:
            raise InvalidControls([{"control": "hdr", "value": "sensor", "message":
                                    f"hdr='sensor': the IMX708 HDR mode gives at most 2304x1296 px, the main stream "
                                    f"is {self.camera.width}x{self.camera.height}"}])
        return values, actions

    def _sync_derived(self) -> None:
        s = self._state
        s["zoom"] = roi_to_zoom(tuple(s["roi"]))
        s["focus_distance"] = None if not s["lens_position"] else round(1.0 / s["lens_position"], 4)

    # ------------------------------------------------------------------------------- applying
    def _night_overrides(self) -> dict[str, Any]:
        if self._switch.mode != "night":
            return {}
        if self.caps.backend != "picamera2":
            return {"saturation": 0.0}
        lo, hi = self._state["frame_duration_limits"]
        night: dict[str, Any] = {"saturation": 0.0, "frame_duration_limits": (lo, max(hi, self.night_max_frame_duration))}
        if self.caps.noir:
            night["noir_preset"] = "infrared"
        return night

    def _af_windows(self) -> list[tuple[int, int, int, int]] | None:
        if self._face_windows:
            return self._face_windows
        window = self._state["af_window"]
        crop_max = self.caps.scaler_crop_maximum
        if window is None or crop_max is None:
            return None
        _, _, mw, mh = crop_max
        x, y, w, h = window
        return [(int(x * mw), int(y * mh), max(1, int(w * mw)), max(1, int(h * mh)))]

    def _image_adjust(self) -> Any:
        from pi_camera_service.imaging import ImageAdjust

        lens = self.lens if self._state["lens_correction"] else None
        if self.caps.backend == "picamera2":  # the ISP does the rest; roi tells which part the lens shows
            return ImageAdjust(roi=tuple(self._state["roi"]), lens=lens) if lens is not None else ImageAdjust()
        s = {**self._state, **self._night_overrides()}
        return ImageAdjust(
            brightness=float(s["brightness"]), contrast=float(s["contrast"]), saturation=float(s["saturation"]),
            sharpness=float(s["sharpness"]), roi=tuple(s["roi"]), lens=lens,
        )

    def _apply(self, result: UpdateResult, actions: dict[str, Any] | None = None, full: bool = False) -> None:
        """Send the current state to the camera (caller holds the lock)."""
        self.camera.set_image_adjust(self._image_adjust())
        if self.caps.backend != "picamera2":
            return
        wanted = to_libcamera(self._state, self.caps.libcamera_controls, self.caps.scaler_crop_maximum,
                              self._night_overrides(), self._af_windows())
        diff = dict(wanted) if full else {k: v for k, v in wanted.items() if self._sent.get(k) != v}
        if actions and "af_trigger" in actions:
            diff["AfTrigger"] = af_trigger_value(actions["af_trigger"])
        if diff:
            self.camera.set_controls(diff)
        self._sent = wanted
        result.libcamera = diff

    def _restart_for_hdr(self, enabled: bool, result: UpdateResult) -> None:
        ms = self.camera.set_sensor_hdr(enabled)
        result.restarted, result.restart_ms = True, round(ms, 1)
        result.restart_reason = f"sensor HDR {'on' if enabled else 'off'} needs the camera re-opened"
        self._sent = {}
        self.events.publish("camera_restart", reason=result.restart_reason, restart_ms=result.restart_ms)

    def _save(self) -> None:
        try:
            self.store.save({k: _jsonable(v) for k, v in self._state.items()
                             if CONTROLS[k].persistent and k not in ("zoom", "focus_distance")})
        except OSError as exc:
            log.error("cannot save camera controls to %s: %s (they apply until restart)", self.store.path, exc)

    # ------------------------------------------------------------------------------- day / night
    def _set_mode(self, mode: str, reason: str) -> None:
        if self._switch.mode != mode:
            self._switch.mode = mode
            self._record_mode(mode, reason)

    def _record_mode(self, mode: str, reason: str, level: float | None = None) -> None:
        self._mode_changed_at = time.time()
        log.info("day/night: %s mode (%s%s)", mode, reason, "" if level is None else f", level {level:.1f} {self.caps.level_unit}")
        self.events.publish("day_night", mode=mode, reason=reason,
                            level=None if level is None else round(level, 2), unit=self.caps.level_unit)

    def tick(self, now: float | None = None) -> None:
        """One day/night step: read the scene level, switch mode if the switch says so, re-apply.

        Called every second by the ticker thread; tests call it directly with a ``now`` (monotonic s).
        Also drops the face AF window after :data:`FACE_FOCUS_HOLD` s without a face.
        """
        now = time.monotonic() if now is None else now
        level = self.camera.scene_level()
        with self._lock:
            self._level = level
            changed = False
            if self._state["day_night"] == "auto" and level is not None:
                mode = self._switch.update(level, now)
                if mode is not None:
                    self._record_mode(mode, reason="auto", level=level)
                    changed = True
            if self._face_windows and time.monotonic() - self._face_seen_at > FACE_FOCUS_HOLD:
                self._face_windows = None
                changed = True
            if changed:
                try:
                    self._apply(UpdateResult())
                except CameraError as exc:
                    log.warning("applying day/night controls failed: %s", exc)

    def _tick_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the ticker must survive a camera fault
                log.exception("camera controls tick failed")

    # ------------------------------------------------------------------------------- focus on faces
    def on_detection(self, result: Any) -> None:
        """Detection listener: with ``focus_on_faces``, point the AF window at the largest face.

        The face box (main-stream px of the current crop) is mapped to sensor px through the
        requested ``ScalerCrop`` and expressed in ``ScalerCropMaximum`` px as libcamera's
        ``AfWindows`` requires. Updates are rate-limited (:data:`FACE_FOCUS_INTERVAL`) and skipped
        when the face barely moved; in ``af_mode=auto`` a new window also triggers a scan.
        """
        if not self._state.get("focus_on_faces") or not self.effective["focus_on_faces"].supported:
            return
        faces = getattr(result, "faces", ())
        if not faces:
            return
        face = max(faces, key=lambda f: f.width * f.height)
        crop_max = self.caps.scaler_crop_maximum
        if crop_max is None:
            return
        with self._lock:
            cx, cy, cw, ch = roi_to_scaler_crop(tuple(self._state["roi"]), crop_max)
            sx, sy = cw / result.width, ch / result.height
            window = (
                int(cx - crop_max[0] + face.x * sx),
                int(cy - crop_max[1] + face.y * sy),
                max(1, int(face.width * sx)),
                max(1, int(face.height * sy)),
            )
            now = time.monotonic()
            self._face_seen_at = now
            previous = self._face_windows[0] if self._face_windows else None
            if previous is not None and (now - self._face_sent_at < FACE_FOCUS_INTERVAL or _iou(previous, window) > 0.6):
                return
            self._face_windows = [window]
            self._face_sent_at = now
            actions = {"af_trigger": "start"} if self._state["af_mode"] == "auto" else None
            try:
                self._apply(UpdateResult(), actions=actions)
            except CameraError as exc:
                log.warning("focus on faces: setting AfWindows failed: %s", exc)

    @property
    def face_windows(self) -> list[tuple[int, int, int, int]] | None:
        """The AF windows currently following a face (``ScalerCropMaximum`` px), or None."""
        return self._face_windows


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def default_store(state_dir: Path) -> ControlStore:
    """The store at ``state_dir/camera-controls.json``."""
    return ControlStore(Path(state_dir) / "camera-controls.json")

