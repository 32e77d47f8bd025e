"""Service benchmark: API latency, detection cost, streaming CPU against the ffmpeg CLI, and RSS.

Runs, in one script and side by side on the same machine:

1. the real service on the bundled sample at 1280x720@30 with detection, publishing to an ffmpeg
   RTSP receiver: ``/v1/detection/latest`` and ``/v1/camera/snapshot`` latency (p50/p95), RSS;
2. the service at 640x480 with detection: ms per analysed frame and analysed fps;
3. CPU% of the service streaming 1280x720@30 without detection, next to the ``ffmpeg`` CLI
   decoding, scaling, encoding with the same x264 options and publishing the same input.

Usage: ``.venv/bin/python bench/bench_service.py [--seconds 20] [--markdown docs/performance.md]``.
Not a test: figures depend on the machine; ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
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

from pi_camera_service.streaming import EncoderSettings  # noqa: E402
from tests.conftest import SAMPLE, RtspReceiver, ServiceProcess, free_port  # noqa: E402

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


def start_service(tmp: Path, width: int, height: int, detection: bool, rtsp_port: int) -> ServiceProcess:
    env = {
        "CAMERA_SOURCE": str(SAMPLE),
        "CAMERA_WIDTH": str(width),
        "CAMERA_HEIGHT": str(height),
        "CAMERA_FRAMERATE": "30",
        "CAMERA_BITRATE": "2000000",
        "CAMERA_RTSP_URL": f"rtsp://127.0.0.1:{rtsp_port}/cam",
        "CAMERA_HOST": "127.0.0.1",
        "CAMERA_PORT": str(free_port()),
        "CAMERA_API_KEY": API_KEY,
        "CAMERA_STATE_DIR": str(tmp / "state"),
        "CAMERA_DETECTION_ENABLED": "true" if detection else "false",
        "CAMERA_LOG_LEVEL": "WARNING",
    }
    tmp.mkdir(parents=True, exist_ok=True)
    return ServiceProcess(env, tmp / f"service-{width}x{height}-{detection}.log").start()


@contextmanager
def running_service(tmp: Path, width: int, height: int, detection: bool) -> Iterator[tuple[ServiceProcess, httpx.Client]]:
    """A service publishing to its own ffmpeg receiver; yields it with an authenticated client once streaming."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    rx = RtspReceiver(port, tmp / f"rx-{width}x{height}-{detection}.mkv").start()
    svc = start_service(tmp, width, height, detection, port)
    try:
        with httpx.Client(base_url=svc.base, headers={"X-API-Key": API_KEY}, timeout=30) as client:
            wait_streaming(client)
            yield svc, client
    finally:
        svc.stop()
        rx.stop()


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20, help="CPU sampling window, s")
    ap.add_argument("--markdown", type=Path, help="write the results table to this file")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pi-camera-bench-"))
    rows: list[tuple[str, str, str]] = []

    # 1. 1280x720 with detection: latencies and memory
    with running_service(tmp, 1280, 720, True) as (svc, c):
        deadline = time.monotonic() + 30
        while c.get("/v1/detection/latest").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        lat = latency(c, "/v1/detection/latest", 300)
        snap = latency(c, "/v1/camera/snapshot", 60)
        rss, pss = memory(svc.proc.pid)
        cpu_det720 = cpu_percent([svc.proc.pid], args.seconds)
        det720 = c.get("/v1/detection/status").json()
        fps720 = c.get("/v1/streaming/status").json()["fps"]
    rows += [
        ("`/v1/detection/latest` latency p50 / p95 (1280x720)", f"{percentile(lat, 50):.2f} / {percentile(lat, 95):.2f} ms", "p50 ≤ 5 ms"),
        ("`/v1/camera/snapshot` latency p50 / p95 (1280x720)", f"{percentile(snap, 50):.1f} / {percentile(snap, 95):.1f} ms", "p50 ≤ 60 ms"),
        ("RSS of the service process, streaming 1280x720@30, detection loaded", f"{rss:.0f} MB", "≤ 200 MB"),
        ("PSS of the service + its face-encoder worker (shared pages counted once)", f"{pss:.0f} MB", "≤ 200 MB"),
        ("CPU, streaming 1280x720@30 with detection", f"{cpu_det720:.0f} % of one core (stream {fps720:.1f} fps, analysed {det720['analysed_fps']:.1f} fps)", ""),
    ]

    # 2. 640x480 with detection: analysis cost, sampled through the run
    with running_service(tmp, 640, 480, True) as (svc, c):
        samples = []
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            ms = c.get("/v1/detection/status").json()["last_analysis_ms"]
            if ms is not None:
                samples.append(ms)
            time.sleep(0.5)
        det = c.get("/v1/detection/status").json()
    rows += [
        ("detection ms per analysed frame (640x480 main, 320x240 analysis), median", f"{statistics.median(samples):.1f} ms", ""),
        ("analysed fps (CAMERA_DETECTION_FPS=5)", f"{det['analysed_fps']:.2f}", "5"),
    ]

    # 3. streaming CPU: service (no detection) vs ffmpeg CLI, same input, same settings
    with running_service(tmp, 1280, 720, False) as (svc, c):
        time.sleep(2)
        cpu_svc = cpu_percent([svc.proc.pid], args.seconds)
        fps_svc = c.get("/v1/streaming/status").json()["fps"]
    port = free_port()
    rx = RtspReceiver(port, tmp / "rx4.mkv")
    rx.start()
    ff = ffmpeg_cli(port, 1280, 720)
    try:
        time.sleep(3)
        cpu_ff = cpu_percent([ff.pid], args.seconds)
    finally:
        ff.terminate()
        ff.wait()
        rx.stop()
    rows += [
        ("CPU, service streaming 1280x720@30 (detection off)", f"{cpu_svc:.0f} % of one core ({fps_svc:.1f} fps)", ""),
        ("CPU, ffmpeg CLI, same input and x264 settings", f"{cpu_ff:.0f} % of one core", ""),
        ("service / ffmpeg CLI CPU ratio", f"{cpu_svc / cpu_ff:.2f}", "≤ 1.3"),
    ]

    header = (
        f"Machine: {platform.machine()}, {psutil.cpu_count()} cores, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d')}\n\n| measure | result | target |\n| --- | --- | --- |\n"
    )
    table = header + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
