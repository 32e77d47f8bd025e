"""Two real central-server processes on one PostgreSQL database serve one fleet.

Each test talks HTTP over loopback to two ``python -m central`` processes (A and B, random ports, one
database) the way cameras and admins do: a pairing made on A wakes the camera long-polling B at once
(PostgreSQL ``LISTEN``/``NOTIFY``), enrolments, group naming, merges and deletions on A are used by B's
matching at its next request, login failures spread over A and B share one budget, a logout on A is
refused by B, two processes bootstrapping at once create one admin, and a viewer key sent to A signs
B's tickets. PostgreSQL only (PCS_TEST_POSTGRES_URL); SQLite is one process.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy

from central.notify import APPLICATION_NAME
from central.pairing import RECHECK_S
from pcs_common.viewer_ticket import TicketError, TicketVerifier, viewer_key
from tests.support.central_server import bearer
from tests.support.databases import (
    POSTGRES_URL,
    create_postgres_database as _postgres_database,
    drop_postgres_database as _drop_postgres_database,
)
from tests.support.net import free_port, wait_until
from tests.support.processes import CentralProcess

pytestmark = pytest.mark.e2e
ADMIN = ("alice", "correct horse battery")
WAKE_WITHIN_S = RECHECK_S / 2
"""A woken long poll must answer well before its own periodic re-check could have found the pairing."""


@contextlib.contextmanager
def empty_postgres_database():
    """A new, empty PostgreSQL database next to PCS_TEST_POSTGRES_URL's (dropped after); skips the
    test without PostgreSQL (fails with PCS_REQUIRE_POSTGRES=1)."""
    if not POSTGRES_URL:
        if os.environ.get("PCS_REQUIRE_POSTGRES") == "1":
            pytest.fail("PCS_TEST_POSTGRES_URL is not set but PCS_REQUIRE_POSTGRES=1")
        pytest.skip("PCS_TEST_POSTGRES_URL not set: several server processes need PostgreSQL")
    name = f"pcs_test_mp_{uuid.uuid4().hex[:12]}"
    url = _postgres_database(name)
    try:
        yield url
    finally:
        _drop_postgres_database(name)


@pytest.fixture(scope="module")
def pg_database():
    """The database of this module's two processes."""
    with empty_postgres_database() as url:
        yield url


def start_central(workdir: Path, database_url: str, name: str, **env: str) -> CentralProcess:
    """One real server process on a free port; its own data dir (media) and log under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    return CentralProcess({
        "CENTRAL_PORT": str(free_port()),
        "CENTRAL_HOST": "127.0.0.1",
        "CENTRAL_DATA_DIR": str(workdir / f"data-{name}"),
        "DATABASE_URL": database_url,
        "CENTRAL_MDNS_ENABLED": "false",
        "CENTRAL_LOG_LEVEL": "DEBUG",
        **env,
    }, workdir / f"central-{name}.log").start()


class Fleet:
    """Processes A and B on one database, an admin's login token, and clients for both."""

    def __init__(self, a: CentralProcess, b: CentralProcess, database_url: str) -> None:
        self.a, self.b, self.database_url = a, b, database_url
        self.ca = httpx.Client(base_url=a.base, timeout=60)
        self.cb = httpx.Client(base_url=b.base, timeout=60)
        setup = self.cb.post("/v1/setup", json={"password": newest_password(a, b)})
        assert setup.status_code == 200, setup.text
        created = self.ca.post("/v1/setup/admin", json={"username": ADMIN[0], "password": ADMIN[1]},
                               headers=bearer(setup.json()["setup_token"]))
        assert created.status_code == 201, created.text
        token = self.cb.post("/v1/auth/token", data={"username": ADMIN[0], "password": ADMIN[1]})
        self.auth = bearer(token.json()["access_token"])


def newest_password(*processes: CentralProcess) -> str:
    """The bootstrap password valid now: each start replaces the previous one, so the last started
    process's (the processes are started one after the other)."""
    return processes[-1].bootstrap_password()


