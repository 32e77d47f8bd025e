"""The ONVIF device service (``tds``, ONVIF Core §8): clock, services and capabilities, device
information, scopes, hostname, network interfaces and protocols."""

from __future__ import annotations

import re
import ipaddress
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi.concurrency import run_in_threadpool

from pi_camera_service import __version__
from pi_camera_service.onvif import events as ev
from pi_camera_service.onvif.calls import (
    DEVICE_PATH,
    EVENTS_PATH,
    IMAGING_PATH,
    MANUFACTURER,
    MEDIA_PATH,
    Call,
    Handler,
    stream_uri,
)
from pi_camera_service.onvif.soap import NS, Fault, element, sub, text


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
