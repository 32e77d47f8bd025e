"""mDNS/DNS-SD advertisement: the running service announces itself as ``_pi-camera._tcp.local.``.

The central server (``central.discovery.CameraBrowser``), ``avahi-browse -r _pi-camera._tcp`` or any
DNS-SD browser then finds the camera without knowing its address. The advertisement carries:

* SRV: port = the HTTP API port, target = ``<instance-slug>.local.`` (a host name of its own, so it
  never collides with the ``<hostname>.local`` that avahi-daemon already answers for on a Pi);
* A: the IPv4 address(es) clients should use (see :func:`advertised_addresses`);
* TXT (RFC 6763 ``key=value``): ``version``, ``api`` (``/v1``), ``rtsp`` (the URL viewers use),
  ``id`` (the hardware id, :func:`pi_camera_service.identity.hardware_id`), ``paired`` (``0``/``1``,
  updated with :meth:`ServiceAdvertiser.set_paired`) and ``model`` (sensor model, Pi cameras only).

Advertising is best effort: no multicast, no network or a wrong ``CAMERA_MDNS_INTERFACES`` is logged and
retried every :data:`REFRESH_INTERVAL` seconds in the background; it never stops the service. Once
registered, the same loop notices address changes (DHCP lease after boot, Wi-Fi roaming) and re-announces.
The central server can still find such a camera with its CIDR scan, which probes the open ``GET /health``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pi_camera_service import __version__
from pi_camera_service.config import Settings
from pi_camera_service.identity import hardware_id

log = logging.getLogger(__name__)

SERVICE_TYPE = "_pi-camera._tcp.local."
API_PATH = "/v1"
#: seconds between registration retries and address-change checks (a DHCP lease after boot is noticed
#: within this; listing the interface addresses takes ~0.5 ms on x86-64, a few ms on a Pi Zero 2 W)
REFRESH_INTERVAL = 5.0
_WILDCARDS = {"", "0.0.0.0", "::", "*"}
_LOOPBACK_NAMES = {"localhost", "0.0.0.0", "::1", "::"}


class MdnsUnavailable(RuntimeError):
    """mDNS cannot be used right now (no interface, no multicast, address not on this machine)."""


# ------------------------------------------------------------------------------------- addresses
def local_ipv4_networks() -> list[ipaddress.IPv4Interface]:
    """IPv4 addresses of this machine's interfaces with their prefix (loopback included)."""
    import ifaddr

    result = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if ip.is_IPv4:
                try:
                    result.append(ipaddress.IPv4Interface(f"{ip.ip}/{ip.network_prefix}"))
                except ValueError:
                    continue
    return result