@pytest.fixture(scope="module")
def fleet(pg_database, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fleet")
    a = start_central(workdir, pg_database, "a")
    b = start_central(workdir, pg_database, "b")
    try:
        yield Fleet(a, b, pg_database)
    finally:
        a.stop()
        b.stop()


# ----------------------------------------------------------------------------- cameras, as HTTP clients


class Camera:
    """A simulated camera: pairing request, long poll, heartbeats and face events over HTTP."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.hardware_id = f"hw-{uuid.uuid4().hex[:16]}"
        self.device_id = ""
        self.secret = ""

    def request_code(self, client: httpx.Client) -> dict:
        r = client.post("/v1/pairing/requests", json={"hardware_id": self.hardware_id, "name": "sim",
                                                      "api_url": "http://127.0.0.1:9"})
        assert r.status_code == 201, r.text
        return r.json()

    def poll(self, client: httpx.Client, issued: dict, wait: float) -> dict:
        r = client.get(f"/v1/pairing/requests/{issued['request_id']}", params={"wait": wait},
                       headers=bearer(issued["poll_token"]), timeout=wait + 30)
        assert r.status_code == 200, r.text
        return r.json()

    def pair(self, poll_on: httpx.Client, pair_on: httpx.Client) -> "Camera":
        """Pair without waiting: code from ``poll_on``, paired on ``pair_on``, credentials collected."""
        issued = self.request_code(poll_on)
        r = pair_on.post("/v1/cameras/pair", json={"code": issued["code"], "name": f"cam {self.hardware_id}"},
                         headers=self.fleet.auth)
        assert r.status_code == 201, r.text
        creds = self.poll(poll_on, issued, 0)
        assert creds["status"] == "paired", creds
        self.device_id, self.secret = creds["device_id"], creds["device_secret"]
        return self

    @property
    def basic(self) -> tuple[str, str]:
        return (self.device_id, self.secret)

    def heartbeat(self, client: httpx.Client, **extra) -> dict:
        r = client.post("/v1/devices/heartbeat", auth=self.basic, json={
            "status": {"api_url": "http://127.0.0.1:9", "mjpeg_path": "/v1/camera/mjpeg"}, **extra})
        assert r.status_code == 200, r.text
        return r.json()

    def face(self, client: httpx.Client, encoding: np.ndarray) -> dict:
        """Send one face event with ``encoding``; returns the stored observation (person, group)."""
        item_id = uuid.uuid4().hex
        event = {"item_id": item_id, "type": "face_event", "captured_at": "2026-12-01T10:00:00Z",
                 "track_id": "t1", "event": "appeared",
                 "faces": [{"box": [10, 10, 80, 80], "encoding": [float(x) for x in encoding]}]}
        r = client.post("/v1/ingest/events", auth=self.basic, json={"items": [event]})
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["status"] == "stored", r.json()
        found = [o for o in self.fleet.ca.get("/v1/observations", params={"camera_id": self.device_id},
                                              headers=self.fleet.auth).json() if o["item_id"] == item_id]
        assert len(found) == 1, found
        return found[0]


def encodings(seed: int) -> tuple[np.ndarray, callable]:
    """A face: a 128-d encoding (norm ≈ 1.1, two faces ≈ 1.6 apart, like dlib's) and a function giving
    other photos of the same face (≈ 0.06 away, well within the 0.6 tolerance)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.1, 128)
    return base, lambda: base + rng.normal(0, 0.005, 128)


# ----------------------------------------------------------------------------- pairing


def park_poll_on_b(fleet: Fleet, camera: Camera) -> tuple[dict, threading.Thread, dict]:
    """Start the camera's 30 s long poll on B and return once B logged that it waits."""
    issued = camera.request_code(fleet.cb)
    answer: dict = {}

    def poll() -> None:
        answer["body"] = camera.poll(fleet.cb, issued, 30)
        answer["at"] = time.monotonic()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    line = f"pairing request {issued['request_id']}: long poll waiting"
    wait_until(lambda: line in fleet.b.log(), 20, 0.05, "B's long poll to wait")
    return issued, thread, answer


def pair_on_a_and_check_wake(fleet: Fleet, camera: Camera) -> None:
    issued, thread, answer = park_poll_on_b(fleet, camera)
    r = fleet.ca.post("/v1/cameras/pair", json={"code": issued["code"], "name": "woken"}, headers=fleet.auth)
    assert r.status_code == 201, r.text
    paired_at = time.monotonic()
    thread.join(WAKE_WITHIN_S)
    assert not thread.is_alive(), f"B's long poll was not woken within {WAKE_WITHIN_S} s of the pairing on A"
    assert answer["body"]["status"] == "paired" and answer["body"]["device_id"] == r.json()["id"]
    assert answer["at"] - paired_at < WAKE_WITHIN_S
    assert fleet.cb.post("/v1/devices/heartbeat", auth=(answer["body"]["device_id"], answer["body"]["device_secret"]),
                         json={"status": {}}).status_code == 200


def test_pairing_on_one_process_wakes_the_long_poll_on_the_other(fleet):
    pair_on_a_and_check_wake(fleet, Camera(fleet))


def listener_pids(database_url: str) -> set[int]:
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return set(conn.scalars(sqlalchemy.text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = :name AND datname = current_database()"),
                {"name": APPLICATION_NAME}))
    finally:
        engine.dispose()


def test_listeners_reconnect_after_their_postgresql_connections_are_killed(fleet):
    """PostgreSQL ending the listener sessions (as on a restart): both processes reconnect (back-off)
    and wake-ups work again."""
    before = listener_pids(fleet.database_url)
    assert len(before) == 2, before  # one listener per process
    engine = sqlalchemy.create_engine(fleet.database_url)
    with engine.connect() as conn:
        for pid in before:
            conn.execute(sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    engine.dispose()
    wait_until(lambda: len(listener_pids(fleet.database_url) - before) == 2, 30, 0.1, "both listeners back")
    wait_until(lambda: fleet.cb.get("/health").json()["notifications"] == "listening", 10, 0.05, "B listening")
    assert "reconnected to PostgreSQL" in fleet.b.log()
    pair_on_a_and_check_wake(fleet, Camera(fleet))


# ----------------------------------------------------------------------------- faces


def test_an_enrolment_and_a_group_naming_on_one_process_are_matched_by_the_other(fleet):
    camera = Camera(fleet).pair(fleet.ca, fleet.ca)
    xavier, xavier_again = encodings(1)
    zoe, zoe_again = encodings(2)
    first = camera.face(fleet.cb, xavier)  # B has loaded its index now
    assert first["person_id"] is None and first["unknown_group_id"]

    person = fleet.ca.post("/v1/people", json={"name": "Xavier"}, headers=fleet.auth).json()
    r = fleet.ca.post(f"/v1/people/{person['id']}/faces/from-observations", json={"observation_ids": [first["id"]]},
                      headers=fleet.auth)
    assert r.json()["results"][0]["status"] == "enrolled", r.text
    seen = camera.face(fleet.cb, xavier_again())
    assert seen["person_id"] == person["id"], "B matched with an index that lacks A's enrolment"

    group = camera.face(fleet.ca, zoe)["unknown_group_id"]
    named = fleet.ca.post(f"/v1/unknown-groups/{group}/assign", json={"name": "Zoe"}, headers=fleet.auth)
    assert named.status_code == 200, named.text
    zoe_id = named.json()["person"]["id"]
    assert camera.face(fleet.cb, zoe_again())["person_id"] == zoe_id


def test_a_merge_and_a_deletion_on_one_process_are_used_by_the_other(fleet):
    camera = Camera(fleet).pair(fleet.ca, fleet.ca)
    mia, mia_again = encodings(3)
    quinn, quinn_again = encodings(4)
    people = {}
    for name, enc in (("Mia", mia), ("Quinn", quinn)):
        obs = camera.face(fleet.ca, enc)
        people[name] = fleet.ca.post("/v1/people", json={"name": name}, headers=fleet.auth).json()["id"]
        fleet.ca.post(f"/v1/people/{people[name]}/faces/from-observations", json={"observation_ids": [obs["id"]]},
                      headers=fleet.auth).raise_for_status()
    assert camera.face(fleet.cb, quinn_again())["person_id"] == people["Quinn"]

    merged = fleet.ca.post(f"/v1/people/{people['Mia']}/merge", json={"other_id": people["Quinn"]}, headers=fleet.auth)
    assert merged.status_code == 200, merged.text
    assert camera.face(fleet.cb, quinn_again())["person_id"] == people["Mia"]

    assert fleet.ca.delete(f"/v1/people/{people['Mia']}", headers=fleet.auth).status_code == 200
    after = camera.face(fleet.cb, mia_again())
    assert after["person_id"] is None and after["unknown_group_id"], after


# ----------------------------------------------------------------------------- limits, sessions, bootstrap


def test_login_failures_on_both_processes_use_one_budget(fleet):
    user = f"guess-{uuid.uuid4().hex[:8]}"
    clients = [fleet.ca, fleet.cb] * 3
    codes = [c.post("/v1/auth/token", data={"username": user, "password": "wrong password 123"}).status_code
             for c in clients[:5]]
    assert codes == [401] * 5  # CENTRAL_LOGIN_FAILURES_PER_USER = 5 from this address, over A and B
    for client in (fleet.ca, fleet.cb):
        r = client.post("/v1/auth/token", data={"username": user, "password": "wrong password 123"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0, r.text


def test_a_logout_on_one_process_is_refused_by_the_other(fleet):
    login = fleet.ca.post("/v1/auth/session", data={"username": ADMIN[0], "password": ADMIN[1]})
    assert login.status_code == 200, login.text
    name, value = next(iter(login.cookies.items()))
    cookie = {"cookie": f"{name}={value}"}
    assert fleet.cb.get("/v1/auth/me", headers=cookie).status_code == 200
    out = fleet.ca.post("/v1/auth/logout", headers={**cookie, "X-CSRF-Token": login.json()["csrf_token"]})
    assert out.status_code == 204, out.text
    assert fleet.cb.get("/v1/auth/me", headers=cookie).status_code == 401
    assert fleet.ca.get("/v1/auth/me", headers=cookie).status_code == 401


@pytest.fixture()
def fresh_database():
    """Another empty PostgreSQL database (the module's fleet has its admin already)."""
    with empty_postgres_database() as url:
        yield url


def test_two_processes_bootstrapping_at_once_create_exactly_one_admin(fresh_database, tmp_path):
    """A fresh database: both processes accept the newest bootstrap password, and parallel first-admin
    requests on A and B create one admin; then bootstrap is closed on both."""
    pg_database = fresh_database
    a = start_central(tmp_path, pg_database, "boot-a")
    b = start_central(tmp_path, pg_database, "boot-b")
    try:
        password = newest_password(a, b)
        clients = [httpx.Client(base_url=p.base, timeout=60) for p in (a, b)]
        tokens = [c.post("/v1/setup", json={"password": password}) for c in clients]
        assert [t.status_code for t in tokens] == [200, 200], [t.text for t in tokens]

        def create(i: int) -> int:
            client, token = clients[i % 2], tokens[(i + 1) % 2].json()["setup_token"]
            return client.post("/v1/setup/admin", json={"username": f"admin{i}", "password": ADMIN[1]},
                               headers=bearer(token)).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(create, range(8)))
        assert codes.count(201) == 1, codes
        assert all(code in (403, 409, 401) for code in codes if code != 201), codes
        engine = sqlalchemy.create_engine(pg_database)
        with engine.connect() as conn:
            assert conn.scalar(sqlalchemy.text("SELECT count(*) FROM admins")) == 1
        engine.dispose()
        assert [c.post("/v1/setup", json={"password": password}).status_code for c in clients] == [409, 409]
    finally:
        a.stop()
        b.stop()


# ----------------------------------------------------------------------------- live view


def test_a_viewer_key_sent_to_one_process_signs_tickets_on_the_other(fleet):
    camera = Camera(fleet).pair(fleet.ca, fleet.ca)
    key = viewer_key(camera.secret)
    camera.heartbeat(fleet.ca)  # address and MJPEG path, no key yet
    missing = fleet.cb.post(f"/v1/cameras/{camera.device_id}/live-ticket", headers=fleet.auth)
    assert missing.status_code == 409 and missing.json()["error"] == "no_viewer_key"
    camera.heartbeat(fleet.ca, viewer_key=key)

    r = fleet.cb.post(f"/v1/cameras/{camera.device_id}/live-ticket", headers=fleet.auth)
    assert r.status_code == 200, r.text
    verifier = TicketVerifier()  # what the camera runs on GET /v1/camera/mjpeg?ticket=
    assert verifier.verify(r.json()["ticket"], camera.device_id, camera.secret)["scope"] == "mjpeg"
    with pytest.raises(TicketError, match="already used"):
        verifier.verify(r.json()["ticket"], camera.device_id, camera.secret)
    again = fleet.ca.post(f"/v1/cameras/{camera.device_id}/live-ticket", headers=fleet.auth).json()["ticket"]
    assert verifier.verify(again, camera.device_id, camera.secret)["jti"] != r.json()["ticket"]

    engine = sqlalchemy.create_engine(fleet.database_url)
    with engine.connect() as conn:
        sealed = conn.scalar(sqlalchemy.text("SELECT viewer_key_sealed FROM cameras WHERE id = :id"),
                             {"id": camera.device_id})
    engine.dispose()
    assert sealed and key not in sealed and key.encode() not in base64.urlsafe_b64decode(sealed)

    # unpairing on B forgets the key everywhere
    assert fleet.cb.delete(f"/v1/cameras/{camera.device_id}", headers=fleet.auth).status_code == 204
    assert fleet.ca.post(f"/v1/cameras/{camera.device_id}/live-ticket", headers=fleet.auth).status_code == 404


# ----------------------------------------------------------------------------- central-server --workers


def test_workers_share_the_port_migrate_and_print_the_bootstrap_password_once(fresh_database, tmp_path):
    """``CENTRAL_WORKERS=2``: the parent migrates and prints one bootstrap password, each worker has its
    own notification listener, and the password works whichever worker answers."""
    server = start_central(tmp_path, fresh_database, "workers", CENTRAL_WORKERS="2")
    try:
        wait_until(lambda: len(listener_pids(fresh_database)) == 2, 30, 0.1, "one listener per worker")
        assert server.log().count("bootstrap password:") == 1, server.log()
        client = httpx.Client(base_url=server.base, timeout=60)
        assert client.post("/v1/setup", json={"password": server.bootstrap_password()}).status_code == 200
        assert {client.get("/health").json()["notifications"] for _ in range(4)} == {"listening"}
    finally:
        server.stop()


def test_several_workers_on_sqlite_warn_at_start(tmp_path):
    server = start_central(tmp_path, f"sqlite:///{tmp_path / 'central.db'}", "sqlite-workers", CENTRAL_WORKERS="2")
    try:
        assert "2 workers on SQLite: SQLite is meant for one server process" in server.log()
        assert httpx.get(server.base + "/health", timeout=10).json()["notifications"] == "local"
    finally:
        server.stop()


# ----------------------------------------------------------------------------- building blocks (no server)


def test_a_sealed_viewer_key_opens_only_for_its_camera_and_signing_key():
    from central.models import Camera as CameraRow
    from central.viewer_keys import ViewerKeySeal

    seal = ViewerKeySeal("k" * 20 + uuid.uuid4().hex)
    key = viewer_key("a device secret")
    row = CameraRow(id="c" * 32)
    seal.remember(row, key)
    stored = row.viewer_key_sealed
    assert seal.key_of(row) == key and key not in stored
    seal.remember(row, key)
    assert row.viewer_key_sealed == stored  # the same key again: the column is not rewritten
    assert seal.unseal("d" * 32, stored) is None  # copied to another camera's row
    assert ViewerKeySeal("another signing key " + uuid.uuid4().hex).unseal(row.id, stored) is None
    assert seal.unseal(row.id, stored[:-4] + "AAAA") is None  # damaged
    assert seal.seal(row.id, key) != seal.seal(row.id, key)  # a fresh nonce per write


def test_a_wake_between_the_database_read_and_the_wait_is_not_lost():
    """The long poll watches for wake-ups before its first read: a pairing committed in between wakes it."""
    import asyncio
    import datetime as dt

    from central.pairing import PairingWaiters, wait_for_pairing

    far = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)

    async def scenario() -> tuple[object, float]:
        waiters = PairingWaiters()
        reads = []

        async def check():
            reads.append(1)
            if len(reads) == 1:
                waiters.wake("r1")  # the pairing lands right after the first read
                return None, far
            return {"status": "paired"}, far

        loop = asyncio.get_running_loop()
        start = loop.time()
        result, _ = await wait_for_pairing(waiters, "r1", check, 30)
        assert waiters.waiting() == 0
        return result, loop.time() - start

    result, took = asyncio.run(scenario())
    assert result == {"status": "paired"} and took < 1
