"""Nearest-neighbour matching of 128-d face encodings, in memory.

A face encoding is dlib's ResNet descriptor (what face_recognition's ``face_encodings`` returns and
what the cameras send): 128 numbers. dlib's network computes in float32 and widens its output to
float64, so holding encodings as float32 loses nothing of what a camera sends. Two encodings of the
same person are usually within Euclidean distance 0.6 — face_recognition's default ``tolerance`` for
``compare_faces`` ("0.6 is typical best performance"; lower is stricter). ``CENTRAL_MATCH_TOLERANCE``
sets it here.

:class:`EncodingIndex` holds the encodings in one preallocated, C-contiguous ``(capacity, 128)``
float32 matrix with one label code per row:

- **exact search** (up to ``ann_threshold`` rows): every squared distance at once with one
  matrix-vector product, ``|m|² - 2 m·e`` (the squared row norms are kept), then the winner's distance
  recomputed as ``‖m - e‖`` in float64;
- **approximate search** beyond (faiss ``IndexIVFFlat``, Jégou et al., "Product quantization for
  nearest neighbor search", TPAMI 2011 — the inverted-file part: k-means cells, ``nprobe`` nearest
  cells scanned exactly): the best ``ANN_CANDIDATES`` rows of the scanned cells are re-ranked from the
  float32 matrix. The figures behind the threshold and ``nprobe`` are in docs/performance.md
  (bench/bench_matching.py).

Changes cost O(1) amortised, never a copy of the index: an added row is written past the rows
readers can see, then the new row count is published (the matrix doubles its capacity when full,
copying once per doubling); a removed row becomes a *tombstone* (its squared norm is set to +inf, so
it never wins) and the matrix is compacted when tombstones pass a quarter of the rows; a merge of two
labels rewrites label codes, the labels themselves are a code -> label table. Readers take the
current snapshot without a lock on the exact path (a query never sees a half-written row); the
faiss index, which is not safe to read while it is written, is read under a short lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

#: length of one encoding
ENCODING_SIZE = 128
#: face_recognition's default ``tolerance`` (``compare_faces``), dlib's recommended threshold
DEFAULT_TOLERANCE = 0.6
#: rows from which the approximate (faiss IVF-Flat) search is used; below, exact search stays within
#: 10 ms p95 on one x86-64 core (crossover measured by bench/bench_matching.py, docs/performance.md)
DEFAULT_ANN_THRESHOLD = 150_000
#: IVF cells: ``CELLS_PER_SQRT_N * sqrt(N)`` (faiss's guideline is 4–16·sqrt(N); fewer cells train faster)
CELLS_PER_SQRT_N = 2
#: one IVF cell in this many is scanned per query: recall@1 on matched queries 0.996 at 1M and 0.999 at
#: 100k on clustered encodings (1 in 12: 0.969 at 1M; bench/bench_matching.py, docs/performance.md)
PROBE_DIVISOR = 4
#: ... and at least this many cells (small indexes have few cells)
MIN_PROBE = 8
#: k-means training points per cell (faiss warns below 39)
TRAIN_PER_CELL = 39
#: rows the approximate search returns for exact re-ranking (tombstones among them are skipped)
ANN_CANDIDATES = 8
#: the approximate index is retrained when the live rows grow past this many times its training size
RETRAIN_GROWTH = 4.0
_DTYPE = np.dtype("<f8")
_MIN_CAPACITY = 1024


def encoding_to_bytes(encoding: np.ndarray | Sequence[float]) -> bytes:
    """128 floats -> 1,024 bytes (little-endian float64), the database form.

    Raises:
        ValueError: not exactly 128 finite numbers.
    """
    arr = np.asarray(encoding, dtype=_DTYPE).reshape(-1)
    if arr.shape != (ENCODING_SIZE,) or not np.isfinite(arr).all():
        raise ValueError(f"an encoding is {ENCODING_SIZE} finite numbers")
    return arr.tobytes()


def encoding_from_bytes(data: bytes) -> np.ndarray:
    """1,024 bytes (little-endian float64) -> ``(128,)`` float64 array.

    Raises:
        ValueError: ``data`` is not 1,024 bytes long.
    """
    if len(data) != ENCODING_SIZE * 8:
        raise ValueError(f"a stored encoding is {ENCODING_SIZE * 8} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=_DTYPE).astype(np.float64)


def encodings_from_bytes(blobs: Sequence[bytes]) -> np.ndarray:
    """Many database encodings at once -> ``(N, 128)`` float32 (one join and one conversion, no
    per-row arrays: the start-up load of a million rows).

    Raises:
        ValueError: a blob is not 1,024 bytes long.
    """
    if any(len(b) != ENCODING_SIZE * 8 for b in blobs):
        raise ValueError(f"a stored encoding is {ENCODING_SIZE * 8} bytes")
    if not blobs:
        return np.empty((0, ENCODING_SIZE), np.float32)
    return np.frombuffer(b"".join(blobs), dtype=_DTYPE).reshape(-1, ENCODING_SIZE).astype(np.float32)


@dataclass(frozen=True)
class Match:
    """The nearest row to a query.

    Attributes:
        label: the row's label (person or group id), or None when the index is empty or the nearest
            row is farther than the tolerance.
        distance: Euclidean distance to the nearest row (whatever the tolerance), or None when the
            index is empty.
        nearest: the nearest row's label even when it is beyond the tolerance (None if empty).
    """

    label: str | None
    distance: float | None
    nearest: str | None = None


@dataclass(frozen=True)
class _View:
    """What a reader sees: rows ``[0, n)`` of the arrays (rows past ``n`` may be being written).

    ``matrix`` ``(capacity, 128)`` float32; ``sqnorms`` ``(capacity,)`` float32, +inf for a tombstone;
    ``codes`` ``(capacity,)`` int32 label codes; ``keys`` ``(capacity,)`` int64 row keys, ascending;
    ``ann`` the faiss index (ids = row keys) or None for exact search.
    """

    matrix: np.ndarray
    sqnorms: np.ndarray
    codes: np.ndarray
    keys: np.ndarray
    n: int
    ann: Any = None
    ann_lock: threading.Lock = field(default_factory=threading.Lock)


def _empty_view(capacity: int = 0) -> _View:
    return _View(np.empty((capacity, ENCODING_SIZE), np.float32), np.full(capacity, np.inf, np.float32),
                 np.zeros(capacity, np.int32), np.zeros(capacity, np.int64), 0)


def _rows_of(view: _View, keys: np.ndarray) -> np.ndarray:
    """Rows of ``view`` holding these row keys (keys not among its first ``n`` rows are left out)."""
    if not view.n or not len(keys):
        return np.empty(0, np.intp)
    rows = np.minimum(np.searchsorted(view.keys[:view.n], keys), view.n - 1)
    return rows[view.keys[rows] == keys]


class EncodingIndex:
    """Labelled 128-d encodings searchable by Euclidean distance; thread-safe (see the module doc).

    Args:
        tolerance: largest distance that counts as a match (default 0.6, see module doc).
        ann_threshold: live rows from which the faiss IVF-Flat search is used (0: never).
        probe_divisor: one IVF cell in this many is scanned per approximate query.

    Raises:
        ValueError: ``tolerance`` is not > 0, ``ann_threshold`` < 0 or ``probe_divisor`` < 1.
    """

    def __init__(self, tolerance: float = DEFAULT_TOLERANCE, ann_threshold: int = DEFAULT_ANN_THRESHOLD,
                 probe_divisor: int = PROBE_DIVISOR) -> None:
        if not tolerance > 0:
            raise ValueError("tolerance must be > 0")
        if ann_threshold < 0 or probe_divisor < 1:
            raise ValueError("ann_threshold must be >= 0 and probe_divisor >= 1")
        self.tolerance = float(tolerance)
        self.ann_threshold = int(ann_threshold)
        self.probe_divisor = int(probe_divisor)
        self._lock = threading.Lock()  # writers
        self._view = _empty_view()
        self._names: list[str] = []  # code -> label (a merged label's old code names the new label)
        self._code: dict[str, int] = {}  # label -> its current code
        self._counts: dict[int, int] = {}  # code -> live rows
        self._next_key = 0
        self._dead = 0
        self._ann_trained = 0

    # --- reading ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Live rows."""
        return self._view.n - self._dead

    @property
    def approximate(self) -> bool:
        """True while queries use the faiss index (live rows >= ``ann_threshold``)."""
        return self._view.ann is not None

    def count(self, label: str) -> int:
        """Live rows labelled ``label``."""
        code = self._code.get(label)
        return 0 if code is None else self._counts.get(code, 0)

    def labels(self) -> set[str]:
        """Every label with at least one live row."""
        return {self._names[c] for c, k in self._counts.items() if k}

    def memory_bytes(self) -> int:
        """Bytes held by the arrays and the faiss index (capacity included), not the label table."""
        v = self._view
        total = v.matrix.nbytes + v.sqnorms.nbytes + v.codes.nbytes + v.keys.nbytes
        if v.ann is not None:
            total += v.ann.ntotal * (ENCODING_SIZE * 4 + 8) + v.ann.nlist * ENCODING_SIZE * 4
        return total

    def nearest(self, encoding: np.ndarray | Sequence[float], tolerance: float | None = None) -> Match:
        """The nearest row to ``encoding`` and whether it is within ``tolerance`` (default the index's).

        Args:
            encoding: ``(128,)`` float (float64 or float32).

        Returns:
            A :class:`Match`; ``label`` is None when nothing is within the tolerance. In approximate
            mode the nearest row is the best of the ``nprobe`` scanned cells (recall@1 in
            docs/performance.md); its distance is exact.

        Raises:
            ValueError: ``encoding`` is not 128 finite numbers.
        """
        query = np.asarray(encoding, dtype=np.float64).reshape(-1)
        if query.shape != (ENCODING_SIZE,) or not np.isfinite(query).all():
            raise ValueError(f"an encoding is {ENCODING_SIZE} finite numbers")
        view = self._view
        best = self._best_approximate(view, query) if view.ann is not None else None
        if best is None:
            best = self._best_exact(view, query)
        if best is None:
            return Match(None, None, None)
        distance = float(np.linalg.norm(view.matrix[best].astype(np.float64) - query))
        limit = self.tolerance if tolerance is None else tolerance
        label = self._names[int(view.codes[best])]
        return Match(label if distance <= limit else None, distance, label)

    @staticmethod
    def _best_exact(view: _View, query: np.ndarray) -> int | None:
        if not view.n:
            return None
        squared = view.sqnorms[:view.n] - 2.0 * (view.matrix[:view.n] @ query.astype(np.float32))
        best = int(np.argmin(squared))
        return best if np.isfinite(squared[best]) else None  # every row a tombstone

    @staticmethod
    def _best_approximate(view: _View, query: np.ndarray) -> int | None:
        """Best live candidate of the faiss search, as a row of ``view``; None to fall back to exact
        search (every candidate was a tombstone, a rare case after mass removals)."""
        q32 = query.astype(np.float32)[None, :]
        with view.ann_lock:
            _, ids = view.ann.search(q32, ANN_CANDIDATES)
        ids = ids[0][ids[0] >= 0]
        if not len(ids):
            return None
        rows = _rows_of(view, ids)
        rows = rows[np.isfinite(view.sqnorms[rows])]
        if not len(rows):
            return None
        dists = ((view.matrix[rows].astype(np.float64) - query) ** 2).sum(axis=1)
        return int(rows[int(np.argmin(dists))])

    # --- writing ------------------------------------------------------------------------------------

    @staticmethod
    def _check(encodings: np.ndarray | Sequence[Sequence[float]], labels: Sequence[str]) -> np.ndarray:
        if not len(labels):
            return np.empty((0, ENCODING_SIZE), np.float32)
        matrix = np.asarray(encodings, dtype=np.float32).reshape(-1, ENCODING_SIZE)
        if matrix.shape[0] != len(labels):
            raise ValueError(f"{matrix.shape[0]} encodings for {len(labels)} labels")
        if not np.isfinite(matrix).all():
            raise ValueError("encodings must be finite")
        return matrix

    def _codes_for(self, labels: Sequence[str]) -> np.ndarray:
        out = np.empty(len(labels), np.int32)
        code, names = self._code, self._names
        for i, label in enumerate(labels):
            c = code.get(label)
            if c is None:
                c = code[label] = len(names)
                names.append(label)
            out[i] = c
        return out

    def replace(self, encodings: np.ndarray | Sequence[Sequence[float]], labels: Sequence[str]) -> None:
        """Make the index exactly these rows (the full rebuild at start-up and after a reload; O(N),
        plus the faiss training when N >= ``ann_threshold``).

        Args:
            encodings: ``(N, 128)`` float32 or float64 (or nested sequences).
            labels: N labels, one per row.

        Raises:
            ValueError: shapes disagree or a value is not finite.
        """
        matrix = self._check(encodings, labels)
        with self._lock:
            self._names, self._code, self._counts = [], {}, {}
            codes = self._codes_for(list(labels))
            uniq, counts = np.unique(codes, return_counts=True)
            self._counts = dict(zip(uniq.tolist(), counts.tolist()))
            n = len(codes)
            view = _empty_view(max(_MIN_CAPACITY, n + n // 8))  # room for growth without a copy
            view.matrix[:n] = matrix
            view.sqnorms[:n] = np.einsum("ij,ij->i", matrix, matrix)
            view.codes[:n] = codes
            view.keys[:n] = np.arange(n)
            self._next_key, self._dead = n, 0
            self._publish(view, n)

    def _publish(self, view: _View, n: int, ann: Any = "keep") -> None:
        """Publish ``view``'s arrays with ``n`` rows, (re)building the faiss index when the live row
        count asks for it. Call under ``_lock``."""
        live = n - self._dead
        if ann == "keep":
            ann = view.ann
            if live < self.ann_threshold // 2 or not self.ann_threshold:
                ann = None  # well below the threshold again: exact search (hysteresis)
            elif live >= self.ann_threshold and (ann is None or live > RETRAIN_GROWTH * self._ann_trained):
                ann = self._build_ann(view, n)
        self._view = _View(view.matrix, view.sqnorms, view.codes, view.keys, n, ann,
                           view.ann_lock if ann is view.ann else threading.Lock())

    def _build_ann(self, view: _View, n: int) -> Any:
        """A faiss ``IndexIVFFlat`` (L2) over the live rows of ``view``, ids = row keys:
        ``CELLS_PER_SQRT_N * sqrt(N)`` cells trained by k-means on ``TRAIN_PER_CELL`` points per cell,
        one cell in ``probe_divisor`` (at least ``MIN_PROBE``) scanned per query."""
        import faiss

        alive = np.flatnonzero(np.isfinite(view.sqnorms[:n]))
        data = np.ascontiguousarray(view.matrix[alive])
        nlist = int(min(4096, CELLS_PER_SQRT_N * np.sqrt(len(alive)), max(1, len(alive) // TRAIN_PER_CELL)))
        quantizer = faiss.IndexFlatL2(ENCODING_SIZE)
        index = faiss.IndexIVFFlat(quantizer, ENCODING_SIZE, nlist, faiss.METRIC_L2)
        sample = data if len(data) <= TRAIN_PER_CELL * nlist else \
            data[np.random.default_rng(0).choice(len(data), TRAIN_PER_CELL * nlist, replace=False)]
        index.train(sample)
        index.add_with_ids(data, view.keys[alive])
        index.nprobe = min(nlist, max(MIN_PROBE, nlist // self.probe_divisor))
        self._ann_trained = len(alive)
        return index

    def add(self, encodings: np.ndarray | Sequence[Sequence[float]], labels: Sequence[str]) -> np.ndarray:
        """Append rows: O(1) amortised per row (written past what readers see, then published; the
        matrix doubles when full).

        Returns:
            ``(k,)`` int64 row keys, for :meth:`remove_keys`.

        Raises:
            ValueError: as :meth:`replace`.
        """
        extra = self._check(encodings, labels)
        k = len(extra)
        if not k:
            return np.empty(0, np.int64)
        with self._lock:
            view, n = self._view, self._view.n
            if n + k > len(view.matrix):
                view = self._grown(view, n, max(2 * len(view.matrix), n + k, _MIN_CAPACITY))
            codes = self._codes_for(list(labels))
            keys = np.arange(self._next_key, self._next_key + k, dtype=np.int64)
            self._next_key += k
            view.matrix[n:n + k] = extra
            view.codes[n:n + k] = codes
            view.keys[n:n + k] = keys
            view.sqnorms[n:n + k] = np.einsum("ij,ij->i", extra, extra)
            for c in codes.tolist():
                self._counts[c] = self._counts.get(c, 0) + 1
            if view.ann is not None:
                with view.ann_lock:
                    view.ann.add_with_ids(extra, keys)
            self._publish(view, n + k)
            return keys

    @staticmethod
    def _grown(view: _View, n: int, capacity: int) -> _View:
        """A copy of ``view``'s first ``n`` rows in arrays of ``capacity`` rows (same faiss index)."""
        new = _empty_view(capacity)
        new.matrix[:n] = view.matrix[:n]
        new.sqnorms[:n] = view.sqnorms[:n]
        new.codes[:n] = view.codes[:n]
        new.keys[:n] = view.keys[:n]
        return _View(new.matrix, new.sqnorms, new.codes, new.keys, n, view.ann, view.ann_lock)

    def _tombstone(self, view: _View, rows: np.ndarray) -> int:
        """Mark live ``rows`` of ``view`` dead; returns how many were live. Call under ``_lock``."""
        rows = rows[np.isfinite(view.sqnorms[rows])]
        if not len(rows):
            return 0
        view.sqnorms[rows] = np.inf  # readers skip them from now on
        for c, k in zip(*np.unique(view.codes[rows], return_counts=True)):
            self._counts[int(c)] -= int(k)
        self._dead += len(rows)
        return len(rows)

    def _after_removal(self) -> None:
        """Compact when tombstones exceed a quarter of the rows (amortised O(1) per removal), else
        publish the new live count. Call under ``_lock``."""
        view, n = self._view, self._view.n
        if self._dead > max(_MIN_CAPACITY, n // 4):
            alive = np.flatnonzero(np.isfinite(view.sqnorms[:n]))
            m = len(alive)
            new = _empty_view(max(_MIN_CAPACITY, 2 * m))
            new.matrix[:m] = view.matrix[alive]
            new.sqnorms[:m] = view.sqnorms[alive]
            new.codes[:m] = view.codes[alive]
            new.keys[:m] = view.keys[alive]  # still ascending: key lookups stay a binary search
            self._dead = 0
            rebuild = view.ann is not None and m >= self.ann_threshold
            self._publish(new, m, ann=self._build_ann(new, m) if rebuild else None)
            if not rebuild:
                self._publish(self._view, m)  # may (re)enter approximate mode by the usual rule
        else:
            self._publish(view, n)

    def remove(self, labels: Iterable[str]) -> None:
        """Drop every row whose label is in ``labels`` (tombstones: one vectorised scan of the label
        codes, about 1 ms per million rows; no copy until compaction)."""
        with self._lock:
            codes = [self._code[label] for label in set(labels) if label in self._code]
            if not codes:
                return
            view = self._view
            rows = np.flatnonzero(np.isin(view.codes[:view.n], codes))
            if self._tombstone(view, rows):
                self._after_removal()

    def remove_keys(self, keys: Iterable[int]) -> None:
        """Drop the rows with these keys (as returned by :meth:`add`); unknown keys are ignored.
        O(log N) per key (binary search of the ascending keys)."""
        wanted = np.asarray(list(keys), dtype=np.int64)
        if not len(wanted):
            return
        with self._lock:
            view = self._view
            if self._tombstone(view, _rows_of(view, wanted)):
                self._after_removal()

    def relabel(self, old_label: str, new_label: str) -> None:
        """Give ``old_label``'s rows the label ``new_label`` (a merge of two people): O(1) through the
        code table when ``new_label`` has no rows yet, else one vectorised rewrite of the codes."""
        with self._lock:
            old = self._code.pop(old_label, None)
            if old is None or old_label == new_label:
                if old is not None:
                    self._code[old_label] = old
                return
            self._names[old] = new_label  # readers of either code see the new label from now on
            new = self._code.get(new_label)
            if new is None:
                self._code[new_label] = old
                return
            view = self._view
            codes = view.codes[:view.n]
            codes[codes == old] = new
            self._counts[new] = self._counts.get(new, 0) + self._counts.pop(old, 0)


def match(index: EncodingIndex, encoding: np.ndarray | Sequence[float]) -> tuple[str | None, float | None]:
    """``(person_id | None, distance)``: the enrolled encoding nearest to ``encoding`` in ``index``;
    the person when within the index's tolerance, else None (unknown). ``distance`` is None only when
    nothing is enrolled.

    Raises:
        ValueError: ``encoding`` is not 128 finite numbers.
    """
    found = index.nearest(encoding)
    return found.label, found.distance
