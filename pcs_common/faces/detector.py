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
4. A HOG detection of the frame is reported when its score reaches ``alone_threshold`` (0.3), or
   when it reaches ``weak_threshold`` *and* is corroborated: a Haar box of a similar size agrees
   with it (:func:`overlap`, widths within 2x), or it overlaps a face reported in the previous
   analysed frame (temporal confirmation, at most ``track_max_gap`` s earlier). A re-check of a
   small Haar box (step 3) is reported only when HOG supports it on its own (score >= ``threshold``,
   dlib's 0) or the previous frame had a face there: the Haar box that asked for it is no second
   opinion. Haar alone never reports a face (it fires on ~19% of face-free frames). Finally the
   same face found twice is kept once, and no box lying mostly (``nested_overlap``) inside a larger
   face is reported.
5. Each reported face gets a 128-d encoding exactly as face_recognition's
   ``face_encodings(img, face_locations(img), num_jitters=1, model="small")`` computes it: css
   ``(top, right, bottom, left)`` trimmed to the image, the 5-point shape predictor on that rect,
   then dlib's ResNet on the 150x150 aligned chip (``dlib.get_face_chip(img, shape, 150, 0.25)``,
   which is what ``compute_face_descriptor(img, shape, num_jitters)`` does inside). By default the
   ResNet runs in a worker process (:class:`~pcs_common.faces.models.EncoderProcess`)
   because it holds the GIL. A face that overlaps (IoU >= 0.5) a face of the previous analysed
   frame encoded less than ``encoding_max_age`` s before, and whose appearance changed by at most
   ``reencode_change`` since (:func:`appearance_change`), reuses that encoding.
6. **Profiles**: ``haarcascade_profileface.xml`` on the Y plane and on its mirror image (the cascade
   only finds faces turned one way), merged, and dropped where they overlap a reported frontal face.
7. **Regions**: while faces or profiles are tracked, only regions around them are searched, and the
   whole frame every ``full_scan_interval`` s (see :class:`FaceDetector`).

The ``haar`` detector (:class:`~pcs_common.faces.haar.HaarFaceDetector`) replaces steps 1-4 by the frontal cascade alone.

