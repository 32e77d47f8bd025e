"""Camera discovery: the edge's mDNS advertisement, the central browser and the CIDR scan, all for real.

* CIDR scan: tiny HTTP servers bound to 127.0.0.x on one port (cameras, non-cameras, one that accepts
  TCP and never answers) are found by :func:`central.discovery.scan_cidr` over ``127.0.0.0/24``. The
  "nothing answers" bound is measured in a private network namespace (``unshare -n``, root) where
  ``10.213.0.0/24`` is routed to ``lo`` without being a local address: the kernel silently drops every
  SYN, exactly like a LAN without those hosts.
* mDNS: the real service process (``python -m pi_camera_service`` on the sample video) advertises with
  ``CAMERA_MDNS_INTERFACES=127.0.0.1`` and :class:`central.discovery.CameraBrowser` browses on
  ``127.0.0.1`` in the test process, so nothing is sent on a real network.

Multicast on ``lo``: Linux delivers multicast sent with ``IP_MULTICAST_IF=127.0.0.1`` and
``IP_MULTICAST_LOOP`` to sockets that joined the group on 127.0.0.1 even though ``lo`` lacks the
MULTICAST flag, which is what happens on this machine (a 2-core container, root). The session fixture
:func:`loopback_multicast` checks exactly that with a datagram round trip first; only when it fails does
it (as root, in tests/conftest.py) run ``ip link set lo multicast on`` and, if still needed, ``ip route add 224.0.0.0/4 dev
lo``, undoing both at the end. It skips, saying why, only when neither works and it is not root.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from central.discovery import CameraBrowser, DiscoveredCamera, parse_scan_network, scan_cidr
from pi_camera_service import __version__
from pi_camera_service.config import ConfigError, load_settings
from pi_camera_service.discovery import SERVICE_TYPE, ServiceAdvertiser, viewer_rtsp_url
from tests.support.net import free_port, wait_until
from tests.support.paths import ROOT
from tests.support.processes import ServiceProcess, sample_camera_env

NOT_LOCAL = "203.0.113.7"  # TEST-NET-3: never an address of this machine


# ------------------------------------------------------------------------------------ helpers
async def eventually(predicate, timeout: float, message: str):
    """Await until ``predicate()`` is truthy (returned) or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message} (last: {value!r})")
        await asyncio.sleep(0.05)



def _edge_env(workdir: Path, **extra: str) -> dict[str, str]:
    return sample_camera_env(workdir, "discovery-test-key-0123456789abcdef", **{
        "CAMERA_RTSP_URL": "rtsp://localhost:8554/cam",
        "CAMERA_DETECTION_ENABLED": "false",
        "CAMERA_STILLS_ENABLED": "false",
        "CAMERA_MDNS_INTERFACES": "127.0.0.1",
        **extra,
    })


# ------------------------------------------------------------------------- CIDR scan fixtures
def _health_handler(body: bytes | None, content_type: str = "application/json"):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # http.server API
            if self.path != "/health" or body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet
            pass

    return Handler


def _camera_body(hw_id: str) -> bytes:
    return json.dumps({
        "status": "healthy", "camera_configured": True, "streaming_active": False,
        "detection_active": False, "version": "9.8.7", "hardware_id": hw_id,
    }).encode()


@pytest.fixture(scope="module")
def lan():
    """On one port: cameras at 127.0.0.2/.3/.5, non-cameras at .4 (JSON) .6 (HTML) .8 (404), and .7
    accepting TCP without ever answering HTTP. Yields ``(port, {address: hardware_id})``."""
    port = free_port()
    cameras = {"127.0.0.2": "a" * 32, "127.0.0.3": "b" * 32, "127.0.0.5": "c" * 32}
    handlers = {addr: _health_handler(_camera_body(hw)) for addr, hw in cameras.items()}
    handlers["127.0.0.4"] = _health_handler(b'{"status": "ok", "version": "2.4"}')
    handlers["127.0.0.6"] = _health_handler(b"<html>router login</html>", "text/html")
    handlers["127.0.0.8"] = _health_handler(None)
    servers = [ThreadingHTTPServer((addr, port), handler) for addr, handler in handlers.items()]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    silent = socket.socket()
    silent.bind(("127.0.0.7", port))
    silent.listen(16)  # the kernel completes handshakes; nobody ever reads or answers
    yield port, cameras
    for server in servers:
        server.shutdown()
        server.server_close()
    silent.close()


