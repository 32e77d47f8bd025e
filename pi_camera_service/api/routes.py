"""HTTP routes: health (open), streaming, detection, snapshot and status (``router``: included into the
authenticated ``/v1`` router by :mod:`pi_camera_service.api.main`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from pcs_common.service_errors import Unavailable
from pi_camera_service import __version__
from pi_camera_service.api.deps import CameraDep, DetectionDep, RequiredDetectionDep, ServicesDep
from pi_camera_service.api.schemas import UNAUTHORIZED, CameraStatus, DetectionOut, Health, Problem, StreamHealth, StreamingStatusOut
from pi_camera_service.detection.service import DetectionBusy, NoFrameAvailable
from pi_camera_service.snapshots import take_snapshot
from pi_camera_service.sources.base import CameraUnavailable

__all__ = ["UNAUTHORIZED", "health_router", "router"]

health_router = APIRouter(tags=["health"])
router = APIRouter()


@health_router.get("/health", response_model=Health)
def health(services: ServicesDep, camera: CameraDep, detection: DetectionDep) -> Health:
    """Liveness without authentication: ``{status, camera_configured, streaming_active, detection_active, version,
    hardware_id, stream}`` (``stream``: fps over 10 s, frame gaps, largest gap and drops of the last minute) (the central server's network scan recognises a camera by ``hardware_id`` and ``version``)."""
    configured = camera.is_open and camera.frames_captured > 0
    stream = camera.streaming_status()
    return Health(
        status="healthy" if configured else "degraded",
        camera_configured=configured,
        streaming_active=stream.state == "streaming",
        stream=StreamHealth(
            state=stream.state, fps_10s=stream.fps_10s, frame_gaps_60s=stream.frame_gaps_60s,
            max_gap_ms_60s=stream.max_gap_ms_60s, frames_dropped_60s=stream.frames_dropped_60s,
        ),
        detection_active=bool(detection is not None and detection.stats()["active"]),
        version=__version__,
        hardware_id=services.hardware_id or "",
    )


# ----------------------------------------------------------------------------------- streaming
@router.post("/streaming/start", response_model=StreamingStatusOut, tags=["streaming"])
def streaming_start(camera: CameraDep) -> dict[str, Any]:
    """Start publishing H.264 over RTSP (idempotent). Connection happens in the background: poll status."""
    return asdict(camera.start_streaming())


@router.post("/streaming/stop", response_model=StreamingStatusOut, tags=["streaming"])
def streaming_stop(camera: CameraDep) -> dict[str, Any]:
    """Stop publishing (idempotent); capture, detection and snapshots go on."""
    return asdict(camera.stop_streaming())


@router.get("/streaming/status", response_model=StreamingStatusOut, tags=["streaming"])
def streaming_status(camera: CameraDep) -> dict[str, Any]:
    """State (stopped/connecting/streaming/reconnecting), URL, measured fps and bitrate, counters, last error, and
    the stream's health as a viewer sees it: fps over 10 s and 60 s, frame gaps over 100 ms and the largest gap
    in the last minute, dropped frames."""
    return asdict(camera.streaming_status())


# ----------------------------------------------------------------------------------- detection
@router.get(
    "/detection/latest",
    response_model=DetectionOut,
    tags=["detection"],
    responses={503: {"model": Problem, "description": "no frame analysed yet"}},
)
def detection_latest(detection: RequiredDetectionDep, response: Response) -> dict[str, Any]:
    """The cached result of the newest analysed frame; answers at once, never analyses."""
    result = detection.latest()
    if result is None:
        raise Unavailable("no frame has been analysed yet; retry in a second")
    response.headers["Cache-Control"] = "no-store"
    return result.to_dict()


@router.post(
    "/detection/run",
    response_model=DetectionOut,
    tags=["detection"],
    responses={503: {"model": Problem, "description": "no frame captured yet"}},
)
async def detection_run(detection: RequiredDetectionDep) -> dict[str, Any]:
    """Analyse the newest frame now (Haar frontal + profile, dlib HOG + 128-d encodings) and return the result."""
    try:
        result = await run_in_threadpool(detection.run_now)
    except (CameraUnavailable, NoFrameAvailable) as exc:
        raise Unavailable(f"no frame to analyse yet: {exc}") from exc
    except DetectionBusy as exc:
        raise Unavailable(str(exc)) from exc
    return result.to_dict()


@router.get("/detection/status", tags=["detection"])
def detection_status(detection: RequiredDetectionDep) -> dict[str, Any]:
    """Detection task counters: active, analysed_fps, frames_analysed, samples_skipped, last_analysis_ms, errors."""
    return detection.stats()


# ----------------------------------------------------------------------------------- camera
@router.get(
    "/camera/snapshot",
    tags=["camera"],
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 503: {"model": Problem}},
)
async def snapshot(
    camera: CameraDep,
    width: Annotated[int | None, Query(ge=16, le=4608, description="scaled copy this many px wide")] = None,
    quality: Annotated[int, Query(ge=1, le=100, description="JPEG quality")] = 90,
) -> Response:
    """JPEG of the newest full-resolution frame while streaming continues (``?width=`` for a scaled copy)."""
    jpeg = await run_in_threadpool(take_snapshot, camera, width, quality)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/camera/status", response_model=CameraStatus, tags=["camera"])
def camera_status(camera: CameraDep, services: ServicesDep) -> CameraStatus:
    """Source, size, frame rate, sensor metadata (lux, exposure, gains, colour temperature, focus, AF state,
    sensor temperature, crop; null where the source cannot measure it), HDR, day/night, zoom, streaming."""
    meta = camera.metadata()
    fields = {k: v for k, v in meta.items() if k in CameraStatus.model_fields}
    extra = services.controls.status() if services.controls is not None else {}
    return CameraStatus(
        **{k: v for k, v in extra.items() if k in CameraStatus.model_fields},
        **fields,
        source=camera.source,
        width=camera.width,
        height=camera.height,
        framerate=round(camera.framerate, 3),
        streaming=camera.streaming_status().state == "streaming",
    )
