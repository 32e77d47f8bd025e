"""Shared test helpers: free ports, an ffmpeg RTSP receiver, and the real service run as a process."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import importlib
import logging
import re
import uuid
from types import SimpleNamespace

import httpx
import pytest

# In-process apps (TestClient) do not announce themselves on the machine's network; the mDNS tests
# enable it explicitly, and service processes get only the CAMERA_* variables a test gives them.
os.environ.setdefault("CAMERA_MDNS_ENABLED", "false")
os.environ.setdefault("CAMERA_ONVIF_DISCOVERY_ENABLED", "false")  # no UDP 3702 multicast from test cameras

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SAMPLE = ROOT / "pi_camera_service" / "data" / "carphone_pristine.mp4"
FACE_FREE = DATA / "bikes.mp4"
ARTIFACTS = ROOT / "test-artifacts"
#: the fake picamera2 package (mirrors picamera2 0.3.36; see tests/fakes/picamera2/__init__.py)
FAKES = Path(__file__).resolve().parent / "fakes"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll ``predicate()`` until it returns a truthy value (returned) or ``timeout`` s pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message} (last: {last!r})")


@dataclass
class Decoded:
    """What an RTSP receiver recorded: decodable frames, their size and codec."""

    frames: int
    width: int
    height: int
    codec: str


class RtspReceiver:
    """A real RTSP server for one publishing session: ``ffmpeg -rtsp_flags listen`` recording to a file.

    It accepts the ANNOUNCE/SETUP/RECORD that MediaMTX would accept (REFERENCE.md) and exits when the
    publisher disconnects.
    """

    def __init__(self, port: int, out: Path) -> None:
        self.port = port
        self.out = out
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RtspReceiver":
        if self.out.exists():
            self.out.unlink()
        self.proc = subprocess.Popen(
            [
                "ffmpeg", "-nostdin", "-v", "error", "-y",
                "-rtsp_flags", "listen", "-i", f"rtsp://127.0.0.1:{self.port}/cam",
                "-c", "copy", "-f", "matroska", str(self.out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # wait until it listens (without connecting: a probe connection would be taken as the session)
        wait_until(lambda: port_listening(self.port), 10, message=f"ffmpeg listening on {self.port}")
        return self

    def stop(self) -> Decoded:
        """Stop gracefully (SIGINT lets ffmpeg finish the file) and decode what it recorded."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return decode(self.out)

    def kill(self) -> None:
        """SIGKILL: the RTSP server dies mid-stream, as a crashed MediaMTX would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def port_listening(port: int) -> bool:
    """True if a TCP socket is in LISTEN state on ``port`` (read from /proc/net/tcp{,6}, no connection made)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                return True
    return False


def decode(path: Path) -> Decoded:
    """Decode every video frame of ``path`` with PyAV (frames that fail to decode are not counted)."""
    import av

    if not path.exists() or path.stat().st_size == 0:
        return Decoded(0, 0, 0, "")
    frames = 0
    width = height = 0
    codec = ""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            for frame in container.decode(stream):
                frames += 1
                width, height = frame.width, frame.height
    except Exception:  # noqa: BLE001 - a truncated tail after SIGKILL; keep what decoded
        pass
    return Decoded(frames, width, height, codec)


