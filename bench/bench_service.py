"""Service benchmark: API latency, detection cost, streaming CPU against the ffmpeg CLI, and memory.

Every service run uses the default configuration (1280x720@30, 2 Mbit/s, detection at 5 fps on a
320-px analysis frame, stills on) on the bundled sample, with its traffic kept on loopback: the API
on 127.0.0.1 and the mDNS advertisement on 127.0.0.1 only (``CAMERA_MDNS_INTERFACES``). It publishes
to an ffmpeg RTSP receiver on 127.0.0.1.

1. The default service: ``/v1/detection/latest`` and ``/v1/camera/snapshot`` latency (p50/p95), RSS and
   PSS, CPU, and the ms per analysed frame (``last_analysis_ms`` sampled through the CPU window).
2. Streaming CPU, ``--rounds`` interleaved rounds (A B A B ...): the service with detection off
   (``CAMERA_DETECTION_ENABLED=false``, the only change) against the ``ffmpeg`` CLI decoding, scaling,
   encoding with the same x264 options and publishing the same input; median and spread.
3. ``MALLOC_ARENA_MAX`` unset against ``2`` (as ``pi-camera-service.service`` sets it), ``--arena-rounds``
   interleaved rounds of the default service: RSS and PSS after warm-up.

The load average is printed before and after (and written with the table).

Usage: ``.venv/bin/python bench/bench_service.py [--seconds 15] [--rounds 3] [--arena-rounds 2]
[--markdown FILE]``. Not a test: figures depend on the machine; ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import LOOPBACK_ENV, interleave, load_line, spread  # noqa: E402
from pi_camera_service.config import Settings  # noqa: E402
from pi_camera_service.streaming import EncoderSettings  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.paths import SAMPLE  # noqa: E402
from tests.support.processes import ServiceProcess  # noqa: E402
from tests.support.rtsp import RtspReceiver  # noqa: E402

API_KEY = "bench-key-0123456789abcdef0123"


def percentile(values: list[float], q: float) -> float:
    """q-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def cpu_percent(pids: list[int], seconds: float) -> float:
    """CPU use of the processes (and their children) over ``seconds`` s, % of one core."""
    procs = []
    for pid in pids:
        p = psutil.Process(pid)
        procs += [p, *p.children(recursive=True)]

    def total() -> float:
        t = 0.0
        for p in procs:
            try:
                c = p.cpu_times()
                t += c.user + c.system
            except psutil.NoSuchProcess:
                pass
        return t

    t0, c0 = time.monotonic(), total()
    time.sleep(seconds)
    return 100 * (total() - c0) / (time.monotonic() - t0)


def start_service(tmp: Path, rtsp_port: int, name: str, **overrides: str) -> ServiceProcess:
    """The service on the sample with the default configuration except ``overrides`` (CAMERA_* names),
    publishing to ``rtsp_port`` on 127.0.0.1, its traffic on loopback."""
    env = {
        "CAMERA_SOURCE": str(SAMPLE),
        "CAMERA_RTSP_URL": f"rtsp://127.0.0.1:{rtsp_port}/cam",
        "CAMERA_PORT": str(free_port()),
        "CAMERA_API_KEY": API_KEY,
        "CAMERA_STATE_DIR": str(tmp / "state"),
        "CAMERA_STILLS_DIR": str(tmp / "stills"),
        "CAMERA_LOG_LEVEL": "WARNING",
        **LOOPBACK_ENV,
        **overrides,
    }
    tmp.mkdir(parents=True, exist_ok=True)
    return ServiceProcess(env, tmp / f"service-{name}.log").start()


