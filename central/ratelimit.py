"""Attempt budgets that slow down guessing: logins, setup passwords, pairing codes and code requests.

Every budget is a ``limits`` rate string (``N/<period>``, e.g. ``"5/15 minutes"``) applied per key (an
address, a ``username|address`` pair, a username, ...). The counters live in the database
(:class:`central.models.RateLimitCounter`), so one budget holds across the threads of a process *and*
across several central server processes sharing one PostgreSQL database.

Atomicity: an attempt is *reserved* before the work it guards (the argon2 verification, the code
lookup) with one ``INSERT ... ON CONFLICT DO UPDATE SET count = count + 1 RETURNING count``: the
database hands every concurrent request a distinct count, so exactly the budget gets through however
many requests arrive together (a check-then-record scheme lets all concurrent requests pass the check
before any records). A request over the budget gives its reservation back at once, so refused requests
do not consume budget; a successful login gives it back too (see :meth:`AttemptLimiter.release`).

Counting uses the sliding-window approximation of two fixed windows (the previous window's count
weighted by how much of it still overlaps the sliding window, plus the current window's count), as
described in Cloudflare's "How we built rate limiting capable of scaling to millions of domains"
(2017): memory is two counters per key, and a burst at a window boundary cannot double the budget as
with plain fixed windows.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from limits import parse
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from central.models import RateLimitCounter
from pcs_common.service_errors import TooManyRequests


@dataclass(frozen=True)
class Budget:
    """``limit`` attempts per sliding ``period_s`` seconds."""

    limit: int
    period_s: int


def _key_digest(key: str) -> str:
    """Keys are stored as SHA-256 hex: bounded length, and no usernames or addresses in clear."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _upsert(dialect: str):  # noqa: ANN202 - a dialect-specific Insert construct
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


