"""Pi Zero 2 W envelope: the service inside a cgroup with a calibrated CPU quota and the unit's memory limit.

For each configuration (software path: PyAV decode + libx264; Picamera2 path: the fake in
``tests/fakes/picamera2``, whose H264Encoder stands in for the VC4 hardware encoder and costs no CPU),
the real service runs at 640x480@30 with 320x240 analysis inside a cgroup v1 group
(``tests/support/cgroups.py``) with ``--cores`` of CPU and ``--memory-mb`` of memory (the unit's
``MemoryMax=400M``), and reports:

* analysed fps (``/v1/detection/status``) and the sampling rate the back-off settled on;
* capture-to-report latency: ``analysed_at - frame_timestamp`` of ``/v1/detection/latest`` (the
  sample has a face in every frame, so this is the time a new face needs to be reported, plus up
  to one sampling period);
* peak RSS of the service + its analysis worker (psutil) and the group's peak memory;
* ``/v1/detection/latest`` p50/p95 over real HTTP;
* RTSP frame gaps: ffprobe on an ffmpeg receiver's recording (software path), the service's own
  ``/v1/streaming/status`` (fake path, whose output does not leave the process).

Calibration (``--calibrate``): 7-Zip's single-thread benchmark (``7z b -mmt1``, R/U MIPS: rating per
100% of one core) here, against the published Pi Zero 2 W figure of 3027 MIPS on 4 threads at
1000 MHz (sbc-bench, ThomasKaiser/Knowledge ``articles/Quick_Review_of_RPi_Zero_2_W.md``).

Usage: ``sudo .venv/bin/python bench/bench_envelope.py [--cores 1.0] [--seconds 30] [--calibrate]``.
Root is needed for the cgroups; groups are removed at the end. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import cgroups  # noqa: E402
from tests.support.net import free_port, wait_until  # noqa: E402
from tests.support.paths import FAKES, SAMPLE  # noqa: E402
from tests.support.processes import ServiceProcess  # noqa: E402
from tests.support.rtsp import WarningReceiver, gaps, probe  # noqa: E402

API_KEY = "bench-envelope-key-0123456789abcdef"
#: sbc-bench 7-Zip MIPS of a Pi Zero 2 W, 4 threads at 1000 MHz (source in the module docstring)
ZERO2W_7ZIP_MIPS_4T = 3027


def calibrate(runs: int = 3) -> tuple[float, list[float]]:
    """(x86 cores equal to a Pi Zero 2 W's four A53 cores, 7-Zip R/U MIPS of each run here)."""
    values = []
    for _ in range(runs):
        out = subprocess.run(["7z", "b", "-mmt1"], capture_output=True, text=True, check=True).stdout
        tot = re.search(r"^Tot:\s+(\d+)\s+(\d+)\s+(\d+)", out, re.M)
        values.append(float(tot.group(2)))
    return ZERO2W_7ZIP_MIPS_4T / statistics.median(values), values


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def rss_mb(pid: int) -> float:
    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20
    except psutil.Error:
        return 0.0


def run(path: str, cores: float, memory_mb: int, seconds: float, period_us: int, workdir: Path,
        detector: str = "hog") -> dict:
    port = free_port()
    env = {
        "CAMERA_WIDTH": "640", "CAMERA_HEIGHT": "480", "CAMERA_FRAMERATE": "30", "CAMERA_DETECTION_WIDTH": "320",
        "CAMERA_BITRATE": "800000", "CAMERA_RTSP_URL": f"rtsp://127.0.0.1:{port}/cam", "CAMERA_HOST": "127.0.0.1",
        "CAMERA_PORT": str(free_port()), "CAMERA_API_KEY": API_KEY, "CAMERA_STATE_DIR": str(workdir / "state"),
        "CAMERA_STILLS_ENABLED": "false", "CAMERA_MDNS_ENABLED": "false",
        "CAMERA_ONVIF_DISCOVERY_ENABLED": "false", "CAMERA_FACE_DETECTOR": detector,
    }
    if path == "software":
        env["CAMERA_SOURCE"] = str(SAMPLE)
    else:
        env["CAMERA_SOURCE"] = "picamera2"
        env["PYTHONPATH"] = str(FAKES)
    out = workdir / "rec.mkv"
    result: dict = {"path": path}
    with cgroups.Cgroup(cpu_cores=cores, memory_bytes=memory_mb << 20, prefix="pcs-bench", period_us=period_us) as cg:
        rx = WarningReceiver(port, out) if path == "software" else None
        if rx is not None:
            rx.__enter__()
        svc = ServiceProcess(env, workdir / "svc.log")
        started = time.monotonic()
        svc.start(wait=False)
        cg.add(svc.proc.pid)
        try:
            wait_until(svc._healthy, 180, 0.2, "service")
            client = httpx.Client(base_url=svc.base, headers={"X-API-Key": API_KEY}, timeout=20)
            wait_until(lambda: client.get("/v1/streaming/status").json()["state"] == "streaming", 120, 0.2, "stream")
            # the fake sensor's picture has no face: there, wait for the first result only
            need = 1 if path == "software" else 0
            first = wait_until(lambda: (r := client.get("/v1/detection/latest")).status_code == 200 and r.json()
                               and r.json()["nb_faces"] >= need and r.json(), 300, 0.2, "a result")
            result["start_to_first_face_s"] = time.monotonic() - started
            end = time.monotonic() + seconds
            latency, api_ms, peak_rss = [], [], 0.0
            seen = None
            while time.monotonic() < end:
                t = time.perf_counter()
                body = client.get("/v1/detection/latest").json()
                api_ms.append((time.perf_counter() - t) * 1000)
                if body.get("frame_timestamp") is not None and body["frame_timestamp"] != seen:
                    seen = body["frame_timestamp"]
                    latency.append(time.time() - body["frame_timestamp"])
                peak_rss = max(peak_rss, rss_mb(svc.proc.pid))
                time.sleep(0.05)
            status = client.get("/v1/streaming/status").json()
            det = client.get("/v1/detection/status").json()
            client.close()
            result.update(
                analysed_fps=det["analysed_fps"], target_fps=det.get("target_fps"), backoffs=det.get("backoffs"),
                last_analysis_ms=det["last_analysis_ms"], latency_p50_s=statistics.median(latency) if latency else None,
                latency_max_s=max(latency, default=None), api_p50_ms=statistics.median(api_ms), api_p95_ms=percentile(api_ms, 95),
                rss_mb=peak_rss, group_peak_mb=(cg.memory_peak() or 0) / 2**20, status=status,
                throttled=cg.throttled(), faces=first["nb_faces"],
            )
        finally:
            svc.stop()
            if rx is not None:
                rx.__exit__(None, None, None)
    if path == "software":
        pts, _ = probe(out)
        n, largest = gaps(pts[1:])
        span = pts[-1] - pts[1] if len(pts) > 2 else 1.0
        result.update(rx_frames=len(pts), rx_fps=(len(pts) - 1) / span, rx_gaps=n, rx_max_gap_ms=largest * 1000)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--cores", type=float, default=None, help="CPU quota in cores (default: --calibrate's figure, else 1.0)")
    ap.add_argument("--memory-mb", type=int, default=400, help="memory limit, MB (the unit's MemoryMax)")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--period-us", type=int, default=10_000, help="CFS period, µs")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--paths", default="software,picamera2")
    ap.add_argument("--detectors", default="hog,haar", help="CAMERA_FACE_DETECTOR values to run, comma-separated")
    args = ap.parse_args()
    why = cgroups.available()
    if why:
        print(why)
        return 2
    cores = args.cores
    if args.calibrate:
        factor, runs = calibrate()
        print(f"7-Zip R/U MIPS here (1 thread): {runs}; Zero 2 W 4 threads: {ZERO2W_7ZIP_MIPS_4T} "
              f"-> a Zero 2 W = {factor:.2f} cores of this machine")
        cores = cores or round(factor, 2)
    cores = cores or 1.0
    print(f"load before: {os.getloadavg()}; quota {cores} cores, period {args.period_us} µs, memory {args.memory_mb} MB")
    for path, detector in [(p, d) for p in args.paths.split(",") for d in args.detectors.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            r = run(path, cores, args.memory_mb, args.seconds, args.period_us, Path(tmp), detector)
        st = r.pop("status")
        print(f"{path} / {detector}: {r}")
        print(f"  stream status: fps_10s {st['fps_10s']} fps_60s {st['fps_60s']} gaps_60s {st['frame_gaps_60s']} "
              f"max_gap {st['max_gap_ms_60s']} ms dropped {st['frames_dropped']}")
        print(f"  load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
