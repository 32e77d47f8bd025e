"""WS-Discovery (OASIS WS-Discovery 1.0 as ONVIF Core §7 uses it) for the ONVIF device.

A small asyncio UDP responder: it joins 239.255.255.250 on port 3702 (``CAMERA_ONVIF_DISCOVERY_PORT``)
on the interfaces mDNS uses (``CAMERA_MDNS_INTERFACES``, else the interfaces of
:func:`pi_camera_service.discovery.advertised_addresses`), answers a ``Probe`` whose Types include
``dn:NetworkVideoTransmitter`` (or no Types) and whose Scopes all match ours with a unicast
``ProbeMatches`` to the sender, multicasts ``Hello`` at start and ``Bye`` at shutdown. Probes are
parsed with the same safe parser as the SOAP services (no DTD, no entities, 64 KB datagrams at most
by UDP itself) and at most :data:`MAX_ANSWERS_PER_SECOND` answers are sent per second, so the camera
cannot be used to amplify traffic.

The WSDiscovery package from PyPI was considered: it parses datagrams with ``xml.dom.minidom`` and
runs its own threads and address monitor, so this module keeps to the event loop and lxml.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
import uuid
from typing import Any

from lxml import etree

from pi_camera_service.onvif.soap import Fault, find, parse_request, qname, sub, text

log = logging.getLogger(__name__)

MULTICAST_GROUP = "239.255.255.250"
WSD_PORT = 3702
NS_WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
NS_WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_DN = "http://www.onvif.org/ver10/network/wsdl"
NS_TDS = "http://www.onvif.org/ver10/device/wsdl"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
DISCOVERY_URN = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
MAX_ANSWERS_PER_SECOND = 20
_NSMAP = {"s": "http://www.w3.org/2003/05/soap-envelope", "a": NS_WSA, "d": NS_WSD, "dn": NS_DN, "tds": NS_TDS}


def _el(parent: Any, ns: str, local: str, value: str | None = None) -> Any:
    el = etree.SubElement(parent, f"{{{ns}}}{local}")
    if value is not None:
        el.text = value
    return el


class WsDiscoveryResponder(asyncio.DatagramProtocol):
    """Answers WS-Discovery probes for one device.

    Args:
        endpoint: ``urn:uuid:...`` of the device (stable: derived from the hardware id).
        xaddrs: ``() -> list of device service URLs`` (one per interface address).
        scopes: ``() -> list of scope URIs``.
        interfaces: IPv4 addresses to join the group on and send Hello/Bye from.
        port: UDP port (3702; tests use a free one).
    """

    def __init__(self, endpoint: str, xaddrs: Any, scopes: Any, interfaces: list[str], port: int = WSD_PORT) -> None:
        self.endpoint = endpoint
        self.xaddrs = xaddrs
        self.scopes = scopes
        self.interfaces = interfaces
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None
        self._message_number = 0
        self._instance = int(time.time())
        self._window_start = 0.0
        self._answers = 0
        self.probes_answered = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Bind, join the group and multicast Hello.

        Raises:
            OSError: the socket cannot be bound or no interface joins the group.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("", self.port))
        joined = []
        for addr in self.interfaces:
            try:
                mreq = struct.pack("4s4s", socket.inet_aton(MULTICAST_GROUP), socket.inet_aton(addr))
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                joined.append(addr)
            except OSError as exc:
                log.warning("WS-Discovery: cannot join %s on %s: %s", MULTICAST_GROUP, addr, exc)
        if not joined:
            sock.close()
            raise OSError(f"no interface joined {MULTICAST_GROUP} (tried {', '.join(self.interfaces) or 'none'})")
        self.interfaces = joined
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=sock)
        self._multicast(self._announcement("Hello"))
        log.info("WS-Discovery: answering probes on UDP %d (%s), Hello sent", self.port, ", ".join(joined))

    def set_interfaces(self, interfaces: list[str]) -> bool:
        """Follow an address change (DHCP lease after boot, Wi-Fi roaming): join the group on new
        addresses, leave it on vanished ones, and multicast Hello with the new XAddrs.

        Returns:
            True when something changed (and Hello was sent).
        """
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is None or set(interfaces) == set(self.interfaces):
            return False
        group = socket.inet_aton(MULTICAST_GROUP)
        for addr in set(self.interfaces) - set(interfaces):
            try:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, group + socket.inet_aton(addr))
            except OSError:
                pass  # the address is already gone
        joined = [a for a in self.interfaces if a in interfaces]
        for addr in interfaces:
            if addr in joined:
                continue
            try:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group + socket.inet_aton(addr))
                joined.append(addr)
            except OSError as exc:
                log.warning("WS-Discovery: cannot join %s on %s: %s", MULTICAST_GROUP, addr, exc)
        if set(joined) == set(self.interfaces):
            return False
        self.interfaces = joined
        self._multicast(self._announcement("Hello"))
        log.info("WS-Discovery: addresses changed to %s, Hello sent", ", ".join(joined))
        return True

    def stop(self) -> None:
        """Multicast Bye and close the socket."""
        if self.transport is None:
            return
        try:
            self._multicast(self._announcement("Bye"))
        finally:
            self.transport.close()
            self.transport = None

    def connection_made(self, transport: Any) -> None:  # noqa: D401 - asyncio callback
        """asyncio: the socket is ready."""
        self.transport = transport

    # ------------------------------------------------------------------ messages
    def _multicast(self, payload: bytes) -> None:
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is None:
            return
        for addr in self.interfaces:
            try:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(addr))
                self.transport.sendto(payload, (MULTICAST_GROUP, self.port))
            except OSError as exc:
                log.debug("WS-Discovery: multicast from %s failed: %s", addr, exc)

    def _envelope(self, action: str, relates_to: str | None = None, to: str = DISCOVERY_URN) -> tuple[Any, Any]:
        env = etree.Element(qname("s:Envelope"), nsmap=_NSMAP)
        header = sub(env, "s:Header")
        _el(header, NS_WSA, "MessageID", f"urn:uuid:{uuid.uuid4()}")
        if relates_to:
            _el(header, NS_WSA, "RelatesTo", relates_to)
        _el(header, NS_WSA, "To", to)
        _el(header, NS_WSA, "Action", f"{NS_WSD}/{action}")
        self._message_number += 1
        seq = _el(header, NS_WSD, "AppSequence")
        seq.set("InstanceId", str(self._instance))
        seq.set("MessageNumber", str(self._message_number))
        body = sub(env, "s:Body")
        return env, body

    def _describe(self, parent: Any, with_addresses: bool = True) -> None:
        epr = _el(parent, NS_WSA, "EndpointReference")
        _el(epr, NS_WSA, "Address", self.endpoint)
        if with_addresses:
            _el(parent, NS_WSD, "Types", "dn:NetworkVideoTransmitter tds:Device")
            _el(parent, NS_WSD, "Scopes", " ".join(self.scopes()))
            _el(parent, NS_WSD, "XAddrs", " ".join(self.xaddrs()))
        _el(parent, NS_WSD, "MetadataVersion", "1")

    def _announcement(self, kind: str) -> bytes:
        env, body = self._envelope(kind)
        self._describe(_el(body, NS_WSD, kind), with_addresses=kind == "Hello")
        return etree.tostring(env, xml_declaration=True, encoding="utf-8")

    def probe_match(self, data: bytes) -> bytes | None:
        """The ProbeMatches answer to the datagram ``data``, or None when it is no Probe for us."""
        try:
            req = parse_request(data)
        except Fault:
            return None
        if req.namespace != NS_WSD or req.operation != "Probe":
            return None
        types = (text(req.body, "d:Types") or "").split()
        if types and not any(t.split(":")[-1] in ("NetworkVideoTransmitter", "Device") for t in types):
            return None
        wanted = (text(req.body, "d:Scopes") or "").split()
        ours = self.scopes()
        if any(not any(s == w or s.startswith(w.rstrip("/") + "/") for s in ours) for w in wanted):
            return None  # RFC 3986 prefix matching (WS-Discovery §5.1 default MatchBy)
        message_id = text(req.header, "a:MessageID")
        reply_to = text(req.header, "a:ReplyTo/a:Address") or ANONYMOUS
        env, body = self._envelope("ProbeMatches", relates_to=message_id, to=reply_to)
        matches = _el(body, NS_WSD, "ProbeMatches")
        self._describe(_el(matches, NS_WSD, "ProbeMatch"))
        return etree.tostring(env, xml_declaration=True, encoding="utf-8")

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """asyncio: answer a Probe (rate-limited), ignore everything else."""
        if b"Probe" not in data or b"ProbeMatches" in data:
            return
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._answers = now, 0
        if self._answers >= MAX_ANSWERS_PER_SECOND:
            return
        answer = self.probe_match(data)
        if answer is None or self.transport is None:
            return
        self._answers += 1
        self.probes_answered += 1
        self.transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:
        """asyncio: log and go on."""
        log.debug("WS-Discovery socket error: %s", exc)


def discovery_interfaces(settings: Any) -> list[str]:
    """The IPv4 addresses WS-Discovery uses: the ones mDNS advertises on (``CAMERA_MDNS_INTERFACES``,
    else ``CAMERA_HOST`` when it is one address, else every non-loopback interface address)."""
    from pi_camera_service.discovery import _specific_ipv4, advertised_addresses

    if settings.mdns_interfaces:
        return settings.mdns_interface_list
    host = _specific_ipv4(settings.host)
    if host:
        return [host]
    return advertised_addresses(settings)


def endpoint_for(hardware_id: str) -> str:
    """``urn:uuid:`` endpoint reference of the device: a UUIDv5 of the hardware id (stable across restarts)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'pi-camera-service:' + hardware_id)}"


__all__ = ["WsDiscoveryResponder", "discovery_interfaces", "endpoint_for", "find"]
