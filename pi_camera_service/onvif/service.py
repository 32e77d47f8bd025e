"""The ONVIF device, media, imaging and event services: one table of operations, one router.

``POST /onvif/device_service`` (the fixed device entry point, ONVIF Core §5.1.1),
``/onvif/media_service``, ``/onvif/imaging_service``, ``/onvif/events_service`` and
``/onvif/subscription/<id>`` take SOAP 1.2 requests; the operation is picked from the namespace and
local name of the Body's element in :data:`OPERATIONS`, whatever the path, so a client that sends a
device call to the media address is still answered. ``GET /onvif/snapshot`` is the snapshot URI.

Operations marked PRE_AUTH (ONVIF Core §5.9.4.3 access classes: clock, service and capability
discovery) answer without credentials; every other one needs a WS-Security UsernameToken
(:mod:`pi_camera_service.onvif.security`). Anything wrong answers a SOAP fault
(:mod:`pi_camera_service.onvif.soap`), never an unhandled error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from pi_camera_service import __version__
from pi_camera_service.onvif import events as ev
from pi_camera_service.auth.login import ONVIF_FAILURES_PER_ADDRESS
from pi_camera_service.onvif.httpauth import DigestAuth
from pi_camera_service.onvif.imaging import ImagingMapper
from pi_camera_service.onvif.security import OnvifCredentials, UsernameTokenVerifier
from pi_camera_service.onvif.soap import (
    NS,
    SOAP_CONTENT_TYPE,
    Fault,
    MAX_REQUEST_BYTES,
    Request as SoapRequest,
    action_not_supported,
    element,
    envelope,
    fault_envelope,
    find,
    number,
    parse_request,
    sender_fault,
    sub,
    text,
)

log = logging.getLogger(__name__)

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
#: failed ONVIF logins (WS-Security or snapshot Digest/Basic) allowed per client address (``limits`` rate
#: string), counted by the camera's one LoginLimiter (pi_camera_service.auth.login)
AUTH_FAILURES_PER_ADDRESS = ONVIF_FAILURES_PER_ADDRESS
_HOST = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253})(:\d{1,5})?$")


@dataclass
class OnvifContext:
    """Everything the operations read: settings, the camera, its controls, the credentials, the events."""

    settings: Any
    camera: Any
    controls: Any
    credentials: OnvifCredentials
    hardware_id: str
    name: str
    events: ev.FaceEvents
    login_limiter: Any = None  # pi_camera_service.auth.LoginLimiter of the app; made on first use when None
    verifier: UsernameTokenVerifier = field(init=False)
    digest: DigestAuth = field(init=False)
    imaging: ImagingMapper = field(init=False)

    def __post_init__(self) -> None:
        self.verifier = UsernameTokenVerifier(self.credentials)
        self.digest = DigestAuth(self.credentials)
        self.imaging = ImagingMapper(self.controls)

    def authenticate(self, address: str, check: Callable[[], Any], presented: bool) -> Any:
        """Run ``check()`` (raising a 401 :class:`Fault` on bad credentials) as one login attempt at the
        ONVIF door of the camera's login budget (:func:`pi_camera_service.auth.login_attempt`,
        :data:`AUTH_FAILURES_PER_ADDRESS`); atomic, so parallel guesses cannot overrun it.

        Raises:
            Fault: HTTP 429 while ``address`` is over budget (even with the right credentials), else
                what ``check`` raises; a failure counts only when credentials were ``presented``.
        """
        from pi_camera_service.auth import ONVIF_DOOR, LoginLimiter, TooManyLogins, login_attempt

        if self.login_limiter is None:
            self.login_limiter = LoginLimiter(getattr(self.settings, "login_failures_per_address", 10),
                                              getattr(self.settings, "login_failures_global", 30))
        try:
            with login_attempt(self.login_limiter, address, ONVIF_DOOR) as attempt:
                attempt.counted = presented
                result = check()
                attempt.ok = True
                return result
        except TooManyLogins as exc:
            raise Fault("Sender", ("ter:NotAuthorized",), f"too many failed ONVIF logins from {address}; "
                        f"retry in {exc.retry_after} s", 429, retry_after=exc.retry_after) from None

    @property
    def model(self) -> str:
        """Sensor model (``imx708_wide``...) or ``software`` for non-Pi sources."""
        try:
            return self.camera.capabilities().model or "software"
        except Exception:  # noqa: BLE001 - decoration only
            return "software"

    def scopes(self) -> list[str]:
        """The WS-Discovery / GetScopes scopes (ONVIF Core §7.3.2.2)."""
        scopes = [
            "onvif://www.onvif.org/Profile/Streaming",
            "onvif://www.onvif.org/type/video_encoder",
            f"onvif://www.onvif.org/name/{quote(self.name, safe='')}",
            f"onvif://www.onvif.org/hardware/{quote(self.model, safe='')}",
        ]
        if self.settings.onvif_location:
            scopes.append(f"onvif://www.onvif.org/location/{quote(self.settings.onvif_location, safe='')}")
        return scopes


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


# ------------------------------------------------------------------------------------ device
def posix_tz(local: datetime) -> str:
    """POSIX TZ of the current offset (ONVIF ``tt:TZ``, IEEE 1003.1 §8.3): ``CET-1``, ``EST5``, ``UTC0``;
    the sign is inverted as POSIX requires (hours west of Greenwich are positive)."""
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    name = re.sub(r"[^A-Za-z]", "", local.tzname() or "") or "UTC"
    if len(name) < 3:
        name = "UTC" if minutes == 0 else "LOC"
    sign = "-" if minutes > 0 else ""
    hours, mins = divmod(abs(minutes), 60)
    return f"{name}{sign}{hours}" + (f":{mins:02d}" if mins else "")


async def get_system_date_and_time(call: Call) -> Any:
    now = datetime.now(timezone.utc)
    local = now.astimezone()
    r = element("tds:GetSystemDateAndTimeResponse")
    sdt = sub(r, "tds:SystemDateAndTime")
    sub(sdt, "tt:DateTimeType", "NTP")
    sub(sdt, "tt:DaylightSavings", bool(time.localtime().tm_isdst > 0))
    tz = sub(sdt, "tt:TimeZone")
    sub(tz, "tt:TZ", posix_tz(local))
    for tag, t in (("tt:UTCDateTime", now), ("tt:LocalDateTime", local)):
        d = sub(sdt, tag)
        tm = sub(d, "tt:Time")
        sub(tm, "tt:Hour", t.hour)
        sub(tm, "tt:Minute", t.minute)
        sub(tm, "tt:Second", t.second)
        dt = sub(d, "tt:Date")
        sub(dt, "tt:Year", t.year)
        sub(dt, "tt:Month", t.month)
        sub(dt, "tt:Day", t.day)
    return r


async def get_device_information(call: Call) -> Any:
    r = element("tds:GetDeviceInformationResponse")
    sub(r, "tds:Manufacturer", MANUFACTURER)
    sub(r, "tds:Model", call.ctx.model)
    sub(r, "tds:FirmwareVersion", __version__)
    sub(r, "tds:SerialNumber", call.ctx.hardware_id)
    sub(r, "tds:HardwareId", call.ctx.model)
    return r


def _services(base: str) -> list[tuple[str, str, int, int]]:
    return [
        (NS["tds"], base + DEVICE_PATH, 2, 0),
        (NS["trt"], base + MEDIA_PATH, 2, 0),
        (NS["timg"], base + IMAGING_PATH, 2, 0),
        (NS["tev"], base + EVENTS_PATH, 2, 0),
    ]


async def get_services(call: Call) -> Any:
    include = (text(call.soap.body, "tds:IncludeCapability") or "false").lower() == "true"
    r = element("tds:GetServicesResponse")
    for ns, xaddr, major, minor in _services(call.base):
        s = sub(r, "tds:Service")
        sub(s, "tds:Namespace", ns)
        sub(s, "tds:XAddr", xaddr)
        if include:
            caps = sub(s, "tds:Capabilities")
            caps.append(_service_capabilities(ns))
        v = sub(s, "tds:Version")
        sub(v, "tt:Major", major)
        sub(v, "tt:Minor", minor)
    return r


def _service_capabilities(ns: str) -> Any:
    if ns == NS["tds"]:
        c = element("tds:Capabilities")
        sub(c, "tds:Network", IPFilter=False, ZeroConfiguration=True, IPVersion6=False, DynDNS=False,
            HostnameFromDHCP=False)
        sub(c, "tds:Security", UsernameToken=True, HttpDigest=True, TLS1_2=False)
        sub(c, "tds:System", DiscoveryResolve=False, DiscoveryBye=True, RemoteDiscovery=False,
            SystemBackup=False, SystemLogging=False, FirmwareUpgrade=False)
        return c
    if ns == NS["trt"]:
        c = element("trt:Capabilities", SnapshotUri=True, Rotation=False, VideoSourceMode=False, OSD=False)
        sub(c, "trt:ProfileCapabilities", MaximumNumberOfProfiles=1)
        sub(c, "trt:StreamingCapabilities", RTPMulticast=False, RTP_TCP=True, RTP_RTSP_TCP=True,
            NonAggregateControl=False)
        return c
    if ns == NS["timg"]:
        return element("timg:Capabilities", ImageStabilization=False, Presets=False)
    c = element("tev:Capabilities", WSSubscriptionPolicySupport=False, WSPullPointSupport=True,
                WSPausableSubscriptionManagerInterfaceSupport=False, MaxNotificationProducers=0,
                MaxPullPoints=ev.MAX_SUBSCRIPTIONS, PersistentNotificationStorage=False)
    return c


def _service_capabilities_op(prefix: str) -> Handler:
    async def handler(call: Call) -> Any:
        r = element(f"{prefix}:GetServiceCapabilitiesResponse")
        r.append(_service_capabilities(NS[prefix]))
        return r

    return handler


async def get_capabilities(call: Call) -> Any:
    category = (text(call.soap.body, "tds:Category") or "All")
    if category not in ("All", "Device", "Media", "Imaging", "Events"):
        raise Fault("Receiver", ("ter:ActionNotSupported", "ter:NoSuchService"),
                    f"Category {category!r} is not offered; this camera has Device, Media, Imaging, Events", 500)
    base = call.base
    r = element("tds:GetCapabilitiesResponse")
    caps = sub(r, "tds:Capabilities")
    if category in ("All", "Device"):
        d = sub(caps, "tt:Device")
        sub(d, "tt:XAddr", base + DEVICE_PATH)
        sys_ = sub(d, "tt:System")
        sub(sys_, "tt:DiscoveryResolve", False)
        sub(sys_, "tt:DiscoveryBye", True)
        sub(sys_, "tt:RemoteDiscovery", False)
        sub(sys_, "tt:SystemBackup", False)
        sub(sys_, "tt:SystemLogging", False)
        sub(sys_, "tt:FirmwareUpgrade", False)
        ver = sub(sys_, "tt:SupportedVersions")
        sub(ver, "tt:Major", 2)
        sub(ver, "tt:Minor", 0)
    if category in ("All", "Events"):
        e = sub(caps, "tt:Events")
        sub(e, "tt:XAddr", base + EVENTS_PATH)
        sub(e, "tt:WSSubscriptionPolicySupport", False)
        sub(e, "tt:WSPullPointSupport", True)
        sub(e, "tt:WSPausableSubscriptionManagerInterfaceSupport", False)
    if category in ("All", "Imaging"):
        i = sub(caps, "tt:Imaging")
        sub(i, "tt:XAddr", base + IMAGING_PATH)
    if category in ("All", "Media"):
        m = sub(caps, "tt:Media")
        sub(m, "tt:XAddr", base + MEDIA_PATH)
        sc = sub(m, "tt:StreamingCapabilities")
        sub(sc, "tt:RTPMulticast", False)
        sub(sc, "tt:RTP_TCP", True)
        sub(sc, "tt:RTP_RTSP_TCP", True)
    return r


async def get_scopes(call: Call) -> Any:
    r = element("tds:GetScopesResponse")
    for scope in call.ctx.scopes():
        s = sub(r, "tds:Scopes")
        sub(s, "tt:ScopeDef", "Fixed")
        sub(s, "tt:ScopeItem", scope)
    return r


async def get_hostname(call: Call) -> Any:
    r = element("tds:GetHostnameResponse")
    info = sub(r, "tds:HostnameInformation")
    sub(info, "tt:FromDHCP", False)
    sub(info, "tt:Name", socket.gethostname())
    return r


def _interfaces() -> list[tuple[str, str, list[Any]]]:
    """(name, MAC, IPv4 interfaces) of each non-loopback adapter with IPv4 (loopback when none)."""
    from pi_camera_service.discovery import local_ipv4_networks  # noqa: F401 - same source as mDNS
    import ifaddr

    out = []
    for adapter in ifaddr.get_adapters():
        ips = [ipaddress.IPv4Interface(f"{ip.ip}/{ip.network_prefix}") for ip in adapter.ips if ip.is_IPv4]
        if not ips:
            continue
        try:
            mac = Path(f"/sys/class/net/{adapter.name}/address").read_text().strip()
        except OSError:
            mac = "00:00:00:00:00:00"
        out.append((adapter.name, mac, ips))
    real = [i for i in out if not all(ip.ip.is_loopback for ip in i[2])]
    return real or out


async def get_network_interfaces(call: Call) -> Any:
    r = element("tds:GetNetworkInterfacesResponse")
    for name, mac, ips in await run_in_threadpool(_interfaces):
        n = sub(r, "tds:NetworkInterfaces", token=name)
        sub(n, "tt:Enabled", True)
        info = sub(n, "tt:Info")
        sub(info, "tt:Name", name)
        sub(info, "tt:HwAddress", mac)
        v4 = sub(n, "tt:IPv4")
        sub(v4, "tt:Enabled", True)
        cfg = sub(v4, "tt:Config")
        for ip in ips:
            m = sub(cfg, "tt:Manual")
            sub(m, "tt:Address", str(ip.ip))
            sub(m, "tt:PrefixLength", ip.network.prefixlen)
        sub(cfg, "tt:DHCP", False)
    return r


async def get_network_protocols(call: Call) -> Any:
    from urllib.parse import urlsplit

    r = element("tds:GetNetworkProtocolsResponse")
    rtsp = urlsplit(stream_uri(call.ctx.settings, call.base))
    for name, port in (("HTTP", call.ctx.settings.port), ("RTSP", rtsp.port or 554)):
        p = sub(r, "tds:NetworkProtocols")
        sub(p, "tt:Name", name)
        sub(p, "tt:Enabled", True)
        sub(p, "tt:Port", port)
    return r


# ------------------------------------------------------------------------------------- media
def _profile_token(call: Call) -> str:
    token = text(call.soap.body, "trt:ProfileToken")
    if token is None:
        raise sender_fault("ProfileToken is required", "ter:InvalidArgVal", "ter:NoProfile")
    if token != PROFILE_TOKEN:
        raise sender_fault(f"no profile {token[:64]!r}; the profile is {PROFILE_TOKEN!r}", "ter:InvalidArgVal",
                           "ter:NoProfile")
    return token


def _write_vsc(parent: Any, tag: str, call: Call) -> Any:
    cam = call.ctx.camera
    c = sub(parent, tag, token=VSC_TOKEN)
    sub(c, "tt:Name", "Camera")
    sub(c, "tt:UseCount", 1)
    sub(c, "tt:SourceToken", VIDEO_SOURCE_TOKEN)
    sub(c, "tt:Bounds", x=0, y=0, width=cam.width, height=cam.height)
    return c


def _write_vec(parent: Any, tag: str, call: Call) -> Any:
    cam, settings = call.ctx.camera, call.ctx.settings
    fps = float(cam.framerate)
    c = sub(parent, tag, token=VEC_TOKEN)
    sub(c, "tt:Name", "H.264 main stream")
    sub(c, "tt:UseCount", 1)
    sub(c, "tt:Encoding", "H264")
    res = sub(c, "tt:Resolution")
    sub(res, "tt:Width", cam.width)
    sub(res, "tt:Height", cam.height)
    sub(c, "tt:Quality", 5.0)
    rc = sub(c, "tt:RateControl")
    sub(rc, "tt:FrameRateLimit", max(1, int(round(fps))))
    sub(rc, "tt:EncodingInterval", 1)
    sub(rc, "tt:BitrateLimit", int(settings.bitrate // 1000))  # kbit/s (ONVIF Media §5.6)
    h264 = sub(c, "tt:H264")
    sub(h264, "tt:GovLength", max(1, int(round(settings.keyframe_interval * fps))))
    # libx264 on yuv420p (software sources) and the Pi's V4L2 encoder default both give High profile
    sub(h264, "tt:H264Profile", "High")
    mc = sub(c, "tt:Multicast")
    addr = sub(mc, "tt:Address")
    sub(addr, "tt:Type", "IPv4")
    sub(addr, "tt:IPv4Address", "0.0.0.0")
    sub(mc, "tt:Port", 0)
    sub(mc, "tt:TTL", 0)
    sub(mc, "tt:AutoStart", False)
    sub(c, "tt:SessionTimeout", "PT60S")
    return c


async def get_profiles(call: Call) -> Any:
    r = element("trt:GetProfilesResponse")
    _write_profile(r, "trt:Profiles", call)
    return r


def _write_profile(parent: Any, tag: str, call: Call) -> None:
    p = sub(parent, tag, token=PROFILE_TOKEN, fixed=True)
    sub(p, "tt:Name", "MainStream")
    _write_vsc(p, "tt:VideoSourceConfiguration", call)
    _write_vec(p, "tt:VideoEncoderConfiguration", call)


async def get_profile(call: Call) -> Any:
    _profile_token(call)
    r = element("trt:GetProfileResponse")
    _write_profile(r, "trt:Profile", call)
    return r


async def get_video_sources(call: Call) -> Any:
    cam = call.ctx.camera
    r = element("trt:GetVideoSourcesResponse")
    vs = sub(r, "trt:VideoSources", token=VIDEO_SOURCE_TOKEN)
    sub(vs, "tt:Framerate", float(cam.framerate))
    res = sub(vs, "tt:Resolution")
    sub(res, "tt:Width", cam.width)
    sub(res, "tt:Height", cam.height)
    return r


def _config_token(call: Call, expected: str) -> None:
    token = text(call.soap.body, "trt:ConfigurationToken")
    if token != expected:
        raise sender_fault(f"no configuration {str(token)[:64]!r}; the configuration is {expected!r}",
                           "ter:InvalidArgVal", "ter:NoConfig")


async def get_vscs(call: Call) -> Any:
    r = element("trt:GetVideoSourceConfigurationsResponse")
    _write_vsc(r, "trt:Configurations", call)
    return r


async def get_vsc(call: Call) -> Any:
    _config_token(call, VSC_TOKEN)
    r = element("trt:GetVideoSourceConfigurationResponse")
    _write_vsc(r, "trt:Configuration", call)
    return r


async def get_vecs(call: Call) -> Any:
    r = element("trt:GetVideoEncoderConfigurationsResponse")
    _write_vec(r, "trt:Configurations", call)
    return r


async def get_vec(call: Call) -> Any:
    _config_token(call, VEC_TOKEN)
    r = element("trt:GetVideoEncoderConfigurationResponse")
    _write_vec(r, "trt:Configuration", call)
    return r


def _int_range(parent: Any, tag: str, lo: int, hi: int) -> None:
    r = sub(parent, tag)
    sub(r, "tt:Min", lo)
    sub(r, "tt:Max", hi)


async def get_vec_options(call: Call) -> Any:
    """Read-only: the one size, frame rate and GOP this encoder runs at (they are ``CAMERA_*`` settings)."""
    cam, settings = call.ctx.camera, call.ctx.settings
    fps = max(1, int(round(float(cam.framerate))))
    gov = max(1, int(round(settings.keyframe_interval * float(cam.framerate))))
    r = element("trt:GetVideoEncoderConfigurationOptionsResponse")
    o = sub(r, "trt:Options")
    _int_range(o, "tt:QualityRange", 5, 5)
    h = sub(o, "tt:H264")
    res = sub(h, "tt:ResolutionsAvailable")
    sub(res, "tt:Width", cam.width)
    sub(res, "tt:Height", cam.height)
    _int_range(h, "tt:GovLengthRange", gov, gov)
    _int_range(h, "tt:FrameRateRange", fps, fps)
    _int_range(h, "tt:EncodingIntervalRange", 1, 1)
    sub(h, "tt:H264ProfilesSupported", "High")
    return r


async def get_vsc_options(call: Call) -> Any:
    cam = call.ctx.camera
    r = element("trt:GetVideoSourceConfigurationOptionsResponse")
    o = sub(r, "trt:Options")
    b = sub(o, "tt:BoundsRange")
    _int_range(b, "tt:XRange", 0, 0)
    _int_range(b, "tt:YRange", 0, 0)
    _int_range(b, "tt:WidthRange", cam.width, cam.width)
    _int_range(b, "tt:HeightRange", cam.height, cam.height)
    sub(o, "tt:VideoSourceTokensAvailable", VIDEO_SOURCE_TOKEN)
    return r


def _media_uri(parent: Any, uri: str) -> None:
    m = sub(parent, "trt:MediaUri")
    sub(m, "tt:Uri", uri)
    sub(m, "tt:InvalidAfterConnect", False)
    sub(m, "tt:InvalidAfterReboot", False)
    sub(m, "tt:Timeout", "PT0S")


async def get_stream_uri(call: Call) -> Any:
    _profile_token(call)
    setup = find(call.soap.body, "trt:StreamSetup")
    stream = text(setup, "tt:Stream") if setup is not None else None
    protocol = text(setup, "tt:Transport/tt:Protocol") if setup is not None else None
    if stream not in (None, "RTP-Unicast"):
        raise sender_fault(f"Stream {stream!r} is not offered: only RTP-Unicast (no multicast)",
                           "ter:InvalidArgVal", "ter:InvalidStreamSetup")
    if protocol not in (None, "RTSP", "TCP", "UDP"):
        raise sender_fault(f"Transport {protocol!r} is not offered: RTSP (TCP or UDP) only",
                           "ter:InvalidArgVal", "ter:InvalidStreamSetup")
    r = element("trt:GetStreamUriResponse")
    _media_uri(r, stream_uri(call.ctx.settings, call.base))
    return r


async def get_snapshot_uri(call: Call) -> Any:
    _profile_token(call)
    r = element("trt:GetSnapshotUriResponse")
    _media_uri(r, f"{call.base}{SNAPSHOT_PATH}?profile={PROFILE_TOKEN}")
    return r


# ----------------------------------------------------------------------------------- imaging
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


# ------------------------------------------------------------------------------------ events
def _termination_fields(parent: Any, prefix: str, subscription: ev.Subscription) -> None:
    sub(parent, f"{prefix}:CurrentTime", ev.iso(time.time()))
    sub(parent, f"{prefix}:TerminationTime", ev.iso(subscription.termination))


async def create_pull_point(call: Call) -> Any:
    if find(call.soap.body, "tev:Filter") is not None:
        expr = text(call.soap.body, "tev:Filter/wsnt:TopicExpression")
        if expr and "FaceDetect" not in expr and "RuleEngine" not in expr and expr.strip() not in ("tns1:*", "*"):
            raise sender_fault(f"no topic matches {expr[:80]!r}; this camera publishes {ev.TOPIC}",
                               "ter:InvalidArgVal", "ter:InvalidTopicExpression")
    subscription = call.ctx.events.create(text(call.soap.body, "tev:InitialTerminationTime"))
    r = element("tev:CreatePullPointSubscriptionResponse")
    ref = sub(r, "tev:SubscriptionReference")
    sub(ref, "wsa:Address", f"{call.base}{SUBSCRIPTION_PATH}/{subscription.id}")
    sub(r, "wsnt:CurrentTime", ev.iso(time.time()))
    sub(r, "wsnt:TerminationTime", ev.iso(subscription.termination))
    return r


def _sid(call: Call) -> str:
    if not call.path_id:
        raise sender_fault(f"send this to the subscription's address ({SUBSCRIPTION_PATH}/<id>)",
                           "ter:InvalidArgVal", "ter:ResourceUnknown")
    return call.path_id


async def pull_messages(call: Call) -> Any:
    sid = _sid(call)
    timeout_text = text(call.soap.body, "tev:Timeout") or "PT10S"
    timeout = ev.parse_duration(timeout_text)
    limit = number(call.soap.body, "tev:MessageLimit") or 10
    subscription, messages = await call.ctx.events.pull(sid, timeout, int(limit))
    r = element("tev:PullMessagesResponse")
    _termination_fields(r, "tev", subscription)
    for m in messages:
        n = sub(r, "wsnt:NotificationMessage")
        sub(n, "wsnt:Topic", ev.TOPIC, Dialect=ev.TOPIC_DIALECT)
        body = sub(n, "wsnt:Message")
        msg = sub(body, "tt:Message", UtcTime=ev.iso(m.utc), PropertyOperation=m.operation)
        src = sub(msg, "tt:Source")
        sub(src, "tt:SimpleItem", Name="Source", Value=VIDEO_SOURCE_TOKEN)
        data = sub(msg, "tt:Data")
        sub(data, "tt:SimpleItem", Name="State", Value=m.state)
    return r


async def renew(call: Call) -> Any:
    subscription = call.ctx.events.renew(_sid(call), text(call.soap.body, "wsnt:TerminationTime"))
    r = element("wsnt:RenewResponse")
    sub(r, "wsnt:TerminationTime", ev.iso(subscription.termination))
    sub(r, "wsnt:CurrentTime", ev.iso(time.time()))
    return r


async def unsubscribe(call: Call) -> Any:
    call.ctx.events.remove(_sid(call))
    return element("wsnt:UnsubscribeResponse")


async def set_synchronization_point(call: Call) -> Any:
    sid = _sid(call)
    subscription = call.ctx.events.get(sid)
    subscription.queue.append(ev.Message(time.time(), "Initialized", call.ctx.events.state))
    subscription.wakeup.set()
    return element("tev:SetSynchronizationPointResponse")


async def get_event_properties(call: Call) -> Any:
    r = element("tev:GetEventPropertiesResponse")
    sub(r, "tev:TopicNamespaceLocation", "http://www.onvif.org/onvif/ver10/topics/topicns.xml")
    sub(r, "wsnt:FixedTopicSet", True)
    topics = sub(r, "wstop:TopicSet")
    rule = etree_sub(topics, "tns1:RuleEngine", topic=True)
    detector = etree_sub(rule, "tns1:MyRuleDetector")
    face = etree_sub(detector, "tns1:FaceDetect", topic=True)
    desc = sub(face, "tt:MessageDescription", IsProperty=True)
    src = sub(desc, "tt:Source")
    sub(src, "tt:SimpleItemDescription", Name="Source", Type="tt:ReferenceToken")
    data = sub(desc, "tt:Data")
    sub(data, "tt:SimpleItemDescription", Name="State", Type="xs:boolean")
    sub(r, "wsnt:TopicExpressionDialect", ev.TOPIC_DIALECT)
    sub(r, "tev:MessageContentFilterDialect", "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter")
    sub(r, "tev:MessageContentSchemaLocation", "http://www.onvif.org/onvif/ver10/schema/onvif.xsd")
    return r


def etree_sub(parent: Any, tag: str, topic: bool = False) -> Any:
    """A topic-tree element (``wstop:topic="true"`` on topics that carry messages)."""
    el = sub(parent, tag)
    if topic:
        el.set(f"{{{NS['wstop']}}}topic", "true")
    return el


#: (namespace prefix, operation) -> (handler, needs authentication)
OPERATIONS: dict[tuple[str, str], tuple[Handler, bool]] = {
    ("tds", "GetSystemDateAndTime"): (get_system_date_and_time, False),
    ("tds", "GetServices"): (get_services, False),
    ("tds", "GetServiceCapabilities"): (_service_capabilities_op("tds"), False),
    ("tds", "GetCapabilities"): (get_capabilities, False),
    ("tds", "GetDeviceInformation"): (get_device_information, True),
    ("tds", "GetScopes"): (get_scopes, True),
    ("tds", "GetHostname"): (get_hostname, True),
    ("tds", "GetNetworkInterfaces"): (get_network_interfaces, True),
    ("tds", "GetNetworkProtocols"): (get_network_protocols, True),
    ("trt", "GetServiceCapabilities"): (_service_capabilities_op("trt"), True),
    ("trt", "GetProfiles"): (get_profiles, True),
    ("trt", "GetProfile"): (get_profile, True),
    ("trt", "GetVideoSources"): (get_video_sources, True),
    ("trt", "GetVideoSourceConfigurations"): (get_vscs, True),
    ("trt", "GetVideoSourceConfiguration"): (get_vsc, True),
    ("trt", "GetVideoEncoderConfigurations"): (get_vecs, True),
    ("trt", "GetVideoEncoderConfiguration"): (get_vec, True),
    ("trt", "GetVideoEncoderConfigurationOptions"): (get_vec_options, True),
    ("trt", "GetVideoSourceConfigurationOptions"): (get_vsc_options, True),
    ("trt", "GetStreamUri"): (get_stream_uri, True),
    ("trt", "GetSnapshotUri"): (get_snapshot_uri, True),
    ("timg", "GetServiceCapabilities"): (_service_capabilities_op("timg"), True),
    ("timg", "GetImagingSettings"): (get_imaging_settings, True),
    ("timg", "SetImagingSettings"): (set_imaging_settings, True),
    ("timg", "GetOptions"): (get_options, True),
    ("timg", "GetMoveOptions"): (get_move_options, True),
    ("timg", "Move"): (move, True),
    ("timg", "Stop"): (stop, True),
    ("timg", "GetStatus"): (get_status, True),
    ("tev", "GetServiceCapabilities"): (_service_capabilities_op("tev"), True),
    ("tev", "GetEventProperties"): (get_event_properties, True),
    ("tev", "CreatePullPointSubscription"): (create_pull_point, True),
    ("tev", "PullMessages"): (pull_messages, True),
    ("tev", "SetSynchronizationPoint"): (set_synchronization_point, True),
    ("wsnt", "Renew"): (renew, True),
    ("wsnt", "Unsubscribe"): (unsubscribe, True),
}
_PREFIX_OF = {NS[p]: p for p in ("tds", "trt", "timg", "tev", "wsnt")}


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _soap_response(payload: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(payload, status_code=status, media_type=SOAP_CONTENT_TYPE, headers=headers)


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_REQUEST_BYTES):
        raise sender_fault(f"Content-Length {length[:20]} is over the {MAX_REQUEST_BYTES} bytes allowed",
                           "ter:InvalidArgs")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise sender_fault(f"request body over the {MAX_REQUEST_BYTES} bytes allowed", "ter:InvalidArgs")
        chunks.append(chunk)
    return b"".join(chunks)


async def dispatch(request: Request, ctx: OnvifContext, path_id: str | None = None) -> Response:
    """Parse, authenticate and answer one SOAP request; every failure becomes a SOAP fault."""
    try:
        soap = parse_request(await _read_body(request))
        prefix = _PREFIX_OF.get(soap.namespace)
        entry = OPERATIONS.get((prefix, soap.operation)) if prefix else None
        if entry is None:
            implemented = sorted({op for _, op in OPERATIONS})
            raise action_not_supported(
                f"operation {{{soap.namespace}}}{soap.operation[:64]} is not implemented; implemented: "
                f"{', '.join(implemented)}")
        handler, needs_auth = entry
        if needs_auth:
            presented = find(soap.header, "wsse:Security/wsse:UsernameToken") is not None
            ctx.authenticate(_client(request), lambda: ctx.verifier.verify(soap.header), presented)
        body = await handler(Call(soap, request, base_url(request, ctx.settings), ctx, path_id))
        return _soap_response(envelope(body))
    except Fault as fault:
        if fault.http_status in (401, 429):
            log.info("ONVIF request refused from %s: %s", _client(request), fault.reason)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else None
        return _soap_response(fault_envelope(fault), fault.http_status, headers)
    except Exception:  # noqa: BLE001 - a bug must still answer a SOAP fault
        log.exception("ONVIF operation failed")
        internal = Fault("Receiver", ("ter:Action",), "internal error (logged by the camera)", 500)
        return _soap_response(fault_envelope(internal), 500)


def build_router() -> APIRouter:
    """The ``/onvif/...`` routes; they read the :class:`OnvifContext` from ``app.state.onvif``."""
    router = APIRouter(include_in_schema=False)

    def context(request: Request) -> OnvifContext | None:
        return getattr(request.app.state, "onvif", None)

    async def soap_endpoint(request: Request) -> Response:
        ctx = context(request)
        if ctx is None:
            return _soap_response(fault_envelope(Fault("Receiver", ("ter:Action",), "ONVIF is starting", 503)), 503)
        return await dispatch(request, ctx)

    for path in (DEVICE_PATH, MEDIA_PATH, IMAGING_PATH, EVENTS_PATH):
        router.add_api_route(path, soap_endpoint, methods=["POST"])

    @router.post(SUBSCRIPTION_PATH + "/{sid}")
    async def subscription_endpoint(sid: str, request: Request) -> Response:
        ctx = context(request)
        if ctx is None:
            return _soap_response(fault_envelope(Fault("Receiver", ("ter:Action",), "ONVIF is starting", 503)), 503)
        return await dispatch(request, ctx, path_id=sid[:64])

    @router.get(SNAPSHOT_PATH)
    async def snapshot(request: Request) -> Response:
        from pi_camera_service.snapshots import take_snapshot

        ctx = context(request)
        if ctx is None:
            return Response("ONVIF is starting", status_code=503, headers={"Retry-After": "1"})
        uri = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        authorization = request.headers.get("authorization")

        def check() -> tuple[bool, bool]:
            ok, stale = ctx.digest.check(authorization, request.method, uri)
            if not ok and not stale:
                raise Fault("Sender", ("ter:NotAuthorized",), "wrong credentials", 401)
            return ok, stale

        try:
            ok, stale = ctx.authenticate(_client(request), check, presented=bool(authorization))
        except Fault as fault:
            ok, stale = False, False
            if fault.http_status == 429:
                return Response(fault.reason, status_code=429, media_type="text/plain",
                                headers={"Retry-After": str(fault.retry_after)})
        if not ok:
            return Response("ONVIF credentials needed (HTTP Digest or Basic)", status_code=401,
                            headers={"WWW-Authenticate": ctx.digest.challenge(stale)}, media_type="text/plain")
        profile = request.query_params.get("profile", PROFILE_TOKEN)
        if profile != PROFILE_TOKEN:
            return Response(f"no profile {profile[:64]!r}; the profile is {PROFILE_TOKEN!r}", status_code=404,
                            media_type="text/plain")
        jpeg = await run_in_threadpool(take_snapshot, ctx.camera, None, 90)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    return router


router = build_router()