# -------------------------------------------------------------------------------- CIDR scan
def test_scan_finds_exactly_the_cameras_of_a_24_in_under_3_s(lan):
    port, cameras = lan
    start = time.monotonic()
    found = asyncio.run(scan_cidr("127.0.0.0/24", port))
    elapsed = time.monotonic() - start
    assert {c.host: c.hardware_id for c in found} == cameras
    assert [c.host for c in found] == sorted(cameras)  # sorted by address
    for cam in found:
        assert (cam.port, cam.version, cam.source, cam.name, cam.api_path) == (port, "9.8.7", "scan", cam.host, "/v1")
        assert cam.to_dict()["base_url"] == f"http://{cam.host}:{port}"
        json.dumps(cam.to_dict())
    # the target; includes the host that accepts TCP and never answers (probe_timeout 1.5 s)
    assert elapsed < 3.0, f"/24 scan took {elapsed:.2f} s"


def test_scan_of_one_address(lan):
    port, cameras = lan
    found = asyncio.run(scan_cidr("127.0.0.3/32", port))
    assert [(c.host, c.hardware_id) for c in found] == [("127.0.0.3", cameras["127.0.0.3"])]


def test_refused_connections_do_not_wait_for_the_timeout():
    # nothing listens on this port anywhere in 127.0.1.0/24: every host refuses at once
    start = time.monotonic()
    found = asyncio.run(scan_cidr("127.0.1.0/24", free_port(), connect_timeout=2.5))
    elapsed = time.monotonic() - start
    assert found == []
    assert elapsed < 1.0, f"refusals waited for the timeout: {elapsed:.2f} s"


SILENT_SCAN = """
import asyncio, json, time
from central.discovery import scan_cidr
start = time.monotonic()
found = asyncio.run(scan_cidr("10.213.0.0/24", 8000))
print(json.dumps({"elapsed": time.monotonic() - start, "found": len(found)}))
"""


def test_scan_of_a_silent_24_finishes_in_under_3_s():
    """Every SYN is dropped (no RST, no ICMP), as for absent hosts on a LAN: the connect timeout bounds it."""
    script = (
        "ip link set lo up && ip route add 10.213.0.0/24 dev lo && "
        f"exec {sys.executable} -c '{SILENT_SCAN}'"
    )
    try:
        proc = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    except FileNotFoundError:
        pytest.skip("unshare (util-linux) is not installed")
    if proc.returncode != 0 and ("Operation not permitted" in proc.stderr or "unshare failed" in proc.stderr):
        pytest.skip(f"cannot create a network namespace here (needs root/CAP_SYS_ADMIN): {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["found"] == 0
    # 254 hosts at 128 at a time: two rounds of the 0.4 s connect timeout, so the drops were real
    assert 0.7 < result["elapsed"] < 3.0, result


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.0.0.0/19", "at most 4096"),
        ("0.0.0.0/0", "at most 4096"),
        ("2001:db8::/64", "only IPv4"),
        ("::1", "only IPv4"),
        ("192.168.1.0/33", "CIDR notation"),
        ("192.168.1.300/24", "CIDR notation"),
        ("camera.local", "CIDR notation"),
        ("", "CIDR notation"),
    ],
)
def test_invalid_networks_are_refused_with_what_is_allowed(cidr, message):
    with pytest.raises(ValueError, match=message):
        asyncio.run(scan_cidr(cidr, 8000))


def test_scan_bounds_and_port_validation():
    assert parse_scan_network("10.1.2.3/20").num_addresses == 4096  # host bits allowed, /20 is the limit
    with pytest.raises(ValueError, match="1..65535"):
        asyncio.run(scan_cidr("127.0.0.0/30", 0))
    with pytest.raises(ValueError, match="concurrency"):
        asyncio.run(scan_cidr("127.0.0.0/30", 8000, concurrency=0))


# ------------------------------------------------------------------------- registry and units
def test_registry_merges_scan_results_by_hardware_id():
    browser = CameraBrowser(resolve_timeout=1, scan_ttl=60)
    scanned = DiscoveredCamera("a" * 32, "10.0.0.5", "10.0.0.5", 8000, "0.1.0", source="scan")
    browser.add(scanned)
    browser.add(DiscoveredCamera("a" * 32, "10.0.0.5", "10.0.0.5", 8000, "0.1.0", source="scan"))
    assert len(browser.cameras()) == 1
    announced = DiscoveredCamera("a" * 32, "porch-aaaaaa", "10.0.0.5", 8000, "0.1.0", rtsp_url="rtsp://x/cam")
    browser.add(announced)
    assert browser.cameras() == [announced]  # the mDNS entry wins
    old = DiscoveredCamera("b" * 32, "10.0.0.6", "10.0.0.6", 8000, "0.1.0", source="scan", last_seen=time.time() - 61)
    browser.add(old)
    assert browser.get("b" * 32) is None  # expired scan result
    browser.forget("a" * 32)
    assert browser.cameras() == []


