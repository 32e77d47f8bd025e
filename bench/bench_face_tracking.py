"""Region tracking and encode-on-change against whole-frame scans, interleaved in one process.

The bundled carphone video (a face in every frame) and tests/data/bikes.mp4 (none), as the service
builds frames (main 640x480, analysis 320x240), every 6th frame (5 analysed fps of 30), through:

- ``before``: every sample scanned whole (``full_scan_interval=0``), encodings reused for 1 s then
  recomputed (``encoding_max_age=1.0``, appearance ignored) — the previous behaviour;
- ``after``: the defaults (whole scans every 1 s, regions around tracked faces in between; a
  track's encoding reused up to 10 s while its appearance changes by <= 1.0).

Rounds alternate before/after (A B A B ...); the table gives per variant the median ms per analysed
frame over rounds (with min-max spread of the round medians), encodings computed per analysed
frame, the share of whole-frame scans, and whether each analysed frame of carphone had its face.
Encodings run inline (one core) so their cost is counted.

Usage: ``python bench/bench_face_tracking.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pi_camera_service.config import load_settings  # noqa: E402
from pcs_common.faces.detector import FaceDetector  # noqa: E402
from pi_camera_service.sources.software import decode_analysis_frames  # noqa: E402

VIDEOS = {"carphone": ROOT / "pi_camera_service" / "data" / "carphone_pristine.mp4",
          "bikes": ROOT / "tests" / "data" / "bikes.mp4"}
VARIANTS = {
    "before": {"full_scan_interval": 0.0, "encoding_max_age": 1.0, "reencode_change": float("inf")},
    "after": {},
}


def run(frames, variant: str) -> tuple[float, float, float, float]:
    """(median ms, encodings per analysed frame, share of whole scans, share of frames with a face)."""
    detector = FaceDetector(encodings="inline", **VARIANTS[variant])
    detector.analyse(frames[0])  # load models
    detector.reset()
    detector.full_scans = detector.region_scans = detector.encodings_computed = 0
    ms, hits = [], 0
    for af in frames:
        start = time.perf_counter()
        hits += detector.analyse(af).nb_faces > 0
        ms.append((time.perf_counter() - start) * 1000)
    n = len(frames)
    return statistics.median(ms), detector.encodings_computed / n, detector.full_scans / n, hits / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stride", type=int, default=6)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    lores = load_settings(width=640, height=480).detection_size
    print(f"# {os.cpu_count()} cpus, loadavg {os.getloadavg()[0]:.2f}; main 640x480, analysis {lores}, "
          f"every {args.stride}th frame, {args.rounds} interleaved rounds")
    print("| video | variant | ms/frame median (spread) | encodings/frame | whole scans | frames with a face |")
    print("|---|---|---|---|---|---|")
    for name, path in VIDEOS.items():
        frames, _ = decode_analysis_frames(path, 640, 480, lores, timestamp0=time.time())
        frames = frames[:: args.stride]
        results: dict[str, list[tuple[float, float, float, float]]] = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):
            for variant in VARIANTS:  # A B A B ...
                results[variant].append(run(frames, variant))
        for variant, rs in results.items():
            med = [r[0] for r in rs]
            print(f"| {name} | {variant} | {statistics.median(med):.1f} ({min(med):.1f}-{max(med):.1f}) | "
                  f"{rs[0][1]:.3f} | {rs[0][2]:.2f} | {rs[0][3]:.2f} |", flush=True)
        ratio = statistics.median([a[0] / b[0] for a, b in zip(results["after"], results["before"])])
        print(f"# {name}: after/before ms ratio (median of rounds) {ratio:.2f}")
    print(f"# loadavg after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
