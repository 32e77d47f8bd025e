"""Service configuration: environment variables prefixed ``CAMERA_`` and an optional ``.env`` file.

Every key is documented in ``.env.example`` and the README. :func:`load_settings` turns a validation
failure into :class:`ConfigError`, whose message is one line naming the variable, the value given and
what is allowed, so start-up stops with something a person can act on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CAMERA_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ConfigError(ValueError):
    """Raised by :func:`load_settings` when a ``CAMERA_*`` value is invalid; ``str()`` is one line."""


class Settings(BaseSettings):
    """All settings of the edge service (environment prefix ``CAMERA_``, optional ``.env``).

    Sizes are in px, rates in frames per second, bitrates in bit/s, durations in seconds unless the
    name says otherwise.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        env_ignore_empty=True,
    )

    # --- camera source and capture -------------------------------------------------------------
    source: str = Field(
        "auto",
        description="auto | picamera2[:N] | v4l2:N | /dev/videoN | a video file path | rtsp:// or http(s):// URL",
    )
    width: int = Field(1280, ge=64, le=4608, description="main stream width, px (even)")
    height: int = Field(720, ge=64, le=2592, description="main stream height, px (even)")
    framerate: float = Field(30.0, gt=0, le=120, description="capture and encode rate, frames/s")
    bitrate: int = Field(2_000_000, ge=100_000, le=50_000_000, description="H.264 target bitrate, bit/s")
    x264_preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium"
    ] = Field("superfast", description="libx264 preset for sources encoded in software")
    scale_mode: Literal["fit", "fill", "stretch"] = Field(
        "fit",
        description="a source of another aspect ratio than WIDTHxHEIGHT: fit (whole picture, black bars), "
        "fill (centre crop) or stretch (distorted)",
    )
    keyframe_interval: float = Field(
        1.0, gt=0, le=2.0, description="seconds between H.264 keyframes (IDR); at most 2 s"
    )

    # --- streaming ------------------------------------------------------------------------------
    rtsp_url: str = Field("rtsp://127.0.0.1:8554/cam", description="RTSP publish URL (MediaMTX path)")
    stream_on_start: bool = Field(True, description="start publishing when the service starts")
    rtsp_reconnect_max_delay: float = Field(
        10.0, ge=0.5, le=300, description="longest wait between RTSP reconnect attempts, s"
    )

    # --- HTTP API -------------------------------------------------------------------------------
    host: str = Field("0.0.0.0", description="address the HTTP API binds to")
    port: int = Field(8000, ge=1, le=65535, description="HTTP API port")

    # --- discovery (mDNS/DNS-SD, docs/discovery.md) ---------------------------------------------
    mdns_enabled: bool = Field(True, description="advertise the service as _pi-camera._tcp over mDNS/DNS-SD")
    mdns_name: str | None = Field(
        None, max_length=63, description="DNS-SD instance name; default: host name + '-' + 6 hardware id characters"
    )
    mdns_interfaces: str | None = Field(
        None, description="comma-separated IPv4 addresses of the interfaces to advertise on; default: all"
    )
    advertised_host: str | None = Field(
        None, description="IPv4 address announced over mDNS and put in the rtsp TXT URL; default: the interfaces'"
    )

    @field_validator("mdns_name")
    @classmethod
    def _instance_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "." in value or any(ord(c) < 32 for c in value)):
            raise ValueError("must be a non-empty name without dots or control characters, such as 'Front door'")
        return value.strip() if value else value

    @field_validator("face_detector")
    @classmethod
    def _known_detector(cls, value: str) -> str:
        from pcs_common.faces.registry import detector_names

        if value not in detector_names():
            raise ValueError(f"unknown face detector; allowed: {', '.join(detector_names())}")
        return value

    @field_validator("mdns_interfaces", "advertised_host")
    @classmethod
    def _ipv4_list(cls, value: str | None, info) -> str | None:  # noqa: ANN001 - pydantic ValidationInfo
        if value is None:
            return value
        parts = [p.strip() for p in value.split(",") if p.strip()]
        import ipaddress

        try:
            addresses = [str(ipaddress.IPv4Address(p)) for p in parts]
        except ValueError:
            addresses = []
        if not addresses or (info.field_name == "advertised_host" and len(addresses) != 1):
            what = "comma-separated IPv4 addresses" if info.field_name == "mdns_interfaces" else "one IPv4 address"
            raise ValueError(f"must be {what}, such as 192.168.1.20")
        return ",".join(addresses)

    @property
    def mdns_interface_list(self) -> list[str]:
        """``mdns_interfaces`` as a list (empty: all interfaces)."""
        return self.mdns_interfaces.split(",") if self.mdns_interfaces else []

    # --- ONVIF device (docs/onvif.md) -----------------------------------------------------------
    onvif_enabled: bool = Field(True, description="serve the ONVIF device, media, imaging and event services under /onvif")
    onvif_discovery_enabled: bool = Field(
        True, description="answer WS-Discovery probes and send Hello/Bye (UDP 239.255.255.250:3702) on the mDNS interfaces"
    )
    onvif_discovery_port: int = Field(3702, ge=1, le=65535, description="WS-Discovery UDP port (3702 by the standard)")
    onvif_username: str | None = Field(None, max_length=64, description="ONVIF user; default: CAMERA_USERNAME")
    onvif_password: str | None = Field(
        None, min_length=8, max_length=128,
        description="ONVIF password (WS-Security digest, HTTP Digest); default: generated into <state_dir>/onvif_password",
    )
    onvif_stream_uri: str | None = Field(
        None, description="RTSP URL GetStreamUri answers; default: CAMERA_RTSP_URL without credentials, loopback host "
        "replaced by the address the client reached",
    )
    onvif_location: str | None = Field(None, max_length=64, description="onvif://www.onvif.org/location/<value> scope")

    @field_validator("onvif_stream_uri")
    @classmethod
    def _onvif_rtsp(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("rtsp://", "rtsps://")):
            raise ValueError("must be an rtsp:// or rtsps:// URL such as rtsp://192.168.1.20:8554/cam")
        return value

    # --- authentication -------------------------------------------------------------------------
    api_key: str | None = Field(None, description="X-API-Key value accepted on /v1 routes")
    username: str = Field("admin", min_length=1, max_length=64, description="user for /v1/auth/*")
    password_hash: str | None = Field(
        None, description="argon2 hash of the user's password (pi-camera-service hash-password)"
    )
    jwt_secret: str | None = Field(None, description="HS256 signing secret; generated when absent")
    token_ttl: int = Field(86_400, ge=60, le=30 * 86_400, description="JWT lifetime, s (24 h default)")
    login_failures_per_address: int = Field(
        10, ge=1, le=10_000, description="failed logins from one client address per 15 min before 429"
    )
    login_failures_global: int = Field(
        30, ge=1, le=100_000,
        description="failed logins from all addresses together per 15 min before 429; addresses that logged in "
                    "successfully since the start are exempt (docs/security.md#rate-limits)",
    )
    trust_proxy_headers: bool = Field(
        False, description="take the client address from X-Forwarded-For, only from CAMERA_FORWARDED_ALLOW_IPS"
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1", min_length=1, max_length=1000,
        description="comma-separated addresses/networks of trusted reverse proxies (uvicorn's forwarded_allow_ips)",
    )

    def uvicorn_proxy_options(self) -> dict[str, object]:
        """uvicorn's ``proxy_headers`` / ``forwarded_allow_ips`` from ``trust_proxy_headers``
        (:func:`pcs_common.proxy.uvicorn_proxy_options`)."""
        from pcs_common.proxy import uvicorn_proxy_options

        return uvicorn_proxy_options(self.trust_proxy_headers, self.forwarded_allow_ips)

    # --- detection ------------------------------------------------------------------------------
    detection_enabled: bool = Field(True, description="run the background face detection task")
    detection_fps: float = Field(5.0, gt=0, le=30, description="analysed frames per second (target)")
    detection_priority: Literal["idle", "nice", "normal"] = Field(
        "idle",
        description="CPU priority of face analysis and its encoder worker: idle (SCHED_IDLE: only CPU time "
        "capture and encoding leave), nice (nice 19) or normal; see pi_camera_service/priority.py",
    )
    detection_process: bool = Field(
        True, description="run face analysis in its own process (at detection_priority), so it never holds the "
        "capture and encoder threads' GIL; false: a thread of the service"
    )
    detection_adaptive: bool = Field(
        True, description="analyse fewer frames per second while the RTSP stream falls behind (down to 1/8 of detection_fps)"
    )
    metrics_auth: bool = Field(
        True, description="/metrics needs the same X-API-Key or Bearer token as /v1 (false: open to the network)"
    )
    detection_width: int = Field(
        320, ge=96, le=1280, description="analysis (lores) stream width, px; height keeps the aspect ratio"
    )
    face_detector: str = Field(
        "hog", description="face detector of the registry (pcs_common.faces.registry): hog (dlib HOG "
        "+ Haar corroboration + tracking, the default) or haar (OpenCV cascades only, the cheapest)"
    )

    # --- camera tuning, lens and day/night ------------------------------------------------------
    tuning_file: str | None = Field(
        None,
        description="libcamera tuning file for the Pi camera: a name such as imx708_wide_noir.json (searched "
        "where libcamera installs them) or a path; default: the one libcamera picks for the sensor",
    )
    noir: Literal["auto", "true", "false"] = Field(
        "auto",
        description="the module has no IR-cut filter: auto (libcamera's _noir sensor name), true (load the "
        "sensor's _noir tuning), false",
    )
    lens_camera_matrix: str | None = Field(
        None,
        description="fx,fy,cx,cy of the lens in px at CAMERA_LENS_CALIBRATION_SIZE (cv2.calibrateCamera); "
        "default: an estimate for the Camera Module 3 Wide (120°)",
    )
    lens_distortion: str | None = Field(None, description="k1,k2,p1,p2[,k3] (OpenCV model) of the lens")
    lens_calibration_size: str = Field("4608x2592", description="WxH px the camera matrix was measured at")
    night_max_frame_duration: int = Field(
        100_000, ge=10_000, le=1_000_000,
        description="longest frame (and so exposure) time allowed at night on a Pi camera, µs",
    )

    # --- stills history -------------------------------------------------------------------------
    stills_enabled: bool = Field(
        True, description="keep a history of JPEG stills taken from the live pipeline (schedule, detections, API)"
    )
    stills_dir: Path = Field(
        Path("stills"), description="directory of the stills history: one YYYY-MM-DD directory per local day"
    )
    stills_interval: float = Field(
        3600.0, ge=1, le=7 * 86_400, description="seconds between scheduled stills (ignored when stills_cron is set)"
    )
    stills_cron: str | None = Field(
        None,
        description="5-field crontab expression in local time (minute hour day month day_of_week), e.g. "
        "'*/15 6-22 * * *'; when set it replaces stills_interval",
    )
    stills_on_detection: bool = Field(
        False, description="also take a still when detection reports at least one face or profile"
    )
    stills_detection_min_interval: float = Field(
        60.0, ge=1, le=86_400, description="at most one detection-triggered still per this many seconds"
    )
    stills_max_age_days: float = Field(30.0, gt=0, le=3650, description="stills older than this are deleted, days")
    stills_max_total_mb: float = Field(
        1024.0, gt=0, le=10_000_000, description="largest total size of the history (JPEG + thumbnail + sidecar), MB"
    )
    stills_min_free_mb: float = Field(
        200.0, ge=0, le=10_000_000,
        description="free space to leave on the stills filesystem, MB: the oldest stills are deleted to keep it, "
        "and a still is skipped when even that is not enough",
    )
    stills_thumbnail_width: int = Field(
        320, ge=16, le=1280, description="thumbnail width, px (aspect ratio kept; never wider than the still)"
    )
    stills_quality: int = Field(90, ge=1, le=100, description="JPEG quality of the stills")

    # --- web page and live view -----------------------------------------------------------------
    mjpeg_fps: float = Field(5.0, gt=0, le=30, description="frames/s of the MJPEG live view (/v1/camera/mjpeg)")
    mjpeg_width: int = Field(640, ge=64, le=4608, description="width of the MJPEG live view, px")
    webrtc_url: str | None = Field(
        None, description="MediaMTX WebRTC page of this camera (e.g. http://camera:8889/cam) for the web page's button"
    )

    # --- central server (docs/pairing-camera.md) ------------------------------------------------
    central_url: str | None = Field(
        None, description="central server to pair with and report to, http(s)://host[:port]; unset: no pairing"
    )
    api_url: str | None = Field(
        None,
        description="URL the central server reaches this camera's API at (e.g. http://camera.lan:8000); default: "
        "http://<address used to reach the central server>:<CAMERA_PORT>",
    )
    central_poll_wait: int = Field(30, ge=1, le=60, description="s the central server may hold a pairing poll")
    central_retry_max_delay: float = Field(
        300.0, ge=1, le=3600, description="longest wait between retries when the central server fails, s"
    )

    # --- outbox: durable delivery to the central server (docs/outbox.md) -------------------------
    outbox_enabled: bool = Field(
        True, description="record face events (and stills to upload) in <state_dir>/outbox.db and send them to the "
        "central server while paired"
    )
    outbox_max_items: int = Field(10_000, ge=1, le=10_000_000, description="most items kept; the oldest are dropped")
    outbox_max_mb: float = Field(200.0, gt=0, le=1_000_000, description="most MB kept (payloads + images)")
    outbox_max_age_days: float = Field(30.0, gt=0, le=3650, description="items older than this are dropped, days")
    outbox_update_interval: float = Field(
        30.0, ge=0.5, le=86_400, description="shortest time between two events of one person track, s"
    )
    outbox_track_end: float = Field(5.0, gt=0, le=3600, description="a track unseen this long ends, s")
    outbox_full_frame: bool = Field(False, description="also send the whole frame (JPEG <= 2 MB) with each face event")
    outbox_stills: bool = Field(False, description="queue every still taken for upload to the central server")

    # --- resource limits (docs/security.md#resource-limits) --------------------------------------
    password_checks_max: int = Field(
        2, ge=1, le=16, description="argon2 password verifications at once (19 MiB each); more wait, then 503"
    )
    password_check_wait: float = Field(
        2.0, ge=0, le=30, description="s a login waits for a free password-check slot before 503 + Retry-After"
    )
    max_body_kb: int = Field(
        64, ge=1, le=10_240, description="largest request body of any route, KiB (413 beyond, checked as it streams in)"
    )
    max_mjpeg_viewers: int = Field(8, ge=1, le=1000, description="concurrent /v1/camera/mjpeg viewers (503 beyond)")
    max_event_streams: int = Field(16, ge=1, le=1000, description="concurrent /v1/events/stream clients (503 beyond)")
    viewer_write_timeout: float = Field(
        10.0, gt=0, le=300, description="s one write to a live viewer may take; a client that stops reading is dropped"
    )

    @field_validator("central_url", "api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"is not a valid URL ({exc}); use http(s)://host[:port]") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, such as http://central.lan:8080")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must not contain a query, a fragment or user:password; use http(s)://host[:port][/path]")
        return value

    # --- Home Assistant over MQTT (docs/integrations.md) -----------------------------------------
    mqtt_url: str | None = Field(
        None, description="publish a Home Assistant device (MQTT discovery) to this broker: mqtt://[user:pass@]host"
        "[:port] or mqtts:// (TLS, system CA); unset = off",
    )
    mqtt_discovery_prefix: str = Field("homeassistant", description="Home Assistant's MQTT discovery prefix")
    mqtt_topic_prefix: str = Field("pi-camera", description="first level(s) of the camera's state and command topics")
    mqtt_state_interval: float = Field(
        1.0, ge=0, le=3600, description="least s between two state messages when a face or the stream state changes"
    )
    mqtt_sensor_interval: float = Field(
        30.0, ge=1, le=86_400, description="least s between two state messages when only lux/temperature/fps change"
    )
    mqtt_image_interval: float = Field(
        60.0, ge=0, le=86_400, description="least s between two snapshots on the image entity (a new face: 5 s); 0 = no image"
    )
    mqtt_image_width: int = Field(640, ge=16, le=4608, description="width of the image entity's snapshots, px")

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str | None) -> str | None:
        if value is not None:
            from pcs_common.mqtt import parse_mqtt_url

            parse_mqtt_url(value)  # ValueError saying what is allowed (never the password)
        return value

    @field_validator("mqtt_discovery_prefix", "mqtt_topic_prefix")
    @classmethod
    def _mqtt_prefix(cls, value: str) -> str:
        from pcs_common.mqtt import check_topic_prefix

        return check_topic_prefix(value)

    # --- files and logs -------------------------------------------------------------------------
    state_dir: Path = Field(Path("state"), description="directory for generated secrets and state")
    log_level: LogLevel = Field("INFO", description="DEBUG | INFO | WARNING | ERROR | CRITICAL")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("width", "height")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("must be an even number of pixels (H.264 4:2:0 needs even sizes)")
        return value

    @field_validator("rtsp_url")
    @classmethod
    def _rtsp_scheme(cls, value: str) -> str:
        if not value.startswith(("rtsp://", "rtsps://")):
            raise ValueError("must be an rtsp:// or rtsps:// URL such as rtsp://127.0.0.1:8554/cam")
        return value

    @field_validator("source")
    @classmethod
    def _source_syntax(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty; use auto, picamera2, v4l2:N, /dev/videoN, a file or a URL")
        if value.startswith("picamera2:") and not value.split(":", 1)[1].isdigit():
            raise ValueError("picamera2:N needs a camera number, such as picamera2:0")
        if value.startswith("v4l2:") and not value.split(":", 1)[1].isdigit():
            raise ValueError("v4l2:N needs a device number, such as v4l2:0")
        return value

    @field_validator("noir", mode="before")
    @classmethod
    def _noir_bool(cls, value: object) -> object:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value.lower() if isinstance(value, str) else value

    @field_validator("lens_camera_matrix", "lens_distortion")
    @classmethod
    def _numbers(cls, value: str | None, info) -> str | None:  # noqa: ANN001 - pydantic ValidationInfo
        if value is None:
            return value
        expected = (4,) if info.field_name == "lens_camera_matrix" else (4, 5)
        try:
            numbers = [float(v) for v in value.replace(" ", "").split(",")]
        except ValueError:
            raise ValueError("must be comma-separated numbers") from None
        if len(numbers) not in expected:
            raise ValueError(f"needs {' or '.join(map(str, expected))} comma-separated numbers, got {len(numbers)}")
        return value

    @field_validator("lens_calibration_size")
    @classmethod
    def _size(cls, value: str) -> str:
        w, sep, h = value.lower().partition("x")
        if not sep or not w.isdigit() or not h.isdigit() or int(w) < 16 or int(h) < 16:
            raise ValueError("must be WIDTHxHEIGHT in px, such as 4608x2592")
        return value

    @field_validator("stills_cron", mode="before")
    @classmethod
    def _cron(cls, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be a 5-field crontab expression such as '0 * * * *'")
        value = " ".join(value.split())
        if not value:
            return None
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(
                f"not a valid crontab expression ({exc}); use 5 fields 'minute hour day month day_of_week' "
                "in local time, such as '0 * * * *' (hourly) or '*/15 6-22 * * mon-fri'"
            ) from None
        return value

    def lens_model(self):  # noqa: ANN201 - imaging is imported lazily
        """The :class:`~pi_camera_service.imaging.LensModel` for ``lens_correction``: the configured
        matrix and distortion, else the Camera Module 3 Wide estimate."""
        from pi_camera_service.imaging import LensModel

        default = LensModel.camera_module_3_wide()
        if self.lens_camera_matrix is None and self.lens_distortion is None:
            return default
        w, _, h = self.lens_calibration_size.lower().partition("x")
        fx, fy, cx, cy = (
            [float(v) for v in self.lens_camera_matrix.split(",")]
            if self.lens_camera_matrix else (default.fx, default.fy, default.cx, default.cy)
        )
        distortion = (
            tuple(float(v) for v in self.lens_distortion.split(",")) if self.lens_distortion else default.distortion
        )
        return LensModel(fx, fy, cx, cy, distortion, (int(w), int(h)))

    @model_validator(mode="after")
    def _detection_fits(self) -> "Settings":
        if self.detection_width > self.width:
            raise ValueError(
                f"CAMERA_DETECTION_WIDTH={self.detection_width} exceeds CAMERA_WIDTH={self.width}; "
                "the analysis stream cannot be larger than the main stream"
            )
        if self.stills_enabled and self.stills_on_detection and not self.detection_enabled:
            raise ValueError(
                "CAMERA_STILLS_ON_DETECTION=true needs CAMERA_DETECTION_ENABLED=true (no detection events "
                "without detection); enable detection or set CAMERA_STILLS_ON_DETECTION=false"
            )
        return self

    @property
    def detection_size(self) -> tuple[int, int]:
        """(width, height) of the analysis (lores) stream, px: even, same aspect ratio as main."""
        w = self.detection_width - self.detection_width % 2
        h = round(w * self.height / self.width)
        return w, h - h % 2


def _describe(error: dict) -> str:
    """Turn one pydantic error into ``CAMERA_X='value' is invalid: reason``."""
    loc = [str(part) for part in error.get("loc", ()) if part != "__root__"]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if not loc:
        return f"invalid configuration: {message}"
    name = ENV_PREFIX + loc[0].upper()
    value = error.get("input")
    if loc[0] == "mqtt_url":
        from pcs_common.urls import redact_url

        value = redact_url(value)
    return f"{name}={value!r} is invalid: {message}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and ``.env``.

    Keyword ``overrides`` (field names, e.g. ``port=9000``) win over the environment; tests use them.

    Raises:
        ConfigError: a value is invalid; the message is one line naming the first bad variable, its
            value and what is allowed.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0])) from None


def configure_logging(level: str) -> None:
    """Set up root logging: timestamps from a terminal, none under journald (see :mod:`pcs_common.logs`)."""
    from pcs_common.logs import configure_logging as configure

    configure(level)
