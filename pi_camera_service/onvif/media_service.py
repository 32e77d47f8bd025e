"""The ONVIF media service (``trt``, Media Service Specification): the one profile, its video source
and encoder configurations and their options, the stream and snapshot URIs."""

from __future__ import annotations

from typing import Any

from pi_camera_service.onvif.calls import (
    PROFILE_TOKEN,
    SNAPSHOT_PATH,
    VEC_TOKEN,
    VIDEO_SOURCE_TOKEN,
    VSC_TOKEN,
    Call,
    stream_uri,
)
from pi_camera_service.onvif.soap import element, find, sender_fault, sub, text


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
