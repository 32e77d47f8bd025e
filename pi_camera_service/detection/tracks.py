"""Per-person tracks over consecutive detection results, so a face seen 5 times a second becomes one
``appeared`` event and then an ``updated`` event at most every ``update_interval`` s.

Pure logic (no camera, no clock of its own: times are the results' ``frame_timestamp``, s since the
epoch). Each result's frontal faces and profiles are *observations*; an observation continues a
track when its box overlaps the track's last box (IoU >= ``iou_threshold``) or, for two frontal
faces with encodings, when the encodings are closer than ``encoding_threshold`` (Euclidean distance,
0.6 is face_recognition's "same person" tolerance). Matching is greedy, best pairs first, one
observation per track. An observation matching no track starts a new one (event ``appeared``). A track
not seen for ``end_after`` s ends silently; the same person coming back later is a new track.

Example::

    tracker = FaceTracker(update_interval=30)
    for result in results:
        for event in tracker.update(result):
            ...  # event.track_id, event.event ("appeared" | "updated"), event.face or event.profile
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Literal

from pcs_common.faces.results import DetectionResult, Face, Profile
from pcs_common.geometry import iou

EventKind = Literal["appeared", "updated"]

BoxPx = tuple[int, int, int, int]
"""(x, y, width, height) in main-stream px."""


def encoding_distance(a: tuple[float, ...] | list[float], b: tuple[float, ...] | list[float]) -> float:
    """Euclidean distance of two encodings of equal length (``inf`` when either is empty or the
    lengths differ)."""
    if not a or not b or len(a) != len(b):
        return math.inf
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


@dataclass(frozen=True)
class TrackEvent:
    """One event to report for a track.

    Attributes:
        track_id: 32 hex characters, stable for the track's life.
        event: ``appeared`` (first sighting) or ``updated``.
        result: the detection result it comes from (its ``frame_timestamp`` is the capture time).
        face: the track's frontal face in that result, or None.
        profile: the track's profile face in that result (when ``face`` is None), or None.
    """

    track_id: str
    event: EventKind
    result: DetectionResult
    face: Face | None = None
    profile: Profile | None = None

    @property
    def box(self) -> BoxPx:
        """The observation's box, main-stream px."""
        obs = self.face if self.face is not None else self.profile
        assert obs is not None
        return obs.x, obs.y, obs.width, obs.height


@dataclass
class _Track:
    track_id: str
    box: BoxPx
    encoding: tuple[float, ...]
    first_seen: float
    last_seen: float
    last_emitted: float
    events: int = 0
    hits: int = field(default=1)


class FaceTracker:
    """Associates faces across results and rate-limits the events (see the module docstring).

    Not thread-safe: call :meth:`update` from one thread (the detection listener's).

    Args:
        update_interval: shortest time between two events of one track, s (> 0).
        end_after: a track unseen this long ends, s (> 0).
        iou_threshold: least box IoU for "same track", 0..1.
        encoding_threshold: encodings closer than this are "same person".

    Raises:
        ValueError: a non-positive interval or a threshold out of range.
    """

    def __init__(self, update_interval: float = 30.0, end_after: float = 5.0, iou_threshold: float = 0.3,
                 encoding_threshold: float = 0.6) -> None:
        if not update_interval > 0 or not end_after > 0:
            raise ValueError("update_interval and end_after must be > 0 s")
        if not 0 < iou_threshold <= 1 or not encoding_threshold > 0:
            raise ValueError("iou_threshold must be in (0, 1] and encoding_threshold > 0")
        self.update_interval = float(update_interval)
        self.end_after = float(end_after)
        self.iou_threshold = float(iou_threshold)
        self.encoding_threshold = float(encoding_threshold)
        self._tracks: list[_Track] = []
        self.tracks_started = 0

    @property
    def active_tracks(self) -> int:
        """Tracks alive after the latest :meth:`update`."""
        return len(self._tracks)

    def update(self, result: DetectionResult) -> list[TrackEvent]:
        """Feed one result; returns the events to report for it (often none).

        Results must come in capture order; one whose ``frame_timestamp`` is older than the previous
        one's is still associated but never ends a track early.
        """
        now = result.frame_timestamp
        self._tracks = [t for t in self._tracks if now - t.last_seen <= self.end_after]
        observations: list[Face | Profile] = [*result.faces, *result.profiles]
        pairs: list[tuple[float, int, int]] = []
        for oi, obs in enumerate(observations):
            box = (obs.x, obs.y, obs.width, obs.height)
            enc = obs.encoding if isinstance(obs, Face) else ()
            for ti, track in enumerate(self._tracks):
                overlap = iou(box, track.box)
                distance = encoding_distance(enc, track.encoding)
                if distance < self.encoding_threshold:
                    score = 2.0 - distance  # an encoding match beats any overlap
                elif overlap >= self.iou_threshold:
                    score = overlap
                else:
                    continue
                pairs.append((score, oi, ti))
        pairs.sort(reverse=True)
        matched_obs: dict[int, int] = {}
        used_tracks: set[int] = set()
        for _, oi, ti in pairs:
            if oi in matched_obs or ti in used_tracks:
                continue
            matched_obs[oi] = ti
            used_tracks.add(ti)
        events: list[TrackEvent] = []
        for oi, obs in enumerate(observations):
            box = (obs.x, obs.y, obs.width, obs.height)
            face = obs if isinstance(obs, Face) else None
            profile = obs if isinstance(obs, Profile) else None
            ti = matched_obs.get(oi)
            if ti is None:
                track = _Track(uuid.uuid4().hex, box, face.encoding if face else (), now, now, now)
                self._tracks.append(track)
                self.tracks_started += 1
                track.events += 1
                events.append(TrackEvent(track.track_id, "appeared", result, face, profile))
                continue
            track = self._tracks[ti]
            track.box = box
            track.last_seen = max(track.last_seen, now)
            track.hits += 1
            if face is not None and face.encoding:
                track.encoding = face.encoding
            if now - track.last_emitted >= self.update_interval:
                track.last_emitted = now
                track.events += 1
                events.append(TrackEvent(track.track_id, "updated", result, face, profile))
        return events