def _default_route_address() -> str | None:
    """Source address the kernel picks for the default route (a UDP connect sends no packet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("8.8.8.8", 53))
            return s.getsockname()[0]
        except OSError:
            return None


def _specific_ipv4(value: str | None) -> str | None:
    """``value`` if it is one concrete IPv4 address (not a wildcard), else None."""
    if value is None or value.strip() in _WILDCARDS:
        return None
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        return None


def advertised_addresses(settings: Settings) -> list[str]:
    """The IPv4 addresses to put in the A records, preferred (the one in the ``rtsp`` TXT) first.

    In order of precedence: ``CAMERA_ADVERTISED_HOST``; ``CAMERA_HOST`` when it is one address (the API
    is reachable only there); ``CAMERA_MDNS_INTERFACES``; else every non-loopback IPv4 address of the
    machine, the default route's first, link-local (169.254/16) last, or 127.0.0.1 when there is none.
    """
    if settings.advertised_host:
        return [settings.advertised_host]
    host = _specific_ipv4(settings.host)
    if host:
        return [host]
    if settings.mdns_interfaces:
        return settings.mdns_interface_list
    found = [str(i.ip) for i in local_ipv4_networks() if not i.ip.is_loopback]
    found = list(dict.fromkeys(found))
    primary = _default_route_address()
    found.sort(key=lambda a: (a != primary, ipaddress.IPv4Address(a).is_link_local))
    return found or ["127.0.0.1"]


def viewer_rtsp_url(rtsp_url: str, host: str) -> str:
    """The RTSP URL a viewer elsewhere uses: ``rtsp_url`` with a loopback host replaced by ``host``.

    Credentials are dropped (the configured URL is the *publish* URL; viewers have their own).
    """
    parts = urlsplit(rtsp_url)
    hostname = parts.hostname or ""
    try:
        loopback = hostname in _LOOPBACK_NAMES or ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        loopback = False
    target = host if loopback else hostname
    if ":" in target:  # IPv6 literal
        target = f"[{target}]"
    netloc = f"{target}:{parts.port}" if parts.port else target
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def default_instance_name(hw_id: str) -> str:
    """``<hostname>-<first 6 characters of the hardware id>``: readable and unique on the network."""
    host = socket.gethostname().split(".")[0] or "pi-camera"
    return f"{host[:50]}-{hw_id[:6]}"


def _server_name(instance: str, hw_id: str) -> str:
    """A DNS host label of our own for the SRV target: ``<slug>.local.`` that ends in the id suffix."""
    slug = re.sub(r"[^a-z0-9-]+", "-", instance.lower()).strip("-") or "pi-camera"
    suffix = hw_id[:6]
    if not slug.endswith(suffix):
        slug = f"{slug[:63 - len(suffix) - 1]}-{suffix}"
    return f"{slug[:63].strip('-')}.local."


def camera_model(camera: Any) -> str | None:
    """The sensor model (``imx708_wide``...) of an open camera, None for software sources or on error."""
    if camera is None:
        return None
    try:
        return camera.capabilities().model
    except Exception:  # noqa: BLE001 - the model is optional decoration
        return None


# ------------------------------------------------------------------------------------ advertiser
class ServiceAdvertiser:
    """Announces the service over mDNS/DNS-SD while it runs.

    :meth:`start` returns at once: registration (RFC 6762 probing, ~1.5 s) runs in a background task
    that retries every ``refresh_interval`` s while mDNS is unavailable and re-announces when the
    addresses change. :meth:`stop` sends the goodbye packets. Every method must be called from the
    event loop that called :meth:`start`; none raises for network problems.

    Args:
        settings: the service settings (``mdns_*``, ``advertised_host``, ``host``, ``rtsp_url``,
            ``state_dir``).
        port: the HTTP API port announced in the SRV record.
        camera: the open camera, for the ``model`` TXT record (optional).
        paired: initial value of the ``paired`` TXT record.
        refresh_interval: seconds between retries and address checks.
    """

    def __init__(
        self,
        settings: Settings,
        port: int,
        *,
        camera: Any = None,
        paired: bool = False,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        self.settings = settings
        self.port = port
        self.refresh_interval = refresh_interval
        self._camera = camera
        self._paired = paired
        self._hw_id: str | None = None
        self._azc: Any = None  # zeroconf.asyncio.AsyncZeroconf
        self._info: Any = None  # the registered zeroconf.ServiceInfo
        self._task: asyncio.Task | None = None
        self._broadcasts: set[asyncio.Future] = set()
        self._lock = asyncio.Lock()
        self._failures = 0
        self.registered = asyncio.Event()
        """Set while the service is registered (announced) on the network."""

    # --------------------------------------------------------------------------------- public API
    @property
    def name(self) -> str | None:
        """The registered instance name (after any conflict rename), None while not registered."""
        if self._info is None:
            return None
        return self._info.name[: -len(SERVICE_TYPE) - 1]

    @property
    def properties(self) -> dict[str, str]:
        """The TXT records as announced (or as they will be once registered)."""
        addresses = self._info.parsed_addresses() if self._info is not None else self._addresses()
        return self._properties(addresses[0])

    async def start(self) -> None:
        """Start advertising in the background; logs and returns when disabled or impossible."""
        if not self.settings.mdns_enabled:
            log.info("mDNS advertisement disabled (CAMERA_MDNS_ENABLED=false)")
            return
        if self._task is not None:
            return
        try:
            self._hw_id = await asyncio.to_thread(hardware_id, self.settings.state_dir)
        except OSError as exc:
            log.warning("mDNS advertisement disabled: cannot read the hardware id: %s", exc)
            return
        log.info("%s", self.scope_message())
        self._task = asyncio.create_task(self._run(), name="mdns-advertiser")

    def scope_message(self) -> str:
        """The one start-up line saying on which interfaces the camera advertises, and how to limit it."""
        interfaces = self._interfaces()
        if isinstance(interfaces, list):
            return f"mDNS: advertising {SERVICE_TYPE} only on {', '.join(interfaces)}"
        return (
            f"mDNS: advertising {SERVICE_TYPE} on every network interface; set CAMERA_MDNS_INTERFACES="
            "<IPv4>[,<IPv4>...] to limit it, or CAMERA_MDNS_ENABLED=false to turn it off"
        )

    async def stop(self) -> None:
        """Withdraw the advertisement (goodbye packets) and close the sockets; never raises."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for fut in list(self._broadcasts):
            fut.cancel()
        self._broadcasts.clear()
        async with self._lock:
            await self._close()

    async def set_paired(self, paired: bool) -> None:
        """Change the ``paired`` TXT record; browsers see an update. A no-op when nothing changes."""
        if paired == self._paired:
            return
        self._paired = paired
        await self._reannounce()

    # ----------------------------------------------------------------------------------- internals
    def _addresses(self) -> list[str]:
        return advertised_addresses(self.settings)

    def _interfaces(self) -> Any:
        from zeroconf import InterfaceChoice

        if self.settings.mdns_interfaces:
            return self.settings.mdns_interface_list
        host = _specific_ipv4(self.settings.host)
        return [host] if host else InterfaceChoice.All

    def _properties(self, primary: str) -> dict[str, str]:
        props = {
            "version": __version__,
            "api": API_PATH,
            "rtsp": viewer_rtsp_url(self.settings.rtsp_url, primary),
            "id": self._hw_id or "",
            "paired": "1" if self._paired else "0",
        }
        model = camera_model(self._camera)
        if model:
            props["model"] = model
        return props

    def _build_info(self, name: str, server: str, addresses: list[str]) -> Any:
        from zeroconf import ServiceInfo

        return ServiceInfo(
            SERVICE_TYPE,
            f"{name}.{SERVICE_TYPE}",
            port=self.port,
            properties=self._properties(addresses[0]),
            server=server,
            parsed_addresses=addresses,
        )

    async def _run(self) -> None:
        while True:
            try:
                async with self._lock:
                    if self._info is None:
                        await self._register()
                    else:
                        await self._refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - mDNS must never take the service down
                self._failures += 1
                level = logging.WARNING if self._failures == 1 else logging.DEBUG
                log.log(
                    level, "mDNS advertisement unavailable (%s); retrying every %.0f s, the camera can still "
                    "be found by a network scan of port %d", exc, self.refresh_interval, self.port,
                )
                async with self._lock:
                    await self._close()
            await asyncio.sleep(self.refresh_interval)

    async def _register(self) -> None:
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncZeroconf

        assert self._hw_id is not None
        interfaces = self._interfaces()
        if isinstance(interfaces, list):
            local = {str(i.ip) for i in local_ipv4_networks()}
            missing = [a for a in interfaces if a not in local]
            if missing:
                raise MdnsUnavailable(
                    f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not an address of this machine "
                    f"(CAMERA_MDNS_INTERFACES / CAMERA_HOST; local IPv4 addresses: {', '.join(sorted(local)) or 'none'})"
                )
        addresses = self._addresses()
        self._azc = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
        await self._azc.zeroconf.async_wait_for_start()
        if not getattr(self._azc.zeroconf.engine, "senders", True):
            raise MdnsUnavailable("no interface accepted the mDNS multicast group")
        name = self.settings.mdns_name or default_instance_name(self._hw_id)
        info = self._build_info(name, _server_name(name, self._hw_id), addresses)
        announced = await self._azc.async_register_service(info, allow_name_change=True)  # probes first
        self._info = info
        if self._failures:
            log.info("mDNS advertisement available again")
        self._failures = 0
        log.info(
            "advertising %r as %s on port %d at %s (TXT %s)",
            self.name, SERVICE_TYPE, self.port, ", ".join(addresses), info.decoded_properties,
        )
        await announced
        self.registered.set()

    async def _refresh(self) -> None:
        """Follow changes: addresses (new sockets for new interfaces, new A and ``rtsp`` records) and TXT
        values an earlier update failed to announce."""
        current = self._info.parsed_addresses()
        addresses = self._addresses() or current
        if addresses != current:
            log.info("addresses changed to %s; re-announcing %r", ", ".join(addresses), self.name)
            if not isinstance(self._interfaces(), list):
                await self._azc.async_update_interfaces()
        elif self._info.decoded_properties == self._properties(addresses[0]):
            return
        await self._update(addresses)

    async def _reannounce(self) -> None:
        async with self._lock:
            if self._info is None or self._azc is None:
                return  # the registration (or the next retry) uses the new values
            try:
                await self._update(self._info.parsed_addresses())
            except Exception as exc:  # noqa: BLE001 - logged; the next refresh retries
                log.warning("cannot update the mDNS TXT records: %s", exc)

    async def _update(self, addresses: list[str]) -> None:
        info = self._build_info(self.name, self._info.server, addresses)
        broadcast = await self._azc.async_update_service(info)
        self._info = info
        self._broadcasts.add(broadcast)
        broadcast.add_done_callback(self._broadcasts.discard)

    async def _close(self) -> None:
        azc, self._azc = self._azc, None
        self._info = None
        self.registered.clear()
        if azc is None:
            return
        try:
            await asyncio.wait_for(azc.async_close(), 5)  # goodbye packets for what was registered
        except Exception as exc:  # noqa: BLE001 - closing is best effort
            log.debug("closing zeroconf: %s", exc)
