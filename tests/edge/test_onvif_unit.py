"""ONVIF building blocks without a process: UsernameToken digest, HTTP Digest, the imaging level mapping,
SOAP parsing limits and WS-Discovery probe matching."""

from __future__ import annotations

import base64
import hashlib
import os

import httpx
import pytest

from pi_camera_service.onvif.discovery import WsDiscoveryResponder
from pi_camera_service.onvif.httpauth import NONCE_TTL, DigestAuth
from pi_camera_service.onvif.imaging import to_control, to_level
from pi_camera_service.onvif.security import OnvifCredentials, UsernameTokenVerifier, password_digest
from pi_camera_service.onvif.soap import Fault, MAX_REQUEST_BYTES, parse_request

CREDS = OnvifCredentials("nvr", "s3cret-password")
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


def _header(user: str, password: str, nonce: bytes, created: str, digest: str | None = None):
    digest = digest or password_digest(nonce, created, password)
    xml = (f'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header>'
           f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
           f'<wsse:Username>{user}</wsse:Username><wsse:Password>{digest}</wsse:Password>'
           f'<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>'
           f'</wsse:UsernameToken></wsse:Security></s:Header><s:Body><x/></s:Body></s:Envelope>')
    return parse_request(xml.encode()).header


def test_password_digest_matches_the_ws_security_formula():
    nonce, created = b"0123456789abcdef", "2026-12-01T10:00:00Z"
    expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + b"pw").digest()).decode()
    assert password_digest(nonce, created, "pw") == expected


def test_username_token_accepts_once_and_refuses_replay_skew_and_wrong_secrets():
    now = 1_800_000_000.0
    verifier = UsernameTokenVerifier(CREDS, clock=lambda: now)
    created = "2027-01-15T08:00:00Z"
    from pi_camera_service.onvif.security import parse_created

    now = parse_created(created) + 10  # 10 s of skew is fine
    nonce = os.urandom(16)
    assert verifier.verify(_header("nvr", CREDS.password, nonce, created)) == "nvr"
    cases = [
        (_header("nvr", CREDS.password, nonce, created), "already used"),
        (_header("nvr", "wrong", os.urandom(16), created), "wrong user name or password digest"),
        (_header("intruder", CREDS.password, os.urandom(16), created), "wrong user name or password digest"),
        (_header("nvr", CREDS.password, os.urandom(16), "2027-01-15T07:50:00Z"), "camera's clock"),
        (_header("nvr", CREDS.password, os.urandom(16), "yesterday"), "not an xs:dateTime"),
        (None, "UsernameToken"),
    ]
    for header, reason in cases:
        with pytest.raises(Fault) as err:
            verifier.verify(header)
        assert err.value.http_status == 401 and reason in err.value.reason


def test_nonce_cache_only_holds_authenticated_nonces_and_forgets_old_ones():
    t = [1_900_000_000.0]
    verifier = UsernameTokenVerifier(CREDS, clock=lambda: t[0])
    from pi_camera_service.onvif.events import iso

    for _ in range(50):  # wrong digests never enter the cache
        with pytest.raises(Fault):
            verifier.verify(_header("nvr", "bad", os.urandom(16), iso(t[0])))
    assert len(verifier._nonces) == 0
    verifier.verify(_header("nvr", CREDS.password, os.urandom(16), iso(t[0])))
    t[0] += 700  # past 2 x the skew window: the old nonce is dropped at the next check
    verifier.verify(_header("nvr", CREDS.password, os.urandom(16), iso(t[0])))
    assert len(verifier._nonces) == 1


