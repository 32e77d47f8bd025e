"""What the camera tells the central server about itself: the addresses it can be reached at
(:func:`advertised_urls`) and the ``status`` of its heartbeats (:func:`heartbeat_status`,
:class:`pcs_common.protocol.HeartbeatStatus`)."""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pcs_common.protocol import MJPEG_PATH
from pi_camera_service import __version__
from pi_camera_service.config import Settings
from pi_camera_service.discovery import camera_model, viewer_rtsp_url

if TYPE_CHECKING:
    from pi_camera_service.controls.manager import CameraControls
    from pi_camera_service.sources.base import Camera

log = logging.getLogger("pi_camera_service.central_link")  # one logger for the link (journal lines unchanged)


def _is_unspecified_or_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower() in ("localhost", "")
    return address.is_unspecified or address.is_loopback


def _route_address(central_url: str) -> str | None:
    """The local IP address the kernel uses to reach ``central_url``'s host, or None.

    A UDP ``connect`` sends nothing; it only picks the route (and so the source address). Resolves
    the host name (blocking: call it in a thread).
    """
    parts = urlsplit(central_url)
    if not parts.hostname:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_DGRAM)
    except OSError:
        return None
    for family, type_, proto, _, sockaddr in infos:
        try:
            with socket.socket(family, type_, proto) as s:
                s.connect(sockaddr)
                return s.getsockname()[0]
        except OSError:
            continue
    return None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def camera_host(settings: Settings) -> str | None:
    """The host name or address the central server can reach this camera at, or None if unknown.

    In order: ``CAMERA_ADVERTISED_HOST`` (also announced over mDNS), ``CAMERA_HOST`` when it is a
    specific non-loopback address, else the local address of the route to the central server (127.0.0.1
    when the central server itself runs on this machine). Blocking (may resolve a name).
    """
    if settings.advertised_host:
        return settings.advertised_host
    if not _is_unspecified_or_loopback(settings.host):
        return settings.host
    if settings.central_url:
        return _route_address(settings.central_url)
    return None


def advertised_urls(settings: Settings) -> tuple[str | None, str | None]:
    """``(api_url, rtsp_url)`` this camera reports to the central server.

    ``api_url``: ``CAMERA_API_URL`` when set, else ``http://<camera_host>:<CAMERA_PORT>`` (None when
    no host is known). ``rtsp_url``: the URL viewers use
    (:func:`pi_camera_service.discovery.viewer_rtsp_url`, as in the mDNS TXT record): ``CAMERA_RTSP_URL``
    without user and password, a loopback host replaced by the camera's host (MediaMTX runs on the
    camera); None when that host is unknown. Blocking (see :func:`camera_host`).
    """
    api_url = settings.api_url
    if api_url:
        host = settings.advertised_host or urlsplit(api_url).hostname
    else:
        host = camera_host(settings)
        api_url = f"http://{_url_host(host)}:{settings.port}" if host else None
    rtsp_url: str | None = viewer_rtsp_url(settings.rtsp_url, host or "")
    if not urlsplit(rtsp_url).hostname:
        rtsp_url = None
    return api_url, rtsp_url


def heartbeat_status(
    settings: Settings,
    camera: Camera,
    detection: Any,
    *,
    started_at: float,
    api_url: str | None,
    rtsp_url: str | None,
    hardware: str,
    controls: CameraControls | None = None,
) -> dict[str, Any]:
    """The ``status`` object of a heartbeat: every field of :class:`pcs_common.protocol.HeartbeatStatus`.

    Keys: ``version``, ``hardware_id``, ``streaming`` (RTSP publisher state is ``streaming``),
    ``stream_state`` (``stopped``/``connecting``/``streaming``/``reconnecting``), ``detection_fps``
    (analysed frames/s from the detection stats, None when detection is off), ``temperature_c``
    (sensor temperature from the camera metadata, °C, None when the source has none), ``api_url``,
    ``rtsp_url``, ``mjpeg_path``, ``webrtc_url`` (``CAMERA_WEBRTC_URL`` or None), ``uptime_s`` (s since
    ``started_at``, a ``time.monotonic()`` value), ``source``, ``width``, ``height`` (main stream, px),
    ``camera_model`` (sensor model from the camera's capabilities, libcamera's ``Model`` property, None
    for software sources) and ``day_night`` (the mode in force from ``controls``, None without them).

    Blocking (reads the camera): call it in a thread. Parts that fail are reported as None.
    """
    stream_state = None
    try:
        stream_state = camera.streaming_status().state
    except Exception as exc:  # noqa: BLE001 - a status report must not fail on one part
        log.debug("streaming status unavailable: %s", exc)
    temperature = None
    try:
        value = camera.metadata().get("sensor_temperature")
        temperature = float(value) if value is not None else None
    except Exception as exc:  # noqa: BLE001
        log.debug("camera metadata unavailable: %s", exc)
    detection_fps = None
    if detection is not None:
        try:
            fps = detection.stats().get("analysed_fps")
            detection_fps = round(float(fps), 3) if fps is not None else None
        except Exception as exc:  # noqa: BLE001
            log.debug("detection stats unavailable: %s", exc)
    day_night = None
    if controls is not None:
        try:
            day_night = controls.status()["day_night"]["mode"]
        except Exception as exc:  # noqa: BLE001
            log.debug("day/night state unavailable: %s", exc)
    return {
        "version": __version__,
        "hardware_id": hardware,
        "streaming": stream_state == "streaming",
        "stream_state": stream_state,
        "detection_fps": detection_fps,
        "temperature_c": temperature,
        "api_url": api_url,
        "rtsp_url": rtsp_url,
        "mjpeg_path": MJPEG_PATH,
        "webrtc_url": settings.webrtc_url or None,
        "uptime_s": round(time.monotonic() - started_at, 1),
        "source": camera.source,
        "width": camera.width,
        "height": camera.height,
        "camera_model": camera_model(camera),
        "day_night": day_night,
    }