def test_browser_interfaces_must_be_ipv4_addresses():
    with pytest.raises(ValueError, match="IPv4"):
        CameraBrowser(["eth0"])


def test_browser_without_multicast_keeps_working_with_scan_results():
    async def scenario():
        browser = CameraBrowser([NOT_LOCAL])
        await browser.start()  # must not raise
        try:
            assert not browser.mdns_active and browser.error
            cam = DiscoveredCamera("d" * 32, "10.0.0.9", "10.0.0.9", 8000, "0.1.0", source="scan")
            browser.add(cam)
            assert browser.cameras() == [cam]
        finally:
            await browser.stop()

    asyncio.run(scenario())


def test_viewer_rtsp_url():
    assert viewer_rtsp_url("rtsp://127.0.0.1:8554/cam", "192.168.1.20") == "rtsp://192.168.1.20:8554/cam"
    assert viewer_rtsp_url("rtsp://pub:secret@localhost:8554/cam", "10.0.0.7") == "rtsp://10.0.0.7:8554/cam"
    assert viewer_rtsp_url("rtsps://media.example:8322/cam", "10.0.0.7") == "rtsps://media.example:8322/cam"


def test_discovery_settings_are_validated(monkeypatch):
    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)
    settings = load_settings(mdns_interfaces="127.0.0.1, 192.168.1.20")
    assert settings.mdns_interface_list == ["127.0.0.1", "192.168.1.20"] and settings.mdns_enabled
    with pytest.raises(ConfigError, match="CAMERA_MDNS_INTERFACES='eth0' is invalid"):
        load_settings(mdns_interfaces="eth0")
    with pytest.raises(ConfigError, match="CAMERA_ADVERTISED_HOST"):
        load_settings(advertised_host="camera.local")
    with pytest.raises(ConfigError, match="CAMERA_MDNS_NAME"):
        load_settings(mdns_name="front.door")


# ------------------------------------------------------------------------------ mDNS, for real
@pytest.mark.e2e
def test_browser_sees_the_real_service_with_its_txt_and_its_goodbye(loopback_multicast, tmp_path):
    svc = ServiceProcess(_edge_env(tmp_path), tmp_path / "service.log")

    async def scenario():
        browser = CameraBrowser(["127.0.0.1"])
        await browser.start()
        assert browser.mdns_active, browser.error
        try:
            await asyncio.to_thread(svc.start)
            health = (await asyncio.to_thread(httpx.get, svc.base + "/health")).json()
            hw_id = health["hardware_id"]
            assert len(hw_id) == 32
            cam = await eventually(lambda: browser.get(hw_id), 20, f"the service {hw_id} over mDNS")
            assert cam.source == "mdns"
            assert (cam.host, cam.port) == ("127.0.0.1", svc.port)
            assert cam.version == __version__ == health["version"]
            assert cam.api_path == "/v1"
            assert cam.rtsp_url == "rtsp://127.0.0.1:8554/cam"  # localhost replaced by the advertised address
            assert cam.paired is False
            assert cam.name.endswith("-" + hw_id[:6])  # default name: host name + id suffix

            # a browser started later finds it by asking (query/response rather than the announcement)
            late = CameraBrowser(["127.0.0.1"])
            await late.start()
            try:
                assert (await eventually(lambda: late.get(hw_id), 10, "the late browser")).port == svc.port
            finally:
                await late.stop()

            code = await asyncio.to_thread(svc.stop)
            assert code in (0, -15), svc.log()
            start = time.monotonic()
            # the records' TTL is 75 min: only the goodbye packets can remove it this fast
            await eventually(lambda: browser.get(hw_id) is None, 5, "the goodbye")
            assert time.monotonic() - start < 5
        finally:
            if svc.proc and svc.proc.poll() is None:
                svc.stop()
            await browser.stop()

    asyncio.run(scenario())
    assert "advertising" in svc.log()


