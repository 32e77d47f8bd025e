"""Nearest-neighbour matching of 128-d face encodings, in memory.

A face encoding is dlib's ResNet descriptor (what face_recognition's ``face_encodings`` returns and
what the cameras send): 128 float64. Two encodings of the same person are usually within Euclidean
distance 0.6 — face_recognition's default ``tolerance`` for ``compare_faces`` ("0.6 is typical best
performance"; lower is stricter). ``CENTRAL_MATCH_TOLERANCE`` sets it here.

:class:`EncodingIndex` holds an ``(N, 128)`` float64 matrix and one label per row (a person id, or an
unknown-group id). A query computes every squared distance at once with one matrix-vector product,
``|m|² - 2 m·e + |e|²`` (the squared norms of the rows are kept), then recomputes the winner's
distance exactly as ``‖m - e‖``: 3.4 ms for 100,000 rows on one x86-64 core (bench/bench_matching.py).

Writers build new arrays and swap them in under a lock; readers take the current pair of arrays
without locking, so a query never sees a half-updated index.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

#: length of one encoding
ENCODING_SIZE = 128
#: face_recognition's default ``tolerance`` (``compare_faces``), dlib's recommended threshold
DEFAULT_TOLERANCE = 0.6
_DTYPE = np.dtype("<f8")


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


class EncodingIndex:
    """Labelled encodings (``(N, 128)`` float64) searchable by Euclidean distance; thread-safe.

    Args:
        tolerance: largest distance that counts as a match (default 0.6, see module doc).

    Raises:
        ValueError: ``tolerance`` is not > 0.
    """

    def __init__(self, tolerance: float = DEFAULT_TOLERANCE) -> None:
        if not tolerance > 0:
            raise ValueError("tolerance must be > 0")
        self.tolerance = float(tolerance)
        self._lock = threading.Lock()
        self._snapshot: tuple[np.ndarray, np.ndarray, np.ndarray] = (
            np.empty((0, ENCODING_SIZE)), np.empty(0), np.empty(0, dtype=object))

    def __len__(self) -> int:
        return len(self._snapshot[2])

    @staticmethod
    def _check(encodings: np.ndarray | Sequence[Sequence[float]], labels: Sequence[str]) -> np.ndarray:
        matrix = np.asarray(encodings, dtype=np.float64).reshape(-1, ENCODING_SIZE) if len(labels) else \
            np.empty((0, ENCODING_SIZE))
        if matrix.shape[0] != len(labels):
            raise ValueError(f"{matrix.shape[0]} encodings for {len(labels)} labels")
        if not np.isfinite(matrix).all():
            raise ValueError("encodings must be finite")
        return matrix

    def _publish(self, matrix: np.ndarray, labels: np.ndarray) -> None:
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        self._snapshot = (matrix, np.einsum("ij,ij->i", matrix, matrix), labels)

    def replace(self, encodings: np.ndarray | Sequence[Sequence[float]], labels: Sequence[str]) -> None:
        """Make the index exactly these rows.

        Args:
            encodings: ``(N, 128)`` float64 (or nested sequences).
            labels: N labels, one per row.

        Raises:
            ValueError: shapes disagree or a value is not finite.
        """
        matrix = self._check(encodings, labels)
        with self._lock:
            self._publish(matrix, np.array(list(labels), dtype=object))

    def add(self, encodings: np.ndarray | Sequence[Sequence[float]], labels: Sequence[str]) -> None:
        """Append rows (O(N) copy: the arrays are rebuilt so readers keep a consistent snapshot).

        Raises:
            ValueError: as :meth:`replace`.
        """
        extra = self._check(encodings, labels)
        if not len(labels):
            return
        with self._lock:
            matrix, _, old = self._snapshot
            self._publish(np.vstack([matrix, extra]), np.concatenate([old, np.array(list(labels), dtype=object)]))

    def remove(self, labels: Iterable[str]) -> None:
        """Drop every row whose label is in ``labels``."""
        gone = set(labels)
        with self._lock:
            matrix, _, old = self._snapshot
            keep = np.array([label not in gone for label in old], dtype=bool)
            self._publish(matrix[keep], old[keep])

    def relabel(self, old_label: str, new_label: str) -> None:
        """Give ``old_label``'s rows the label ``new_label`` (a merge of two people)."""
        with self._lock:
            matrix, _, labels = self._snapshot
            labels = labels.copy()
            labels[labels == old_label] = new_label
            self._publish(matrix, labels)

    def count(self, label: str) -> int:
        """Rows labelled ``label``."""
        return int(np.count_nonzero(self._snapshot[2] == label))

    def nearest(self, encoding: np.ndarray | Sequence[float], tolerance: float | None = None) -> Match:
        """The nearest row to ``encoding`` and whether it is within ``tolerance`` (default the index's).

        Args:
            encoding: ``(128,)`` float64.

        Returns:
            A :class:`Match`; ``label`` is None when nothing is within the tolerance.

        Raises:
            ValueError: ``encoding`` is not 128 finite numbers.
        """
        query = np.asarray(encoding, dtype=np.float64).reshape(-1)
        if query.shape != (ENCODING_SIZE,) or not np.isfinite(query).all():
            raise ValueError(f"an encoding is {ENCODING_SIZE} finite numbers")
        matrix, sqnorms, labels = self._snapshot
        if not len(labels):
            return Match(None, None, None)
        squared = sqnorms - 2.0 * (matrix @ query)  # + |e|², the same for every row
        best = int(np.argmin(squared))
        distance = float(np.linalg.norm(matrix[best] - query))  # exact, no cancellation error
        limit = self.tolerance if tolerance is None else tolerance
        label = str(labels[best])
        return Match(label if distance <= limit else None, distance, label)


def match(index: EncodingIndex, encoding: np.ndarray | Sequence[float]) -> tuple[str | None, float | None]:
    """``(person_id | None, distance)``: the enrolled encoding nearest to ``encoding`` in ``index``;
    the person when within the index's tolerance, else None (unknown). ``distance`` is None only when
    nothing is enrolled.

    Raises:
        ValueError: ``encoding`` is not 128 finite numbers.
    """
    found = index.nearest(encoding)
    return found.label, found.distance
