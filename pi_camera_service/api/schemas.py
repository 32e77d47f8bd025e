"""Response models of the HTTP API (they also document the API in ``/docs``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    """``GET /health``: liveness for systemd watchdogs, load balancers and the central server."""

    status: Literal["healthy", "degraded"] = Field(description="degraded: the camera produces no frames")
    camera_configured: bool = Field(description="the camera source is open and has produced a frame")
    streaming_active: bool = Field(description="frames are being published over RTSP")
    detection_active: bool = Field(description="the background detection task is running")
    version: str
    hardware_id: str = Field(description="this installation's stable id (32 hex characters), the mDNS TXT 'id'")
    stream: "StreamHealth | None" = Field(None, description="RTSP stream health summary")


class StreamingStatusOut(BaseModel):
    """``/v1/streaming/*``: the RTSP publisher's state and counters."""

    state: Literal["stopped", "connecting", "streaming", "reconnecting"]
    url: str = Field(description="RTSP publish URL, password redacted")
    fps: float = Field(description="frames published per second over the last ~2 s")
    frames_sent: int
    bitrate: float = Field(description="measured H.264 bitrate over the last ~2 s, bit/s")
    reconnects: int = Field(description="connections re-established after a failure")
    last_error: str | None
    fps_10s: float = Field(0.0, description="frames published per second over the last 10 s")
    fps_60s: float = Field(0.0, description="frames published per second over the last 60 s")
    frame_gaps_60s: int = Field(0, description="intervals between published frames over 100 ms in the last 60 s")
    max_gap_ms_60s: float = Field(0.0, description="longest interval between published frames in the last 60 s "
                                  "(including the time since the last frame while streaming), ms")
    frame_gaps: int = Field(0, description="intervals over 100 ms since the service started")
    frames_dropped: int = Field(0, description="frames produced but never published, since the service started")
    frames_dropped_60s: int = Field(0, description="frames produced but never published in the last 60 s")


class StreamHealth(BaseModel):
    """The stream-health summary in ``GET /health`` (the full figures: ``/v1/streaming/status``)."""

    state: Literal["stopped", "connecting", "streaming", "reconnecting"]
    fps_10s: float = Field(description="frames published per second over the last 10 s")
    frame_gaps_60s: int = Field(description="intervals between published frames over 100 ms in the last 60 s")
    max_gap_ms_60s: float = Field(description="longest interval between published frames in the last 60 s, ms")
    frames_dropped_60s: int = Field(description="frames produced but never published in the last 60 s")


class DayNightStatus(BaseModel):
    """Day/night state: mode, whether it switches by itself, the measured level and thresholds."""

    mode: Literal["day", "night"]
    auto: bool = Field(description="switches on the scene level (false: forced by the day_night control)")
    level: float | None = Field(description="last scene level (lux on a Pi camera, mean luma 0..255 otherwise)")
    unit: Literal["lux", "luma"]
    night_threshold: float
    day_threshold: float
    dwell_s: float = Field(description="s the level must stay past a threshold before switching")
    since: float = Field(description="when the current mode started, s since the epoch")


class CameraStatus(BaseModel):
    """``GET /v1/camera/status``: what a source cannot measure is null."""

    source: str
    width: int = Field(description="main stream width, px")
    height: int = Field(description="main stream height, px")
    framerate: float = Field(description="frames/s")
    lux: float | None = Field(description="estimated scene illuminance, lux (libcamera Lux)")
    exposure_us: float | None = Field(description="exposure time, µs (libcamera ExposureTime)")
    analogue_gain: float | None = Field(description="sensor analogue gain (libcamera AnalogueGain)")
    digital_gain: float | None = Field(None, description="ISP digital gain (libcamera DigitalGain)")
    colour_gains: list[float] | None = Field(None, description="[red, blue] white balance gains (libcamera ColourGains)")
    colour_temperature: float | None = Field(description="K (libcamera ColourTemperature)")
    auto_exposure: bool | None = Field(description="libcamera AeEnable")
    lens_position: float | None = Field(None, description="focus, dioptres = 1 / m (libcamera LensPosition)")
    focus_distance_m: float | None = Field(None, description="1 / lens_position, m; null at infinity")
    focus_fom: float | None = Field(None, description="focus figure of merit, higher is sharper (libcamera FocusFoM)")
    af_state: Literal["idle", "scanning", "focused", "failed"] | None = Field(None, description="libcamera AfState")
    sensor_temperature: float | None = Field(None, description="°C (libcamera SensorTemperature)")
    frame_duration_us: float | None = Field(None, description="µs (libcamera FrameDuration)")
    scaler_crop: list[int] | None = Field(None, description="[x, y, w, h] sensor px in use (libcamera ScalerCrop)")
    scene_luma: float | None = Field(None, description="mean luma 0..255 before adjustments (software sources)")
    hdr: str = Field("off", description="off, sensor (IMX708 sensor HDR) or a Pi 5 ISP HdrMode")
    day_night: DayNightStatus | None = None
    roi: list[float] | None = Field(None, description="normalised [x, y, w, h] shown (digital zoom)")
    zoom: float | None = Field(None, description="zoom factor the roi amounts to")
    lens_correction: bool = False
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


UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"model": Problem, "description": "missing or invalid credentials"}}
"""The 401 every authenticated route documents (declared once, on the ``/v1`` router)."""