def test_http_digest_round_trip_with_httpx_and_stale_nonces():
    t = [1_000_000.0]
    auth = DigestAuth(CREDS, clock=lambda: t[0])
    uri = "/onvif/snapshot?profile=profile_main"

    def handler(request: httpx.Request) -> httpx.Response:
        ok, stale = auth.check(request.headers.get("authorization"), request.method, uri)
        if ok:
            return httpx.Response(200, content=b"jpeg")
        return httpx.Response(401, headers={"WWW-Authenticate": auth.challenge(stale)})

    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://camera")
    assert client.get(uri, auth=httpx.DigestAuth("nvr", CREDS.password)).status_code == 200
    assert client.get(uri, auth=httpx.DigestAuth("nvr", "nope")).status_code == 401
    assert client.get(uri, auth=("nvr", CREDS.password)).status_code == 200
    old = auth.challenge()
    t[0] += NONCE_TTL + 1
    nonce = old.split('nonce="')[1].split('"')[0]
    ha1 = hashlib.md5(f"nvr:pi-camera-service ONVIF:{CREDS.password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"GET:{uri}".encode()).hexdigest()
    resp = hashlib.md5(f"{ha1}:{nonce}:00000001:abc:auth:{ha2}".encode()).hexdigest()
    header = (f'Digest username="nvr", realm="pi-camera-service ONVIF", nonce="{nonce}", uri="{uri}", '
              f'response="{resp}", qop=auth, nc=00000001, cnonce="abc"')
    assert auth.check(header, "GET", uri) == (False, True)  # right answer, old nonce: stale
    forged = header.replace(nonce, nonce.split(".")[0] + ".0000")
    assert auth.check(forged, "GET", uri) == (False, False)


@pytest.mark.parametrize("lo,neutral,hi", [(-1.0, 0.0, 1.0), (0.0, 1.0, 32.0), (0.0, 1.0, 16.0)])
def test_imaging_levels_map_piecewise_linearly_with_50_at_neutral(lo, neutral, hi):
    assert to_control(0, lo, neutral, hi) == lo
    assert to_control(50, lo, neutral, hi) == neutral
    assert to_control(100, lo, neutral, hi) == hi
    for level in (0, 12.5, 25, 50, 62.5, 80, 100):
        assert to_level(to_control(level, lo, neutral, hi), lo, neutral, hi) == pytest.approx(level, abs=0.01)
    assert to_control(75, -1.0, 0.0, 1.0) == pytest.approx(0.5)


def test_soap_parser_limits():
    with pytest.raises(Fault, match="larger than"):
        parse_request(b" " * (MAX_REQUEST_BYTES + 1))
    deep = b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body>" + b"<a>" * 40 + b"</a>" * 40 + \
        b"</s:Body></s:Envelope>"
    with pytest.raises(Fault, match="deeper"):
        parse_request(deep)
    external = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body>&e;</s:Body></s:Envelope>")
    with pytest.raises(Fault, match="document type declaration"):
        parse_request(external)


def test_probe_matching_by_type_and_scope():
    r = WsDiscoveryResponder("urn:uuid:1", lambda: ["http://10.0.0.2:8000/onvif/device_service"],
                             lambda: ["onvif://www.onvif.org/Profile/Streaming", "onvif://www.onvif.org/name/Porch"],
                             ["127.0.0.1"])

    def probe(types: str = "", scopes: str = "") -> bytes:
        return (f'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
                f'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
                f'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
                f'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header><a:MessageID>urn:uuid:42</a:MessageID>'
                f'<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action></s:Header><s:Body>'
                f'<d:Probe><d:Types>{types}</d:Types><d:Scopes>{scopes}</d:Scopes></d:Probe></s:Body></s:Envelope>').encode()

    answer = r.probe_match(probe("dn:NetworkVideoTransmitter"))
    assert answer is not None and b"urn:uuid:42" in answer and b"ProbeMatches" in answer
    assert r.probe_match(probe()) is not None
    assert r.probe_match(probe(scopes="onvif://www.onvif.org/name")) is not None  # prefix match
    assert r.probe_match(probe("dn:Printer")) is None
    assert r.probe_match(probe(scopes="onvif://www.onvif.org/name/Garage")) is None
    assert r.probe_match(b"<garbage") is None


def test_face_events_initialized_then_changed_and_bounded_subscriptions():
    import asyncio
    from types import SimpleNamespace

    from pi_camera_service.onvif import events as ev

    async def go():
        events = ev.FaceEvents(asyncio.get_running_loop())
        sub = events.create("PT60S")
        _, first = await events.pull(sub.id, 1.0, 10)
        assert [(m.operation, m.state) for m in first] == [("Initialized", False)]
        waiting = asyncio.create_task(events.pull(sub.id, 5.0, 10))  # long poll: returns when a face appears
        await asyncio.sleep(0.05)
        face = SimpleNamespace(faces=(object(),), profiles=())
        await asyncio.to_thread(events.on_detection, face)  # the detection thread
        await asyncio.to_thread(events.on_detection, face)  # no transition: no message
        _, changed = await asyncio.wait_for(waiting, 2.0)
        assert [(m.operation, m.state) for m in changed] == [("Changed", True)]
        await asyncio.to_thread(events.on_detection, SimpleNamespace(faces=(), profiles=()))
        _, gone = await events.pull(sub.id, 0.5, 10)
        assert [(m.operation, m.state) for m in gone] == [("Changed", False)]
        # a slow consumer keeps only the newest MAX_QUEUE messages
        for i in range(ev.MAX_QUEUE + 20):
            events._publish(bool(i % 2))
        _, many = await events.pull(sub.id, 0, 1000)
        assert len(many) == ev.MAX_QUEUE
        for _ in range(ev.MAX_SUBSCRIPTIONS - 1):
            events.create("PT10S")
        with pytest.raises(Fault, match="subscriptions are open"):
            events.create("PT10S")
        events.remove(sub.id)
        events.create(ev.iso(__import__("time").time() + 30))  # absolute xs:dateTime works too
        with pytest.raises(Fault, match="unknown or expired"):
            await events.pull(sub.id, 0, 1)
        with pytest.raises(Fault, match="in the past"):
            ev.parse_termination("2001-01-01T00:00:00Z", 1_900_000_000)
        with pytest.raises(Fault, match="xs:duration"):
            ev.parse_duration("soon")

    asyncio.run(go())


def test_posix_tz_inverts_the_sign():
    from datetime import datetime, timedelta, timezone

    from pi_camera_service.onvif.service import posix_tz

    assert posix_tz(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1), "CET"))) == "CET-1"
    assert posix_tz(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5), "EST"))) == "EST5"
    assert posix_tz(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30), "IST"))) == "IST-5:30"
    assert posix_tz(datetime(2026, 1, 1, tzinfo=timezone.utc)) == "UTC0"


