"""ONVIF with real clients: Home Assistant's ONVIF library (onvif-zeep-async) drives the running camera
process over real HTTP, ffmpeg receives the stream GetStreamUri names, the snapshot URI is fetched with
HTTP Digest, imaging changes show in the pixels, and a WSDiscovery client finds the camera on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import os
import selectors
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np
import pytest

from tests.support.net import free_port, port_listening, wait_until
from tests.support.paths import SAMPLE
from tests.support.processes import ServiceProcess, sample_camera_env
from tests.support.rtsp import RtspReceiver

pytestmark = pytest.mark.e2e

API_KEY = "onvif-test-key-0123456789abcdef"
USER, PASSWORD = "nvr", "onvif-secret-pass"
W, H = 320, 240


@pytest.fixture(scope="module")
def rtsp_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def service(tmp_path_factory, rtsp_port, ffmpeg_available):
    workdir = tmp_path_factory.mktemp("onvif")
    env = sample_camera_env(
        workdir, API_KEY, CAMERA_WIDTH=str(W), CAMERA_HEIGHT=str(H), CAMERA_BITRATE="400000",
        CAMERA_RTSP_URL=f"rtsp://127.0.0.1:{rtsp_port}/cam", CAMERA_STREAM_ON_START="true",
        CAMERA_RTSP_RECONNECT_MAX_DELAY="1", CAMERA_STILLS_ENABLED="false", CAMERA_DETECTION_FPS="4",
        CAMERA_ONVIF_USERNAME=USER, CAMERA_ONVIF_PASSWORD=PASSWORD, CAMERA_MDNS_NAME="Porch camera",
    )
    svc = ServiceProcess(env, workdir / "service.log").start()
    yield svc
    svc.stop()


def run(coro):
    return asyncio.run(coro)


async def _camera(service, password: str = PASSWORD):
    from onvif import ONVIFCamera

    cam = ONVIFCamera("127.0.0.1", service.port, USER, password, no_cache=True, adjust_time=True)
    await cam.update_xaddrs()
    return cam


def _luma(jpeg: bytes) -> float:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert img is not None, "snapshot is not a decodable JPEG"
    return float(img.mean())


def test_device_information_profiles_and_stream_uri_open_in_ffmpeg(service, rtsp_port, tmp_path):
    async def go():
        cam = await _camera(service)
        try:
            dev = await cam.create_devicemgmt_service()
            info = await dev.GetDeviceInformation()
            hostname = await dev.GetHostname()
            scopes = [s.ScopeItem for s in await dev.GetScopes()]
            nics = await dev.GetNetworkInterfaces()
            media = await cam.create_media_service()
            profiles = await media.GetProfiles()
            vec = await media.GetVideoEncoderConfiguration({"ConfigurationToken": profiles[0].VideoEncoderConfiguration.token})
            sources = await media.GetVideoSources()
            uri = await media.GetStreamUri({"ProfileToken": profiles[0].token,
                                            "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}})
            # the rest of what Home Assistant's ONVIF integration reads while adding a camera
            caps = await cam.get_capabilities()
            media_caps = await media.GetServiceCapabilities()
            events = await cam.create_events_service()
            event_caps = await events.GetServiceCapabilities()
            properties = await events.GetEventProperties()
            clock = await dev.GetSystemDateAndTime()
            # what NVRs (Synology, Blue Iris, ONVIF Device Manager) also read when adding a camera
            protocols = {p.Name: p.Port[0] for p in await dev.GetNetworkProtocols()}
            vec_options = await media.GetVideoEncoderConfigurationOptions({"ProfileToken": profiles[0].token})
            vsc_options = await media.GetVideoSourceConfigurationOptions({"ProfileToken": profiles[0].token})
            ha = (caps, media_caps, event_caps, properties, clock, protocols, vec_options, vsc_options)
            return info, hostname, scopes, nics, profiles, vec, sources, uri, ha
        finally:
            await cam.close()

    info, hostname, scopes, nics, profiles, vec, sources, uri, ha = run(go())
    caps, media_caps, event_caps, properties, clock, protocols, vec_options, vsc_options = ha
    assert protocols == {"HTTP": service.port, "RTSP": rtsp_port}
    assert [(r.Width, r.Height) for r in vec_options.H264.ResolutionsAvailable] == [(W, H)]
    assert vec_options.H264.GovLengthRange.Min == 30 and vsc_options.BoundsRange.WidthRange.Max == W
    assert caps["Media"]["XAddr"].endswith("/onvif/media_service") and caps["PTZ"] is None
    assert caps["Events"]["WSPullPointSupport"] is True and caps["Imaging"]["XAddr"].endswith("/onvif/imaging_service")
    assert media_caps.SnapshotUri is True and event_caps.WSPullPointSupport is True
    assert properties.TopicExpressionDialect == ["http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"]
    utc = clock.UTCDateTime
    camera_time = dt.datetime(utc.Date.Year, utc.Date.Month, utc.Date.Day, utc.Time.Hour, utc.Time.Minute,
                              utc.Time.Second, tzinfo=dt.timezone.utc)
    assert abs((camera_time - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 5
    assert info.Manufacturer == "Pi Camera Service" and info.Model == "software" and info.SerialNumber
    assert hostname.Name == socket.gethostname()
    assert "onvif://www.onvif.org/Profile/Streaming" in scopes
    assert "onvif://www.onvif.org/name/Porch%20camera" in scopes
    assert nics and nics[0].Info.HwAddress
    assert len(profiles) == 1
    enc = profiles[0].VideoEncoderConfiguration
    assert (enc.Encoding, enc.Resolution.Width, enc.Resolution.Height) == ("H264", W, H)
    assert enc.RateControl.BitrateLimit == 400 and enc.RateControl.FrameRateLimit == 30
    assert enc.H264.GovLength == 30  # CAMERA_KEYFRAME_INTERVAL 1 s at 30 frames/s
    assert vec.token == enc.token and sources[0].Resolution.Width == W
    assert uri.Uri == f"rtsp://127.0.0.1:{rtsp_port}/cam"
    assert uri.InvalidAfterConnect is False and uri.InvalidAfterReboot is False

    # the URL is where the stream is served: a real RTSP server there receives decodable H.264
    parts = urlsplit(uri.Uri)
    rx = RtspReceiver(parts.port, tmp_path / "onvif.mkv").start()
    try:
        wait_until(lambda: httpx.get(service.base + "/v1/streaming/status", headers={"X-API-Key": API_KEY})
                   .json()["frames_sent"] > 60, 30, message="frames published")
    finally:
        decoded = rx.stop()
    assert decoded.frames > 30 and (decoded.width, decoded.height, decoded.codec) == (W, H, "h264")


def test_snapshot_uri_with_digest_auth_as_home_assistant_fetches_it(service):
    async def go():
        cam = await _camera(service)
        try:
            media = await cam.create_media_service()
            token = (await media.GetProfiles())[0].token
            uri = await cam.get_snapshot_uri(token)
            jpeg = await cam.get_snapshot(token)  # aiohttp DigestAuthMiddleware
            return uri, jpeg
        finally:
            await cam.close()

    uri, jpeg = run(go())
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] == (H, W)
    # the same URI with httpx: Digest and Basic work, no or wrong credentials get a Digest challenge
    assert httpx.get(uri, auth=httpx.DigestAuth(USER, PASSWORD)).headers["content-type"] == "image/jpeg"
    assert httpx.get(uri, auth=(USER, PASSWORD)).status_code == 200
    for auth in (None, httpx.DigestAuth(USER, "wrong-password"), (USER, "wrong")):
        r = httpx.get(uri, auth=auth)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Digest ")


def test_imaging_brightness_round_trip_shows_in_the_snapshot(service):
    from zeep.exceptions import Fault

    async def go():
        cam = await _camera(service)
        try:
            imaging = await cam.create_imaging_service()
            src = {"VideoSourceToken": "video_source_0"}
            options = await imaging.GetOptions(src)
            before = await imaging.GetImagingSettings(src)
            r0 = await cam.get_snapshot("profile_main")
            await imaging.SetImagingSettings({**src, "ImagingSettings": {"Brightness": 80.0}})
            after = await imaging.GetImagingSettings(src)
            await asyncio.sleep(0.5)  # the next frames carry the adjustment; snapshots read the newest frame
            r1 = await cam.get_snapshot("profile_main")
            with pytest.raises(Fault) as refused:
                await imaging.SetImagingSettings({**src, "ImagingSettings": {"Exposure": {"Mode": "MANUAL"}}})
            move = await imaging.GetMoveOptions(src)
            await imaging.SetImagingSettings({**src, "ImagingSettings": {"Brightness": 50.0, "IrCutFilter": "OFF"}})
            night = await imaging.GetImagingSettings(src)
            await imaging.SetImagingSettings({**src, "ImagingSettings": {"IrCutFilter": "AUTO"}})
            return options, before, after, r0, r1, refused.value, move, night
        finally:
            await cam.close()

    options, before, after, r0, r1, refused, move, night = run(go())
    assert options.Brightness.Min == 0 and options.Brightness.Max == 100
    assert options.Exposure is None and options.Focus is None and options.WhiteBalance is None  # no sensor
    assert list(options.IrCutFilterModes) == ["ON", "OFF", "AUTO"]
    assert before.Brightness == 50 and after.Brightness == 80
    assert _luma(r1) > _luma(r0) + 25, (_luma(r0), _luma(r1))
    assert "Exposure is not supported" in refused.message and "no sensor" in refused.message
    assert move is None or getattr(move, "Focus", None) is None
    assert night.IrCutFilter == "OFF"
    controls = httpx.get(service.base + "/v1/camera/controls", headers={"X-API-Key": API_KEY}).json()["controls"]
    assert controls["brightness"]["value"] == 0.0 and controls["day_night"]["value"] == "auto"


def test_wrong_password_digest_is_a_fault(service):
    from onvif.exceptions import ONVIFError
    from zeep.exceptions import Fault

    async def go():
        cam = await _camera(service, password="not-the-password")  # GetServices is PRE_AUTH: this works
        try:
            dev = await cam.create_devicemgmt_service()
            await dev.GetDeviceInformation()
        finally:
            await cam.close()

    with pytest.raises((Fault, ONVIFError)) as err:
        run(go())
    assert "wrong user name or password digest" in str(err.value)


def test_face_detected_arrives_as_a_pullpoint_event(service):
    async def go():
        cam = await _camera(service)
        try:
            manager = await cam.create_pullpoint_manager(dt.timedelta(seconds=60), lambda: None)
            pullpoint = manager.get_service()
            seen = []
            for _ in range(10):
                result = await pullpoint.PullMessages({"MessageLimit": 10, "Timeout": dt.timedelta(seconds=5)})
                for msg in result.NotificationMessage:
                    data = msg.Message._value_1
                    seen.append((msg.Topic._value_1, data.PropertyOperation, data.Data.SimpleItem[0].Value))
                if any(s[2] == "true" for s in seen):
                    break
            await manager.shutdown()
            return seen
        finally:
            await cam.close()

    seen = run(go())
    assert seen[0][0] == "tns1:RuleEngine/MyRuleDetector/FaceDetect" and seen[0][1] == "Initialized"
    assert ("tns1:RuleEngine/MyRuleDetector/FaceDetect", "Changed", "true") in seen or seen[0][2] == "true", seen


SOAP = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body>{}</s:Body></s:Envelope>')


def test_bad_requests_get_soap_faults_never_500_even_in_parallel(service):
    url = service.base + "/onvif/device_service"
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&lol2;</s:Body></s:Envelope>')
    cases = {
        "not xml": (b"<<<not xml", 400, "not well-formed"),
        "entity bomb": (bomb.encode(), 400, "document type declaration"),
        "too big": (b"<a>" + b"x" * 70_000 + b"</a>", 400, "bytes allowed"),
        "not soap": (b"<hello/>", 400, "expected a SOAP Envelope"),
        "empty body": (SOAP.format("").encode(), 400, "Body is missing or empty"),
        "unknown op": (SOAP.format("<tds:Reboot/>").encode(), 500, "not implemented"),
        "no auth": (SOAP.format("<tds:GetDeviceInformation/>").encode(), 401, "UsernameToken"),
    }

    def send(case):
        body, status, reason = cases[case]
        r = httpx.post(url, content=body, headers={"Content-Type": "application/soap+xml"}, timeout=20)
        return case, r.status_code, r.text, status, reason

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, list(cases) * 4))
    for case, got, text, status, reason in results:
        assert got == status, (case, got, text)
        assert "<s:Fault>" in text and reason in text, (case, text)
    r = httpx.post(url, content=SOAP.format("<tds:GetSystemDateAndTime/>"))
    assert r.status_code == 200 and "UTCDateTime" in r.text  # no auth, as the spec requires


def _digest_header(user: str, password: str, nonce: bytes, created: str) -> str:
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    return (
        '<s:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" '
        'xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">'
        f'<wsse:UsernameToken><wsse:Username>{user}</wsse:Username>'
        '<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">'
        f'{digest}</wsse:Password><wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>'
        f'<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>'
    )


def test_replayed_nonce_and_stale_created_are_refused(service):
    url = service.base + "/onvif/device_service"
    now = dt.datetime.now(dt.timezone.utc)
    created = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = os.urandom(16)
    envelope = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
                'xmlns:tds="http://www.onvif.org/ver10/device/wsdl">{}<s:Body><tds:GetHostname/></s:Body></s:Envelope>')
    body = envelope.format(_digest_header(USER, PASSWORD, nonce, created))
    first = httpx.post(url, content=body)
    again = httpx.post(url, content=body)
    assert first.status_code == 200 and "HostnameInformation" in first.text
    assert again.status_code == 401 and "already used" in again.text
    old = (now - dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = httpx.post(url, content=envelope.format(_digest_header(USER, PASSWORD, os.urandom(16), old)))
    assert stale.status_code == 401 and "camera's clock" in stale.text


# ----------------------------------------------------------------------------- WS-Discovery
def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MulticastListener:
    """Collects datagrams sent to 239.255.255.250:``port`` on the loopback interface."""

    def __init__(self, port: int, on_hello=None) -> None:  # noqa: ANN001
        self.on_hello = on_hello
        self.hello_results: list = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # bound to the group address: unicast datagrams to the port (the directed Probe) are not ours to take
        self.sock.bind(("239.255.255.250", port))
        mreq = struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton("127.0.0.1"))
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        self.sock.settimeout(0.2)
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except OSError:
                continue
            if self.on_hello is not None and b"/Hello<" in data:
                self.hello_results.append(self.on_hello())  # evaluated the moment Hello arrives
            self.received.append(data)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # WSDiscovery's IPv6 thread
def test_ws_discovery_probe_from_wsdiscovery_finds_the_camera_hello_and_bye(tmp_path, ffmpeg_available):
    from wsdiscovery import QName
    from wsdiscovery.discovery import ThreadedWSDiscovery

    udp_port = _free_udp_port()
    api_port = free_port()
    listener = MulticastListener(udp_port, on_hello=lambda: port_listening(api_port))
    env = {
        "CAMERA_SOURCE": str(SAMPLE), "CAMERA_WIDTH": "320", "CAMERA_HEIGHT": "240",
        "CAMERA_STREAM_ON_START": "false", "CAMERA_DETECTION_ENABLED": "false", "CAMERA_STILLS_ENABLED": "false",
        "CAMERA_HOST": "127.0.0.1", "CAMERA_PORT": str(api_port), "CAMERA_API_KEY": API_KEY,
        "CAMERA_STATE_DIR": str(tmp_path / "state"), "CAMERA_MDNS_INTERFACES": "127.0.0.1",
        "CAMERA_ONVIF_DISCOVERY_ENABLED": "true", "CAMERA_ONVIF_DISCOVERY_PORT": str(udp_port),
        "CAMERA_MDNS_NAME": "Garden", "CAMERA_ONVIF_LOCATION": "garden",
    }
    svc = ServiceProcess(env, tmp_path / "service.log").start(wait=False)
    wsd = ThreadedWSDiscovery()
    try:
        wait_until(lambda: listener.hello_results, 60, message="Hello multicast")
        assert listener.hello_results == [True]  # Hello only once the HTTP port is open: NVRs connect at once
        wsd.start()
        # WSDiscovery reads replies only on its per-interface multicast sockets, which it never opens for
        # loopback; a directed probe's ProbeMatches (WS-Discovery §4.3: unicast back to the sender) arrives
        # on its unicast socket, so let its own receive loop read that socket too.
        thread = wsd._networkingThread_v4
        thread._selector.register(thread._uniOutSocket, selectors.EVENT_READ)
        services = []
        for _ in range(5):  # UDP: a probe may be lost; each search waits 1 s for matches
            services = wsd.searchServices(types=[QName("http://www.onvif.org/ver10/network/wsdl",
                                                       "NetworkVideoTransmitter", "dn")],
                                          address="127.0.0.1", port=udp_port, timeout=1)
            if services:
                break
        assert len(services) == 1, svc.log()
        found = services[0]
        assert found.getXAddrs() == [f"http://127.0.0.1:{svc.port}/onvif/device_service"]
        scopes = [str(s.getValue()) for s in found.getScopes()]
        assert "onvif://www.onvif.org/name/Garden" in scopes and "onvif://www.onvif.org/location/garden" in scopes
        assert any(s.startswith("onvif://www.onvif.org/hardware/") for s in scopes)
        # the XAddr answers the device service
        r = httpx.post(found.getXAddrs()[0], content=SOAP.format("<tds:GetSystemDateAndTime/>"))
        assert r.status_code == 200
    finally:
        wsd.stop()
        svc.stop()
    try:
        wait_until(lambda: any(b"/Bye<" in m for m in listener.received), 10, message="Bye multicast")
    finally:
        listener.close()


# --------------------------------------------------------- WS-Discovery over a real link, standard port
WSD_CLIENT = r'''
import json, sys, threading
from wsdiscovery import QName
from wsdiscovery.discovery import ThreadedWSDiscovery

bye = threading.Event()
wsd = ThreadedWSDiscovery()
wsd.setRemoteServiceByeCallback(lambda service: bye.set())
wsd.start()
found = []
for _ in range(60):  # the camera notices its new address within 5 s; each Probe waits 1 s for matches
    found = wsd.searchServices(types=[QName("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter", "dn")],
                               timeout=1)
    if found:
        break
print(json.dumps([{"xaddrs": s.getXAddrs(), "scopes": [str(x.getValue()) for x in s.getScopes()]} for s in found]),
      flush=True)
sys.stdin.readline()  # the test stops the camera, then we wait for its Bye
print("BYE" if bye.wait(15) else "NO BYE", flush=True)
wsd.stop()
'''


@pytest.fixture()
def two_hosts():
    """Two network namespaces joined by a veth link: an NVR at 10.213.7.2; the camera's 10.213.7.1 is
    assigned when the test calls the third item."""
    import secrets
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the network-namespace test needs root and iproute2 (the suite runs as root in CI)")
    tag = secrets.token_hex(3)
    cam_ns, nvr_ns = f"pcs-cam-{tag}", f"pcs-nvr-{tag}"
    cmds = [
        f"ip netns add {cam_ns}", f"ip netns add {nvr_ns}",
        f"ip -n {cam_ns} link add v{tag}a type veth peer name v{tag}b",
        f"ip -n {cam_ns} link set v{tag}b netns {nvr_ns}",
        f"ip -n {nvr_ns} addr add 10.213.7.2/24 dev v{tag}b",
        f"ip -n {cam_ns} link set v{tag}a up", f"ip -n {nvr_ns} link set v{tag}b up",
        f"ip -n {cam_ns} link set lo up", f"ip -n {nvr_ns} link set lo up",
    ]

    def camera_address() -> None:  # what a DHCP lease does some time after boot
        subprocess.run(f"ip -n {cam_ns} addr add 10.213.7.1/24 dev v{tag}a".split(), check=True, capture_output=True)

    try:
        for cmd in cmds:
            subprocess.run(cmd.split(), check=True, capture_output=True)
        yield cam_ns, nvr_ns, camera_address
    finally:
        for ns in (cam_ns, nvr_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_ws_discovery_multicast_probe_across_a_link_on_port_3702(two_hosts, tmp_path):
    """The camera starts before its network has an address (a Pi booting before its DHCP lease); once the
    address appears it joins the group, and an NVR host's multicast Probe on the standard group and port
    finds it; it says Bye on shutdown."""
    import json
    import signal
    import subprocess
    import sys

    cam_ns, nvr_ns, camera_address = two_hosts
    port = 8000
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMERA_")}
    env.update({
        "CAMERA_SOURCE": str(SAMPLE), "CAMERA_WIDTH": "320", "CAMERA_HEIGHT": "240",
        "CAMERA_STREAM_ON_START": "false", "CAMERA_DETECTION_ENABLED": "false", "CAMERA_STILLS_ENABLED": "false",
        "CAMERA_HOST": "0.0.0.0", "CAMERA_PORT": str(port), "CAMERA_API_KEY": API_KEY,
        "CAMERA_STATE_DIR": str(tmp_path / "state"), "CAMERA_MDNS_ENABLED": "false",
        "CAMERA_ONVIF_DISCOVERY_ENABLED": "true", "CAMERA_MDNS_NAME": "Shed",
    })
    log = open(tmp_path / "camera.log", "wb")
    camera = subprocess.Popen(["ip", "netns", "exec", cam_ns, sys.executable, "-m", "pi_camera_service"],
                              env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: b"WS-Discovery: answering probes" in (tmp_path / "camera.log").read_bytes(), 60,
               message="WS-Discovery started on loopback only")
    camera_address()
    nvr = subprocess.Popen(["ip", "netns", "exec", nvr_ns, sys.executable, "-c", WSD_CLIENT],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        found = json.loads(nvr.stdout.readline() or "[]")
        assert len(found) == 1, (tmp_path / "camera.log").read_text()
        assert found[0]["xaddrs"] == [f"http://10.213.7.1:{port}/onvif/device_service"]
        assert "onvif://www.onvif.org/name/Shed" in found[0]["scopes"]
        camera.send_signal(signal.SIGTERM)
        camera.wait(20)
        nvr.stdin.write("\n")
        nvr.stdin.flush()
        assert nvr.stdout.readline().strip() == "BYE"
    finally:
        for proc in (camera, nvr):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log.close()


def test_parallel_password_guessing_is_cut_off_per_address(service):
    """From 127.0.0.2, 40 parallel wrong digests: exactly the budget (20) is checked, the rest get 429 with
    Retry-After, even a right password afterwards; 127.0.0.1 is not affected."""
    from pi_camera_service.onvif.service import AUTH_FAILURES_PER_ADDRESS

    budget = int(AUTH_FAILURES_PER_ADDRESS.split("/")[0])
    url = service.base + "/onvif/device_service"
    envelope = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
                'xmlns:tds="http://www.onvif.org/ver10/device/wsdl">{}<s:Body><tds:GetHostname/></s:Body></s:Envelope>')

    def attempt(password: str) -> httpx.Response:
        created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = envelope.format(_digest_header(USER, password, os.urandom(16), created))
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=20) as c:
            return c.post(url, content=body)

    with ThreadPoolExecutor(8) as pool:
        codes = [r.status_code for r in pool.map(attempt, [f"guess-{i}" for i in range(2 * budget)])]
    assert codes.count(401) == budget and codes.count(429) == budget, codes
    locked = attempt(PASSWORD)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0 and "too many" in locked.text
    snapshot = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")).get(
        service.base + "/onvif/snapshot", auth=httpx.DigestAuth(USER, PASSWORD))
    assert snapshot.status_code == 429
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    ok = httpx.post(url, content=envelope.format(_digest_header(USER, PASSWORD, os.urandom(16), created)))
    assert ok.status_code == 200
