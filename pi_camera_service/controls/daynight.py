"""Day/night decision: two thresholds (hysteresis) and a minimum dwell time, so dusk does not flap.

The scene level is libcamera's ``Lux`` metadata on a Pi camera (an estimate from exposure, gain and
the picture, independent of the exposure chosen) and the mean luma of the unprocessed frame
(0..255) on other sources.

Rule: in day mode, night starts once the level has stayed *below* ``night_threshold`` for
``dwell`` seconds without interruption; in night mode, day returns once it has stayed *above*
``day_threshold`` (> ``night_threshold``) for ``dwell`` seconds. A single reading back on the
other side restarts the count, so clouds, headlights or a person walking past do not switch modes,
and a level hovering between the two thresholds never switches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["day", "night"]


@dataclass
class DayNightSwitch:
    """Hysteresis + dwell state machine; feed it readings with :meth:`update`.

    Args:
        night_threshold: level below which night may start (lux, or luma 0..255).
        day_threshold: level above which day may return; must be > ``night_threshold``.
        dwell: s the level must stay past a threshold before the mode changes (>= 0).
        mode: the starting mode.

    Raises:
        ValueError: ``day_threshold <= night_threshold`` or ``dwell < 0``.
    """

    night_threshold: float
    day_threshold: float
    dwell: float
    mode: Mode = "day"

    def __post_init__(self) -> None:
        self.configure(self.night_threshold, self.day_threshold, self.dwell)
        self._since: float | None = None

    def configure(self, night_threshold: float, day_threshold: float, dwell: float) -> None:
        """Change thresholds and dwell (the pending count restarts).

        Raises:
            ValueError: ``day_threshold <= night_threshold`` or ``dwell < 0``.
        """
        if day_threshold <= night_threshold:
            raise ValueError(
                f"day_threshold ({day_threshold:g}) must be greater than night_threshold ({night_threshold:g})"
            )
        if dwell < 0:
            raise ValueError(f"dwell must be >= 0 s, got {dwell:g}")
        self.night_threshold, self.day_threshold, self.dwell = night_threshold, day_threshold, dwell
        self._since = None

    def update(self, level: float, now: float) -> Mode | None:
        """Take one reading at ``now`` (monotonic s); return the new mode when it changes, else None."""
        crossing = level < self.night_threshold if self.mode == "day" else level > self.day_threshold
        if not crossing:
            self._since = None
            return None
        if self._since is None:
            self._since = now
        if now - self._since >= self.dwell:
            self.mode = "night" if self.mode == "day" else "day"
            self._since = None
            return self.mode
        return None

    @property
    def pending_since(self) -> float | None:
        """Monotonic s since when the level has been past the threshold of the other mode, or None."""
        return self._since
