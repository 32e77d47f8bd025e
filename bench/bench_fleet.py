"""Fleet load test: hundreds of simulated cameras against 1 and then several central-server processes on
one PostgreSQL database, over loopback only, bounded in time and traffic.

Each simulated camera speaks the device-facing HTTP API as a camera does, from its own loopback source
address (127.10.x.y, so per-address pairing limits see 500 clients, as on a LAN):

1. **Pairing**, for real: ``POST /v1/pairing/requests`` (with a pairing key), then the camera long-polls
   ``GET /v1/pairing/requests/{id}?wait=`` on *its* server process while the admin enters the code on
   *another* process (``POST /v1/cameras/pair``, at most 6 at once: an admin's pairings in flight count
   against its budget of refused codes, 10 per 15 min, and a process waits only for the checks in flight
   in itself, not in the others); the time from the admin's answer to the camera's
   credentials is the pairing wake-up latency (with one process, the same process).
2. **Steady traffic** for ``--duration`` s: a heartbeat every ``--heartbeat`` s (the default interval,
   30 s; random phase); bursts of ``--burst`` face events (Poisson, mean gap ``--burst-gap`` s), each
   with one real-statistics 128-d encoding and a real 4 KB face crop; a 1280x720 JPEG photo upload
   (Poisson, mean gap ``--photo-gap`` s). Half of the faces belong to ``--people`` enrolled people,
   the rest to strangers (some of whom come back, forming unknown groups). Failed requests are retried
   with the same item ids, as the camera's outbox does; every non-200 answer counts as an error.
3. **Saturation** for ``--saturate`` s: every camera sends batches of 20 events back to back: the
   ingest throughput the server processes reach (events stored / s).
4. **Exactly once**: every item id the servers acknowledged is looked up in the database: stored once
   (``ingested_items``, ``face_observations``, ``photos``), none lost, none duplicated.

Camera *i* talks to process ``i % P`` (a static spread, like DNS round robin). CPU (user+system, % of one
core) and peak RSS of each server process come from ``/proc``. The client runs in this process (one
asyncio loop) and shares the machine's cores with the servers and PostgreSQL, which the report notes.

Encodings: identity centres are drawn per dimension from the mean and standard deviation (plus 0.02)
of real encodings (scikit-image's astronaut and matplotlib's Grace Hopper, plain and mirrored),
and each face is its identity's centre plus N(0, 0.025) per dimension, which puts same-person distances
near 0.4 and different-person distances near 0.8-1.0, the ranges dlib reports for its model
(http://dlib.net/face_recognition.py.html: "< 0.6 ... same person").

Needs ``PCS_TEST_POSTGRES_URL`` (``. scripts/postgres-for-tests.sh``): a scratch database is created
next to it and dropped afterwards.

Usage: ``python bench/bench_fleet.py [--cameras 500] [--processes 1,3] [--duration 90] [--saturate 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import load_line  # noqa: E402
from pcs_common.backoff import Backoff  # noqa: E402

ADMIN, PASSWORD = "fleet-admin", "fleet admin password 1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------ data
def real_encodings() -> np.ndarray:
    """``(N, 128)`` float64: encodings of real faces (scikit-image's astronaut and matplotlib's Grace
    Hopper sample, plain and mirrored) by the central server's own encoder
    (:func:`central.people.encode_faces`, dlib's ResNet model)."""
    import matplotlib.cbook
    from skimage import data as skdata

    from central.people import encode_faces

    images = [cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR),
              cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))]
    out = []
    for bgr in images:
        for variant in (bgr, bgr[:, ::-1]):
            encodings, _ = encode_faces(cv2.imencode(".jpg", np.ascontiguousarray(variant))[1].tobytes())
            out += list(encodings)
    if len(out) < 2:
        raise SystemExit("could not compute real encodings (fewer than 2 faces found)")
    return np.array(out)


