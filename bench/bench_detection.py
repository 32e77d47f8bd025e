"""Face detection benchmark: ms per analysed frame (per stage) and analysed fps on the sample video.

Frames are built as the service builds them: the bundled carphone video decoded with PyAV, scaled
to the main size (by default the service's default, 1280x720) as I420, then to the analysis (lores)
size of ``CAMERA_DETECTION_WIDTH`` (default 320, so 320x180).

1. Per-stage ms of :class:`FaceDetector` over every ``--stride``-th frame (6: 5 fps of a 30 fps
   camera): YUV->RGB, scan (HOG, Haar frontal and proposal re-checks; the whole frame or regions around
   tracked faces), encodings (5-point shapes + ResNet in the worker process), Haar profile (frame +
   mirror); with the default encoding reuse and recomputing every encoding (``encoding_max_age=0``),
   interleaved frame by frame (A B A B).
2. :class:`DetectionService` replaying the video in real time for ``--seconds`` s at
   ``--fps`` (5) and flat out (30): measured analysed fps, samples skipped, RSS of this process and
   of the encoder worker.

The load average is printed before and after.

Usage: ``python bench/bench_detection.py [--main WxH] [--stride 6] [--threads 1] [--seconds 8]``.
Not a test: figures depend on the machine (a Pi Zero 2 W is roughly 10-20x slower than x86-64).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import load_line  # noqa: E402
from pi_camera_service.config import Settings, load_settings  # noqa: E402
from pcs_common.faces.detector import FaceDetector  # noqa: E402
from pi_camera_service.detection.service import DetectionService  # noqa: E402
from pcs_common.faces.frames import AnalysisFrame, Frame  # noqa: E402
from pi_camera_service.sources.software import decode_analysis_frames  # noqa: E402

SAMPLE = ROOT / "pi_camera_service" / "data" / "carphone_pristine.mp4"
STAGES = ["prepare", "scan", "encodings", "profiles"]


def load_frames(path: Path, width: int, height: int, detection_width: int) -> tuple[list[AnalysisFrame], float]:
    """Every frame of ``path`` as an :class:`AnalysisFrame` for main size ``width`` x ``height``; and the fps."""
    lores = load_settings(width=width, height=height, detection_width=detection_width).detection_size
    return decode_analysis_frames(path, width, height, lores, timestamp0=time.time())


def p95(values: list[float]) -> float:
    """95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def stage_tables(frames: list[AnalysisFrame], stride: int, variants: list[dict]) -> list[list[tuple[str, float, float]]]:
    """Per variant (FaceDetector keyword arguments): (stage, mean ms, p95 ms) over ``frames[::stride]``,
    the variants analysing each frame in turn (interleaved), after one warm-up analysis each."""
    detectors = [FaceDetector(**kwargs) for kwargs in variants]
    for detector in detectors:
        detector.analyse(frames[0])  # load models, start the encoder worker
        detector.reset()
    per_stage = [{s: [] for s in [*STAGES, "total"]} for _ in variants]
    for af in frames[::stride]:
        for detector, table in zip(detectors, per_stage):
            result = detector.analyse(af)
            for stage in STAGES:
                table[stage].append(result.timings_ms.get(stage, 0.0))
            table["total"].append(result.analysis_ms)
    for detector in detectors:
        detector.close()
    return [[(s, statistics.fmean(v), p95(v)) for s, v in table.items()] for table in per_stage]


class ReplayCamera:
    """The frame a 30 fps camera would have captured by now."""

    def __init__(self, frames: list[AnalysisFrame], fps: float) -> None:
        self.frames, self.fps, self.t0 = frames, fps, time.monotonic()

    def analysis_frame(self) -> AnalysisFrame:
        i = int((time.monotonic() - self.t0) * self.fps)
        src = self.frames[i % len(self.frames)]
        f = src.frame
        frame = Frame(f.i420, f.width, f.height, i, time.time(), time.monotonic())
        return AnalysisFrame(frame, src.main_width, src.main_height)


def service_run(frames: list[AnalysisFrame], video_fps: float, fps: float, seconds: float) -> dict:
    """Run :class:`DetectionService` for ``seconds`` s; its stats plus RSS (MB) of this process and children."""
    service = DetectionService(ReplayCamera(frames, video_fps), FaceDetector, fps=fps)
    service.run_now()  # load the models before timing
    service.start()
    time.sleep(seconds)
    stats = service.stats()
    proc = psutil.Process()
    stats["rss_mb"] = proc.memory_info().rss / 1e6
    stats["worker_rss_mb"] = sum(c.memory_info().rss for c in proc.children()) / 1e6
    service.stop()
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Settings(_env_file=None)
    parser.add_argument("--main", default=f"{defaults.width}x{defaults.height}",
                        help=f"main stream size WxH (default: the service's, {defaults.width}x{defaults.height})")
    parser.add_argument("--detection-width", type=int, default=defaults.detection_width,
                        help=f"lores width, px (default: the service's, {defaults.detection_width})")
    parser.add_argument("--stride", type=int, default=6, help="analyse every Nth frame (default 6)")
    parser.add_argument("--threads", type=int, default=0, help="cv2.setNumThreads (0: OpenCV default)")
    parser.add_argument("--seconds", type=float, default=8.0, help="service run length per rate, s")
    parser.add_argument("--fps", type=float, default=defaults.detection_fps,
                        help=f"CAMERA_DETECTION_FPS for the service run (default {defaults.detection_fps:g})")
    args = parser.parse_args()
    width, height = (int(v) for v in args.main.lower().split("x"))
    if args.threads:
        cv2.setNumThreads(args.threads)
    frames, video_fps = load_frames(SAMPLE, width, height, args.detection_width)
    lores = frames[0].frame
    print(f"# Face detection on {SAMPLE.name}: main {width}x{height}, lores {lores.width}x{lores.height}, "
          f"every {args.stride} frame(s)")
    print(f"{platform.machine()} {platform.processor() or ''} {psutil.cpu_count()} cpus, "
          f"OpenCV threads {cv2.getNumThreads()}, Python {platform.python_version()}")
    print(f"before: {load_line()}\n")
    reuse, fresh = stage_tables(frames, args.stride, [{}, {"encoding_max_age": 0}])
    print("| stage | ms mean | ms p95 | ms mean, encoding every frame | ms p95 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for (stage, mean, high), (_, fmean, fhigh) in zip(reuse, fresh):
        print(f"| {stage} | {mean:.1f} | {high:.1f} | {fmean:.1f} | {fhigh:.1f} |")
    print()
    print("| service at | analysed fps | frames analysed | samples skipped | last ms | RSS MB | worker RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for fps in (args.fps, 30.0):
        s = service_run(frames, video_fps, fps, args.seconds)
        print(f"| {fps:g} fps | {s['analysed_fps']:.2f} | {s['frames_analysed']} | {s['samples_skipped']} | "
              f"{s['last_analysis_ms']:.1f} | {s['rss_mb']:.0f} | {s['worker_rss_mb']:.0f} |")
    print(f"\nafter: {load_line()}")


if __name__ == "__main__":
    main()
