"""Finding cameras: an mDNS/DNS-SD browser for ``_pi-camera._tcp`` and a CIDR scan for networks without multicast.

:class:`CameraBrowser` keeps one registry of :class:`DiscoveredCamera` keyed by hardware id. mDNS
entries come and go with the cameras' announcements and goodbye packets; :func:`scan_cidr` results are
merged into the same registry with :meth:`CameraBrowser.add` (an mDNS entry wins over a scan entry of
the same camera, a goodbye drops both, scan entries expire after ``scan_ttl`` s).

:func:`scan_cidr` opens a TCP connection to every host of an IPv4 network concurrently (bounded by a
semaphore and a per-host connect timeout, so a /24 where nothing answers takes about
``ceil(254 / concurrency) * connect_timeout`` s; refused connections return at once), then confirms each
open port with ``GET /health``: a Pi camera answers JSON with ``hardware_id`` and ``version``.
The edge side is ``pi_camera_service.discovery``; docs/discovery.md describes both.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import httpx
from zeroconf import (
    DNSQuestionType,
    DNSText,
    InterfaceChoice,
    IPVersion,
    RecordUpdateListener,
    ServiceStateChange,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

log = logging.getLogger(__name__)

SERVICE_TYPE = "_pi-camera._tcp.local."
DEFAULT_API_PATH = "/v1"
#: the largest network :func:`scan_cidr` accepts (a /20)
MAX_SCAN_ADDRESSES = 4096
_MAX_HEALTH_BYTES = 64 * 1024


@dataclass
class DiscoveredCamera:
    """One camera found on the network.

    Attributes:
        hardware_id: the camera's stable id (TXT ``id`` / ``GET /health`` ``hardware_id``).
        name: DNS-SD instance name (mDNS) or the host address (scan).
        host: IPv4 address to reach the HTTP API on.
        port: HTTP API port.
        version: the camera's service version.
        api_path: path prefix of the API (TXT ``api``, ``/v1``).
        rtsp_url: the URL viewers use for the H.264 stream (mDNS only; None from a scan).
        source: ``mdns`` or ``scan``.
        last_seen: when it was last announced or answered, ``time.time()`` s.
        paired: TXT ``paired`` (None when unknown, as from a scan).
        model: sensor model (TXT ``model``), None when not announced.
    """

    hardware_id: str
    name: str
    host: str
    port: int
    version: str
    api_path: str = DEFAULT_API_PATH
    rtsp_url: str | None = None
    source: Literal["mdns", "scan"] = "mdns"
    last_seen: float = field(default_factory=time.time)
    paired: bool | None = None
    model: str | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the camera's HTTP API."""
        return f"http://{self.host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every attribute plus ``base_url``."""
        return {**asdict(self), "base_url": self.base_url}


# --------------------------------------------------------------------------------------- browser
def _local_networks() -> list[ipaddress.IPv4Network]:
    try:
        import ifaddr

        return [
            ipaddress.IPv4Interface(f"{ip.ip}/{ip.network_prefix}").network
            for adapter in ifaddr.get_adapters() for ip in adapter.ips if ip.is_IPv4
        ]
    except Exception:  # noqa: BLE001 - only a preference between addresses
        return []


def _pick_address(addresses: list[str]) -> str | None:
    """The first address on a network this machine is on, else the first one."""
    if not addresses:
        return None
    networks = _local_networks()
    for address in addresses:
        ip = ipaddress.IPv4Address(address)
        if any(ip in net for net in networks if net.prefixlen < 32 and not net.network_address.is_loopback):
            return address
    return addresses[0]


def parse_txt(text: bytes) -> dict[str, str]:
    """RFC 6763 §6 TXT data (length-prefixed ``key=value`` strings) as a dict; keys are lower-cased,
    the first occurrence of a key wins, a key without ``=`` maps to ``""``."""
    props: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        length = text[pos]
        item = text[pos + 1: pos + 1 + length]
        pos += 1 + length
        key, _, value = item.partition(b"=")
        name = key.decode("ascii", "replace").lower()
        if name and name not in props:
            props[name] = value.decode("utf-8", "replace")
    return props