@dataclass
class Faces:
    """Identity centres (enrolled people first, then strangers) and per-face sampling."""

    centres: np.ndarray
    people: int
    rng: np.random.Generator
    noise: float = 0.025

    @classmethod
    def make(cls, real: np.ndarray, people: int, strangers: int, seed: int = 3) -> Faces:
        rng = np.random.default_rng(seed)
        mean, std = real.mean(axis=0), real.std(axis=0) + 0.02
        return cls(rng.normal(mean, std, size=(people + strangers, 128)), people, rng)

    def face(self) -> list[float]:
        """A new face: half of an enrolled person, half of a stranger."""
        if self.rng.random() < 0.5:
            who = int(self.rng.integers(self.people))
        else:
            who = self.people + int(self.rng.integers(len(self.centres) - self.people))
        return (self.centres[who] + self.rng.normal(0, self.noise, 128)).tolist()


def media() -> tuple[bytes, bytes]:
    """``(crop_jpeg, photo_jpeg)``: a ~4 KB face crop of the astronaut and a 1280x720 frame."""
    from skimage import data as skdata

    bgr = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    crop = cv2.imencode(".jpg", bgr[40:220, 130:310], [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
    photo = cv2.imencode(".jpg", cv2.resize(bgr, (1280, 720)), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
    return crop, photo


# ------------------------------------------------------------------------------------------ servers
def note(text: str) -> None:
    """A progress line on stderr."""
    print(time.strftime("%H:%M:%S ") + text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One ``python -m central`` process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("CENTRAL_") and k != "DATABASE_URL"}
        self.env = {**base_env, **env, "CENTRAL_PORT": str(self.port), "CENTRAL_HOST": "127.0.0.1"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.rss_peak_kb = 0

    def start(self) -> Server:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "central"], env=self.env, cwd=str(self.log_path.parent),
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"central exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"central on {self.base} did not start:\n{self.log_path.read_text()[-3000:]}")

    def cpu_s(self) -> float:
        """User + system CPU time of the process, s (``/proc/<pid>/stat`` fields 14-15)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def sample_rss(self) -> None:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                self.rss_peak_kb = max(self.rss_peak_kb, int(line.split()[1]))

    def bootstrap_password(self) -> str:
        found = re.findall(r"bootstrap password: (\S+)", self.log_path.read_text(errors="replace"))
        if not found:
            raise SystemExit("no bootstrap password in the central log")
        return found[-1]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# ------------------------------------------------------------------------------------------ cameras
@dataclass
class Stats:
    """Latencies (ms) by kind, errors by kind and what the servers acknowledged."""

    latency: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    acked_events: set[tuple[str, str]] = field(default_factory=set)
    acked_photos: set[tuple[str, str]] = field(default_factory=set)
    events_stored: int = 0
    first_error: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, ms: float) -> None:
        self.latency.setdefault(kind, []).append(ms)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


@dataclass
class Camera:
    index: int
    base: str
    admin_base: str
    client: httpx.AsyncClient
    hardware_id: str = field(default_factory=lambda: secrets.token_hex(16))
    pairing_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    device_id: str = ""
    device_secret: str = ""


def source_address(i: int) -> str:
    return f"127.10.{i // 250}.{i % 250 + 1}"


async def timed(stats: Stats, kind: str, call, ok=(200,)) -> httpx.Response | None:
    """Run ``call()`` (an awaitable factory), record its latency under ``kind``; None on a transport error."""
    start = time.perf_counter()
    try:
        response = await call()
    except httpx.HTTPError as exc:
        stats.error(f"{kind} {type(exc).__name__}")
        if stats.first_error.get(kind) is None:
            stats.first_error[kind] = f"{type(exc).__name__}: {exc}"[:300]
        return None
    stats.add(kind, (time.perf_counter() - start) * 1000)
    if response.status_code not in ok:
        stats.error(f"{kind} {response.status_code}")
        if stats.first_error.get(kind) is None:
            stats.first_error[kind] = f"{response.status_code} {response.text[:300]}"
    return response


async def pair(cam: Camera, admin: dict[str, str], stats: Stats, wait_s: float, admin_gate: asyncio.Semaphore) -> None:
    """Real pairing: ask for a code on the camera's process, long-poll there, the admin pairs on another.

    Raises:
        RuntimeError: the camera could not be paired in 5 attempts.
    """
    body = {"hardware_id": cam.hardware_id, "pairing_key": cam.pairing_key, "name": f"cam-{cam.index:03d}",
            "version": "bench", "api_url": f"http://{source_address(cam.index)}:8000"}
    for attempt in range(5):
        if attempt:
            await asyncio.sleep(1 + attempt)
        r = await timed(stats, "pairing request", lambda: cam.client.post(cam.base + "/v1/pairing/requests", json=body),
                        ok=(201,))
        if r is None or r.status_code != 201:
            continue
        issued = r.json()
        poll_url = f"{cam.base}/v1/pairing/requests/{issued['request_id']}"
        poll_auth = {"Authorization": f"Bearer {issued['poll_token']}"}
        poll = asyncio.create_task(cam.client.get(poll_url, params={"wait": wait_s}, headers=poll_auth,
                                                  timeout=wait_s + 30))
        await asyncio.sleep(0.05)  # the long poll is waiting on the camera's process
        async with admin_gate:  # one admin's pairings in flight count against its refused-code budget
            r = await timed(stats, "admin pair", lambda: cam.client.post(
                cam.admin_base + "/v1/cameras/pair", json={"code": issued["code"], "name": f"cam-{cam.index:03d}"},
                headers=admin, timeout=60), ok=(201,))
        paired_at = time.perf_counter()
        if r is None or r.status_code != 201:
            poll.cancel()
            continue
        try:
            answer = await poll
            for _ in range(3):  # the long poll ended before the pairing landed: poll again
                if answer.status_code == 200 and answer.json().get("status") == "paired":
                    break
                answer = await cam.client.get(poll_url, params={"wait": wait_s}, headers=poll_auth,
                                              timeout=wait_s + 30)
        except httpx.HTTPError:
            stats.error("pairing poll")
            continue
        if answer.status_code == 200 and answer.json().get("status") == "paired":
            stats.add("pairing wake-up", (time.perf_counter() - paired_at) * 1000)
            creds = answer.json()
            cam.device_id, cam.device_secret = creds["device_id"], creds["device_secret"]
            return
        stats.error("pairing poll")
    raise RuntimeError(f"camera {cam.index} could not be paired: {stats.first_error}")


def event_item(faces: Faces, crop_b64: str) -> dict:
    return {
        "item_id": uuid.uuid4().hex, "type": "face_event",
        "captured_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "track_id": uuid.uuid4().hex[:8], "event": "appeared",
        "faces": [{"box": [100, 80, 120, 120], "encoding": faces.face(), "crop_jpeg": crop_b64}],
        "profiles": [],
    }


async def send_events(cam: Camera, items: list[dict], stats: Stats, kind: str = "ingest") -> None:
    """POST the batch, retrying (same item ids) until every item is stored or a duplicate."""
    auth = (cam.device_id, cam.device_secret)
    payload = json.dumps({"items": items})
    backoff = Backoff(0.5, 8.0)  # the camera outbox's policy, shorter
    for _ in range(6):
        r = await timed(stats, kind, lambda: cam.client.post(
            cam.base + "/v1/ingest/events", content=payload, auth=auth,
            headers={"content-type": "application/json"}, timeout=60))
        if r is not None and r.status_code == 200:
            for res in r.json()["results"]:
                if res["status"] in ("stored", "duplicate"):
                    stats.acked_events.add((cam.device_id, res["item_id"]))
                    stats.events_stored += res["status"] == "stored"
                else:
                    stats.error(kind + " rejected")
            return
        await asyncio.sleep(backoff.next_delay())


async def send_photo(cam: Camera, photo: bytes, stats: Stats) -> None:
    item_id = uuid.uuid4().hex
    fields = {"item_id": item_id, "kind": "snapshot",
              "captured_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z", "metadata": "{}"}
    backoff = Backoff(0.5, 8.0)  # the camera outbox's policy, shorter
    for _ in range(6):
        r = await timed(stats, "photo", lambda: cam.client.post(
            cam.base + "/v1/ingest/photos", data=fields, files={"file": ("s.jpg", photo, "image/jpeg")},
            auth=(cam.device_id, cam.device_secret), timeout=60))
        if r is not None and r.status_code == 200:
            stats.acked_photos.add((cam.device_id, item_id))
            return
        await asyncio.sleep(backoff.next_delay())


async def heartbeat(cam: Camera, stats: Stats) -> None:
    body = {"status": {"version": "bench", "streaming": True, "detection_fps": 2.0, "temperature_c": 51.5,
                       "uptime_s": 1000}}
    await timed(stats, "heartbeat", lambda: cam.client.post(cam.base + "/v1/devices/heartbeat", json=body,
                                                             auth=(cam.device_id, cam.device_secret)))


async def steady(cam: Camera, args: argparse.Namespace, faces: Faces, crop_b64: str, photo: bytes,
                 stats: Stats, until: float) -> None:
    rng = random.Random(cam.index)
    next_hb = time.monotonic() + rng.uniform(0, args.heartbeat)
    next_burst = time.monotonic() + rng.expovariate(1 / args.burst_gap)
    next_photo = time.monotonic() + rng.expovariate(1 / args.photo_gap)
    while True:
        now = time.monotonic()
        wake = min(next_hb, next_burst, next_photo)
        if wake >= until:
            return
        await asyncio.sleep(max(0.0, wake - now))
        if wake == next_hb:
            await heartbeat(cam, stats)
            next_hb += args.heartbeat
        elif wake == next_burst:
            await send_events(cam, [event_item(faces, crop_b64) for _ in range(args.burst)], stats)
            next_burst += rng.expovariate(1 / args.burst_gap)
        else:
            await send_photo(cam, photo, stats)
            next_photo += rng.expovariate(1 / args.photo_gap)


async def saturate(cam: Camera, faces: Faces, crop_b64: str, stats: Stats, until: float) -> None:
    while time.monotonic() < until:
        await send_events(cam, [event_item(faces, crop_b64) for _ in range(20)], stats, "ingest (saturated)")


# ------------------------------------------------------------------------------------------ a run
def percentiles(values: list[float]) -> str:
    if not values:
        return "–"
    q = np.percentile(values, [50, 95, 99])
    return f"{q[0]:.0f} / {q[1]:.0f} / {q[2]:.0f}"


def seed_people(url: str, faces: Faces) -> None:
    """Enrol ``faces.people`` people, one encoding each (their identity centre), straight into the database
    before the servers start (they load their index at start-up)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from central.matching import encoding_to_bytes
    from central.models import Person, PersonEncoding

    engine = create_engine(url)
    with Session(engine) as db:
        for i in range(faces.people):
            person = Person(name=f"person {i:03d}")
            db.add(person)
            db.flush()
            db.add(PersonEncoding(person_id=person.id, encoding=encoding_to_bytes(faces.centres[i]), source="photo"))
        db.commit()
    engine.dispose()


def verify(url: str, stats: Stats) -> dict[str, int]:
    """Lost / duplicated / unexpected items against what the servers acknowledged."""
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from central.models import FaceObservation, IngestedItem, Photo

    engine = create_engine(url)
    with Session(engine) as db:
        items = db.execute(select(IngestedItem.camera_id, IngestedItem.item_id, func.count())
                           .group_by(IngestedItem.camera_id, IngestedItem.item_id)).all()
        observations = db.execute(select(FaceObservation.camera_id, FaceObservation.item_id, func.count())
                                  .group_by(FaceObservation.camera_id, FaceObservation.item_id)).all()
        photos = db.execute(select(Photo.camera_id, Photo.item_id, func.count()).where(Photo.kind == "snapshot")
                            .group_by(Photo.camera_id, Photo.item_id)).all()
    engine.dispose()
    stored_items = {(c, i): n for c, i, n in items}
    stored_obs = {(c, i): n for c, i, n in observations}
    stored_photos = {(c, i): n for c, i, n in photos}
    events = stats.acked_events
    return {
        "events acknowledged": len(events),
        "events lost": sum(1 for k in events if k not in stored_items or k not in stored_obs),
        "events duplicated": sum(1 for k in events if stored_items.get(k, 0) > 1 or stored_obs.get(k, 0) > 1),
        "photos acknowledged": len(stats.acked_photos),
        "photos lost": sum(1 for k in stats.acked_photos if k not in stored_photos),
        "photos duplicated": sum(1 for k in stats.acked_photos if stored_photos.get(k, 0) > 1),
        "stored, never acknowledged": sum(1 for k in stored_obs if k not in events),
    }


async def sample_rss(servers: list[Server], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for s in servers:
            s.sample_rss()
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


async def run(processes: int, args: argparse.Namespace, faces_real: np.ndarray) -> dict:
    """One configuration: a scratch database, ``processes`` servers, pairing, steady, saturated, checks."""
    import sqlalchemy

    from central.db import upgrade

    pg = os.environ["PCS_TEST_POSTGRES_URL"]
    name = f"pcs_bench_fleet_{secrets.token_hex(4)}"
    admin_engine = sqlalchemy.create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    url = pg.rsplit("/", 1)[0] + "/" + name
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    servers: list[Server] = []
    stats = Stats()
    result: dict = {"processes": processes}
    try:
        upgrade(url)
        faces = Faces.make(faces_real, args.people, args.strangers)
        seed_people(url, faces)
        env = {"CENTRAL_DATABASE_URL": url, "CENTRAL_DATA_DIR": str(work / "data"), "CENTRAL_MDNS_ENABLED": "false",
               "CENTRAL_SECRET_KEY": secrets.token_urlsafe(48), "CENTRAL_HEARTBEAT_INTERVAL": str(args.heartbeat),
               "CENTRAL_MAX_PENDING_PAIRINGS": "1000"}
        servers.append(Server(env, work / "central-0.log").start())
        first = servers[0]
        with httpx.Client(base_url=first.base, timeout=60) as c:
            setup = c.post("/v1/setup", json={"password": first.bootstrap_password()}).json()["setup_token"]
            r = c.post("/v1/setup/admin", json={"username": ADMIN, "password": PASSWORD},
                       headers={"Authorization": f"Bearer {setup}"})
            assert r.status_code in (200, 201), r.text
            token = c.post("/v1/auth/token", data={"username": ADMIN, "password": PASSWORD}).json()["access_token"]
        note(f"{processes} process(es): first server up, admin created")
        for i in range(1, processes):
            servers.append(Server(env, work / f"central-{i}.log").start())
        admin = {"Authorization": f"Bearer {token}"}
        crop, photo = media()
        crop_b64 = base64.b64encode(crop).decode()
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=2)
        cameras = []
        for i in range(args.cameras):
            transport = httpx.AsyncHTTPTransport(local_address=source_address(i), limits=limits)
            client = httpx.AsyncClient(transport=transport, timeout=30)
            cameras.append(Camera(i, servers[i % processes].base, servers[(i + 1) % processes].base, client))

        # ---- pairing, 50 at a time
        t0 = time.perf_counter()
        gate, admin_gate = asyncio.Semaphore(50), asyncio.Semaphore(6)

        async def paired(cam: Camera) -> None:
            async with gate:
                await pair(cam, admin, stats, args.pair_wait, admin_gate)

        await asyncio.gather(*(paired(c) for c in cameras))
        result["pairing_s"] = time.perf_counter() - t0
        note(f"{processes} process(es): {args.cameras} cameras paired in {result['pairing_s']:.1f} s")

        # ---- steady traffic
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(servers, stop))
        cpu0 = [s.cpu_s() for s in servers]
        t0 = time.perf_counter()
        stored0 = stats.events_stored
        until = time.monotonic() + args.duration
        await asyncio.gather(*(steady(c, args, faces, crop_b64, photo, stats, until) for c in cameras))
        wall = time.perf_counter() - t0
        result["steady_events_per_s"] = (stats.events_stored - stored0) / wall
        result["steady_cpu"] = [(s.cpu_s() - c0) / wall * 100 for s, c0 in zip(servers, cpu0)]
        note(f"{processes} process(es): steady phase done, {result['steady_events_per_s']:.1f} events/s")

        # ---- saturation
        cpu0 = [s.cpu_s() for s in servers]
        t0 = time.perf_counter()
        stored0 = stats.events_stored
        until = time.monotonic() + args.saturate
        await asyncio.gather(*(saturate(c, faces, crop_b64, stats, until) for c in cameras[: args.saturating]))
        wall = time.perf_counter() - t0
        result["saturated_events_per_s"] = (stats.events_stored - stored0) / wall
        result["saturated_cpu"] = [(s.cpu_s() - c0) / wall * 100 for s, c0 in zip(servers, cpu0)]
        stop.set()
        await sampler
        result["rss_mb"] = [s.rss_peak_kb / 1024 for s in servers]
        for c in cameras:
            await c.client.aclose()
        result["stats"] = stats
        result["verify"] = verify(url, stats)
    finally:
        for s in servers:
            s.stop()
        with admin_engine.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()
    return result


def report(results: list[dict], args: argparse.Namespace) -> str:
    lines = [f"{args.cameras} cameras, heartbeat every {args.heartbeat} s, bursts of {args.burst} face events every "
             f"{args.burst_gap} s on average per camera, a photo every {args.photo_gap} s; steady {args.duration} s, "
             f"then {args.saturating} cameras sending batches of 20 back to back for {args.saturate} s.", ""]
    kinds = ["pairing request", "admin pair", "pairing wake-up", "heartbeat", "ingest", "photo", "ingest (saturated)"]
    head = "| | " + " | ".join(f"{r['processes']} process{'es' if r['processes'] > 1 else ''}" for r in results) + " |"
    lines += [head, "|---" * (len(results) + 1) + "|"]

    def row(label: str, cell) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in results) + " |")

    for kind in kinds:
        row(f"{kind}, p50 / p95 / p99 ms (n)", lambda r, k=kind: f"{percentiles(r['stats'].latency.get(k, []))} "
            f"({len(r['stats'].latency.get(k, []))})")
    row("errors (non-200 answers, transport errors)", lambda r: str(sum(r["stats"].errors.values()))
        + (f" {dict(sorted(r['stats'].errors.items()))}" if r["stats"].errors else ""))
    row("pairing all cameras, s", lambda r: f"{r['pairing_s']:.1f}")
    row("steady ingest, events/s", lambda r: f"{r['steady_events_per_s']:.1f}")
    row("saturated ingest, events/s", lambda r: f"{r['saturated_events_per_s']:.1f}")
    row("CPU per process, steady, % of a core", lambda r: " / ".join(f"{c:.0f}" for c in r["steady_cpu"]))
    row("CPU per process, saturated, % of a core", lambda r: " / ".join(f"{c:.0f}" for c in r["saturated_cpu"]))
    row("peak RSS per process, MiB", lambda r: " / ".join(f"{m:.0f}" for m in r["rss_mb"]))
    row("first error answer of each kind", lambda r: "; ".join(f"{k}: {v}" for k, v in r["stats"].first_error.items())
        or "none")
    for key in results[0]["verify"]:
        row(key, lambda r, k=key: str(r["verify"][k]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=500)
    parser.add_argument("--processes", default="1,3", help="comma-separated numbers of server processes")
    parser.add_argument("--duration", type=float, default=90, help="steady phase, s")
    parser.add_argument("--saturate", type=float, default=20, help="saturation phase, s")
    parser.add_argument("--saturating", type=int, default=100, help="cameras sending back to back when saturating")
    parser.add_argument("--heartbeat", type=int, default=30, help="heartbeat interval, s")
    parser.add_argument("--burst", type=int, default=3, help="face events per burst")
    parser.add_argument("--burst-gap", type=float, default=30, help="mean time between a camera's bursts, s")
    parser.add_argument("--photo-gap", type=float, default=120, help="mean time between a camera's photos, s")
    parser.add_argument("--people", type=int, default=200, help="enrolled people")
    parser.add_argument("--strangers", type=int, default=2000, help="distinct strangers")
    parser.add_argument("--pair-wait", type=float, default=10, help="long-poll wait of the pairing poll, s")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # 500 cameras' sockets, here and in the servers
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    if not os.environ.get("PCS_TEST_POSTGRES_URL"):
        raise SystemExit("set PCS_TEST_POSTGRES_URL (. scripts/postgres-for-tests.sh)")
    print(load_line(), flush=True)
    real = real_encodings()
    note(f"{len(real)} real encodings computed")
    results = []
    for p in (int(x) for x in args.processes.split(",")):
        results.append(asyncio.run(run(p, args, real)))
        print(f"{p} process(es) done; {load_line()}", flush=True)
    print()
    print(report(results, args))
    print()
    print(load_line())


if __name__ == "__main__":
    main()
