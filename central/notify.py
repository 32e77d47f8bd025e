"""What one central-server process tells the others on the same database: PostgreSQL ``LISTEN``/``NOTIFY``.

Several server processes (uvicorn workers or separate hosts) share one PostgreSQL database and keep no
state of their own that another needs, except two things they must hear about at once:

* ``pcs_pairing``, payload a pairing request id: an admin paired the code of that request, so the
  camera long-polling it (perhaps on another process) gets its credentials now
  (:class:`central.pairing.PairingWaiters`);
* ``pcs_changes``, payload ``<counter> <version>``: a change counter of :mod:`central.changes` moved
  (enrolment, merge, deletion, group naming), so each process can refresh its face index before the
  next request needs it.

:func:`notify` queues a notification *inside* the caller's transaction (``SELECT pg_notify(...)``):
PostgreSQL delivers it only when that transaction commits, and drops it on rollback ("NOTIFY" in the
PostgreSQL manual: "if a NOTIFY is executed inside a transaction, the notify events are not delivered
until and unless the transaction is committed"). Every listening session receives it, the sender's
own process included. On SQLite (one process) it does nothing: the in-process wake-ups are enough.

:class:`Listener` is each process's receiving end: one dedicated psycopg 3 ``AsyncConnection`` in
autocommit mode on the event loop, ``LISTEN`` on every channel, reconnecting with
:class:`pcs_common.backoff.Backoff` when PostgreSQL restarts or the network fails. Notifications sent
while it is disconnected are lost (PostgreSQL does not queue them for an absent listener), so after every
(re)connection it calls ``on_connect``, which re-checks what a lost notification would have said; the
pairing long poll also re-reads the database every :data:`central.pairing.RECHECK_S` s, and the face
index compares its version with the database's on every request (:mod:`central.changes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from pcs_common.backoff import Backoff

log = logging.getLogger(__name__)

PAIRING_CHANNEL = "pcs_pairing"
"""Channel of pairing wake-ups; payload: the pairing request id (32 hex)."""

CHANGES_CHANNEL = "pcs_changes"
"""Channel of change counters; payload: ``"<counter name> <new version>"`` (see :mod:`central.changes`)."""

PING_INTERVAL_S = 30.0
"""An idle listener checks its connection this often, s (a silent network failure is noticed within it)."""

CONNECT_TIMEOUT_S = 10

APPLICATION_NAME = "pcs-central-listener"
"""``application_name`` of the listener connections (``pg_stat_activity`` shows one per server process)."""
"""libpq ``connect_timeout`` of the listener connection, s."""


def is_postgresql(db: Session) -> bool:
    """True when ``db`` is bound to PostgreSQL (where :func:`notify` sends)."""
    return db.get_bind().dialect.name == "postgresql"


def notify(db: Session, channel: str, payload: str) -> None:
    """Queue ``payload`` (< 8000 bytes, PostgreSQL's limit) on ``channel`` in ``db``'s current transaction:
    delivered to every listening process when it commits, never if it rolls back. No-op on SQLite."""
    if is_postgresql(db):
        db.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


def conninfo(database_url: str) -> str:
    """The libpq URI for the SQLAlchemy URL ``database_url`` (``postgresql+psycopg://...`` ->
    ``postgresql://...``, query parameters such as ``sslmode`` kept), for a plain psycopg connection."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """``LISTEN`` on ``handlers``' channels over one dedicated connection; runs until cancelled.

    Args:
        database_url: SQLAlchemy URL of the PostgreSQL database.
        handlers: channel -> ``(payload) -> None``, called on the event loop for each notification
            (an exception is logged and does not stop the listener).
        on_connect: called on the event loop after every successful (re)connection, once ``LISTEN``
            is in place: re-check whatever a notification lost while disconnected would have changed.
        backoff: delays between reconnection attempts (default 0.5 s doubling to 30 s, jittered).
        ping_interval_s: idle time after which the connection is checked with ``SELECT 1``, s.

    ``connected`` is set while ``LISTEN`` is in place (``state`` says ``listening`` or ``reconnecting``).
    """

    def __init__(self, database_url: str, handlers: dict[str, Callable[[str], None]],
                 on_connect: Callable[[], None] | None = None, backoff: Backoff | None = None,
                 ping_interval_s: float = PING_INTERVAL_S) -> None:
        self._conninfo = conninfo(database_url)
        self.handlers = dict(handlers)
        self.on_connect = on_connect
        self.backoff = backoff or Backoff(0.5, 30.0)
        self.ping_interval_s = ping_interval_s
        self.connected = asyncio.Event()
        self.received = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> str:
        """``listening`` or ``reconnecting`` (for ``/health``)."""
        return "listening" if self.connected.is_set() else "reconnecting"

    async def start(self, wait_s: float = 5.0) -> None:
        """Start listening in a task; waits up to ``wait_s`` s for the first ``LISTEN`` (a server that
        starts while PostgreSQL is down keeps retrying in the background)."""
        self._task = asyncio.create_task(self.run(), name="pcs-notify-listener")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.connected.wait(), wait_s)

    async def stop(self) -> None:
        """Cancel the listener task and close its connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        """Connect, ``LISTEN``, dispatch; on any connection error wait a back-off delay and start over."""
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - psycopg.OperationalError, OSError...: reconnect
                self.connected.clear()
                delay = self.backoff.next_delay()
                log.warning("notification listener lost PostgreSQL (%s: %s); reconnecting in %.1f s",
                            type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
            finally:
                self.connected.clear()

    async def _session(self) -> None:
        import psycopg
        from psycopg import sql

        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True,
                                                     connect_timeout=CONNECT_TIMEOUT_S,
                                                     application_name=APPLICATION_NAME, keepalives=1,
                                                     keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
        async with conn:
            for channel in self.handlers:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            if self.backoff.failures:
                log.info("notification listener reconnected to PostgreSQL")
            self.backoff.reset()
            self.connected.set()
            self._call(self.on_connect, "on_connect")
            while True:
                async for note in conn.notifies(timeout=self.ping_interval_s):
                    self.received += 1
                    self._call(self.handlers.get(note.channel), note.channel, note.payload)
                await conn.execute("SELECT 1")  # idle: is the connection still alive?

    @staticmethod
    def _call(handler: Callable[..., None] | None, what: str, *args: str) -> None:
        if handler is None:
            return
        try:
            handler(*args)
        except Exception:  # noqa: BLE001 - one bad handler must not stop the others
            log.exception("notification handler for %s failed", what)

