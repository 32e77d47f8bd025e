"""The face evaluation set: frames rebuilt from material the project may ship, with ground-truth boxes.

Each entry of ``bench/data/face_eval.json`` is a *recipe* (which source picture, which transforms)
and its ground truth: ``{id, kind, recipe, size: [w, h], faces: [{box: [x, y, w, h], pose}]}``
(boxes in the built frame's px). :func:`build` makes the ``(h, w, 3)`` uint8 BGR frame of a recipe,
deterministically (noise from a fixed seed), so the JSON stays small and the pictures come from
where they legitimately ship:

- ``astronaut``: scikit-image ``skimage.data.astronaut()`` (NASA photo of Eileen Collins, public domain);
- ``grace_hopper``: matplotlib ``mpl-data/sample_data/grace_hopper.jpg`` (US Navy photo, public domain);
- ``carphone:N``: frame N of the bundled ``pi_camera_service/data/carphone_pristine.mp4`` (see its ATTRIBUTION.md);
- ``bikes:N``: frame N of ``tests/data/bikes.mp4`` (no face; see its ATTRIBUTION.md);
- ``skimage:NAME``: other scikit-image sample pictures with no human face (coffee, rocket, chelsea...).

Ground truth: boxes of the unscaled source pictures were taken from dlib's HOG detector run at 2x
upsampling and checked by eye on a contact sheet (``python bench/face_eval_set.py --sheet out.png``);
transforms map them exactly. ``pose`` is ``frontal`` or ``profile`` (a face turned ~45-90°).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "bench" / "data" / "face_eval.json"
CARPHONE = ROOT / "pi_camera_service" / "data" / "carphone_pristine.mp4"
BIKES = ROOT / "tests" / "data" / "bikes.mp4"


@functools.cache
def _video(path: Path) -> tuple[np.ndarray, ...]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return tuple(frames)


@functools.cache
def source(name: str) -> np.ndarray:
    """The ``(h, w, 3)`` uint8 BGR source picture ``name`` (see the module doc)."""
    if name == "astronaut":
        from skimage import data

        return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    if name == "grace_hopper":
        import matplotlib.cbook

        return cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    kind, _, arg = name.partition(":")
    if kind == "carphone":
        return _video(CARPHONE)[int(arg)]
    if kind == "bikes":
        return _video(BIKES)[int(arg)]
    if kind == "skimage":
        from skimage import data

        img = getattr(data, arg)()
        img = img if img.ndim == 3 else np.stack([img] * 3, -1)
        return cv2.cvtColor(img[..., :3].astype(np.uint8), cv2.COLOR_RGB2BGR)
    raise ValueError(f"unknown source {name!r}")


def build(recipe: dict[str, Any]) -> np.ndarray:
    """The BGR frame of a recipe: ``{canvas: [w, h, grey] | null, layers: [{src, scale, x, y, flip}],
    night: bool}`` — each source scaled (bicubic up, area down), optionally mirrored, pasted at
    ``(x, y)`` on the canvas (or the first layer is the frame); ``night``: NoIR-like greyscale, dark
    (gamma 2.2, x0.45) with sensor noise (sigma 5, seed 0)."""
    canvas = recipe.get("canvas")
    frame = None if canvas is None else np.full((canvas[1], canvas[0], 3), canvas[2], np.uint8)
    for layer in recipe["layers"]:
        img = source(layer["src"])
        s = layer.get("scale", 1.0)
        if s != 1.0:
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)
        if layer.get("flip"):
            img = cv2.flip(img, 1)
        if frame is None:
            frame = img.copy()
            continue
        x, y = layer["x"], layer["y"]
        h, w = min(img.shape[0], frame.shape[0] - y), min(img.shape[1], frame.shape[1] - x)
        frame[y : y + h, x : x + w] = img[:h, :w]
    assert frame is not None
    if recipe.get("night"):
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
        grey = np.power(grey, 2.2) * 0.45 * 255.0
        grey += np.random.default_rng(0).normal(0, 5, grey.shape)
        frame = cv2.cvtColor(np.clip(grey, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
    return np.ascontiguousarray(frame[:h, :w])


def load() -> list[dict[str, Any]]:
    """The entries of ``bench/data/face_eval.json``."""
    return json.loads(LABELS.read_text())["frames"]


# --- making the labels ------------------------------------------------------------------------------


def _source_faces(name: str) -> list[list[float]]:
    """Frontal faces of an unscaled source picture: dlib HOG, 2x upsampling, score >= 0.3 (for a carphone
    frame with none, the best box >= -0.8: the man is in every frame); then checked by eye."""
    import dlib

    rgb = cv2.cvtColor(source(name), cv2.COLOR_BGR2RGB)
    rects, scores, _ = dlib.get_frontal_face_detector().run(rgb, 2, 0.3)
    if not len(rects) and name.startswith("carphone"):  # the man is in every frame: his best box
        rects, scores, _ = dlib.get_frontal_face_detector().run(rgb, 2, -0.8)
        rects, scores = rects[:1], scores[:1]
    return [[r.left(), r.top(), r.width(), r.height()] for r, s in zip(rects, scores)]


def _place(recipe: dict[str, Any], labelled: dict[str, list[list[float]]]) -> list[list[int]]:
    out = []
    for layer in recipe["layers"]:
        s = layer.get("scale", 1.0)
        w_src = source(layer["src"]).shape[1] * s
        x0, y0 = layer.get("x", 0), layer.get("y", 0)
        for x, y, w, h in labelled.get(layer["src"], []):
            bx = (w_src - (x + w) * s) if layer.get("flip") else x * s
            out.append([round(bx + x0), round(y * s + y0), round(w * s), round(h * s)])
    return out


def recipes() -> list[tuple[str, str, dict[str, Any]]]:
    """(id, kind, recipe) of every frame of the set."""
    r: list[tuple[str, str, dict[str, Any]]] = []
    for name in ("astronaut", "grace_hopper"):
        for s in (1.0, 2.0, 2.5):
            for flip in (False, True):
                r.append((f"{name}-x{s}{'-mirror' if flip else ''}", "portrait",
                          {"canvas": None, "layers": [{"src": name, "scale": s, "flip": flip}]}))
    for i in range(0, 120, 10):
        r.append((f"carphone-{i}-x4", "portrait", {"canvas": None, "layers": [{"src": f"carphone:{i}", "scale": 4.0}]}))
        r.append((f"carphone-{i}", "video", {"canvas": None, "layers": [{"src": f"carphone:{i}"}]}))
    # small faces: carphone frames shrunk onto a street frame (faces ~40-60 px of 640)
    for j, i in enumerate((5, 45, 85)):
        r.append((f"small-{i}", "small", {"canvas": None, "layers": [
            {"src": f"bikes:{40 * j}"},
            {"src": f"carphone:{i}", "scale": 0.75, "x": 20, "y": 30},
            {"src": f"carphone:{i + 10}", "scale": 0.6, "x": 260, "y": 150, "flip": True},
            {"src": "astronaut", "scale": 0.25, "x": 470, "y": 20}]}))
    for i in range(0, 250, 20):
        r.append((f"bikes-{i}", "no_face", {"canvas": None, "layers": [{"src": f"bikes:{i}"}]}))
    for name in ("coffee", "rocket", "chelsea", "hubble_deep_field", "brick", "grass", "gravel", "coins",
                 "horse", "page", "immunohistochemistry"):
        r.append((f"skimage-{name}", "no_face", {"canvas": None, "layers": [{"src": f"skimage:{name}"}]}))
    for name, src in (("night-astronaut", "astronaut"), ("night-carphone-60", "carphone:60"),
                      ("night-grace", "grace_hopper")):
        r.append((name, "night", {"canvas": None, "night": True,
                                  "layers": [{"src": src, "scale": 4.0 if src.startswith("carphone") else 1.0}]}))
    r.append(("night-bikes-100", "no_face", {"canvas": None, "night": True, "layers": [{"src": "bikes:100"}]}))
    return r


def write_labels() -> None:
    """(Re)write ``bench/data/face_eval.json`` from :func:`recipes` and :func:`_source_faces`."""
    faces_of: dict[str, list[list[float]]] = {}
    frames = []
    for fid, kind, recipe in recipes():
        for layer in recipe["layers"]:
            src = layer["src"]
            if src not in faces_of:
                faces_of[src] = [] if src.startswith(("bikes", "skimage")) else _source_faces(src)
        img = build(recipe)
        frames.append({"id": fid, "kind": kind, "recipe": recipe, "size": [img.shape[1], img.shape[0]],
                       "faces": [{"box": b, "pose": "frontal"} for b in _place(recipe, faces_of)]})
    doc = {
        "about": "Face detection evaluation set; frames are rebuilt by bench/face_eval_set.py build(recipe). "
                 "Boxes (x, y, w, h, px of the built frame): dlib HOG at 2x upsampling on the unscaled "
                 "sources, checked by eye, mapped through the recipe. Sources: scikit-image astronaut "
                 "(NASA, public domain), matplotlib grace_hopper.jpg (US Navy, public domain), the bundled "
                 "carphone video, tests/data/bikes.mp4, scikit-image sample pictures without faces.",
        "frames": frames,
    }
    LABELS.write_text(json.dumps(doc, indent=1) + "\n")


def contact_sheet(path: str) -> None:
    """Every frame with its ground-truth boxes, tiled 8 wide at 200 px, written to ``path``."""
    tiles = []
    for entry in load():
        img = build(entry["recipe"])
        for f in entry["faces"]:
            x, y, w, h = f["box"]
            cv2.rectangle(img, (x, y), (x + w, y + h), (0, 255, 0), max(2, img.shape[1] // 200))
        k = 200 / max(img.shape[:2])
        t = np.zeros((200, 200, 3), np.uint8)
        small = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        t[: small.shape[0], : small.shape[1]] = small
        tiles.append(t)
    while len(tiles) % 8:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + 8]) for i in range(0, len(tiles), 8)]
    cv2.imwrite(path, np.vstack(rows))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if sys.argv[1:2] == ["--write"]:
        write_labels()
    elif sys.argv[1:2] == ["--sheet"]:
        contact_sheet(sys.argv[2])
    else:
        print("usage: face_eval_set.py --write | --sheet out.png", file=sys.stderr)
        sys.exit(2)
