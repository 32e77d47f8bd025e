"""Face detector quality on the labelled evaluation set (``bench/data/face_eval.json``, built by
``bench/face_eval_set.py``): per detector of the registry, recall, false faces per frame, nested
boxes and ms per frame.

Two modes, each frame analysed on its own (the detector reset between frames, so no tracking helps):

- ``camera``: the frame is the main stream, analysed at 320 px wide as the service does
  (``CAMERA_DETECTION_WIDTH``), the detector with its registry defaults;
- ``photo``: as central's enrolment scans an uploaded photo: long side scaled into 640-1280 px,
  ``hog`` upsampled once.

Ground truth is matched one-to-one, greedily by IoU, at IoU >= 0.3 (HOG and Haar boxes frame a face
differently). A *false face* is a reported face matching no ground truth; a *nested box* is a
reported face lying >= 0.5 inside another reported face. ``recall>=40`` counts frontal faces at
least 40 px wide in the analysed frame (the goal: >= 0.95, with <= 0.01 false faces per frame and 0
nested boxes). ``--baseline DIR`` also runs the ``hog`` detector of another checkout (e.g. the
previous release) in the same process, for a before/after comparison.

Usage: ``python bench/bench_face_eval.py [--detectors hog,haar] [--modes camera,photo] [--baseline DIR]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import face_eval_set  # noqa: E402

from pcs_common.faces import registry  # noqa: E402
from pcs_common.geometry import iou, overlap  # noqa: E402
from pcs_common.faces.frames import AnalysisFrame, Frame  # noqa: E402


def analysis_size(mode: str, width: int, height: int) -> tuple[int, int]:
    """The analysed frame's size for a ``width`` x ``height`` frame in ``mode``."""
    if mode == "camera":
        w = 320
    else:
        long_side = max(width, height)
        k = min(max(1.0, 640 / long_side), 1280 / long_side)
        w = round(width * k)
    return w // 2 * 2, round(w * height / width) // 2 * 2


def make_detector(name: str, mode: str, baseline: Path | None) -> Any:
    """A fresh detector ``name`` for ``mode`` (encodings off: they do not change the boxes)."""
    photo = {"upsample": 1} if mode == "photo" and name.startswith("hog") else {}
    if name == "hog@baseline":
        spec = importlib.util.spec_from_file_location("baseline_detector", baseline / "pi_camera_service" / "detection" / "detector.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["baseline_detector"] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module.FaceDetector(encodings="off", profiles=False, **photo)
    cfg = registry.detector_config(name, profiles=False, full_scan_interval=0, **photo)
    return registry.create_detector(cfg, encodings="off")


def evaluate(factory: Callable[[], Any], mode: str, entries: list[dict[str, Any]], verbose: bool = False) -> dict[str, float]:
    """Figures of one detector in one mode over ``entries``."""
    detector = factory()
    tp40 = n40 = tp = n = false = nested = 0
    ms: list[float] = []
    for entry in entries:
        bgr = face_eval_set.build(entry["recipe"])
        h, w = bgr.shape[:2]
        aw, ah = analysis_size(mode, w, h)
        lores = cv2.resize(bgr, (aw, ah), interpolation=cv2.INTER_AREA if aw < w else cv2.INTER_LINEAR)
        af = AnalysisFrame(Frame(cv2.cvtColor(lores, cv2.COLOR_BGR2YUV_I420), aw, ah, 0), w, h)
        detector.reset()
        start = time.perf_counter()
        result = detector.analyse(af)
        ms.append((time.perf_counter() - start) * 1000)
        found = [(f.x, f.y, f.width, f.height) for f in result.faces]
        truth = [tuple(f["box"]) for f in entry["faces"] if f["pose"] == "frontal"]
        unmatched = list(range(len(found)))
        for t in sorted(truth, key=lambda b: -b[2]):
            big = t[2] * aw / w >= 40
            n += 1
            n40 += big
            best = max(unmatched, key=lambda i: iou(found[i], t), default=None)
            if best is not None and iou(found[best], t) >= 0.3:
                unmatched.remove(best)
                tp += 1
                tp40 += big
            elif big and verbose:
                print(f"#   missed {entry['id']} {t} (found {found})")
        false += len(unmatched)
        if unmatched and verbose:
            print(f"#   false {entry['id']} {[found[i] for i in unmatched]}")
        nested += sum(overlap(a, b) >= 0.5 for i, a in enumerate(found) for b in found[i + 1 :])
    return {"recall>=40": tp40 / max(n40, 1), "n>=40": n40, "recall": tp / max(n, 1), "n": n,
            "false/frame": false / len(entries), "false": false, "nested": nested,
            "ms median": statistics.median(ms), "ms p90": sorted(ms)[int(0.9 * (len(ms) - 1))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", default=",".join(registry.detector_names()))
    parser.add_argument("--modes", default="camera,photo")
    parser.add_argument("--baseline", type=Path, help="another checkout whose hog detector runs too")
    parser.add_argument("--verbose", action="store_true", help="list each missed face and false face")
    parser.add_argument("--threads", type=int, default=1, help="cv2.setNumThreads (1: one core, as measured)")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    entries = face_eval_set.load()
    kinds: dict[str, int] = {}
    for e in entries:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"cv2 {cv2.__version__}, {os.cpu_count()} cpus, loadavg {os.getloadavg()[0]:.2f}")
    print(f"# {len(entries)} frames {kinds}, {sum(len(e['faces']) for e in entries)} faces")
    names = args.detectors.split(",") + (["hog@baseline"] if args.baseline else [])
    cols = ["recall>=40", "n>=40", "recall", "n", "false/frame", "false", "nested", "ms median", "ms p90"]
    print("| detector | mode | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    for mode in args.modes.split(","):
        for name in names:
            r = evaluate(lambda: make_detector(name, mode, args.baseline), mode, entries, args.verbose)
            cells = [f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols]
            print(f"| {name} | {mode} | " + " | ".join(cells) + " |", flush=True)
    print(f"# loadavg after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
