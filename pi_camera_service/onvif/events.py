"""ONVIF event service: PullPoint subscriptions delivering "face detected".

Topic ``tns1:RuleEngine/MyRuleDetector/FaceDetect`` with the source item ``Source`` (the video source
token) and the data item ``State`` (``true`` while at least one frontal face or profile is in view,
``false`` once none is). It is the face-detection topic NVR firmwares publish and Home Assistant's
ONVIF integration turns into a "Face Detection" binary sensor. Like any ONVIF property event, a new
subscription first receives the current state (``PropertyOperation="Initialized"``), then one
``Changed`` message per transition.

Bounds: at most :data:`MAX_SUBSCRIPTIONS` live subscriptions (expired ones are dropped first), each
keeping at most :data:`MAX_QUEUE` undelivered messages (the oldest go first), termination at most
:data:`MAX_TERMINATION` s ahead, PullMessages waits at most :data:`MAX_PULL_TIMEOUT` s.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pcs_common.timefmt import utc_iso as iso  # epoch s -> YYYY-MM-DDTHH:MM:SSZ (xs:dateTime)
from pi_camera_service.onvif.soap import sender_fault

TOPIC = "tns1:RuleEngine/MyRuleDetector/FaceDetect"
TOPIC_DIALECT = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
MAX_SUBSCRIPTIONS = 16
MAX_QUEUE = 100
DEFAULT_TERMINATION = 60.0
MAX_TERMINATION = 3600.0
MAX_PULL_TIMEOUT = 60.0
MAX_MESSAGE_LIMIT = 100

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(value: str) -> float:
    """xs:duration ``PnDTnHnMnS`` (no years/months) -> s.

    Raises:
        Fault: not such a duration.
    """
    m = _DURATION.match(value.strip())
    if not m or value.strip() in ("P", "PT"):
        raise sender_fault(f"{value!r} is not an xs:duration such as PT60S")
    d, h, mi, s = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def parse_termination(value: str | None, now: float) -> float:
    """``InitialTerminationTime`` / ``TerminationTime`` (a duration or an xs:dateTime) -> epoch s, clamped.

    Raises:
        Fault: neither form.
    """
    if not value:
        return now + DEFAULT_TERMINATION
    value = value.strip()
    if value.startswith("P"):
        at = now + parse_duration(value)
    else:
        from pi_camera_service.onvif.security import parse_created

        try:
            at = parse_created(value)
        except ValueError:
            raise sender_fault(f"TerminationTime {value[:40]!r} is neither an xs:duration nor an xs:dateTime") from None
    if at <= now:
        raise sender_fault("the termination time is in the past", "ter:InvalidArgVal", "ter:UnacceptableTerminationTime")
    return min(at, now + MAX_TERMINATION)


@dataclass
class Message:
    """One notification: ``utc`` (epoch s), ``operation`` (Initialized | Changed), ``state``."""

    utc: float
    operation: str
    state: bool


@dataclass
class Subscription:
    """A PullPoint subscription: id, termination (epoch s), undelivered messages."""

    id: str
    termination: float
    queue: deque = field(default_factory=lambda: deque(maxlen=MAX_QUEUE))
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


class FaceEvents:
    """Holds the face-detected state and the subscriptions; fed by the detection listener.

    :meth:`on_detection` runs on the detection thread; everything else on the event loop ``loop``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Any = time.time) -> None:
        self.loop = loop
        self._clock = clock
        self.state = False
        self._subs: dict[str, Subscription] = {}
        self._lock = threading.Lock()

    def on_detection(self, result: Any) -> None:
        """Detection listener: a transition of "any face in view" becomes a ``Changed`` message."""
        seen = bool(getattr(result, "faces", ())) or bool(getattr(result, "profiles", ()))
        with self._lock:
            if seen == self.state:
                return
            self.state = seen
        try:
            self.loop.call_soon_threadsafe(self._publish, seen)
        except RuntimeError:  # loop closed at shutdown
            pass

    def _publish(self, state: bool) -> None:
        msg = Message(self._clock(), "Changed", state)
        for sub in list(self._subs.values()):
            sub.queue.append(msg)
            sub.wakeup.set()

    def _expire(self, now: float) -> None:
        for sid in [sid for sid, s in self._subs.items() if s.termination <= now]:
            del self._subs[sid]

    def create(self, initial_termination: str | None) -> Subscription:
        """A new subscription with the current state queued as ``Initialized``.

        Raises:
            Fault: bad termination time, or :data:`MAX_SUBSCRIPTIONS` live subscriptions.
        """
        now = self._clock()
        self._expire(now)
        termination = parse_termination(initial_termination, now)
        if len(self._subs) >= MAX_SUBSCRIPTIONS:
            raise sender_fault(f"{MAX_SUBSCRIPTIONS} subscriptions are open; unsubscribe one or let it expire",
                               "ter:InvalidArgVal", "ter:TooManySubscriptions")
        sub = Subscription(secrets.token_urlsafe(12), termination)
        sub.queue.append(Message(now, "Initialized", self.state))
        sub.wakeup.set()
        self._subs[sub.id] = sub
        return sub

    def get(self, sid: str) -> Subscription:
        """The live subscription ``sid``.

        Raises:
            Fault: unknown or expired (``wsrf-rw:ResourceUnknownFault`` in spirit; ONVIF clients then re-subscribe).
        """
        self._expire(self._clock())
        sub = self._subs.get(sid)
        if sub is None:
            raise sender_fault("unknown or expired subscription; create a new one", "ter:InvalidArgVal",
                               "ter:ResourceUnknown")
        return sub

    def renew(self, sid: str, termination: str | None) -> Subscription:
        """Move the termination time of ``sid`` (Renew)."""
        sub = self.get(sid)
        sub.termination = parse_termination(termination, self._clock())
        return sub

    def remove(self, sid: str) -> None:
        """Unsubscribe ``sid``."""
        self.get(sid)
        del self._subs[sid]

    async def pull(self, sid: str, timeout: float, limit: int) -> tuple[Subscription, list[Message]]:
        """Wait up to ``timeout`` s for messages of ``sid``; returns at most ``limit`` of them."""
        sub = self.get(sid)
        timeout = min(max(timeout, 0.0), MAX_PULL_TIMEOUT, max(sub.termination - self._clock(), 0.0))
        limit = min(max(limit, 1), MAX_MESSAGE_LIMIT)
        if not sub.queue:
            sub.wakeup.clear()
            try:
                await asyncio.wait_for(sub.wakeup.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        out = [sub.queue.popleft() for _ in range(min(limit, len(sub.queue)))]
        if not sub.queue:
            sub.wakeup.clear()
        return sub, out

    @property
    def count(self) -> int:
        """Live subscriptions."""
        self._expire(self._clock())
        return len(self._subs)
