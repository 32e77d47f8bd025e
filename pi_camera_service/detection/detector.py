"""Face detection on one analysis (lores) frame: frontal faces with 128-d encodings, and profiles.

How a frontal face is decided (all in lores px; boxes are reported in main-stream px):

1. **HOG** (dlib's frontal face detector, the one face_recognition's ``face_locations(model="hog")``
   uses) scans the whole RGB frame once, keeping detections down to a *weak* SVM score
   (``weak_threshold``, default -0.5) instead of dlib's 0.
2. **Haar** (OpenCV's Viola-Jones ``haarcascade_frontalface_default.xml``) scans the Y plane.
3. Boxes too small for HOG's 80 px window and not already covered by a HOG detection are re-checked
   by HOG on a crop scaled up so the face is ``proposal_face_px`` wide: small faces of the previous
   analysed frame first (so a small face stays tracked when Haar misses it), then small Haar boxes
   (*proposals*). Faces down to ~35 lores px are found for less than HOG upsampling costs (4x).
4. A HOG detection is reported when its score reaches ``threshold`` (dlib's default 0), or when it
   reaches ``weak_threshold`` *and* is corroborated: a Haar box agrees with it (:func:`overlap`),
   or it overlaps a face reported in the previous analysed frame (temporal confirmation, at most
   ``track_max_gap`` s earlier). Haar alone never reports a face (it fires on ~19% of face-free
   frames).
5. Each reported face gets a 128-d encoding exactly as face_recognition's
   ``face_encodings(img, face_locations(img), num_jitters=1, model="small")`` computes it: css
   ``(top, right, bottom, left)`` trimmed to the image, the 5-point shape predictor on that rect,
   then dlib's ResNet on the 150x150 aligned chip (``dlib.get_face_chip(img, shape, 150, 0.25)``,
   which is what ``compute_face_descriptor(img, shape, num_jitters)`` does inside). By default the
   ResNet runs in a worker process (:class:`~pi_camera_service.detection.models.EncoderProcess`)
   because it holds the GIL. A face that overlaps (IoU >= 0.5) a face of the previous analysed
   frame encoded less than ``encoding_max_age`` s before reuses that encoding.
6. **Profiles**: ``haarcascade_profileface.xml`` on the Y plane and on its mirror image (the cascade
   only finds faces turned one way), merged, and dropped where they overlap a reported frontal face.

Measured with frames built as the service builds them (main 640x480 and 1280x720, lores 320 wide),
analysing every frame and every 6th frame (5 fps of 30): a face is reported in 100% of the frames of
the bundled carphone video (a face in every frame) and in 0-0.4% of the frames of a face-free
street video. For comparison, full-frame Haar: 57% / 19%; full-frame HOG at dlib's threshold:
86-99% / 0-0.4% (the 86% on carphone stretched to 16:9). Cost per analysed frame on one x86-64
core, lores 320x240: HOG 4.4 ms, Haar frontal 11 ms, profiles (2 passes) 42 ms, one encoding 57 ms
(in the worker; reused while a face is tracked) -- ``bench/bench_detection.py``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import cv2
import numpy as np

from pi_camera_service.detection import models
from pi_camera_service.frames import AnalysisFrame

#: side of dlib's HOG frontal detector window, px: the smallest face it finds without upsampling
HOG_WINDOW_PX = 80

Box = tuple[float, float, float, float]
"""(x, y, width, height) in lores px."""

EncoderMode = Literal["process", "inline", "off"]


class Encoder(Protocol):
    """Turns ``(N, 150, 150, 3)`` uint8 RGB aligned face chips into ``(N, 128)`` float64 encodings."""

    def encode(self, chips: np.ndarray, num_jitters: int = 1) -> np.ndarray: ...  # pragma: no cover


class _InlineEncoder:
    """dlib's ResNet in this process (holds the GIL while computing; simplest, for tests and tools)."""

    def encode(self, chips: np.ndarray, num_jitters: int = 1) -> np.ndarray:
        return models.encode_chips_inline(chips, num_jitters)

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Face:
    """A frontal face, in main-stream px.

    Attributes:
        x, y: top-left corner, px.
        width, height: size, px.
        encoding: 128 floats (dlib ResNet, face_recognition's encoding; two encodings of the same
            person are usually within Euclidean distance 0.6), or ``()`` when encodings are off.
        score: dlib HOG SVM score (0 is dlib's default threshold; higher is surer).
    """

    x: int
    y: int
    width: int
    height: int
    encoding: tuple[float, ...] = ()
    score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """``{x, y, width, height, encoding: [128 floats]}``."""
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height, "encoding": list(self.encoding)}