Measured with frames built as the service builds them (main 640x480 and 1280x720, lores 320 wide),
analysing every frame and every 6th frame (5 fps of 30): a face is reported in 100% of the frames of
the bundled carphone video (a face in every frame) and in 0-0.4% of the frames of a face-free
street video. For comparison, full-frame Haar: 57% / 19%; full-frame HOG at dlib's threshold:
86-99% / 0-0.4% (the 86% on carphone stretched to 16:9). Cost per analysed frame on one x86-64
core, lores 320x240: HOG 4.4 ms, Haar frontal 11 ms, profiles (2 passes) 42 ms, one encoding 57 ms
(in the worker; reused while a face is tracked) -- ``bench/bench_detection.py``.
"""

from __future__ import annotations

from __future__ import annotations

import threading
import time
from typing import Any

import cv2
import numpy as np

from pcs_common.faces import models
from pcs_common.faces.candidates import (
    Box, Candidate, Encoder, EncoderMode, InlineEncoder, Tracked, appearance_change, appearance_thumb, css_to_box,
    css_to_rect, nms, rect_to_css, suppress_nested, trim_css_to_bounds,
)
from pcs_common.faces.frames import AnalysisFrame
from pcs_common.faces.results import DetectionResult, Face, Profile
from pcs_common.geometry import iou, overlap

#: side of dlib's HOG frontal detector window, px: the smallest face it finds without upsampling
HOG_WINDOW_PX = 80


class FaceDetector:
    """The ``hog`` detector: frontal faces (+ 128-d encodings) and profiles of :class:`AnalysisFrame` s
    (see module doc).

    Thread-safe: :meth:`analyse` calls are serialised by a lock (the temporal state is per
    detector). Models load on first :meth:`analyse` (or :meth:`load`), not in the constructor.

    Which frames are scanned whole: a frame with no face or profile in the previous analysed frame
    is; so is one ``full_scan_interval`` s after the last full scan. In between, only regions
    around the previous frame's faces and profiles (each box grown by ``roi_margin`` of its size on
    every side) are searched, with the same decision rules (step 4 of the module doc).

    Args:
        upsample: HOG pyramid upsampling of the full-frame scan (face_recognition's
            ``number_of_times_to_upsample``, 1 there). Default 0: faces >= 80 lores px, 4.4 ms on
            320x240 (x86-64); 1 finds >= 40 px for 4x the HOG cost. Smaller faces come from the
            re-checks of step 3 either way.
        threshold: HOG score a re-check of a small Haar box (step 3) must reach to count as HOG's
            support of it. Default 0.0, dlib's own threshold. A re-check below it is reported only
            when the previous frame had a face there: the Haar box that asked for the re-check is
            not a second opinion on it.
        alone_threshold: HOG score that reports a face with no other support (no Haar box agrees,
            no face there in the previous frame). Default 0.3: at dlib's 0, high-resolution photos
            give texture boxes (the astronaut photo's suit patch scores 0.03-0.16) while real faces
            score 0.6-1.5 or are confirmed by Haar.
        weak_threshold: lowest HOG score kept as a candidate, reported only when corroborated.
            Default -0.5: the stretched sample face scores -0.4..0.7; face-free frames rarely
            reach -0.5 (0.8% of street frames), and then need corroboration too.
        agree_overlap: :func:`overlap` a Haar box needs with a HOG candidate to corroborate it, and
            that a re-check detection needs with the box it re-checked. Default 0.5.
        nested_overlap: share of a face's box inside a larger reported face above which it is
            dropped (a face never lies inside another face). Default 0.5.
        track_iou: IoU with a face of the previous analysed frame that corroborates a candidate.
            Default 0.3 (a face moves less than that between samples at >= 1 fps).
        track_max_gap: s between two analysed frames beyond which the previous one is ignored.
            Default 2.0 (a Pi Zero 2 W may analyse only ~1-2 frames/s).
        full_scan_interval: s between two whole-frame scans while faces are tracked. Default 1.0:
            a new face elsewhere in the picture is found within 1 s plus one sample. 0 scans every
            frame whole.
        roi_margin: how far around a tracked box the next samples search, in box sizes on each
            side. Default 1.0 (a region 3x the box: a face moving half its width per sample stays
            inside).
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
            (IoU >= 0.5) is reused at most. Default 10.0; 0 recomputes every frame.
        reencode_change: :func:`appearance_change` of a tracked face since its encoding above
            which it is encoded again before ``encoding_max_age``. Default 1.0 (the sample face
            moving and talking, 5 samples/s: 0.2-0.85 from one sample to the next, up to 1.03 from
            its first sample over 4 s; the box's jitter counts too).
        encoder: an :class:`Encoder` to use instead of the one ``encodings`` names.

    Raises:
        ValueError: a parameter is out of range.
    """

    #: the registry name of this detector (:mod:`pcs_common.faces.registry`)
    type_key = "hog"

    def __init__(
        self,
        *,
        upsample: int = 0,
        threshold: float = 0.0,
        alone_threshold: float = 0.3,
        weak_threshold: float = -0.5,
        agree_overlap: float = 0.5,
        nested_overlap: float = 0.5,
        track_iou: float = 0.3,
        track_max_gap: float = 2.0,
        full_scan_interval: float = 1.0,
        roi_margin: float = 1.0,
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
        encoding_max_age: float = 10.0,
        reencode_change: float = 1.0,
        encoder: Encoder | None = None,
    ) -> None:
        if upsample not in (0, 1, 2):
            raise ValueError("upsample must be 0, 1 or 2")
        if weak_threshold > threshold:
            raise ValueError("weak_threshold must not exceed threshold")
        if alone_threshold < weak_threshold:
            raise ValueError("alone_threshold must not be below weak_threshold")
        if min_face_px < 20:
            raise ValueError("min_face_px must be >= 20 (the Haar cascades' 20-24 px windows)")
        if haar_scale_factor <= 1.0 or profile_scale_factor <= 1.0:
            raise ValueError("scale factors must be > 1")
        if encodings not in ("process", "inline", "off"):
            raise ValueError("encodings must be 'process', 'inline' or 'off'")
        if num_jitters < 1:
            raise ValueError("num_jitters must be >= 1")
        if full_scan_interval < 0 or roi_margin < 0:
            raise ValueError("full_scan_interval and roi_margin must be >= 0")
        if not 0 < nested_overlap <= 1:
            raise ValueError("nested_overlap must be in (0, 1]")
        self.upsample = upsample
        self.threshold = threshold
        self.alone_threshold = alone_threshold
        self.weak_threshold = weak_threshold
        self.agree_overlap = agree_overlap
        self.nested_overlap = nested_overlap
        self.track_iou = track_iou
        self.track_max_gap = track_max_gap
        self.full_scan_interval = full_scan_interval
        self.roi_margin = roi_margin
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
        self.reencode_change = reencode_change
        self._encoder: Any = encoder
        self._lock = threading.Lock()
        self._loaded = False
        self._track: list[Tracked] = []
        self._track_profiles: list[Box] = []
        self._track_time: float | None = None
        self._track_size: tuple[int, int] | None = None
        self._last_full: float | None = None
        #: analyses so far that scanned the whole frame / only regions around tracked boxes
        self.full_scans = 0
        self.region_scans = 0
        #: encodings computed so far (not reused)
        self.encodings_computed = 0

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
            self._encoder = models.EncoderProcess() if self.encodings == "process" else InlineEncoder()
        self._loaded = True

    def close(self) -> None:
        """Stop the encoder worker process, if any (idempotent; a later analysis restarts it)."""
        closer = getattr(self._encoder, "close", None)
        if closer is not None:
            closer()

    def reset(self) -> None:
        """Forget the previous frame's faces (temporal confirmation restarts from scratch)."""
        with self._lock:
            self._track, self._track_profiles, self._track_time, self._track_size = [], [], None, None
            self._last_full = None

    # --- analysis ---------------------------------------------------------------------------------

    def analyse(self, af: AnalysisFrame) -> DetectionResult:
        """Detect faces and profiles in one analysis frame.

        Args:
            af: the lores frame (I420, ``(h * 3 // 2, w)`` uint8) and the main-stream size.

        Returns:
            A :class:`DetectionResult` with boxes in main-stream px (``af.main_width`` x
            ``af.main_height``), clipped to the frame. ``timings_ms`` has a ``full_scan`` entry: 1.0
            when the whole frame was scanned, 0.0 when only regions around tracked boxes were.

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

        previous = self._previous(af)
        previous_profiles = self._track_profiles if self._recent(af) else []
        full = (
            self.full_scan_interval <= 0
            or not (previous or previous_profiles)
            or self._last_full is None
            or frame.monotonic - self._last_full >= self.full_scan_interval
        )
        if full:
            candidates, haar = self._full_scan(rgb, gray, previous)
            self._last_full = frame.monotonic
            self.full_scans += 1
        else:
            rois = self._regions([p.box for p in previous] + list(previous_profiles), gray.shape)
            candidates, haar = self._region_scan(rgb, gray, rois)
            self.region_scans += 1
        lap("scan")

        faces = self._decide(candidates, haar, previous)
        self._encode(faces, previous, frame.monotonic, gray)
        lap("encodings")

        profiles: list[Box] = []
        if self._profile is not None:
            if full:
                profiles = self._profiles(gray, [c.box for c in faces])
            else:
                profiles = self._profiles_in(gray, [c.box for c in faces], [p.box for p in previous] + list(previous_profiles))
        lap("profiles")
        timings["full_scan"] = 1.0 if full else 0.0

        self._track = [Tracked(c.box, c.encoding, c.encoded_at, c.thumb) for c in faces]
        self._track_profiles = profiles
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

    # --- scans (overridden by other detectors) ----------------------------------------------------

    def _full_scan(self, rgb: np.ndarray, gray: np.ndarray, previous: list[Tracked]) -> tuple[list[Candidate], list[Box]]:
        """The whole frame: HOG, frontal Haar, and HOG re-checks of small boxes. Returns the
        candidates and the Haar boxes (lores px)."""
        candidates = self._hog_candidates(rgb)
        haar = self._haar(self._frontal, gray, self.haar_scale_factor, self.haar_min_neighbors)
        candidates += self._proposals(rgb, haar, candidates, previous)
        return candidates, haar

    def _region_scan(
        self, rgb: np.ndarray, gray: np.ndarray, rois: list[tuple[int, int, int, int, float]]
    ) -> tuple[list[Candidate], list[Box]]:
        """HOG and frontal Haar inside each ``(x0, y0, x1, y1, face_w)`` region (lores px); a region
        whose face is too small for HOG's window is scaled up so it is ``proposal_face_px`` wide."""
        candidates: list[Candidate] = []
        haar: list[Box] = []
        hog_min = HOG_WINDOW_PX * 1.2 / (2**self.upsample)
        for x0, y0, x1, y1, face_w in rois:
            crop = rgb[y0:y1, x0:x1]
            if face_w < hog_min:
                scale = self.proposal_face_px / max(face_w, 1.0)
                size = (round((x1 - x0) * scale), round((y1 - y0) * scale))
                crop = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR)
                candidates += self._hog_candidates(crop, scale, x0, y0, upsample=0)
            else:
                candidates += self._hog_candidates(np.ascontiguousarray(crop), 1.0, x0, y0)
            haar += [(x + x0, y + y0, w, h) for x, y, w, h in
                     self._haar(self._frontal, gray[y0:y1, x0:x1], self.haar_scale_factor, self.haar_min_neighbors)]
        return candidates, haar

    def _regions(self, boxes: list[Box], shape: tuple[int, ...]) -> list[tuple[int, int, int, int, float]]:
        """``(x0, y0, x1, y1, face_w)`` search regions around ``boxes`` (grown by ``roi_margin`` on
        each side, clipped to the ``(h, w)`` frame); a region mostly inside another is merged into it."""
        height, width = shape[:2]
        out: list[list[float]] = []
        for x, y, w, h in sorted(boxes, key=lambda b: -b[2] * b[3]):
            m = self.roi_margin
            r = [max(x - m * w, 0), max(y - m * h, 0), min(x + w * (1 + m), width), min(y + h * (1 + m), height), w]
            for k in out:
                if overlap((r[0], r[1], r[2] - r[0], r[3] - r[1]), (k[0], k[1], k[2] - k[0], k[3] - k[1])) >= 0.5:
                    k[0], k[1], k[2], k[3], k[4] = min(k[0], r[0]), min(k[1], r[1]), max(k[2], r[2]), max(k[3], r[3]), min(k[4], w)
                    break
            else:
                out.append(r)
        return [(int(a), int(b), int(np.ceil(c)), int(np.ceil(d)), float(fw)) for a, b, c, d, fw in out
                if c - a >= 2 and d - b >= 2]

    def _hog_candidates(self, rgb: np.ndarray, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0,
                        upsample: int | None = None) -> list[Candidate]:
        """HOG detections >= ``weak_threshold`` in ``rgb``, mapped to lores px (``/scale + (dx, dy)``)."""
        rects, scores, _ = self._hog.run(rgb, self.upsample if upsample is None else upsample, self.weak_threshold)
        out = []
        for rect, score in zip(rects, scores):
            css = trim_css_to_bounds(rect_to_css(rect), rgb.shape)
            if css[1] - css[3] <= 0 or css[2] - css[0] <= 0:
                continue
            out.append(Candidate(css_to_box(css, scale, dx, dy), float(score), rgb, css))
        return out

    def _haar(self, cascade: Any, gray: np.ndarray, scale_factor: float, min_neighbors: int) -> list[Box]:
        found = cascade.detectMultiScale(
            gray, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(self.min_face_px, self.min_face_px)
        )
        return [tuple(float(v) for v in b) for b in found]  # type: ignore[misc]

    def _proposals(
        self, rgb: np.ndarray, haar: list[Box], candidates: list[Candidate], previous: list[Tracked]
    ) -> list[Candidate]:
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
        found: list[Candidate] = []
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
                    # HOG must support a Haar proposal on its own (>= threshold), or the previous
                    # frame must: the Haar box that asked for the re-check is not a second opinion
                    cand.proposal = from_haar
                    found.append(cand)
        return found

    def _previous(self, af: AnalysisFrame) -> list[Tracked]:
        """Faces of the previous analysed frame, if recent enough and of the same lores size."""
        if not self._recent(af):
            return []
        return self._track

    def _recent(self, af: AnalysisFrame) -> bool:
        """The previous analysed frame is recent enough (``track_max_gap``) and of the same lores size."""
        if self._track_time is None or self._track_size != (af.frame.width, af.frame.height):
            return False
        return abs(af.frame.monotonic - self._track_time) <= self.track_max_gap

    def _agrees(self, a: Box, b: Box) -> bool:
        """Two boxes of two detectors are the same face: :func:`overlap` >= ``agree_overlap`` and
        widths within a factor of 2 (a face's large Haar box does not confirm a small box at its edge)."""
        return overlap(a, b) >= self.agree_overlap and 0.5 <= a[2] / max(b[2], 1e-6) <= 2.0

    def _supported(self, cand: Candidate, haar: list[Box], previous: list[Tracked]) -> bool:
        """Step 4 of the module doc: does this candidate become a face?"""
        tracked = any(iou(cand.box, p.box) >= self.track_iou for p in previous)
        if cand.proposal:
            return cand.score >= self.threshold or tracked
        if cand.score >= self.alone_threshold or cand.corroborated or tracked:
            return True
        return any(self._agrees(cand.box, h) for h in haar)

    def _decide(self, candidates: list[Candidate], haar: list[Box], previous: list[Tracked]) -> list[Candidate]:
        """The reported faces, largest first: supported candidates (:meth:`_supported`), the same
        face found twice kept once (the higher score), and no box mostly inside a larger face."""
        unique: list[Candidate] = []
        for cand in sorted(candidates, key=lambda c: -c.score):
            if not self._supported(cand, haar, previous):
                continue
            if any(iou(cand.box, f.box) >= 0.3 for f in unique):
                continue  # the same face found twice (full frame and a proposal crop)
            unique.append(cand)
        return suppress_nested(unique, self.nested_overlap)

    def _encode(self, faces: list[Candidate], previous: list[Tracked], now: float, gray: np.ndarray) -> None:
        """Encodings as face_recognition ``face_encodings(model="small", num_jitters)`` computes them.

        A face tracked from the previous frame (IoU >= 0.5) keeps its encoding while it is younger
        than ``encoding_max_age`` s and its appearance changed by at most ``reencode_change``."""
        if self.encodings == "off":
            return
        todo: list[Candidate] = []
        for cand in faces:
            thumb = appearance_thumb(gray, cand.box)
            reuse = next(
                (
                    p
                    for p in previous
                    if p.encoding and 0 <= now - p.encoded_at <= self.encoding_max_age and iou(cand.box, p.box) >= 0.5
                    and appearance_change(thumb, p.thumb) <= self.reencode_change
                ),
                None,
            )
            if reuse is not None and self.encoding_max_age > 0:
                cand.encoding, cand.encoded_at, cand.thumb = reuse.encoding, reuse.encoded_at, reuse.thumb
            else:
                cand.thumb = thumb
                todo.append(cand)
        if not todo:
            return
        chips = np.stack(
            [
                self._dlib.get_face_chip(
                    c.image,
                    self._predictor(c.image, css_to_rect(self._dlib, c.css)),
                    size=models.CHIP_SIZE,
                    padding=models.CHIP_PADDING,
                )
                for c in todo
            ]
        )
        encodings = self._encoder.encode(chips, self.num_jitters)
        self.encodings_computed += len(todo)
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
        return [b for b in nms(found, 0.3) if all(overlap(b, f) < self.profile_overlap for f in faces)]

    def _profiles_in(self, gray: np.ndarray, faces: list[Box], around: list[Box]) -> list[Box]:
        """:meth:`_profiles` only inside the regions around ``around`` (the previous frame's faces and
        profiles: a face turning away is searched where it was)."""
        found: list[Box] = []
        for x0, y0, x1, y1, _ in self._regions(list(around), gray.shape):
            found += [(x + x0, y + y0, w, h) for x, y, w, h in self._profiles(gray[y0:y1, x0:x1], [])]
        found.sort(key=lambda b: -b[2] * b[3])
        return [b for b in nms(found, 0.3) if all(overlap(b, f) < self.profile_overlap for f in faces)]

    @staticmethod
    def _to_main(box: Box, sx: float, sy: float, af: AnalysisFrame) -> tuple[int, int, int, int]:
        """Lores box -> ``(x, y, w, h)`` main-stream px, clipped to the main frame."""
        x0 = min(max(round(box[0] * sx), 0), af.main_width - 1)
        y0 = min(max(round(box[1] * sy), 0), af.main_height - 1)
        x1 = min(max(round((box[0] + box[2]) * sx), x0 + 1), af.main_width)
        y1 = min(max(round((box[1] + box[3]) * sy), y0 + 1), af.main_height)
        return x0, y0, x1 - x0, y1 - y0


__all__ = ["HOG_WINDOW_PX", "FaceDetector"]
