"""Hostile-LAN benchmark: the camera service inside a Pi Zero 2 W-like cgroup, flooded over loopback.

Starts the real service (``python -m pi_camera_service`` on the bundled sample) inside a cgroup v1
memory group limited like ``pi-camera-service.service`` (``MemoryMax=400M``; REFERENCE.md: cgroup v1
here, root needed) and, optionally, a cpu group with a CFS quota. Then, one after the other, each
phase bounded in time:

1. ``idle``: nothing but the /health probe (the baseline of the same run);
2. ``logins``: 40 concurrent wrong ``POST /v1/auth/token`` at a time, again and again;
3. ``bodies``: 8 authenticated clients streaming 50 MB chunked bodies at ``PATCH /v1/camera/controls``,
   8 unauthenticated ones, and 8 announcing ``Content-Length: 300000000``;
4. ``viewers``: 200 clients opening ``/v1/camera/mjpeg`` (100) and ``/v1/events/stream`` (100) and
   never reading, held past ``CAMERA_VIEWER_WRITE_TIMEOUT``.

Throughout, a probe asks ``GET /health`` every 0.2 s with a 1 s timeout. It reports per phase the
/health latency (median, max, failures), what the flood got (status counts), and for the whole run
the cgroup's peak memory (``memory.max_usage_in_bytes``), OOM kills and whether the service survived.

Usage (root): ``.venv/bin/python bench/bench_hostile.py [--phase-seconds 12] [--cpu-quota 0.5]``.
Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pi_camera_service.auth import hash_password  # noqa: E402
from tests.support.net import wait_until  # noqa: E402
from tests.support.processes import ServiceProcess, sample_camera_env  # noqa: E402

API_KEY = "bench-key-0123456789abcdef0123456789"
MEMORY_MAX = 400 * 2**20  # pi-camera-service.service: MemoryMax=400M
CG_MEM = Path("/sys/fs/cgroup/memory")
CG_CPU = Path("/sys/fs/cgroup/cpu")


class Cgroups:
    """A cgroup v1 memory group (limit) and, with ``cpu_quota`` > 0, a cpu group (CFS quota, cores)."""

    def __init__(self, memory_max: int, cpu_quota: float) -> None:
        name = f"pcs-hostile-{os.getpid()}"
        self.mem = CG_MEM / name
        self.cpu = CG_CPU / name if cpu_quota > 0 else None
        self.mem.mkdir()
        (self.mem / "memory.limit_in_bytes").write_text(str(memory_max))
        if self.cpu is not None:
            self.cpu.mkdir()
            (self.cpu / "cpu.cfs_period_us").write_text("100000")
            (self.cpu / "cpu.cfs_quota_us").write_text(str(int(100000 * cpu_quota)))

    def add(self, pid: int) -> None:
        (self.mem / "cgroup.procs").write_text(str(pid))
        if self.cpu is not None:
            (self.cpu / "cgroup.procs").write_text(str(pid))

    def peak(self) -> int:
        return int((self.mem / "memory.max_usage_in_bytes").read_text())

    def oom_kills(self) -> int:
        for line in (self.mem / "memory.oom_control").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def failcnt(self) -> int:
        return int((self.mem / "memory.failcnt").read_text())

    def remove(self) -> None:
        for group in (self.mem, self.cpu):
            if group is None or not group.exists():
                continue
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


class HealthProbe(threading.Thread):
    """``GET /health`` every 0.2 s, 1 s timeout; latencies (s, None = failed) recorded per phase."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.phase = "start"
        self.samples: dict[str, list[float | None]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=1.0) as client:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    ok = client.get(self.base + "/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.samples.setdefault(self.phase, []).append(time.perf_counter() - t0 if ok else None)
                self.stop.wait(0.2)


async def flood_logins(base: str, seconds: float, concurrency: int = 40) -> Counter:
    counts: Counter = Counter()
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        async def one() -> None:
            while time.monotonic() < deadline:
                try:
                    r = await client.post("/v1/auth/token", data={"username": "admin", "password": "wrong guess"})
                    counts[r.status_code] += 1
                except httpx.HTTPError as exc:
                    counts[type(exc).__name__] += 1

        await asyncio.gather(*(one() for _ in range(concurrency)))
    return counts


async def flood_bodies(base: str, seconds: float) -> Counter:
    counts: Counter = Counter()
    deadline = time.monotonic() + seconds

    async def chunks():
        yield b'{"brightness": "'
        for _ in range(800):  # 50 MB
            yield b"x" * 65536

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        async def streamed(headers: dict[str, str]) -> None:
            while time.monotonic() < deadline:
                try:
                    r = await client.patch("/v1/camera/controls", content=chunks(),
                                           headers={"content-type": "application/json", **headers})
                    counts[r.status_code] += 1
                except httpx.HTTPError as exc:
                    counts[type(exc).__name__] += 1

        async def declared() -> None:
            host, port = base.removeprefix("http://").split(":")
            while time.monotonic() < deadline:
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write((f"PATCH /v1/camera/controls HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
                              "Content-Type: application/json\r\nContent-Length: 300000000\r\n\r\n").encode())
                await writer.drain()
                line = await reader.readline()
                counts[int(line.split()[1]) if line else "closed"] += 1
                writer.close()

        await asyncio.gather(*(streamed({"X-API-Key": API_KEY}) for _ in range(8)),
                             *(streamed({}) for _ in range(8)), *(declared() for _ in range(8)))
    return counts


def stalled_viewers(port: int, n: int, seconds: float) -> Counter:
    """``n`` clients asking for the live views and never reading (small receive buffers)."""
    socks = []
    for i in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        path = "/v1/camera/mjpeg" if i % 2 == 0 else "/v1/events/stream"
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n\r\n".encode())
        socks.append(s)
    time.sleep(seconds)
    counts: Counter = Counter()
    for i, s in enumerate(socks):  # read only now: the status line, then whether the service closed it
        s.settimeout(0.3)
        kind = "mjpeg" if i % 2 == 0 else "sse"
        try:
            head = s.recv(64)
        except (socket.timeout, ConnectionResetError):
            head = b""
        status = head.split(b" ")[1].decode() if head.startswith(b"HTTP/") else "no answer"
        closed = False
        deadline = time.monotonic() + 2.0
        while status == "200" and time.monotonic() < deadline:
            try:
                if not s.recv(65536):
                    closed = True
                    break
            except ConnectionResetError:
                closed = True
                break
            except socket.timeout:
                break  # open and idle: still served (an SSE stream sends little)
        counts[f"{kind} {status}{' then dropped' if closed else ''}"] += 1
        s.close()
    return counts


def vm_hwm(pid: int) -> int:
    """Peak resident set of ``pid`` (``VmHWM`` of /proc/PID/status), bytes; 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def summary(samples: list[float | None]) -> tuple[str, str, int]:
    ok = [s for s in samples if s is not None]
    failed = len(samples) - len(ok)
    if not ok:
        return "-", "-", failed
    return f"{statistics.median(ok) * 1000:.1f}", f"{max(ok) * 1000:.0f}", failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-seconds", type=float, default=12.0)
    parser.add_argument("--cpu-quota", type=float, default=0.5, help="CFS quota in cores (0 = none)")
    parser.add_argument("--detection", action="store_true", help="run face detection too")
    parser.add_argument("--tree", type=Path, default=None,
                        help="run the service from this checkout instead (e.g. a worktree of an older commit)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (cgroup v1 groups under /sys/fs/cgroup)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    env = sample_camera_env(
        work, API_KEY, CAMERA_PASSWORD_HASH=hash_password("the real password"),
        CAMERA_DETECTION_ENABLED="true" if args.detection else "false", CAMERA_STILLS_ENABLED="false",
        CAMERA_OUTBOX_ENABLED="false", CAMERA_LOG_LEVEL="WARNING", MALLOC_ARENA_MAX="2",
    )
    if args.tree is not None:
        env["PYTHONPATH"] = str(args.tree.resolve())
    groups = Cgroups(MEMORY_MAX, args.cpu_quota)
    service = ServiceProcess(env, work / "service.log")
    rows = []
    try:
        service.start(wait=False)
        groups.add(service.proc.pid)
        wait_until(service._healthy, 60, 0.2, "service healthy")
        probe = HealthProbe(service.base)
        probe.start()
        phases = [
            ("idle", lambda: (time.sleep(args.phase_seconds / 3), Counter())[1]),
            ("logins: 40 concurrent wrong passwords", lambda: asyncio.run(flood_logins(service.base, args.phase_seconds))),
            ("bodies: 16 x 50 MB chunked + 8 x Content-Length 300 MB",
             lambda: asyncio.run(flood_bodies(service.base, args.phase_seconds))),
            ("viewers: 200 stalled (100 MJPEG, 100 SSE)", lambda: stalled_viewers(service.port, 200, args.phase_seconds + 3)),
        ]
        for name, run in phases:
            probe.phase = name
            t0 = time.monotonic()
            try:
                counts = run()
            except Exception as exc:  # noqa: BLE001 - e.g. the service was killed mid-flood
                counts = Counter({f"flood failed: {type(exc).__name__}": 1})
            rows.append((name, time.monotonic() - t0, counts))
        probe.phase = "after"
        time.sleep(2)
        probe.stop.set()
        probe.join(5)
        alive = service.proc.poll() is None
        hwm = sum(vm_hwm(p) for p in [service.proc.pid, *child_pids(service.proc.pid)])
        peak, kills, failcnt = groups.peak(), groups.oom_kills(), groups.failcnt()
    finally:
        service.stop()
        groups.remove()

    load = open("/proc/loadavg").read().split()[:3]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load {' '.join(load)}; {time.strftime('%Y-%m-%d')}")
    print(f"service code: {args.tree or ROOT}")
    print(f"cgroup: memory.limit_in_bytes {MEMORY_MAX // 2**20} MiB; cpu quota "
          f"{args.cpu_quota if args.cpu_quota > 0 else 'none'} core; detection {'on' if args.detection else 'off'}")
    print()
    print("| phase | s | /health median / max ms | /health failures (1 s timeout) | flood answers |")
    print("| --- | --- | --- | --- | --- |")
    for name, seconds, counts in rows:
        med, worst, failed = summary(probe.samples.get(name, []))
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))) or "-"
        print(f"| {name} | {seconds:.0f} | {med} / {worst} | {failed} of {len(probe.samples.get(name, []))} | {answers} |")
    print()
    print(f"service alive at the end: {alive}; peak RSS (VmHWM) of the service {hwm / 2**20:.0f} MiB; cgroup "
          f"peak memory incl. page cache {peak / 2**20:.0f} MiB of {MEMORY_MAX // 2**20} MiB; OOM kills {kills}; "
          f"limit hits (failcnt) {failcnt}")
    return 0 if alive and kills == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