def test_set_paired_is_seen_by_the_browser(loopback_multicast, tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)
    settings = load_settings(
        state_dir=tmp_path, host="127.0.0.1", mdns_interfaces="127.0.0.1", mdns_name="Paired test camera",
        rtsp_url="rtsp://127.0.0.1:8554/cam",
    )

    async def scenario():
        browser = CameraBrowser(["127.0.0.1"])
        advertiser = ServiceAdvertiser(settings, 8123)
        await browser.start()
        try:
            await advertiser.start()
            await asyncio.wait_for(advertiser.registered.wait(), 10)
            hw_id = advertiser.properties["id"]
            cam = await eventually(lambda: browser.get(hw_id), 10, "the advertisement")
            assert (cam.name, cam.port, cam.paired) == ("Paired test camera", 8123, False)
            await advertiser.set_paired(True)
            assert advertiser.properties["paired"] == "1"
            await eventually(lambda: (browser.get(hw_id) or cam).paired is True, 5, "paired=1 in the TXT")
            await advertiser.set_paired(False)
            await eventually(lambda: (browser.get(hw_id) or cam).paired is False, 5, "paired=0 in the TXT")
            await advertiser.stop()
            await eventually(lambda: browser.get(hw_id) is None, 5, "the goodbye")
        finally:
            await advertiser.stop()
            await browser.stop()

    asyncio.run(scenario())


def test_address_change_is_reannounced(loopback_multicast, tmp_path, monkeypatch):
    """A new address (DHCP lease after boot, roaming) reaches browsers: A record and rtsp TXT follow it."""
    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)
    settings = load_settings(
        state_dir=tmp_path, mdns_interfaces="127.0.0.1", advertised_host="127.0.0.1",
        rtsp_url="rtsp://127.0.0.1:8554/cam",
    )

    async def scenario():
        browser = CameraBrowser(["127.0.0.1"])
        advertiser = ServiceAdvertiser(settings, 8124, refresh_interval=0.2)
        await browser.start()
        try:
            await advertiser.start()
            await asyncio.wait_for(advertiser.registered.wait(), 10)
            hw_id = advertiser.properties["id"]
            await eventually(lambda: browser.get(hw_id), 10, "the advertisement")
            settings.advertised_host = "127.0.0.9"
            cam = await eventually(
                lambda: (c := browser.get(hw_id)) and c.host == "127.0.0.9" and c, 5, "the new address"
            )
            assert cam.rtsp_url == "rtsp://127.0.0.9:8554/cam"
        finally:
            await advertiser.stop()
            await browser.stop()

    asyncio.run(scenario())


def test_advertiser_survives_zeroconf_errors(tmp_path, monkeypatch):
    """Past our own address check (faked), zeroconf itself fails to join the group: logged, retried, no raise."""
    from pi_camera_service import discovery

    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)
    real = discovery.local_ipv4_networks
    monkeypatch.setattr(discovery, "local_ipv4_networks", lambda: [*real(), discovery.ipaddress.IPv4Interface(NOT_LOCAL)])
    settings = load_settings(state_dir=tmp_path, mdns_interfaces=NOT_LOCAL)

    async def scenario():
        advertiser = ServiceAdvertiser(settings, 8123, refresh_interval=0.2)
        await advertiser.start()
        await eventually(lambda: advertiser._failures >= 2, 5, "two failed attempts")
        assert not advertiser.registered.is_set()
        await advertiser.set_paired(True)  # no-op while unregistered, must not raise
        await advertiser.stop()

    asyncio.run(scenario())


@pytest.mark.e2e
def test_service_keeps_running_when_mdns_cannot_start(tmp_path):
    svc = ServiceProcess(_edge_env(tmp_path, CAMERA_MDNS_INTERFACES=NOT_LOCAL), tmp_path / "service.log").start()
    try:
        wait_until(lambda: "mDNS advertisement unavailable" in svc.log(), 10, message="the mDNS warning")
        assert f"{NOT_LOCAL} is not an address of this machine" in svc.log()
        body = httpx.get(svc.base + "/health").json()
        assert body["status"] == "healthy" and len(body["hardware_id"]) == 32
        key = {"X-API-Key": "discovery-test-key-0123456789abcdef"}
        assert httpx.get(svc.base + "/v1/camera/snapshot", headers=key, timeout=10).status_code == 200
    finally:
        code = svc.stop()
    assert code in (0, -15), svc.log()
    assert "Application shutdown complete" in svc.log()


def test_disabled_advertiser_is_a_no_op(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)
    settings = load_settings(state_dir=tmp_path, mdns_enabled=False)

    async def scenario():
        advertiser = ServiceAdvertiser(settings, 8123)
        await advertiser.start()
        await advertiser.set_paired(True)
        assert advertiser.name is None and not advertiser.registered.is_set()
        await advertiser.stop()

    asyncio.run(scenario())
    assert not (tmp_path / "hardware-id").exists()  # not even the id was needed
    assert SERVICE_TYPE == "_pi-camera._tcp.local."