class CameraBrowser:
    """Browses ``_pi-camera._tcp.local.`` and keeps the current set of cameras.

    Args:
        interfaces: IPv4 addresses of the interfaces to browse on; None: all interfaces.
        resolve_timeout: seconds to wait for a service's SRV/TXT/A records.
        scan_ttl: seconds a camera added by :meth:`add` (a scan result) stays without being seen again.

    Raises:
        ValueError: an entry of ``interfaces`` is not an IPv4 address.

    Use from one event loop: :meth:`start`, then :meth:`cameras` whenever needed, :meth:`stop` at the end.
    :meth:`start` never raises for network problems: without multicast the browser logs a warning,
    :attr:`mdns_active` stays False and scan results added with :meth:`add` still work.
    """

    def __init__(
        self,
        interfaces: list[str] | None = None,
        *,
        resolve_timeout: float = 3.0,
        scan_ttl: float = 900.0,
    ) -> None:
        if interfaces:
            for address in interfaces:
                try:
                    ipaddress.IPv4Address(address)
                except ValueError:
                    raise ValueError(
                        f"mDNS interface {address!r} is not an IPv4 address; give the interfaces' IPv4 addresses, "
                        "such as 192.168.1.10"
                    ) from None
        self.interfaces = list(interfaces) if interfaces else None
        self.resolve_timeout = resolve_timeout
        self.scan_ttl = scan_ttl
        self._azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._mdns: dict[str, DiscoveredCamera] = {}  # service name (lower case) -> camera
        self._scan: dict[str, DiscoveredCamera] = {}  # hardware id -> camera
        self._resolving: dict[str, asyncio.Task] = {}
        self._txt: dict[str, bytes] = {}  # service name (lower case) -> newest TXT data received
        self._txt_listener: _TxtListener | None = None
        self.error: str | None = None
        """Why mDNS browsing is not active, None while it is (or before :meth:`start`)."""

    @property
    def mdns_active(self) -> bool:
        """True while the mDNS browser runs."""
        return self._browser is not None

    async def start(self) -> None:
        """Start browsing; logs and keeps going without mDNS when multicast is unavailable."""
        if self._azc is not None:
            return
        try:
            self._azc = AsyncZeroconf(interfaces=self.interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only)
            await self._azc.zeroconf.async_wait_for_start()
            if not getattr(self._azc.zeroconf.engine, "senders", True):
                raise OSError("no interface accepted the mDNS multicast group")
            # QM questions: answers come by multicast, so they reach us even when another mDNS stack
            # (avahi-daemon) shares port 5353 and would take unicast replies.
            self._txt_listener = _TxtListener(self)
            self._azc.zeroconf.async_add_listener(self._txt_listener, None)
            self._browser = AsyncServiceBrowser(
                self._azc.zeroconf, SERVICE_TYPE, handlers=[self._on_change], question_type=DNSQuestionType.QM
            )
            self.error = None
            log.info("browsing for %s on %s", SERVICE_TYPE, ", ".join(self.interfaces or ["all interfaces"]))
        except Exception as exc:  # noqa: BLE001 - discovery goes on with scans only
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "mDNS browsing unavailable (%s); cameras can still be found with a network scan", self.error
            )
            await self._close_zeroconf()

    async def stop(self) -> None:
        """Stop browsing and close the sockets (the registry is kept); never raises."""
        tasks = list(self._resolving.values())
        self._resolving.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.async_cancel()
            self._browser = None
        await self._close_zeroconf()

    def cameras(self) -> list[DiscoveredCamera]:
        """The cameras known now, one per hardware id (mDNS first, then scan results), sorted by name."""
        now = time.time()
        for hw_id, cam in list(self._scan.items()):
            if now - cam.last_seen > self.scan_ttl:
                del self._scan[hw_id]
        merged: dict[str, DiscoveredCamera] = {}
        for cam in self._mdns.values():
            current = merged.get(cam.hardware_id)
            if current is None or cam.last_seen > current.last_seen:
                merged[cam.hardware_id] = cam
        for hw_id, cam in self._scan.items():
            merged.setdefault(hw_id, cam)
        return sorted(merged.values(), key=lambda c: (c.name.lower(), c.hardware_id))

    def get(self, hardware_id: str) -> DiscoveredCamera | None:
        """The camera with this hardware id, or None."""
        return next((c for c in self.cameras() if c.hardware_id == hardware_id), None)

    def add(self, camera: DiscoveredCamera) -> None:
        """Merge a camera found otherwise (a :func:`scan_cidr` result) into the registry."""
        if camera.source == "mdns":
            self._mdns[camera.name.lower()] = camera
        else:
            self._scan[camera.hardware_id] = camera

    def forget(self, hardware_id: str) -> None:
        """Drop a camera (all its entries) from the registry."""
        self._scan.pop(hardware_id, None)
        for key in [k for k, c in self._mdns.items() if c.hardware_id == hardware_id]:
            del self._mdns[key]

    # ----------------------------------------------------------------------------------- internals
    async def _close_zeroconf(self) -> None:
        azc, self._azc = self._azc, None
        self._browser = None
        listener, self._txt_listener = self._txt_listener, None
        if azc is not None and listener is not None:
            with contextlib.suppress(Exception):
                azc.zeroconf.async_remove_listener(listener)
        if azc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(azc.async_close(), 5)

    def _on_change(self, zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        key = name.lower()
        pending = self._resolving.pop(key, None)
        if pending is not None:
            pending.cancel()
        if state_change is ServiceStateChange.Removed:
            self._txt.pop(key, None)
            gone = self._mdns.pop(key, None)
            if gone is not None:
                self._scan.pop(gone.hardware_id, None)
                log.info("camera %r (%s) left", gone.name, gone.hardware_id)
            return
        task = asyncio.ensure_future(self._resolve(name))
        self._resolving[key] = task

        def done(t: asyncio.Task, k: str = key) -> None:
            if self._resolving.get(k) is t:
                del self._resolving[k]

        task.add_done_callback(done)

    async def _resolve(self, name: str) -> None:
        if self._azc is None:
            return
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        try:
            found = await info.async_request(
                self._azc.zeroconf, int(self.resolve_timeout * 1000), question_type=DNSQuestionType.QM
            )
        except Exception as exc:  # noqa: BLE001 - one bad answer must not stop the browser
            log.debug("resolving %s failed: %s", name, exc)
            return
        if not found:
            log.debug("no SRV/TXT/A answer for %s within %.1f s", name, self.resolve_timeout)
            return
        # the newest TXT this browser received: zeroconf's cache can hand back an older one when a value
        # changes back within the records' lifetime (e.g. paired 0 -> 1 -> 0)
        props = parse_txt(self._txt.get(name.lower()) or info.text or b"")
        camera = self._from_info(info, props)
        if camera is None:
            log.info("ignoring %s: no id/version TXT record or no IPv4 address (TXT %s)", name, props)
            return
        previous = self._mdns.get(name.lower())
        self._mdns[name.lower()] = camera
        if previous is None:
            log.info("found camera %r (%s) at %s", camera.name, camera.hardware_id, camera.base_url)

    def _on_txt(self, key: str, text: bytes) -> None:
        """A TXT record arrived (announcement, update or answer): keep it and apply it to a known camera."""
        self._txt[key] = text
        camera = self._mdns.get(key)
        if camera is None:
            return  # not resolved yet: the browser's Added event resolves it with this TXT
        updated = _with_txt(camera, parse_txt(text))
        if updated is None:
            log.info("camera %r announced TXT without id/version (%r); keeping the previous values", camera.name, text)
            return
        self._mdns[key] = updated

    @staticmethod
    def _from_info(info: AsyncServiceInfo, props: dict[str, str]) -> DiscoveredCamera | None:
        host = _pick_address(info.parsed_addresses(IPVersion.V4Only))
        if host is None or not info.port:
            return None
        instance = info.name.removesuffix("." + SERVICE_TYPE)
        return _with_txt(DiscoveredCamera("", instance, host, info.port, ""), props)


def _with_txt(camera: DiscoveredCamera, props: dict[str, str]) -> DiscoveredCamera | None:
    """``camera`` with the TXT-derived fields taken from ``props``; None when id or version is missing."""
    if not props.get("id") or not props.get("version"):
        return None
    return replace(
        camera,
        hardware_id=props["id"],
        version=props["version"],
        api_path=props.get("api") or DEFAULT_API_PATH,
        rtsp_url=props.get("rtsp") or None,
        paired={"1": True, "0": False}.get(props.get("paired", "")),
        model=props.get("model") or None,
        last_seen=time.time(),
    )


class _TxtListener(RecordUpdateListener):
    """Hands every live TXT record of a ``_pi-camera._tcp`` instance that arrives to the browser."""

    def __init__(self, browser: CameraBrowser) -> None:
        self.browser = browser

    def async_update_records(self, zc: Any, now: float, records: list[Any]) -> None:
        suffix = "." + SERVICE_TYPE
        for update in records:
            record = update.new
            if (
                isinstance(record, DNSText) and record.ttl > 0 and not record.is_expired(now)
                and record.name.lower().endswith(suffix)
            ):
                self.browser._on_txt(record.name.lower(), record.text)

    def async_update_records_complete(self) -> None:
        pass


# ------------------------------------------------------------------------------------------ scan
def parse_scan_network(cidr: str) -> ipaddress.IPv4Network:
    """Validate a network to scan: IPv4, at most /20 (4096 addresses). Host bits are allowed.

    Raises:
        ValueError: not an IPv4 network in CIDR notation, or larger than /20.
    """
    text = str(cidr).strip()
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"{cidr!r} is not a network in CIDR notation; give an IPv4 network such as 192.168.1.0/24"
        ) from None
    if network.version != 4:
        raise ValueError(f"{cidr!r} is an IPv6 network; only IPv4 networks (/20 to /32) can be scanned")
    if network.num_addresses > MAX_SCAN_ADDRESSES:
        raise ValueError(
            f"{network} has {network.num_addresses} addresses; at most {MAX_SCAN_ADDRESSES} (a /20) can be "
            "scanned, split it into /20 .. /32 networks"
        )
    return network


