"""Response models of the HTTP API (they also document the API in ``/docs``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    """``GET /health``: liveness for systemd watchdogs, load balancers and the central server."""

    status: Literal["healthy", "degraded"] = Field(description="degraded: the camera produces no frames")
    camera_configured: bool = Field(description="the camera source is open and has produced a frame")
    streaming_active: bool = Field(description="frames are being published over RTSP")
    detection_active: bool = Field(description="the background detection task is running")
    version: str


class StreamingStatusOut(BaseModel):
    """``/v1/streaming/*``: the RTSP publisher's state and counters."""

    state: Literal["stopped", "connecting", "streaming", "reconnecting"]
    url: str = Field(description="RTSP publish URL, password redacted")
    fps: float = Field(description="frames published per second over the last ~2 s")
    frames_sent: int
    bitrate: float = Field(description="measured H.264 bitrate over the last ~2 s, bit/s")
    reconnects: int = Field(description="connections re-established after a failure")
    last_error: str | None


class CameraStatus(BaseModel):
    """``GET /v1/camera/status``: what a source cannot measure is null."""

    source: str
    width: int = Field(description="main stream width, px")
    height: int = Field(description="main stream height, px")
    framerate: float = Field(description="frames/s")
    lux: float | None = Field(description="estimated scene illuminance, lux (libcamera Lux)")
    exposure_us: float | None = Field(description="exposure time, µs (libcamera ExposureTime)")
    analogue_gain: float | None = Field(description="sensor analogue gain (libcamera AnalogueGain)")
    colour_temperature: float | None = Field(description="K (libcamera ColourTemperature)")
    auto_exposure: bool | None = Field(description="libcamera AeEnable")
    streaming: bool


class Box(BaseModel):
    """A detected box in main-stream px."""

    x: int
    y: int
    width: int
    height: int


class Face(Box):
    """A frontal face with its dlib 128-d encoding (compare with Euclidean distance, tolerance 0.6)."""

    encoding: list[float] | None = Field(description="128 floats, or null when no encoding was computed")


class DetectionOut(BaseModel):
    """``/v1/detection/latest`` and ``/v1/detection/run``."""

    frame_timestamp: float = Field(description="capture time of the analysed frame, s since the epoch")
    analysed_at: float = Field(description="end of the analysis, s since the epoch")
    analysis_ms: float
    width: int = Field(description="main stream width, px (boxes are in this frame)")
    height: int
    nb_faces: int
    nb_profiles: int
    faces: list[Face]
    profiles: list[Box]


class Problem(BaseModel):
    """Error body: ``detail`` says what is wrong and what is allowed."""

    detail: str