def test_generated_onvif_password_is_stored_0600_and_shown_once(tmp_path, caplog):
    import logging
    import stat

    from pi_camera_service.config import Settings
    from pi_camera_service.onvif.security import ONVIF_PASSWORD_FILE, load_onvif_credentials

    settings = Settings(_env_file=None, state_dir=tmp_path / "state", username="admin")
    with caplog.at_level(logging.INFO, logger="pi_camera_service.onvif.security"):
        first = load_onvif_credentials(settings)
        second = load_onvif_credentials(settings)
    path = tmp_path / "state" / ONVIF_PASSWORD_FILE
    assert first == second and first.username == "admin" and len(first.password) >= 20
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text().strip() == first.password
    shown = [r for r in caplog.records if first.password in r.getMessage()]
    assert len(shown) == 1 and shown[0].levelno == logging.WARNING
    assert first.password not in repr(first)
    explicit = load_onvif_credentials(Settings(_env_file=None, state_dir=tmp_path / "other",
                                               onvif_username="nvr", onvif_password="configured-pw"))
    assert explicit == OnvifCredentials("nvr", "configured-pw") and not (tmp_path / "other").exists()


def test_onvif_settings_are_validated_with_one_line_messages():
    from pi_camera_service.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=r"CAMERA_ONVIF_STREAM_URI='http://x/cam' is invalid: must be an rtsp://"):
        load_settings(onvif_stream_uri="http://x/cam")
    with pytest.raises(ConfigError, match="CAMERA_ONVIF_PASSWORD"):
        load_settings(onvif_password="short")


def test_stream_uri_drops_publish_credentials_and_uses_the_reached_host():
    from pi_camera_service.config import Settings
    from pi_camera_service.onvif.service import stream_uri

    s = Settings(_env_file=None, rtsp_url="rtsp://publisher:secret@127.0.0.1:8554/cam")
    assert stream_uri(s, "http://192.168.1.20:8000") == "rtsp://192.168.1.20:8554/cam"
    remote = Settings(_env_file=None, rtsp_url="rtsp://mediamtx.lan:8554/porch")
    assert stream_uri(remote, "http://192.168.1.20:8000") == "rtsp://mediamtx.lan:8554/porch"
    fixed = Settings(_env_file=None, onvif_stream_uri="rtsp://viewer:pw@cam.lan:8554/cam")
    assert stream_uri(fixed, "http://10.0.0.1:8000") == "rtsp://viewer:pw@cam.lan:8554/cam"
