"""Image adjustment benchmark: ms per frame of :class:`FrameProcessor` against a copy and a resize.

For each main size (default 1280x720 and 640x480), a real frame of the bundled carphone video is
decoded with PyAV to I420 at that size, then these are timed, interleaved round by round (each round
runs every case once, so machine noise hits them alike) and reported as the median over
``--rounds`` rounds:

* baselines: ``i420.copy()`` and ``resize_i420`` to half size (what the service does for the
  analysis stream), measured in the same rounds;
* ``FrameProcessor.process`` for: identity; brightness+contrast+saturation LUTs; sharpness; roi zoom
  (centre half); lens correction (Camera Module 3 Wide estimate); lens+roi (one remap); everything;
* ``mean_luma`` (step 8), and the one-off cost of building each processor (LUTs, remap maps).

Usage: ``python bench/bench_imaging.py [--sizes 1280x720,640x480] [--rounds 300] [--threads 1]``.
Not a test: figures depend on the machine (a Pi Zero 2 W is roughly 10-20x slower than x86-64); the
ratios to the baselines are the portable part.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import load_line  # noqa: E402
from pcs_common.faces.frames import resize_i420  # noqa: E402
from pi_camera_service.imaging import FrameProcessor, ImageAdjust, LensModel, mean_luma  # noqa: E402

SAMPLE = ROOT / "pi_camera_service" / "data" / "carphone_pristine.mp4"


def decode_frame(width: int, height: int, index: int = 30) -> np.ndarray:
    """Frame ``index`` of the sample video as ``(H * 3 // 2, W)`` uint8 I420 at ``width`` x ``height``."""
    import av

    with av.open(str(SAMPLE)) as container:
        for i, decoded in enumerate(container.decode(container.streams.video[0])):
            if i == index:
                return decoded.reformat(width=width, height=height, format="yuv420p").to_ndarray()
    raise SystemExit(f"{SAMPLE} has fewer than {index + 1} frames")


def adjustments(width: int, height: int) -> dict[str, ImageAdjust]:
    """The settings benchmarked, by label."""
    lens = LensModel.camera_module_3_wide().scaled(width, height, crop_to_aspect=True)
    zoom = (0.25, 0.25, 0.5, 0.5)
    return {
        "identity": ImageAdjust(),
        "brightness+contrast+saturation LUTs": ImageAdjust(brightness=0.1, contrast=1.2, saturation=1.3),
        "sharpness 2 (unsharp mask)": ImageAdjust(sharpness=2.0),
        "sharpness 0.5 (soften)": ImageAdjust(sharpness=0.5),
        "roi zoom 2x": ImageAdjust(roi=zoom),
        "lens correction": ImageAdjust(lens=lens),
        "lens + roi (one remap)": ImageAdjust(lens=lens, roi=zoom),
        "everything": ImageAdjust(brightness=0.1, contrast=1.2, saturation=1.3, sharpness=2.0, roi=zoom, lens=lens),
    }


def build_ms(width: int, height: int, adjust: ImageAdjust, repeat: int = 5) -> float:
    """Median ms to construct a :class:`FrameProcessor` (the per-setting-change cost)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        FrameProcessor(width, height, adjust)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench_size(width: int, height: int, rounds: int) -> list[tuple[str, float, float, float, float | None]]:
    """(label, median ms, ratio to copy, ratio to resize, build ms) for every case at one size."""
    i420 = decode_frame(width, height)
    cases = {
        "baseline: i420.copy()": lambda: i420.copy(),
        "baseline: resize_i420 to half size": lambda: resize_i420(i420, width, height, width // 2, height // 2),
        "mean_luma (step 8)": lambda: mean_luma(i420, width, height),
    }
    builds: dict[str, float | None] = dict.fromkeys(cases)
    for label, adjust in adjustments(width, height).items():
        processor = FrameProcessor(width, height, adjust)
        cases[label] = lambda p=processor: p.process(i420)
        builds[label] = build_ms(width, height, adjust)
    times: dict[str, list[float]] = {label: [] for label in cases}
    for fn in cases.values():  # warm-up
        for _ in range(5):
            fn()
    clock = time.perf_counter
    for _ in range(rounds):
        for label, fn in cases.items():
            t0 = clock()
            fn()
            times[label].append((clock() - t0) * 1e3)
    med = {label: statistics.median(v) for label, v in times.items()}
    copy_ms, resize_ms = med["baseline: i420.copy()"], med["baseline: resize_i420 to half size"]
    return [(label, ms, ms / copy_ms, ms / resize_ms, builds[label]) for label, ms in med.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1280x720,640x480", help="comma-separated WxH (default 1280x720,640x480)")
    parser.add_argument("--rounds", type=int, default=300, help="timed rounds per case (default 300)")
    parser.add_argument("--threads", type=int, default=0, help="cv2.setNumThreads (0: OpenCV default)")
    args = parser.parse_args()
    if args.threads:
        cv2.setNumThreads(args.threads)
    print(
        f"# Image adjustments (pi_camera_service.imaging) on {SAMPLE.name}, median of {args.rounds} interleaved rounds"
    )
    print(f"`{' '.join([Path(sys.executable).name, *sys.argv])}`\n")
    print(
        f"{platform.machine()} {platform.processor() or ''} {psutil.cpu_count()} cpus, OpenCV {cv2.__version__} "
        f"threads {cv2.getNumThreads()}, NumPy {np.__version__}, Python {platform.python_version()}"
    )
    print(f"before: {load_line()}\n")
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        rows = bench_size(width, height, args.rounds)
        print(f"## {width}x{height} I420\n")
        print("| operation | ms/frame (median) | x copy | x resize_i420 | build ms (once per setting) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for label, ms, vs_copy, vs_resize, build in rows:
            build_s = "" if build is None else f"{build:.2f}"
            print(f"| {label} | {ms:.3f} | {vs_copy:.1f} | {vs_resize:.2f} | {build_s} |")
        print()
    print(f"after: {load_line()}")


if __name__ == "__main__":
    main()
