"""Camera control routes (all behind authentication).

* ``GET /v1/camera/controls``: every control with its value, range or choices, ``supported`` and
  how it is applied; ``PATCH /v1/camera/controls`` changes any subset, all or nothing.
* ``GET /v1/camera/capabilities``: backend, sensor model, NoIR, platform, tuning, libcamera ranges.
* The original service's endpoints, kept for existing scripts: ``POST /v1/camera/auto_exposure
  {enabled}``, ``POST /v1/camera/manual_exposure {exposure_us, gain}``, ``POST /v1/camera/awb
  {enabled}``; plus ``POST /v1/camera/autofocus {action}``.
* ``GET /v1/events?since=``: day/night switches, control changes, camera restarts.

Errors: 422 (invalid values: each names the control, the value and what is allowed; nothing is
applied), 409 (valid but this source cannot do it, or ``af_trigger`` outside ``af_mode=auto``),
503 (camera not open).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, StrictBool

from pcs_common.service_errors import OperationFailed
from pi_camera_service.api.deps import ControlsDep, EventLogDep
from pi_camera_service.api.schemas import Problem
from pi_camera_service.controls.manager import CameraControls, ControlConflict, UnsupportedControls, UpdateResult
from pi_camera_service.sources.base import CameraError, CameraUnavailable

ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "this source cannot apply a control, or af_trigger outside af_mode=auto"},
    422: {"model": Problem, "description": "invalid values (nothing applied): each names the control and what is allowed"},
    503: {"model": Problem, "description": "the camera is not open"},
}

router = APIRouter(responses=ERRORS)


class EnabledIn(BaseModel):
    """``{"enabled": true|false}``."""

    enabled: StrictBool


class ManualExposureIn(BaseModel):
    """``{"exposure_us": 20000, "gain": 2.0}``: fixed exposure time (µs) and analogue gain; AE off."""

    exposure_us: float = Field(description="exposure time, µs (libcamera ExposureTime)")
    gain: float = Field(description="analogue gain, >= 1 (libcamera AnalogueGain)")


class AutofocusIn(BaseModel):
    """``{"action": "start"}`` starts a one-shot AF scan (libcamera AfTrigger); ``cancel`` stops it."""

    action: Literal["start", "cancel"] = "start"


async def _update(controls: CameraControls, patch: dict[str, Any], origin: str) -> dict[str, Any]:
    """Apply ``patch`` (all or nothing) and describe the outcome.

    Raises:
        InvalidControls, UnsupportedControls, ControlConflict, CameraUnavailable: from
            :meth:`CameraControls.update` (answered 422 / 409 / 409 / 503 by the app's error boundary).
        OperationFailed: the camera refused the controls.
    """
    try:
        result: UpdateResult = await run_in_threadpool(controls.update, patch, origin)
    except (CameraUnavailable, ControlConflict, UnsupportedControls):
        raise
    except CameraError as exc:
        raise OperationFailed(f"the camera refused the controls: {exc}") from exc
    return {
        "controls": controls.describe(),
        "changed": _plain(result.changed),
        "restarted": result.restarted,
        "restart_ms": result.restart_ms,
        "restart_reason": result.restart_reason,
        "libcamera_controls_sent": _plain(result.libcamera),
    }


def _whole(value: float) -> float | int:
    """``20000.0`` -> ``20000`` so messages and libcamera get the integer the user meant."""
    return int(value) if float(value).is_integer() else value


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@router.get("/camera/controls", tags=["camera controls"])
def get_camera_controls(controls: ControlsDep) -> dict[str, Any]:
    """Every control: ``value``, ``default``, ``supported`` (with ``reason`` when not), ``type``, ``min``/``max``
    or ``choices``, ``unit``, the ``libcamera`` controls it drives and ``applied_by`` (isp, sensor,
    software, service)."""
    return {"controls": controls.describe(), "day_night": controls.status()["day_night"]}


def controls_patch_schema() -> dict[str, Any]:
    """JSON Schema of a ``PATCH /v1/camera/controls`` body, built from
    :data:`~pi_camera_service.controls.spec.CONTROLS`: each control's type, range, choices and
    nullability; no other keys. Rules that span fields (``zoom`` or ``roi``, a pair's order, what this
    camera supports) cannot be written in it and are answered with 422 or 409 and a message."""
    from pi_camera_service.controls.spec import CONTROLS, ControlSpec

    def number(spec: ControlSpec, integer: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer" if integer else "number"}
        if spec.minimum is not None:
            out["minimum"] = spec.minimum
        if spec.maximum is not None:
            out["maximum"] = spec.maximum
        return out

    props: dict[str, Any] = {}
    for name, spec in CONTROLS.items():
        if spec.kind == "bool":
            schema: dict[str, Any] = {"type": "boolean"}
        elif spec.kind in ("int", "float"):
            schema = number(spec, spec.kind == "int")
        elif spec.kind in ("enum", "action"):
            schema = {"type": "string", "enum": sorted(spec.choices or {})}
        elif spec.kind == "pair":
            schema = {"type": "array", "items": number(spec), "minItems": 2, "maxItems": 2}
        elif spec.kind == "rect":
            schema = {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1},
                      "minItems": 4, "maxItems": 4}
        else:  # a kind added later: documented loosely rather than wrongly
            schema = {}
        if spec.nullable and schema:
            schema = {"anyOf": [schema, {"type": "null"}]}
        props[name] = {**schema, "description": spec.description + (f" ({spec.unit})" if spec.unit else "")}
    return {"type": "object", "properties": props, "additionalProperties": False,
            "examples": [{"brightness": 0.2, "ae_flicker": "50hz", "zoom": 2.0}]}


@router.patch("/camera/controls", tags=["camera controls"], openapi_extra={
    "requestBody": {"required": True, "content": {"application/json": {"schema": controls_patch_schema()}}}})
async def patch_camera_controls(
    controls: ControlsDep,
    patch: Annotated[dict[str, Any], Body(examples=[{"brightness": 0.2, "ae_flicker": "50hz", "zoom": 2.0}])],
) -> Any:
    """Change any subset of controls in one call (all or nothing); returns the new state.

    ``restarted`` is true when the camera had to be re-opened (sensor HDR); otherwise the RTSP stream
    is not interrupted. ``libcamera_controls_sent`` shows what went to ``Picamera2.set_controls``.
    """
    return await _update(controls, patch, "api")


@router.get("/camera/capabilities", tags=["camera controls"])
def get_capabilities(controls: ControlsDep) -> dict[str, Any]:
    """What this camera and backend support: model, NoIR, platform, tuning, HDR modes, zoom presets and
    the raw libcamera ranges (``Picamera2.camera_controls``)."""
    return _plain(controls.capabilities())


@router.post("/camera/auto_exposure", tags=["camera controls"])
async def auto_exposure(controls: ControlsDep, body: EnabledIn) -> Any:
    """Turn automatic exposure/gain on or off (libcamera ``AeEnable``)."""
    return await _update(controls, {"ae_enable": body.enabled}, "auto_exposure")


@router.post("/camera/manual_exposure", tags=["camera controls"])
async def manual_exposure(controls: ControlsDep, body: ManualExposureIn) -> Any:
    """Fixed exposure: ``AeEnable`` false, ``ExposureTime`` = ``exposure_us`` µs, ``AnalogueGain`` = ``gain``."""
    return await _update(
        controls,
        {"ae_enable": False, "exposure_time": _whole(body.exposure_us), "analogue_gain": body.gain},
        "manual_exposure",
    )


@router.post("/camera/awb", tags=["camera controls"])
async def awb(controls: ControlsDep, body: EnabledIn) -> Any:
    """Turn automatic white balance on or off (libcamera ``AwbEnable``; off keeps ``colour_gains``)."""
    return await _update(controls, {"awb_enable": body.enabled}, "awb")


@router.post("/camera/autofocus", tags=["camera controls"])
async def autofocus(controls: ControlsDep, body: Annotated[AutofocusIn | None, Body()] = None) -> Any:
    """Start (or cancel) a one-shot autofocus scan (libcamera ``AfTrigger``); needs ``af_mode=auto``."""
    return await _update(controls, {"af_trigger": (body or AutofocusIn()).action}, "autofocus")


@router.get("/events", tags=["events"])
def events(
    log: EventLogDep,
    since: Annotated[int, Query(ge=0, description="return events with a larger id")] = 0,
    type: Annotated[str | None, Query(description="only this type: day_night, controls, camera_restart")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Recent events, oldest first: ``{events: [{id, type, time, data}], last_id}``; poll with ``since=last_id``."""
    items = [e.to_dict() for e in log.since(since, type, limit)]
    return {"events": items, "last_id": items[-1]["id"] if items else since}