@dataclass(frozen=True, slots=True)
class Profile:
    """A face in profile (Haar profile cascade), in main-stream px: top-left ``x, y`` and size."""

    x: int
    y: int
    width: int
    height: int

    def to_dict(self) -> dict[str, int]:
        """``{x, y, width, height}``."""
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class DetectionResult:
    """The analysis of one frame.

    Attributes:
        frame_index: capture counter of the analysed frame.
        frame_timestamp: wall-clock capture time of the frame, s since the epoch.
        analysed_at: wall-clock time the analysis finished, s since the epoch.
        analysis_ms: time the analysis took, ms.
        width, height: main-stream size, px (the boxes' coordinate space).
        faces: frontal faces, largest first.
        profiles: profile faces not overlapping a frontal face, largest first.
        timings_ms: ms spent per stage (``prepare``, ``hog``, ``haar``, ``proposals``, ``encodings``,
            ``profiles``), for benchmarks and logs; not part of :meth:`to_dict`.
    """

    frame_index: int
    frame_timestamp: float
    analysed_at: float
    analysis_ms: float
    width: int
    height: int
    faces: tuple[Face, ...] = ()
    profiles: tuple[Profile, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def nb_faces(self) -> int:
        """Number of frontal faces."""
        return len(self.faces)

    @property
    def nb_profiles(self) -> int:
        """Number of profile faces."""
        return len(self.profiles)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``GET /v1/detection/latest``: ``{frame_timestamp, analysed_at, analysis_ms,
        width, height, nb_faces, nb_profiles, faces: [{x, y, width, height, encoding}],
        profiles: [{x, y, width, height}]}``."""
        return {
            "frame_timestamp": self.frame_timestamp,
            "analysed_at": self.analysed_at,
            "analysis_ms": round(self.analysis_ms, 3),
            "width": self.width,
            "height": self.height,
            "nb_faces": self.nb_faces,
            "nb_profiles": self.nb_profiles,
            "faces": [f.to_dict() for f in self.faces],
            "profiles": [p.to_dict() for p in self.profiles],
        }


# --- geometry (lores px, boxes as (x, y, w, h)) ---------------------------------------------------


def _intersection(a: Box, b: Box) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes, 0..1."""
    inter = _intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area, 0..1 (robust to the detectors' different box sizes)."""
    smaller = min(a[2] * a[3], b[2] * b[3])
    return _intersection(a, b) / smaller if smaller > 0 else 0.0


def _rect_to_css(rect: Any) -> tuple[int, int, int, int]:
    """dlib rectangle -> ``(top, right, bottom, left)`` (face_recognition ``_rect_to_css``)."""
    return rect.top(), rect.right(), rect.bottom(), rect.left()


def _trim_css_to_bounds(css: tuple[int, int, int, int], image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Clip css to the image (face_recognition ``_trim_css_to_bounds``)."""
    return max(css[0], 0), min(css[1], image_shape[1]), min(css[2], image_shape[0]), max(css[3], 0)


def _css_to_rect(dlib: Any, css: tuple[int, int, int, int]) -> Any:
    """``(top, right, bottom, left)`` -> dlib rectangle (face_recognition ``_css_to_rect``)."""
    return dlib.rectangle(css[3], css[0], css[1], css[2])


def _css_to_box(css: tuple[int, int, int, int], scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> Box:
    top, right, bottom, left = css
    return left / scale + dx, top / scale + dy, (right - left) / scale, (bottom - top) / scale


def _nms(boxes: list[Box], threshold: float) -> list[Box]:
    kept: list[Box] = []
    for box in boxes:
        if all(iou(box, k) < threshold for k in kept):
            kept.append(box)
    return kept


@dataclass
class _Candidate:
    box: Box  # lores px
    score: float
    image: np.ndarray  # (h, w, 3) RGB the detection was made in (the frame, or a scaled-up crop)
    css: tuple[int, int, int, int]  # trimmed (top, right, bottom, left) in ``image`` px
    corroborated: bool = False
    encoding: tuple[float, ...] = ()
    encoded_at: float = 0.0


@dataclass
class _Tracked:
    box: Box
    encoding: tuple[float, ...]
    encoded_at: float  # frame monotonic time the encoding was computed for


class FaceDetector:
    """Frontal faces (+ 128-d encodings) and profiles of :class:`AnalysisFrame` s (see module doc).

    Thread-safe: :meth:`analyse` calls are serialised by a lock (the temporal state is per
    detector). Models load on first :meth:`analyse` (or :meth:`load`), not in the constructor.

    Args:
        upsample: HOG pyramid upsampling of the full-frame scan (face_recognition's
            ``number_of_times_to_upsample``, 1 there). Default 0: faces >= 80 lores px, 4.4 ms on
            320x240 (x86-64); 1 finds >= 40 px for 4x the HOG cost. Smaller faces come from the
            re-checks of step 3 either way.
        threshold: HOG SVM score that reports a face on its own. Default 0.0, dlib's.
        weak_threshold: lowest HOG score kept as a candidate, reported only when corroborated.
            Default -0.5: the stretched sample face scores -0.4..0.7; face-free frames rarely
            reach -0.5 (0.8% of street frames), and then need corroboration too.
        agree_overlap: :func:`overlap` a Haar box needs with a HOG candidate to corroborate it, and
            that a re-check detection needs with the box it re-checked. Default 0.5.
        track_iou: IoU with a face of the previous analysed frame that corroborates a candidate.
            Default 0.3 (a face moves less than that between samples at >= 1 fps).
        track_max_gap: s between two analysed frames beyond which the previous one is ignored.
            Default 2.0 (a Pi Zero 2 W may analyse only ~1-2 frames/s).
        min_face_px: smallest face the Haar cascades search, lores px. Default 24, the frontal
            cascade's window (the profile cascade's is 20).
        haar_scale_factor, haar_min_neighbors: frontal ``detectMultiScale`` parameters. Defaults
            1.2 and 3 (1.1 costs ~1.7x).
        proposal_face_px: width a small box is scaled to before HOG re-checks it, px. Default 100
            (HOG's window is 80).
        max_proposals: most small boxes (tracked faces first, then Haar boxes, largest first)
            re-checked per frame, bounding the cost. Default 3.
        profiles: run the profile cascade (two passes: the frame and its mirror). Default True.
        profile_scale_factor, profile_min_neighbors: profile ``detectMultiScale`` parameters.
            Defaults 1.2 and 4 (3 fires on ~7% of face-free frames). 1.3 saves ~35% of the
            profile cost, the largest stage (42 ms of the 58 ms without encodings, x86-64).
        profile_overlap: :func:`overlap` with a frontal face from which a profile is dropped.
            Default 0.2.
        encodings: ``"process"`` (default: dlib's ResNet in a worker process, which keeps this
            process's GIL free), ``"inline"`` (in this process; holds the GIL ~57 ms per face on
            x86-64, much longer on a Pi) or ``"off"`` (``Face.encoding`` is ``()``).
        num_jitters: face_recognition's ``num_jitters`` (re-samplings averaged). Default 1.
        encoding_max_age: s an encoding of a face tracked from the previous analysed frame
            (IoU >= 0.5) is reused rather than recomputed. Default 1.0 (one ResNet pass per
            tracked face per second instead of one per sample); 0 recomputes every frame.
        encoder: an :class:`Encoder` to use instead of the one ``encodings`` names.

    Raises:
        ValueError: a parameter is out of range.
    """

    def __init__(
        self,
        *,
        upsample: int = 0,
        threshold: float = 0.0,
        weak_threshold: float = -0.5,
        agree_overlap: float = 0.5,
        track_iou: float = 0.3,
        track_max_gap: float = 2.0,
        min_face_px: int = 24,
        haar_scale_factor: float = 1.2,
        haar_min_neighbors: int = 3,
        proposal_face_px: int = 100,
        max_proposals: int = 3,
        profiles: bool = True,
        profile_scale_factor: float = 1.2,
        profile_min_neighbors: int = 4,
        profile_overlap: float = 0.2,
        encodings: EncoderMode = "process",
        num_jitters: int = 1,
        encoding_max_age: float = 1.0,
        encoder: Encoder | None = None,
    ) -> None:
        if upsample not in (0, 1, 2):
            raise ValueError("upsample must be 0, 1 or 2")
        if weak_threshold > threshold:
            raise ValueError("weak_threshold must not exceed threshold")
        if min_face_px < 20:
            raise ValueError("min_face_px must be >= 20 (the Haar cascades' 20-24 px windows)")
        if haar_scale_factor <= 1.0 or profile_scale_factor <= 1.0:
            raise ValueError("scale factors must be > 1")
        if encodings not in ("process", "inline", "off"):
            raise ValueError("encodings must be 'process', 'inline' or 'off'")
        if num_jitters < 1:
            raise ValueError("num_jitters must be >= 1")
        self.upsample = upsample
        self.threshold = threshold
        self.weak_threshold = weak_threshold
        self.agree_overlap = agree_overlap
        self.track_iou = track_iou
        self.track_max_gap = track_max_gap
        self.min_face_px = min_face_px
        self.haar_scale_factor = haar_scale_factor
        self.haar_min_neighbors = haar_min_neighbors
        self.proposal_face_px = proposal_face_px
        self.max_proposals = max_proposals
        self.profiles = profiles
        self.profile_scale_factor = profile_scale_factor
        self.profile_min_neighbors = profile_min_neighbors
        self.profile_overlap = profile_overlap
        self.encodings = encodings
        self.num_jitters = num_jitters
        self.encoding_max_age = encoding_max_age
        self._encoder: Any = encoder
        self._lock = threading.Lock()
        self._loaded = False
        self._track: list[_Tracked] = []
        self._track_time: float | None = None
        self._track_size: tuple[int, int] | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    def load(self) -> None:
        """Load the models now (dlib, the 5-point predictor, the cascades; the encoder worker
        starts on the first face). Idempotent.

        Raises:
            ModelNotAvailable: a package or model file is missing (the message says what to install).
        """
        with self._lock:
            self._load()

    def _load(self) -> None:
        if self._loaded:
            return
        self._dlib = models.dlib_module()
        self._hog = models.hog_face_detector()
        self._predictor = models.shape_predictor_5()
        self._frontal = models.load_cascade(models.FRONTAL_CASCADE_FILE)
        self._profile = models.load_cascade(models.PROFILE_CASCADE_FILE) if self.profiles else None
        if self._encoder is None and self.encodings != "off":
            self._encoder = models.EncoderProcess() if self.encodings == "process" else _InlineEncoder()
        self._loaded = True

    def close(self) -> None:
        """Stop the encoder worker process, if any (idempotent; a later analysis restarts it)."""
        closer = getattr(self._encoder, "close", None)
        if closer is not None:
            closer()

    def reset(self) -> None:
        """Forget the previous frame's faces (temporal confirmation restarts from scratch)."""
        with self._lock:
            self._track, self._track_time, self._track_size = [], None, None

    # --- analysis ---------------------------------------------------------------------------------

    def analyse(self, af: AnalysisFrame) -> DetectionResult:
        """Detect faces and profiles in one analysis frame.

        Args:
            af: the lores frame (I420, ``(h * 3 // 2, w)`` uint8) and the main-stream size.

        Returns:
            A :class:`DetectionResult` with boxes in main-stream px (``af.main_width`` x
            ``af.main_height``), clipped to the frame.

        Raises:
            ModelNotAvailable: a model is missing (first call).
            EncoderError: the encoder worker failed (the next call restarts it).
        """
        with self._lock:
            return self._analyse(af)

    def _analyse(self, af: AnalysisFrame) -> DetectionResult:
        self._load()  # not counted in analysis_ms
        start = time.perf_counter()
        frame = af.frame
        timings: dict[str, float] = {}
        mark = start

        def lap(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            timings[name] = (now - mark) * 1000.0
            mark = now

        gray = frame.gray  # (h, w) uint8 view of the Y plane
        rgb = frame.rgb()  # (h, w, 3) uint8 RGB, the layout dlib expects
        lap("prepare")

        candidates = self._hog_candidates(rgb)
        lap("hog")

        haar = self._haar(self._frontal, gray, self.haar_scale_factor, self.haar_min_neighbors)
        lap("haar")

        previous = self._previous(af)
        candidates += self._proposals(rgb, haar, candidates, previous)
        lap("proposals")

        faces = self._decide(candidates, haar, previous)
        self._encode(faces, previous, frame.monotonic)
        lap("encodings")

        profiles: list[Box] = []
        if self._profile is not None:
            profiles = self._profiles(gray, [c.box for c in faces])
        lap("profiles")

        self._track = [_Tracked(c.box, c.encoding, c.encoded_at) for c in faces]
        self._track_time = frame.monotonic
        self._track_size = (frame.width, frame.height)

        sx, sy = af.scale
        result_faces = tuple(
            Face(*self._to_main(c.box, sx, sy, af), encoding=c.encoding, score=round(c.score, 3)) for c in faces
        )
        result_profiles = tuple(Profile(*self._to_main(b, sx, sy, af)) for b in profiles)
        return DetectionResult(
            frame_index=frame.index,
            frame_timestamp=frame.timestamp,
            analysed_at=time.time(),
            analysis_ms=(time.perf_counter() - start) * 1000.0,
            width=af.main_width,
            height=af.main_height,
            faces=result_faces,
            profiles=result_profiles,
            timings_ms={k: round(v, 3) for k, v in timings.items()},
        )

    def _hog_candidates(self, rgb: np.ndarray, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0,
                        upsample: int | None = None) -> list[_Candidate]:
        """HOG detections >= ``weak_threshold`` in ``rgb``, mapped to lores px (``/scale + (dx, dy)``)."""
        rects, scores, _ = self._hog.run(rgb, self.upsample if upsample is None else upsample, self.weak_threshold)
        out = []
        for rect, score in zip(rects, scores):
            css = _trim_css_to_bounds(_rect_to_css(rect), rgb.shape)
            if css[1] - css[3] <= 0 or css[2] - css[0] <= 0:
                continue
            out.append(_Candidate(_css_to_box(css, scale, dx, dy), float(score), rgb, css))
        return out

    def _haar(self, cascade: Any, gray: np.ndarray, scale_factor: float, min_neighbors: int) -> list[Box]:
        found = cascade.detectMultiScale(
            gray, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(self.min_face_px, self.min_face_px)
        )
        return [tuple(float(v) for v in b) for b in found]  # type: ignore[misc]

    def _proposals(
        self, rgb: np.ndarray, haar: list[Box], candidates: list[_Candidate], previous: list[_Tracked]
    ) -> list[_Candidate]:
        """HOG re-checks, on scaled-up crops, of boxes too small for the full-frame HOG scan: small
        Haar boxes, and small faces of the previous analysed frame (so a small face stays tracked
        in frames where Haar misses it)."""
        hog_min = HOG_WINDOW_PX * 1.2 / (2**self.upsample)

        def uncovered(box: Box) -> bool:
            return box[2] < hog_min and all(overlap(box, c.box) < self.agree_overlap for c in candidates)

        regions = [(p.box, False) for p in previous if uncovered(p.box)]  # tracked faces first
        regions += [
            (b, True)
            for b in sorted(haar, key=lambda b: -b[2])
            if uncovered(b) and all(iou(b, r) < 0.3 for r, _ in regions)
        ]
        found: list[_Candidate] = []
        height, width = rgb.shape[:2]
        for (x, y, w, h), from_haar in regions[: self.max_proposals]:
            x0, y0 = max(int(x - w / 2), 0), max(int(y - h / 2), 0)
            x1, y1 = min(int(x + w * 1.5), width), min(int(y + h * 1.5), height)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            scale = self.proposal_face_px / w
            size = (round((x1 - x0) * scale), round((y1 - y0) * scale))
            crop = cv2.resize(rgb[y0:y1, x0:x1], size, interpolation=cv2.INTER_LINEAR)
            for cand in self._hog_candidates(crop, scale, x0, y0, upsample=0):
                if overlap(cand.box, (x, y, w, h)) >= self.agree_overlap:
                    cand.corroborated = from_haar  # Haar and HOG agree; a tracked box is checked by _decide
                    found.append(cand)
        return found

    def _previous(self, af: AnalysisFrame) -> list[_Tracked]:
        """Faces of the previous analysed frame, if recent enough and of the same lores size."""
        if self._track_time is None or self._track_size != (af.frame.width, af.frame.height):
            return []
        if abs(af.frame.monotonic - self._track_time) > self.track_max_gap:
            return []
        return self._track

    def _decide(self, candidates: list[_Candidate], haar: list[Box], previous: list[_Tracked]) -> list[_Candidate]:
        faces: list[_Candidate] = []
        for cand in sorted(candidates, key=lambda c: -c.score):
            if any(iou(cand.box, f.box) >= 0.3 or overlap(cand.box, f.box) >= 0.8 for f in faces):
                continue  # the same face found twice (full frame and a proposal crop)
            if (
                cand.score >= self.threshold
                or cand.corroborated
                or any(overlap(cand.box, h) >= self.agree_overlap for h in haar)
                or any(iou(cand.box, p.box) >= self.track_iou for p in previous)
            ):
                faces.append(cand)
        faces.sort(key=lambda c: -c.box[2] * c.box[3])
        return faces

    def _encode(self, faces: list[_Candidate], previous: list[_Tracked], now: float) -> None:
        """Encodings as face_recognition ``face_encodings(model="small", num_jitters)`` computes them."""
        if self.encodings == "off":
            return
        todo: list[_Candidate] = []
        for cand in faces:
            reuse = next(
                (
                    p
                    for p in previous
                    if p.encoding and 0 <= now - p.encoded_at <= self.encoding_max_age and iou(cand.box, p.box) >= 0.5
                ),
                None,
            )
            if reuse is not None and self.encoding_max_age > 0:
                cand.encoding, cand.encoded_at = reuse.encoding, reuse.encoded_at
            else:
                todo.append(cand)
        if not todo:
            return
        chips = np.stack(
            [
                self._dlib.get_face_chip(
                    c.image,
                    self._predictor(c.image, _css_to_rect(self._dlib, c.css)),
                    size=models.CHIP_SIZE,
                    padding=models.CHIP_PADDING,
                )
                for c in todo
            ]
        )
        encodings = self._encoder.encode(chips, self.num_jitters)
        for cand, enc in zip(todo, encodings):
            cand.encoding = tuple(float(v) for v in enc)
            cand.encoded_at = now

    def _profiles(self, gray: np.ndarray, faces: list[Box]) -> list[Box]:
        """Profile cascade on the frame and its mirror, merged, minus those overlapping ``faces``."""
        width = gray.shape[1]
        found = self._haar(self._profile, gray, self.profile_scale_factor, self.profile_min_neighbors)
        mirrored = self._haar(self._profile, cv2.flip(gray, 1), self.profile_scale_factor, self.profile_min_neighbors)
        found += [(width - x - w, y, w, h) for x, y, w, h in mirrored]
        found.sort(key=lambda b: -b[2] * b[3])
        return [b for b in _nms(found, 0.3) if all(overlap(b, f) < self.profile_overlap for f in faces)]

    @staticmethod
    def _to_main(box: Box, sx: float, sy: float, af: AnalysisFrame) -> tuple[int, int, int, int]:
        """Lores box -> ``(x, y, w, h)`` main-stream px, clipped to the main frame."""
        x0 = min(max(round(box[0] * sx), 0), af.main_width - 1)
        y0 = min(max(round(box[1] * sy), 0), af.main_height - 1)
        x1 = min(max(round((box[0] + box[2]) * sx), x0 + 1), af.main_width)
        y1 = min(max(round((box[1] + box[3]) * sy), y0 + 1), af.main_height)
        return x0, y0, x1 - x0, y1 - y0