@contextmanager
def running_service(tmp: Path, name: str, **overrides: str) -> Iterator[tuple[ServiceProcess, httpx.Client]]:
    """A service publishing to its own ffmpeg receiver; yields it with an authenticated client once streaming."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    rx = RtspReceiver(port, tmp / f"rx-{name}.mkv").start()
    svc = start_service(tmp, port, name, **overrides)
    try:
        with httpx.Client(base_url=svc.base, headers={"X-API-Key": API_KEY}, timeout=30) as client:
            wait_streaming(client)
            yield svc, client
    finally:
        svc.stop()
        rx.stop()


def wait_detection(client: httpx.Client, timeout: float = 60) -> None:
    """Until the first detection result is there (the models are loaded)."""
    deadline = time.monotonic() + timeout
    while client.get("/v1/detection/latest").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("no detection result within 60 s")
        time.sleep(0.2)


def memory(pid: int) -> tuple[float, float]:
    """(RSS of ``pid``, PSS of ``pid`` and its children), MB."""
    proc = psutil.Process(pid)
    rss = proc.memory_info().rss / 2**20
    pss = sum(p.memory_full_info().pss for p in [proc, *proc.children(recursive=True)]) / 2**20
    return rss, pss


def wait_streaming(client: httpx.Client, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/v1/streaming/status").json()["state"] == "streaming":
            return
        time.sleep(0.2)
    raise RuntimeError("service never reached state streaming")


def latency(client: httpx.Client, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path)
        out.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    return out


def ffmpeg_cli(rtsp_port: int, width: int, height: int) -> subprocess.Popen:
    """The baseline: ffmpeg reading the sample in real time, same scaling, same x264 options, same RTSP push."""
    enc = EncoderSettings(width, height, 30000 / 1001, 2_000_000)
    opts = enc.x264_options()
    gop = str(enc.gop_size)
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", str(SAMPLE),
         "-vf", f"scale={width}:{height}", "-pix_fmt", "yuv420p", "-c:v", "libx264",
         "-preset", opts["preset"], "-tune", opts["tune"], "-bf", opts["bf"], "-g", gop, "-keyint_min", gop,
         "-sc_threshold", opts["sc_threshold"], "-x264-params", opts["x264-params"],
         "-b:v", str(enc.bitrate), "-f", "rtsp", "-rtsp_transport", "tcp", f"rtsp://127.0.0.1:{rtsp_port}/cam"],
        stdout=subprocess.DEVNULL,
    )


def cpu_and_analysis(pid: int, client: httpx.Client, seconds: float) -> tuple[float, list[float]]:
    """CPU of ``pid`` and children over ``seconds`` s (% of one core), and ``last_analysis_ms`` sampled
    every 0.5 s meanwhile (each new analysis once)."""
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]

    def total() -> float:
        return sum(sum(p.cpu_times()[:2]) for p in procs if p.is_running())

    samples: list[float] = []
    seen = None
    t0, c0 = time.monotonic(), total()
    while time.monotonic() - t0 < seconds:
        det = client.get("/v1/detection/status").json()
        key = det.get("frames_analysed")
        if det.get("last_analysis_ms") is not None and key != seen:
            seen = key
            samples.append(det["last_analysis_ms"])
        time.sleep(0.5)
    return 100 * (total() - c0) / (time.monotonic() - t0), samples


def streaming_cpu_service(tmp: Path, seconds: float, rnd: list[int]) -> float:
    """One window: CPU of the service streaming, detection off (% of one core)."""
    rnd[0] += 1
    with running_service(tmp, f"nodet-{rnd[0]}", CAMERA_DETECTION_ENABLED="false") as (svc, _):
        time.sleep(2)
        return cpu_percent([svc.proc.pid], seconds)


def streaming_cpu_ffmpeg(tmp: Path, seconds: float, rnd: list[int]) -> float:
    """One window: CPU of the ffmpeg CLI doing the same (% of one core)."""
    port = free_port()
    rx = RtspReceiver(port, tmp / f"rx-ffmpeg-{rnd[0]}.mkv").start()
    ff = ffmpeg_cli(port, 1280, 720)
    try:
        time.sleep(3)
        return cpu_percent([ff.pid], seconds)
    finally:
        ff.terminate()
        ff.wait()
        rx.stop()


def memory_with_arena(tmp: Path, arena: str | None, rnd: list[int]) -> tuple[float, float]:
    """(RSS, PSS) MB of the default service after warm-up, with MALLOC_ARENA_MAX=``arena`` (None: unset)."""
    rnd[0] += 1
    saved = os.environ.pop("MALLOC_ARENA_MAX", None)
    if arena is not None:
        os.environ["MALLOC_ARENA_MAX"] = arena
    try:
        with running_service(tmp, f"arena-{arena}-{rnd[0]}") as (svc, c):
            wait_detection(c)
            time.sleep(10)
            return memory(svc.proc.pid)
    finally:
        os.environ.pop("MALLOC_ARENA_MAX", None)
        if saved is not None:
            os.environ["MALLOC_ARENA_MAX"] = saved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15, help="CPU sampling window, s")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of service vs ffmpeg CLI")
    ap.add_argument("--arena-rounds", type=int, default=2, help="interleaved rounds of MALLOC_ARENA_MAX unset vs 2 (0: skip)")
    ap.add_argument("--markdown", type=Path, help="write the results table to this file")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pi-camera-bench-"))
    rows: list[tuple[str, str, str]] = []
    load_before = load_line()
    print(load_before, flush=True)

    defaults = Settings(_env_file=None)
    sizes = "{}x{} main, {}x{}".format(defaults.width, defaults.height, *defaults.detection_size)
    # 1. the default service (1280x720@30, detection at 5 fps): latencies, memory, CPU, analysis cost
    with running_service(tmp, "default") as (svc, c):
        wait_detection(c)
        time.sleep(3)
        lat = latency(c, "/v1/detection/latest", 300)
        snap = latency(c, "/v1/camera/snapshot", 60)
        rss, pss = memory(svc.proc.pid)
        cpu_det, analysis = cpu_and_analysis(svc.proc.pid, c, args.seconds)
        det = c.get("/v1/detection/status").json()
        fps = c.get("/v1/streaming/status").json()["fps"]
    rows += [
        ("`/v1/detection/latest` latency p50 / p95", f"{percentile(lat, 50):.2f} / {percentile(lat, 95):.2f} ms", "p50 ≤ 5 ms"),
        ("`/v1/camera/snapshot` latency p50 / p95", f"{percentile(snap, 50):.1f} / {percentile(snap, 95):.1f} ms", "p50 ≤ 60 ms"),
        ("RSS of the service process, streaming, detection loaded", f"{rss:.0f} MB", "≤ 200 MB"),
        ("PSS of the service + its face-encoder worker (shared pages counted once)", f"{pss:.0f} MB", "≤ 200 MB"),
        ("CPU, streaming with detection", f"{cpu_det:.0f} % of one core (stream {fps:.1f} fps, analysed {det['analysed_fps']:.1f} fps)", ""),
        (f"detection ms per analysed frame ({sizes} analysis), median (min–max)",
         spread(analysis, unit=" ms") if analysis else "no sample", ""),
    ]

    # 2. streaming CPU: service (detection off) vs ffmpeg CLI, interleaved
    rnd = [0]
    cpu = interleave({
        "service": lambda: streaming_cpu_service(tmp, args.seconds, rnd),
        "ffmpeg": lambda: streaming_cpu_ffmpeg(tmp, args.seconds, rnd),
    }, args.rounds)
    ratios = [a / b for a, b in zip(cpu["service"], cpu["ffmpeg"])]
    rows += [
        ("CPU, service streaming (detection off)", spread(cpu["service"], "{:.0f}", " %") + " of one core", ""),
        ("CPU, ffmpeg CLI, same input and x264 settings", spread(cpu["ffmpeg"], "{:.0f}", " %") + " of one core", ""),
        ("service / ffmpeg CLI CPU ratio, per round", spread(ratios, "{:.2f}"), "≤ 1.3"),
    ]

    # 3. MALLOC_ARENA_MAX unset vs 2, interleaved
    if args.arena_rounds:
        arena = interleave({
            "unset": lambda: memory_with_arena(tmp, None, rnd),
            "2": lambda: memory_with_arena(tmp, "2", rnd),
        }, args.arena_rounds)
        for name, values in arena.items():
            rows.append((f"`MALLOC_ARENA_MAX` {name}: service RSS / service + worker PSS",
                         f"{spread([v[0] for v in values], '{:.0f}', ' MB')} / {spread([v[1] for v in values], '{:.0f}', ' MB')}", ""))
        saved = [u[1] - t[1] for u, t in zip(arena["unset"], arena["2"])]
        rows.append(("PSS saved by `MALLOC_ARENA_MAX=2`, per round", spread(saved, "{:.1f}", " MB"), ""))

    load_after = load_line()
    print(load_after)
    header = (
        f"Machine: {platform.machine()}, {psutil.cpu_count()} cores, Python {platform.python_version()}\n"
        f"Before: {load_before}; after: {load_after}\n\n| measure | result | target |\n| --- | --- | --- |\n"
    )
    table = header + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
