"""Failure counters that slow down guessing: logins, setup passwords and pairing codes.

Counting uses the ``limits`` library's moving-window strategy in process memory (one central server
process; the windows restart with the process, which only ever makes it more lenient for a moment).
A key is refused once its failures in the window reach the limit, until the oldest one leaves it.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class FailureLimiter:
    """Named failure budgets, e.g. ``{"login-user": "5/15 minutes", "login-address": "20/15 minutes"}``.

    Each rule is a ``limits`` rate string (``N/<period>``) applied per key (a username, an address).

    Raises:
        ValueError: on construction, a rule string ``limits`` cannot parse.
    """

    def __init__(self, rules: dict[str, str]) -> None:
        self._rules: dict[str, RateLimitItem] = {name: parse(rule) for name, rule in rules.items()}
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, rule: str, key: str) -> int | None:
        """Seconds until ``key`` may try again under ``rule``, or None while it is within budget."""
        item = self._rules[rule]
        if self._limiter.test(item, rule, key):
            return None
        reset = self._limiter.get_window_stats(item, rule, key).reset_time
        return max(1, math.ceil(reset - time.time()))

    def first_exceeded(self, checks: list[tuple[str, str]]) -> tuple[str, int] | None:
        """The first ``(rule, retry_after_s)`` among ``[(rule, key), ...]`` that is out of budget."""
        for rule, key in checks:
            wait = self.retry_after(rule, key)
            if wait is not None:
                return rule, wait
        return None

    def record(self, checks: list[tuple[str, str]]) -> None:
        """Count one failure for each ``(rule, key)``."""
        for rule, key in checks:
            self._limiter.hit(self._rules[rule], rule, key)

    def clear(self, rule: str, key: str) -> None:
        """Forget ``key``'s failures under ``rule`` (after a successful login)."""
        self._limiter.clear(self._rules[rule], rule, key)

    def remaining(self, rule: str, key: str) -> int:
        """Failures ``key`` may still make under ``rule`` in the current window."""
        return self._limiter.get_window_stats(self._rules[rule], rule, key).remaining