class AttemptLimiter:
    """Named attempt budgets kept in the database, e.g. ``{"login-pair": "5/15 minutes"}``.

    Args:
        sessions: the server's session factory (each call runs its own short transaction).
        rules: rule name (at most 32 characters) → ``limits`` rate string.
        clock: ``() -> float`` seconds since the epoch (tests may pass another).

    Raises:
        ValueError: on construction, a rule string ``limits`` cannot parse or a name too long.
    """

    def __init__(self, sessions: sessionmaker[Session], rules: dict[str, str], clock=time.time) -> None:  # noqa: ANN001
        self._sessions = sessions
        self._clock = clock
        self.budgets: dict[str, Budget] = {}
        for name, rule in rules.items():
            if len(name) > 32:
                raise ValueError(f"rule name {name!r} is longer than 32 characters")
            item = parse(rule)
            self.budgets[name] = Budget(int(item.amount), int(item.get_expiry()))

    # ------------------------------------------------------------------ internals
    def _window(self, rule: str, now: float) -> tuple[Budget, int, float]:
        budget = self.budgets[rule]
        start = int(now // budget.period_s) * budget.period_s
        return budget, start, (now - start) / budget.period_s

    def _count(self, db: Session, rule: str, key: str, window_start: int) -> int:
        return db.scalar(select(RateLimitCounter.count).where(
            RateLimitCounter.rule == rule, RateLimitCounter.key == key,
            RateLimitCounter.window_start == window_start)) or 0

    def _add(self, db: Session, rule: str, key: str, window_start: int, delta: int) -> int:
        insert = _upsert(db.get_bind().dialect.name)
        stmt = insert(RateLimitCounter).values(rule=rule, key=key, window_start=window_start, count=max(delta, 0))
        stmt = stmt.on_conflict_do_update(
            index_elements=["rule", "key", "window_start"], set_={"count": RateLimitCounter.count + delta}
        ).returning(RateLimitCounter.count)
        return int(db.execute(stmt).scalar_one())

    @staticmethod
    def _retry_after(budget: Budget, previous: int, current: int, elapsed: float) -> int:
        """Seconds until one more attempt fits, given ``current`` counted attempts (own one excluded).

        At most ``period``: in the sliding window the approximation stands for, every counted attempt
        has left it one period after the last one (the two-window estimate alone can exceed that by
        up to ``period / limit`` early in a window)."""
        period = budget.period_s
        if current + 1 > budget.limit:  # not before the next window, where ``current`` becomes the weighted one
            wait = (1.0 - elapsed) * period + period * max(0.0, 1.0 - (budget.limit - 1) / max(current, 1))
        elif previous:
            wait = period * (1.0 - (budget.limit - current - 1) / previous) - elapsed * period
        else:
            wait = 1.0
        return max(1, min(period, math.ceil(wait)))

    # ------------------------------------------------------------------ public
    def acquire(self, checks: list[tuple[str, str]]) -> tuple[str, int] | None:
        """Reserve one attempt under every ``(rule, key)``, atomically per counter.

        Returns None when every budget had room (the attempts stay counted), else ``(rule,
        retry_after_s)`` of the first exhausted budget, with every reservation of this call given
        back. Runs one transaction (blocking: call it from a worker thread).
        """
        now = self._clock()
        taken: list[tuple[str, str, int]] = []
        refused: tuple[str, int] | None = None
        with self._sessions() as db:
            for rule, raw_key in checks:
                key = _key_digest(raw_key)
                budget, start, elapsed = self._window(rule, now)
                current = self._add(db, rule, key, start, 1)
                taken.append((rule, key, start))
                previous = self._count(db, rule, key, start - budget.period_s)
                if previous * (1.0 - elapsed) + current > budget.limit:
                    refused = (rule, self._retry_after(budget, previous, current - 1, elapsed))
                    break
            if refused is not None:
                for rule, key, start in taken:
                    self._add(db, rule, key, start, -1)
            db.commit()
        return refused

    def release(self, checks: list[tuple[str, str]]) -> None:
        """Give back one attempt reserved by :meth:`acquire` under each ``(rule, key)`` (a success:
        only failures should use up a budget). Never goes below zero."""
        now = self._clock()
        with self._sessions() as db:
            for rule, raw_key in checks:
                _, start, _ = self._window(rule, now)
                db.execute(update(RateLimitCounter).where(
                    RateLimitCounter.rule == rule, RateLimitCounter.key == _key_digest(raw_key),
                    RateLimitCounter.window_start == start, RateLimitCounter.count > 0,
                ).values(count=RateLimitCounter.count - 1))
            db.commit()

    def clear(self, rule: str, key: str) -> None:
        """Forget every attempt of ``key`` under ``rule`` (e.g. a username's failures after a success)."""
        with self._sessions() as db:
            db.execute(delete(RateLimitCounter).where(RateLimitCounter.rule == rule,
                                                      RateLimitCounter.key == _key_digest(key)))
            db.commit()

    def remaining(self, rule: str, key: str) -> int:
        """Attempts ``key`` may still make under ``rule`` now (0 when exhausted)."""
        now = self._clock()
        budget, start, elapsed = self._window(rule, now)
        digest = _key_digest(key)
        with self._sessions() as db:
            current = self._count(db, rule, digest, start)
            previous = self._count(db, rule, digest, start - budget.period_s)
        return max(0, math.floor(budget.limit - previous * (1.0 - elapsed) - current))

    def mark(self, rule: str, key: str) -> None:
        """Note that ``key`` happened under ``rule`` (e.g. a successful login of a username from an
        address), remembered for one to two periods of the rule; see :meth:`seen`."""
        now = self._clock()
        _, start, _ = self._window(rule, now)
        with self._sessions() as db:
            self._add(db, rule, _key_digest(key), start, 1)
            db.commit()

    def seen(self, rule: str, key: str) -> bool:
        """True when :meth:`mark` noted ``key`` under ``rule`` in the current or the previous window."""
        budget, start, _ = self._window(rule, self._clock())
        with self._sessions() as db:
            return bool(db.scalar(select(RateLimitCounter.count).where(
                RateLimitCounter.rule == rule, RateLimitCounter.key == _key_digest(key),
                RateLimitCounter.window_start >= start - budget.period_s, RateLimitCounter.count > 0).limit(1)))

    def purge(self, db: Session) -> int:
        """Delete counters of windows too old to count (older than two periods of the longest rule);
        returns rows deleted. Commits."""
        longest = max((b.period_s for b in self.budgets.values()), default=0)
        result = db.execute(delete(RateLimitCounter).where(
            RateLimitCounter.window_start < int(self._clock()) - 2 * longest))
        db.commit()
        return result.rowcount or 0


class InFlight:
    """The reservations of one process still in flight (their check not finished), per key, so that a
    request refused only because of them can wait for them instead of answering 429 at once.

    A reservation counts against its budget until it is given back (:meth:`AttemptLimiter.release`):
    that is what keeps a burst of guesses within the budget. But it also means ten correct pairing
    codes entered at once use up a budget of ten *refused* codes until their checks finish. With this,
    a refused request whose keys have reservations in flight *in this process* waits (at most
    ``max_wait_s``) until one of them finishes, then asks for its reservation again, atomically as
    always; a budget truly used up by refusals still answers 429. Reservations in flight in other
    processes are not seen here (the request is refused at once, as without this). Event loop only.

    Args:
        max_wait_s: longest wait of one request, s.
    """

    def __init__(self, max_wait_s: float = 10.0) -> None:
        self.max_wait_s = max_wait_s
        self._counts: dict[str, int] = {}
        self._finished = 0  # checks finished so far (a wake-up between asking and waiting is not lost)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        """The condition of the running event loop (an app may be served by several loops in turn)."""
        loop = asyncio.get_running_loop()
        if self._changed is None or self._loop is not loop:
            self._loop, self._changed = loop, asyncio.Condition()
        return self._changed

    async def reserve(self, keys: list[str], acquire: Callable[[], Awaitable[tuple[str, int] | None]]
                      ) -> tuple[str, int] | None:
        """``await acquire()`` (a reservation, as :meth:`AttemptLimiter.acquire`), retried while it is
        refused and one of ``keys`` has reservations in flight here, up to ``max_wait_s``.

        Returns None when reserved (then call :meth:`done` with the same keys once the check is
        finished), else the last refusal ``(rule, retry_after_s)``.
        """
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while True:
            seen = self._finished
            refused = await acquire()
            if refused is None:
                for key in keys:
                    self._counts[key] = self._counts.get(key, 0) + 1
                return None
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return refused
            if self._finished != seen:
                continue  # one finished while this one asked: ask again
            if not any(self._counts.get(key) for key in keys):
                return refused
            changed = self._condition()
            async with changed:
                try:
                    await asyncio.wait_for(changed.wait(), left)
                except TimeoutError:
                    return refused

    async def done(self, keys: list[str]) -> None:
        """The check of a reservation made by :meth:`reserve` finished (given back or kept)."""
        for key in keys:
            left = self._counts.get(key, 0) - 1
            if left > 0:
                self._counts[key] = left
            else:
                self._counts.pop(key, None)
        self._finished += 1
        changed = self._condition()
        async with changed:
            changed.notify_all()


def too_many(detail: str, retry_after: int) -> TooManyRequests:
    """The error a refused :meth:`acquire` answers: 429 with ``Retry-After`` (RFC 9110 §10.2.3), s."""
    return TooManyRequests(f"{detail}; retry in {retry_after} s", retry_after)