async def _port_open(host: str, port: int, timeout: float) -> bool:
    """True if a TCP connection to host:port succeeds within ``timeout`` s (refusals return at once)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.transport.abort()
    return True


async def _probe(client: httpx.AsyncClient, host: str, port: int, timeout: float) -> DiscoveredCamera | None:
    """``GET /health``: a DiscoveredCamera when it answers like a Pi camera, else None."""
    async def fetch() -> tuple[int, bytes]:
        async with client.stream("GET", f"http://{host}:{port}/health") as response:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_HEALTH_BYTES:
                    break
            return response.status_code, body

    try:
        status, body = await asyncio.wait_for(fetch(), timeout)
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        log.debug("%s:%d has the port open but /health failed: %s", host, port, exc)
        return None
    if status != 200 or len(body) > _MAX_HEALTH_BYTES:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    hw_id, version = data.get("hardware_id"), data.get("version")
    if not (isinstance(hw_id, str) and hw_id and isinstance(version, str) and version):
        return None
    return DiscoveredCamera(
        hardware_id=hw_id, name=host, host=host, port=port, version=version, api_path=DEFAULT_API_PATH,
        rtsp_url=None, source="scan", last_seen=time.time(),
    )


async def scan_cidr(
    cidr: str,
    port: int,
    *,
    concurrency: int = 128,
    connect_timeout: float = 0.4,
    probe_timeout: float = 1.5,
) -> list[DiscoveredCamera]:
    """Find Pi cameras in an IPv4 network without multicast.

    Every host address of ``cidr`` gets a TCP connect to ``port`` (at most ``concurrency`` at a time,
    each bounded by ``connect_timeout`` s); each open port is asked ``GET /health`` (bounded by
    ``probe_timeout`` s in total) and kept when the JSON has ``hardware_id`` and ``version``. Worst case
    ``ceil(hosts / concurrency) * connect_timeout + probe_timeout`` s: about 2.3 s for a /24 with the
    defaults, 14 s for a /20.

    Returns:
        the cameras, one per hardware id, sorted by address.

    Raises:
        ValueError: ``cidr`` is not an IPv4 network of at most 4096 addresses (/20), ``port`` is not
            1..65535, or a bound is not positive.
    """
    network = parse_scan_network(cidr)
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} is out of range; give the cameras' HTTP port, 1..65535 (default 8000)")
    if concurrency < 1 or connect_timeout <= 0 or probe_timeout <= 0:
        raise ValueError("concurrency must be at least 1 and the timeouts greater than 0 s")
    hosts = [str(ip) for ip in network.hosts()]
    semaphore = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    # trust_env=False: a scan of the local network must never go through an HTTP(S)_PROXY
    async with httpx.AsyncClient(
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(probe_timeout, pool=None),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=0),
    ) as client:
        async def check(host: str) -> DiscoveredCamera | None:
            async with semaphore:
                if not await _port_open(host, port, connect_timeout):
                    return None
            return await _probe(client, host, port, probe_timeout)

        results = await asyncio.gather(*(check(h) for h in hosts))
    cameras: dict[str, DiscoveredCamera] = {}
    for cam in results:
        if cam is not None:
            cameras.setdefault(cam.hardware_id, cam)
    log.info(
        "scanned %s port %d: %d host(s), %d camera(s) in %.2f s",
        network, port, len(hosts), len(cameras), time.monotonic() - started,
    )
    return list(cameras.values())
