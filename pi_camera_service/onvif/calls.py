"""What every ONVIF operation handler shares: the service paths and tokens, one :class:`Call`, and
the addresses the answers carry (XAddrs, the stream URI)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request

from pi_camera_service.onvif.soap import Request as SoapRequest

if TYPE_CHECKING:
    from pi_camera_service.onvif.service import OnvifContext

DEVICE_PATH = "/onvif/device_service"
MEDIA_PATH = "/onvif/media_service"
IMAGING_PATH = "/onvif/imaging_service"
EVENTS_PATH = "/onvif/events_service"
SUBSCRIPTION_PATH = "/onvif/subscription"
SNAPSHOT_PATH = "/onvif/snapshot"

PROFILE_TOKEN = "profile_main"
VIDEO_SOURCE_TOKEN = "video_source_0"
VSC_TOKEN = "video_source_config_0"
VEC_TOKEN = "video_encoder_config_main"
MANUFACTURER = "Pi Camera Service"
_HOST = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253})(:\d{1,5})?$")


@dataclass
class Call:
    """One operation call: the parsed request, the HTTP request, the base URL the client used."""

    soap: SoapRequest
    http: Request
    base: str
    ctx: OnvifContext
    path_id: str | None = None


Handler = Callable[[Call], Awaitable[Any]]


def base_url(request: Request, settings: Any) -> str:
    """``http://host:port`` for XAddrs and URIs: ``CAMERA_ADVERTISED_HOST`` when set, else the Host the
    client used (so the answer works from wherever it came), else this machine's address."""
    port = settings.port
    if settings.advertised_host:
        return f"http://{settings.advertised_host}:{port}"
    host = request.headers.get("host", "")
    if _HOST.match(host):
        return f"http://{host}" if ":" in host.rsplit("]", 1)[-1] else f"http://{host}:{port}"
    from pi_camera_service.discovery import advertised_addresses

    return f"http://{advertised_addresses(settings)[0]}:{port}"


def stream_uri(settings: Any, base: str) -> str:
    """The RTSP URL viewers use: ``CAMERA_ONVIF_STREAM_URI``, else ``CAMERA_RTSP_URL`` (MediaMTX's path)
    without credentials and with a loopback host replaced by the host of ``base``."""
    if settings.onvif_stream_uri:
        return settings.onvif_stream_uri
    from urllib.parse import urlsplit

    from pi_camera_service.discovery import viewer_rtsp_url

    host = urlsplit(base).hostname or "127.0.0.1"
    return viewer_rtsp_url(settings.rtsp_url, host)
