"""MJPEG live view cost: CPU of the service's MJPEG broadcaster (default 5 fps, 640 px wide) against the
same process without it.

The bundled sample plays through a real :class:`SoftwareCamera` at the service's default size, 1280x720
(decode + scale, as the service does), alternating ``--rounds`` windows of ``--seconds`` s without viewers and with
``--viewers`` viewers consuming :class:`MjpegBroadcaster` frames on an asyncio loop, as the HTTP
route does. The process CPU time of each window (``psutil``) is compared; the difference is the
MJPEG cost, reported as % of one core. Windows alternate so machine noise hits both alike. No network
is involved (the viewers run in this process). The load average is printed before and after.

Usage: ``python bench/bench_mjpeg.py [--seconds 5] [--rounds 3] [--fps 5] [--width 640] [--viewers 1]``
(defaults: ``CAMERA_MJPEG_FPS`` and ``CAMERA_MJPEG_WIDTH``'s).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import load_line, spread  # noqa: E402
from pi_camera_service.config import Settings  # noqa: E402
from pi_camera_service.live import MjpegBroadcaster  # noqa: E402
from pi_camera_service.sources.software import SoftwareCamera, parse_av_source, sample_video_path  # noqa: E402


async def _watch(broadcaster: MjpegBroadcaster, seconds: float, viewers: int) -> int:
    subs = [broadcaster.subscribe() for _ in range(viewers)]
    received = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            frames = await asyncio.gather(*(s.next(1.0) for s in subs))
            received += sum(1 for f in frames if f is not None)
    finally:
        for s in subs:
            broadcaster.unsubscribe(s)
    return received


def main() -> None:
    defaults = Settings(_env_file=None, detection_enabled=False)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fps", type=float, default=defaults.mjpeg_fps)
    ap.add_argument("--width", type=int, default=defaults.mjpeg_width)
    ap.add_argument("--viewers", type=int, default=1)
    args = ap.parse_args()

    settings = defaults
    size = f"{settings.width}x{settings.height}"
    load_before = load_line()
    camera = SoftwareCamera(settings, parse_av_source(str(sample_video_path()), settings.width, settings.height,
                                                      settings.framerate))
    camera.open()
    proc = psutil.Process()
    broadcaster = MjpegBroadcaster(camera, fps=args.fps, width=args.width, quality=70, idle_stop=0.2)
    base, live, rates = [], [], []
    try:
        time.sleep(1.0)
        for _ in range(args.rounds):
            t0, c0 = time.monotonic(), sum(proc.cpu_times()[:2])
            time.sleep(args.seconds)
            base.append((sum(proc.cpu_times()[:2]) - c0) / (time.monotonic() - t0))
            t0, c0 = time.monotonic(), sum(proc.cpu_times()[:2])
            received = asyncio.run(_watch(broadcaster, args.seconds, args.viewers))
            elapsed = time.monotonic() - t0
            live.append((sum(proc.cpu_times()[:2]) - c0) / elapsed)
            rates.append(received / elapsed / args.viewers)
            time.sleep(0.5)  # let the broadcaster stop between windows
    finally:
        broadcaster.close()
        camera.close()
    print(f"`python bench/bench_mjpeg.py --seconds {args.seconds:g} --rounds {args.rounds} --fps {args.fps:g} "
          f"--width {args.width} --viewers {args.viewers}`\n")
    print(f"{platform.machine()}, {psutil.cpu_count()} cpus, Python {platform.python_version()}")
    print(f"before: {load_before}; after: {load_line()}\n")
    print("| measure | result | target |\n| --- | --- | --- |")
    diffs = [100 * (x - y) for x, y in zip(live, base)]
    print(f"| CPU, capture of the {size} sample without viewers (baseline) | {spread([100 * v for v in base], unit=' %')} of one core | |")
    print(f"| CPU, same with {args.viewers} MJPEG viewer(s) at {args.fps:g} fps, {args.width} px | {spread([100 * v for v in live], unit=' %')} of one core | |")
    print(f"| MJPEG cost (difference per round, {args.rounds} alternating windows) | {spread(diffs, unit=' %')} of one core | < 10 % |")
    print(f"| frames received per viewer | {statistics.median(rates):.2f} fps | {args.fps:g} |")


if __name__ == "__main__":
    main()
