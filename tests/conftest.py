"""The suite's fixtures. The helpers they build on (and that test modules import) are in tests/support/."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support import databases
from tests.support.central_api import start_ready_server
from tests.support.central_server import CentralServer
from tests.support.fake_camera import forget_picamera2
from tests.support.mqtt_broker import MOSQUITTO, Broker, Subscriber
from tests.support.paths import ARTIFACTS, FAKES
from tests.support.xdist import multicast_round_trip, shared_state

# In-process apps (TestClient) do not announce themselves on the machine's network; the mDNS tests
# enable it explicitly, and service processes get only the CAMERA_* variables a test gives them.
os.environ.setdefault("CAMERA_MDNS_ENABLED", "false")
os.environ.setdefault("CAMERA_ONVIF_DISCOVERY_ENABLED", "false")  # no UDP 3702 multicast from test cameras


# ----------------------------------------------------------------------------- databases
@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """An empty database for one test: an SQLite file, or a fresh PostgreSQL database (dropped after).

    PostgreSQL comes from PCS_TEST_POSTGRES_URL (test.sh starts a local server and sets it); without it
    the PostgreSQL variant is skipped, or fails when PCS_REQUIRE_POSTGRES=1 (CI).
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'central.db'}"
        return
    if not databases.POSTGRES_URL:
        if os.environ.get("PCS_REQUIRE_POSTGRES") == "1":
            pytest.fail("PCS_TEST_POSTGRES_URL is not set but PCS_REQUIRE_POSTGRES=1")
        pytest.skip("PCS_TEST_POSTGRES_URL not set (./test.sh sets up a local PostgreSQL)")
    name = f"pcs_test_{uuid.uuid4().hex[:12]}"
    url = databases.create_postgres_database(name)
    try:
        yield url
    finally:
        databases.drop_postgres_database(name)


# ----------------------------------------------------------------------------- loopback multicast (mDNS tests)
@pytest.fixture(scope="session")
def loopback_multicast(tmp_path_factory):
    """Multicast works on 127.0.0.1 (enabled here as root when it does not by default).

    Safe with pytest-xdist: the workers count their users in a shared, locked file; the first one
    enables multicast, the last one to finish undoes what was changed.
    """
    with shared_state(tmp_path_factory, "loopback-multicast") as state:
        if not state.get("users"):
            state["undo"], state["skip"] = [], None
            if not multicast_round_trip():
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
                        if multicast_round_trip():
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
        with shared_state(tmp_path_factory, "loopback-multicast") as state:
            state["users"] -= 1
            if state["users"] == 0:
                for cmd in reversed(state.get("undo", [])):
                    subprocess.run(cmd, capture_output=True, check=False)
                state["undo"] = []



@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium (Playwright) for one test module; skips without Playwright or Chromium."""
    from tests.support.browser import CHROMIUM, sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def ffmpeg_available() -> None:
    """Fail (not skip) when ffmpeg is missing: the RTSP tests are the point of the suite."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required for the RTSP tests (apt-get install ffmpeg; .ci/run installs it)")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``test-artifacts/`` of the checkout: recordings and screenshots kept for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS



# ----------------------------------------------------------------------------- fake picamera2
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
@pytest.fixture()
def central_server(database_url):
    """A started in-thread :class:`CentralServer` on a fresh database (SQLite and PostgreSQL)."""
    server = CentralServer(database_url).start()
    yield server
    server.stop()



@pytest.fixture()
def make_central_server(database_url, tmp_path):
    """Factory of started in-thread :class:`CentralServer` s on this test's database, stopped after the test.

    ``make_central_server(**overrides)`` (central Settings fields; ``data_dir`` defaults to
    ``tmp_path / "data"``) returns a server whose first admin exists (``server.admin``: an access token)
    and with one paired camera "Porch" (``server.camera``: its device credentials); ``ready=False`` skips
    both.
    """
    started: list[CentralServer] = []

    def start(*, ready: bool = True, **overrides: object) -> CentralServer:
        overrides = {"data_dir": tmp_path / "data", **overrides}
        srv = start_ready_server(database_url, **overrides) if ready else CentralServer(database_url, **overrides).start()
        started.append(srv)
        return srv

    yield start
    for srv in reversed(started):
        srv.stop()


# ----------------------------------------------------------------------------- MQTT
@pytest.fixture()
def broker(tmp_path):
    """A :class:`Broker` (real mosquitto on a free port) for one test, not started yet; stopped after."""
    if not Path(MOSQUITTO).exists():
        pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
    b = Broker(tmp_path)
    yield b
    b.stop()


@pytest.fixture()
def subscribers():
    """Factory ``subscribers(port, *topics)`` of real paho :class:`Subscriber` s, closed after the test."""
    made: list[Subscriber] = []

    def make(port: int, *topics: str) -> Subscriber:
        made.append(Subscriber(port, topics) if topics else Subscriber(port))
        return made[-1]

    yield make
    for sub in made:
        sub.close()
