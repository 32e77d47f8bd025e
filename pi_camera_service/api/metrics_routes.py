"""``GET /metrics``: stream health and detection counters in the Prometheus text format (prometheus-client).

Figures are read from the camera and the detection service at scrape time by one custom collector
(``prometheus_client.registry.Collector``) on a registry of this app's own, so several apps in one
process (tests) never share or double-register metrics, and a scrape costs O(frames of the last
60 s) whatever the scrape rate.

By default ``/metrics`` needs the same credentials as ``/v1`` (``X-API-Key``, ``Authorization:
Bearer``; Prometheus 3 sends a header with ``http_headers``, any version a bearer token with
``authorization: {credentials: ...}``); ``CAMERA_METRICS_AUTH=false`` opens it to the network
(it then tells a LAN observer only rates and counters, no image or face data).

Metric names follow Prometheus' naming conventions (base units, ``_total`` for counters):

=====================================================  =======  ==============================================
``pi_camera_stream_up``                                gauge    1 while publishing over RTSP
``pi_camera_stream_fps{window="2s|10s|60s"}``          gauge    frames published per second over the window
``pi_camera_stream_frames_sent_total``                 counter  frames handed to the RTSP muxer
``pi_camera_stream_frame_gaps_total``                  counter  intervals between frames over 100 ms
``pi_camera_stream_frame_gaps_last_minute``            gauge    the same over the last 60 s
``pi_camera_stream_max_frame_gap_seconds``             gauge    longest interval in the last 60 s
``pi_camera_stream_frames_dropped_total``              counter  frames produced but never published
``pi_camera_stream_frames_dropped_last_minute``        gauge    the same over the last 60 s
``pi_camera_stream_bitrate_bits_per_second``           gauge    H.264 bitrate over the last ~2 s
``pi_camera_stream_reconnects_total``                  counter  RTSP connections re-established
``pi_camera_detection_active``                         gauge    1 while background detection runs
``pi_camera_detection_fps`` / ``_target_fps``          gauge    analysed / targeted frames per second
``pi_camera_detection_frames_analysed_total``          counter  analyses done
``pi_camera_detection_backoffs_total``                 counter  times sampling backed off for the stream
``pi_camera_detection_errors_total``                   counter  failed analyses
``pi_camera_detection_last_analysis_seconds``          gauge    duration of the latest analysis
=====================================================  =======  ==============================================
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pi_camera_service.api.state import AppServices
from pi_camera_service.auth import require_auth
from pi_camera_service.sources.base import StreamingStatus


class ServiceCollector(Collector):
    """Yields the stream and detection metrics of ``services`` (its ``camera`` and ``detection``).

    Nothing is yielded for a part that is not running yet (before the lifespan started the camera).
    """

    def __init__(self, services: AppServices) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        """One family per metric of the module docstring's table."""
        camera = self.services.camera
        if camera is not None:
            yield from _stream_metrics(camera.streaming_status())
        detection = self.services.detection
        if detection is not None:
            yield from _detection_metrics(detection.stats())


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _stream_metrics(st: StreamingStatus) -> Iterator[Metric]:
    yield _gauge("pi_camera_stream_up", "1 while H.264 is being published over RTSP", float(st.state == "streaming"))
    fps = GaugeMetricFamily("pi_camera_stream_fps", "frames published per second over the window", labels=["window"])
    for window, value in (("2s", st.fps), ("10s", st.fps_10s), ("60s", st.fps_60s)):
        fps.add_metric([window], value)
    yield fps
    yield _counter("pi_camera_stream_frames_sent", "frames handed to the RTSP muxer", st.frames_sent)
    yield _counter("pi_camera_stream_frame_gaps", "intervals between published frames over 100 ms", st.frame_gaps)
    yield _gauge("pi_camera_stream_frame_gaps_last_minute", "intervals over 100 ms in the last 60 s", st.frame_gaps_60s)
    yield _gauge(
        "pi_camera_stream_max_frame_gap_seconds", "longest interval between published frames in the last 60 s",
        st.max_gap_ms_60s / 1000,
    )
    yield _counter("pi_camera_stream_frames_dropped", "frames produced but never published", st.frames_dropped)
    yield _gauge("pi_camera_stream_frames_dropped_last_minute", "frames dropped in the last 60 s", st.frames_dropped_60s)
    yield _gauge("pi_camera_stream_bitrate_bits_per_second", "H.264 bitrate over the last ~2 s", st.bitrate)
    yield _counter("pi_camera_stream_reconnects", "RTSP connections re-established after a failure", st.reconnects)


def _detection_metrics(stats: dict[str, Any]) -> Iterator[Metric]:
    yield _gauge("pi_camera_detection_active", "1 while background face detection runs", float(bool(stats["active"])))
    yield _gauge("pi_camera_detection_fps", "analysed frames per second", stats["analysed_fps"])
    yield _gauge("pi_camera_detection_target_fps", "sampling rate in force", stats.get("target_fps", 0.0))
    yield _counter("pi_camera_detection_frames_analysed", "analyses done", stats["frames_analysed"])
    yield _counter("pi_camera_detection_backoffs", "times sampling backed off for the stream", stats.get("backoffs", 0))
    yield _counter("pi_camera_detection_errors", "failed analyses", stats["errors"])
    last = stats.get("last_analysis_ms")
    if last is not None:
        yield _gauge("pi_camera_detection_last_analysis_seconds", "duration of the latest analysis", last / 1000)


def install(app: FastAPI, require_credentials: bool) -> None:
    """Add ``GET /metrics`` to ``app`` (made by ``create_app``: its ``state.services`` is an
    :class:`AppServices`), behind ``/v1``'s authentication when ``require_credentials``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(app.state.services))
    dependencies = [Depends(require_auth)] if require_credentials else []
    router = APIRouter(tags=["health"], dependencies=dependencies)

    @router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    def metrics(request: Request) -> Response:
        """Stream health and detection counters in the Prometheus text exposition format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