class ServiceProcess:
    """The real service (``python -m pi_camera_service``) on a real socket, configured by CAMERA_* env."""

    module = "pi_camera_service"
    env_prefix = "CAMERA_"

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = int(env[self.env_prefix + "PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> "ServiceProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith(self.env_prefix) and k != "DATABASE_URL"}
        env.update(self.env)
        if self.env_prefix == "CAMERA_":  # no WS-Discovery multicast on the machine's interfaces unless asked
            env.setdefault("CAMERA_ONVIF_DISCOVERY_ENABLED", "false")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], env=env, cwd=str(self.log_path.parent),
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        if wait:
            wait_until(self._healthy, 60, 0.2, f"service on {self.base} (log: {self.log_path})")
        return self

    def _healthy(self) -> bool:
        if self.proc and self.proc.poll() is not None:
            raise AssertionError(f"service exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return httpx.get(self.base + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode if self.proc else 0


def sample_camera_env(workdir: Path, api_key: str, **overrides: str) -> dict[str, str]:
    """CAMERA_* env of a small camera process on the sample video: 320x240, not publishing at start,
    its own free API port and state directory under ``workdir``; ``overrides`` win."""
    return {
        "CAMERA_SOURCE": str(SAMPLE),
        "CAMERA_WIDTH": "320",
        "CAMERA_HEIGHT": "240",
        "CAMERA_RTSP_URL": f"rtsp://127.0.0.1:{free_port()}/cam",
        "CAMERA_STREAM_ON_START": "false",
        "CAMERA_HOST": "127.0.0.1",
        "CAMERA_PORT": str(free_port()),
        "CAMERA_API_KEY": api_key,
        "CAMERA_STATE_DIR": str(workdir / "state"),
        "CAMERA_STILLS_DIR": str(workdir / "stills"),
        **overrides,
    }


class CentralProcess(ServiceProcess):
    """The real central server (``python -m central``), configured by CENTRAL_* env and DATABASE_URL."""

    module = "central"
    env_prefix = "CENTRAL_"

    def bootstrap_password(self) -> str:
        """The one-time bootstrap password the server printed in its log (the newest one)."""
        found = re.findall(r"bootstrap password: (\S+)", self.log())
        assert found, f"no bootstrap password in the log:\n{self.log()}"
        return found[-1]


# ----------------------------------------------------------------------------- databases
POSTGRES_URL = os.environ.get("PCS_TEST_POSTGRES_URL")


def _postgres_database(name: str) -> str:
    """Create the empty PostgreSQL database ``name`` next to PCS_TEST_POSTGRES_URL's; returns its URL."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


def _drop_postgres_database(name: str) -> None:
    import sqlalchemy

    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """An empty database for one test: an SQLite file, or a fresh PostgreSQL database (dropped after).

    PostgreSQL comes from PCS_TEST_POSTGRES_URL (test.sh starts a local server and sets it); without it
    the PostgreSQL variant is skipped, or fails when PCS_REQUIRE_POSTGRES=1 (CI).
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'central.db'}"
        return
    if not POSTGRES_URL:
        if os.environ.get("PCS_REQUIRE_POSTGRES") == "1":
            pytest.fail("PCS_TEST_POSTGRES_URL is not set but PCS_REQUIRE_POSTGRES=1")
        pytest.skip("PCS_TEST_POSTGRES_URL not set (./test.sh sets up a local PostgreSQL)")
    name = f"pcs_test_{uuid.uuid4().hex[:12]}"
    url = _postgres_database(name)
    try:
        yield url
    finally:
        _drop_postgres_database(name)


# ----------------------------------------------------------------------------- loopback multicast (mDNS tests)
def _multicast_round_trip() -> bool:
    """True if a multicast datagram sent on 127.0.0.1 comes back to a socket joined on 127.0.0.1."""
    group = "239.255.71.73"
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rx.bind(("", 0))
        rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton("127.0.0.1"))
        rx.settimeout(1.0)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        token = os.urandom(8)
        tx.sendto(token, (group, rx.getsockname()[1]))
        while True:
            data, _ = rx.recvfrom(64)
            if data == token:
                return True
    except OSError:
        return False
    finally:
        rx.close()
        tx.close()


@contextlib.contextmanager
def _shared_state(tmp_path_factory, name: str):
    """A JSON dict shared by the pytest-xdist workers of this run (one file in the run's common temp
    directory), locked (flock) while the ``with`` block reads and changes it."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text()) if path.exists() else {}
        yield state
        path.write_text(json.dumps(state))


@pytest.fixture(scope="session")
def loopback_multicast(tmp_path_factory):
    """Multicast works on 127.0.0.1 (enabled here as root when it does not by default).

    Safe with pytest-xdist: the workers count their users in a shared, locked file; the first one
    enables multicast, the last one to finish undoes what was changed.
    """
    with _shared_state(tmp_path_factory, "loopback-multicast") as state:
        if not state.get("users"):
            state["undo"], state["skip"] = [], None
            if not _multicast_round_trip():
                if os.geteuid() != 0:
                    state["skip"] = "multicast on lo does not work here and enabling it (ip link set lo multicast on) needs root"
                else:
                    steps = [
                        (["ip", "link", "set", "lo", "multicast", "on"], ["ip", "link", "set", "lo", "multicast", "off"]),
                        (["ip", "route", "add", "224.0.0.0/4", "dev", "lo"], ["ip", "route", "del", "224.0.0.0/4", "dev", "lo"]),
                    ]
                    for do, revert in steps:
                        if subprocess.run(do, capture_output=True, check=False).returncode == 0:
                            state["undo"].append(revert)
                        if _multicast_round_trip():
                            break
                    else:
                        for cmd in reversed(state["undo"]):
                            subprocess.run(cmd, capture_output=True, check=False)
                        state["undo"] = []
                        state["skip"] = ("multicast on lo does not work even after 'ip link set lo multicast on' "
                                         "and a 224.0.0.0/4 route")
        state["users"] = state.get("users", 0) + 1
        skip = state.get("skip")
    try:
        if skip:
            pytest.skip(skip)
        yield
    finally:
        with _shared_state(tmp_path_factory, "loopback-multicast") as state:
            state["users"] -= 1
            if state["users"] == 0:
                for cmd in reversed(state.get("undo", [])):
                    subprocess.run(cmd, capture_output=True, check=False)
                state["undo"] = []


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium (Playwright) for one test module; skips without Playwright or Chromium."""
    from tests.browser import CHROMIUM, sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def ffmpeg_available() -> None:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required for the RTSP tests (apt-get install ffmpeg; .ci/run installs it)")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# ----------------------------------------------------------------------------- fake picamera2
