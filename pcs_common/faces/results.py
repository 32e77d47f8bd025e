"""What a face detector reports for one frame: frontal faces with encodings, profiles, timings.

Boxes are in main-stream px (the analysis happens on the smaller lores frame and is scaled back);
:meth:`DetectionResult.to_dict` is the JSON of the camera's ``GET /v1/detection/latest``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


__all__ = ["DetectionResult", "Face", "Profile"]
