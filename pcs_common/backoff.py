"""Retry delays shared by every reconnecting loop of both services.

One back-off policy (capped exponential with "equal jitter", as described in the AWS Architecture Blog's
"Exponential Backoff And Jitter", 2015) for the central link, the outbox sender and the RTSP publishers,
so that a fleet of cameras does not hit a restarted server at the same instant.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Capped exponential backoff with jitter ("equal jitter").

    The n-th delay (n from 0) is drawn uniformly from ``[d/2, d]`` with ``d = min(cap, initial * 2**n)``,
    so retries spread out (many cameras do not hit a restarted server at the same instant) and never
    come quicker than half the nominal delay.

    Args:
        initial: nominal first delay, s (> 0).
        cap: longest nominal delay, s (>= ``initial``).
        rng: ``() -> float in [0, 1)`` (``random.random``; tests may pass a fixed one).

    Raises:
        ValueError: ``initial`` <= 0 or ``cap`` < ``initial``.
    """

    def __init__(self, initial: float = 1.0, cap: float = 300.0, rng: Callable[[], float] = random.random) -> None:
        if initial <= 0 or cap < initial:
            raise ValueError(f"need 0 < initial <= cap, got initial={initial}, cap={cap}")
        self.initial = float(initial)
        self.cap = float(cap)
        self._rng = rng
        self.failures = 0

    def next_delay(self) -> float:
        """The next delay, s; counts one more failure."""
        nominal = min(self.cap, self.initial * 2 ** min(self.failures, 62))
        self.failures += 1
        return nominal / 2 + self._rng() * nominal / 2

    def reset(self) -> None:
        """Back to the first delay (after a success)."""
        self.failures = 0
