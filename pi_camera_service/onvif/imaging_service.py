"""The ONVIF imaging service (``timg``, Imaging Service Specification): imaging settings and options,
focus Move/Stop/GetStatus, through :class:`~pi_camera_service.onvif.imaging.ImagingMapper`."""

from __future__ import annotations

from typing import Any

from fastapi.concurrency import run_in_threadpool

from pi_camera_service.onvif.calls import VIDEO_SOURCE_TOKEN, Call
from pi_camera_service.onvif.soap import Fault, element, find, sender_fault, sub, text


def _source_token(call: Call) -> None:
    token = text(call.soap.body, "timg:VideoSourceToken")
    if token != VIDEO_SOURCE_TOKEN:
        raise sender_fault(f"no video source {str(token)[:64]!r}; the source is {VIDEO_SOURCE_TOKEN!r}",
                           "ter:InvalidArgVal", "ter:NoSource")


async def get_imaging_settings(call: Call) -> Any:
    _source_token(call)
    r = element("timg:GetImagingSettingsResponse")
    call.ctx.imaging.write_settings(sub(r, "timg:ImagingSettings"))
    return r


async def get_options(call: Call) -> Any:
    _source_token(call)
    r = element("timg:GetOptionsResponse")
    call.ctx.imaging.write_options(sub(r, "timg:ImagingOptions"))
    return r


async def get_move_options(call: Call) -> Any:
    _source_token(call)
    r = element("timg:GetMoveOptionsResponse")
    call.ctx.imaging.write_move_options(sub(r, "timg:MoveOptions"))
    return r


async def _apply(call: Call, patch: dict[str, Any]) -> None:
    from pi_camera_service.controls.manager import ControlConflict, InvalidControls, UnsupportedControls
    from pi_camera_service.sources.base import CameraError

    if not patch:
        return
    try:
        await run_in_threadpool(call.ctx.controls.update, patch, "onvif")
    except (InvalidControls, UnsupportedControls) as exc:
        raise sender_fault(str(exc), "ter:InvalidArgVal", "ter:SettingsInvalid") from None
    except ControlConflict as exc:
        raise sender_fault(str(exc), "ter:InvalidArgVal", "ter:SettingsInvalid") from None
    except CameraError as exc:
        raise Fault("Receiver", ("ter:Action",), f"the camera refused the settings: {exc}", 500) from None


async def set_imaging_settings(call: Call) -> Any:
    _source_token(call)
    settings = find(call.soap.body, "timg:ImagingSettings")
    if settings is None:
        raise sender_fault("ImagingSettings is required")
    await _apply(call, call.ctx.imaging.patch_from_settings(settings))
    return element("timg:SetImagingSettingsResponse")


async def move(call: Call) -> Any:
    _source_token(call)
    focus = find(call.soap.body, "timg:Focus")
    if focus is None:
        raise sender_fault("Move needs Focus", "ter:InvalidArgVal", "ter:NoSuchMoveOption")
    await _apply(call, call.ctx.imaging.patch_from_move(focus))
    return element("timg:MoveResponse")


async def stop(call: Call) -> Any:
    _source_token(call)
    return element("timg:StopResponse")  # absolute/relative moves finish by themselves


async def get_status(call: Call) -> Any:
    _source_token(call)
    r = element("timg:GetStatusResponse")
    st = sub(r, "timg:Status")
    if call.ctx.imaging.supported("lens_position"):
        f = sub(st, "tt:FocusStatus20")
        meta = await run_in_threadpool(call.ctx.camera.metadata)
        pos = meta.get("LensPosition", call.ctx.controls.state.get("lens_position"))
        sub(f, "tt:Position", float(pos or 0.0))
        sub(f, "tt:MoveStatus", "IDLE")
    return r