def forget_picamera2() -> None:
    """Remove every ``picamera2`` module from ``sys.modules`` (the next import starts clean)."""
    for name in list(sys.modules):
        if name == "picamera2" or name.startswith("picamera2."):
            del sys.modules[name]


@pytest.fixture()
def fake_never_leaks():
    """After the test, no ``picamera2`` module (fake or not) and no fakes path remain."""
    yield
    leftover = [name for name in sys.modules if name == "picamera2" or name.startswith("picamera2.")]
    forget_picamera2()
    assert not leftover, f"picamera2 modules left in sys.modules: {leftover}"
    assert str(FAKES) not in sys.path


@pytest.fixture(params=["vc4"])
def fake(request, monkeypatch):
    """A freshly imported fake picamera2 for ``request.param`` platform (``vc4`` or ``pisp``): its
    class-level switches start clean and it is removed from ``sys.modules`` afterwards."""
    monkeypatch.setenv("FAKE_PICAMERA2_PLATFORM", request.param)
    forget_picamera2()
    monkeypatch.syspath_prepend(str(FAKES))
    picamera2 = importlib.import_module("picamera2")
    encoders = importlib.import_module("picamera2.encoders")
    outputs = importlib.import_module("picamera2.outputs")
    assert Path(picamera2.__file__).is_relative_to(FAKES), "the fake must shadow any real picamera2"
    yield SimpleNamespace(
        platform=request.param,
        Picamera2=picamera2.Picamera2,
        H264Encoder=encoders.H264Encoder,
        PyavOutput=outputs.PyavOutput,
    )
    forget_picamera2()


# ----------------------------------------------------------------------------- central server
class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class CentralServer:
    """The central app served by uvicorn in a thread on a real socket (127.0.0.1, free port).

    Faster to start than :class:`CentralProcess` for API tests; ``restart()`` keeps the database.
    """

    def __init__(self, database_url: str, **overrides: object) -> None:
        self.database_url = database_url
        self.overrides = {"mdns_enabled": False, "host": "127.0.0.1", **overrides}
        self.capture = _LogCapture()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._server = None
        self._thread = None

    def start(self) -> "CentralServer":
        import threading

        import uvicorn

        from central.app import create_app
        from central.config import load_settings

        settings = load_settings(database_url=self.database_url, port=self.port, **self.overrides)
        self.app = create_app(settings)
        logging.getLogger("central").addHandler(self.capture)
        logging.getLogger("central").setLevel(logging.INFO)
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     **settings.uvicorn_proxy_options()))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_until(lambda: self._server.started, 30, 0.05, "central server started")
        self.client = httpx.Client(base_url=self.base, timeout=30)
        return self

    def stop(self) -> None:
        self.client.close()
        self._server.should_exit = True
        self._thread.join(15)
        logging.getLogger("central").removeHandler(self.capture)

    def restart(self) -> "CentralServer":
        self.stop()
        return self.start()

    @property
    def state(self):  # noqa: ANN201 - central.app.CentralState
        return self.app.state.central

    def bootstrap_password(self) -> str:
        found = [re.search(r"bootstrap password: (\S+)", line) for line in self.capture.lines]
        found = [m.group(1) for m in found if m]
        assert found, f"no bootstrap password logged: {self.capture.lines}"
        return found[-1]

    def create_first_admin(self, username: str = "alice", password: str = "correct horse battery") -> str:
        """Bootstrap through the API; returns a 24 h access token of the new admin."""
        setup = self.client.post("/v1/setup", json={"password": self.bootstrap_password()})
        assert setup.status_code == 200, setup.text
        created = self.client.post("/v1/setup/admin", json={"username": username, "password": password},
                                   headers={"Authorization": f"Bearer {setup.json()['setup_token']}"})
        assert created.status_code == 201, created.text
        return self.login(username, password)

    def login(self, username: str, password: str) -> str:
        r = self.client.post("/v1/auth/token", data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    """``Authorization: Bearer <token>`` header dict."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture()
def central_server(database_url):
    """A started in-thread :class:`CentralServer` on a fresh database (SQLite and PostgreSQL)."""
    server = CentralServer(database_url).start()
    yield server
    server.stop()
