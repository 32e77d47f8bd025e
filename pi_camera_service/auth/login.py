"""Logins to the camera: the password check and the one login budget every door goes through.

``POST /v1/auth/token``, ``GET /v1/auth/login``, the web page's ``POST /login`` and ONVIF
(WS-Security UsernameToken and the snapshot URI's HTTP Digest/Basic) all run their check inside
:func:`login_attempt`, around the app's one :class:`LoginLimiter`. The password doors share the budget
``password`` (``CAMERA_LOGIN_FAILURES_PER_ADDRESS`` per address, ``CAMERA_LOGIN_FAILURES_GLOBAL`` in
total, per 15 min); ONVIF has its own credential and so its own budget ``onvif``
(:data:`ONVIF_FAILURES_PER_ADDRESS` per address), counted by the same limiter.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from pcs_common.auth import same as _same
from pcs_common.auth.passwords import ARGON2_PARAMETERS
from pcs_common.limits import PasswordChecksBusy
from pi_camera_service.auth.config import HASH_PASSWORD_HINT, AuthConfig

logger = logging.getLogger("pi_camera_service.auth")

PASSWORD_DOOR = "password"
"""Budget of the camera password and the API-key form (token endpoints, web login)."""

ONVIF_DOOR = "onvif"
"""Budget of the ONVIF credential (WS-Security, snapshot Digest/Basic)."""

ONVIF_FAILURES_PER_ADDRESS = "20/5 minutes"
"""Failed ONVIF logins allowed per client address (a ``limits`` rate string); no global budget (an
NVR must not be locked out by strangers)."""


def authenticate(cfg: AuthConfig, username: str, password: str) -> bool:
    """Check a username and password against ``cfg``; ``True`` when both are right.

    The username is compared in constant time and the password is *always* verified with argon2
    against the configured hash, also when the username is wrong: that dummy verification uses the
    very same hash (so the same cost parameters) and makes a wrong username take as long as a
    wrong password, so timing does not reveal which usernames exist. Returns ``False`` when no
    password hash is configured.
    """
    if cfg.password_hash is None:
        return False
    user_ok = _same(username, cfg.username)
    current = cfg.upgraded_hash.get(cfg.password_hash, cfg.password_hash)
    # Looked up on the package at call time, so pi_camera_service.auth.verify_and_update_password
    # stays the one name to replace (tests count the verifications through it).
    from pi_camera_service import auth as package

    password_ok, new_hash = package.verify_and_update_password(password, current)
    if user_ok and password_ok and new_hash is not None:
        # The configured value comes from the environment, which the service cannot rewrite: the
        # re-hash is kept for this process (cheaper logins from now on) and the operator is told.
        cfg.upgraded_hash[cfg.password_hash] = new_hash
        logger.warning(
            "CAMERA_PASSWORD_HASH uses older argon2 parameters than %s; it was re-hashed in memory. "
            "To keep the cheaper hash across restarts, set CAMERA_PASSWORD_HASH to the output of `%s`.",
            ARGON2_PARAMETERS, HASH_PASSWORD_HINT,
        )
    return user_ok and password_ok


def password_gate(request: Request) -> Any:
    """The app's :class:`~pcs_common.limits.PasswordCheckGate` (``app.state.password_gate``),
    created with the defaults (2 at once, 2 s wait) for an app that did not set one."""
    from pcs_common.limits import PasswordCheckGate

    gate = getattr(request.app.state, "password_gate", None)
    if gate is None:
        gate = request.app.state.password_gate = PasswordCheckGate()
    return gate


LOGIN_WINDOW = "15 minutes"
"""Window of the camera's password login budgets (a ``limits`` period)."""


class LoginLimiter:
    """Budgets of failed logins, per door, atomic under concurrency.

    Design (OWASP Authentication and Blocking Brute Force Attacks cheat sheets: throttle instead of
    locking the account, so an attacker cannot lock the owner out). For each door (a credential):

    * ``address``: failures from one client address (``password``: ``CAMERA_LOGIN_FAILURES_PER_ADDRESS``
      per 15 min; ``onvif``: :data:`ONVIF_FAILURES_PER_ADDRESS`);
    * ``global``: failures from all addresses together (``password``: ``CAMERA_LOGIN_FAILURES_GLOBAL`` per
      15 min, a slow-down for guessing spread over many addresses), not applied to addresses that logged
      in successfully at that door since the service started (the address as OWASP's "device cookie").

    Counting: ``limits``' moving window in memory (one camera process). Only failures are counted, but
    attempts still being verified count as failures-to-be: :meth:`begin` checks the budget including
    attempts in flight and registers the new one under one lock, so 60 concurrent wrong passwords get
    exactly the budget, not 60 verifications. Thread-safe.

    Args:
        per_address: ``password`` failures per address per :data:`LOGIN_WINDOW`.
        global_: ``password`` failures in total per :data:`LOGIN_WINDOW`.
        onvif_per_address: the ``onvif`` door's per-address budget (``limits`` rate string).
    """

    def __init__(self, per_address: int, global_: int, onvif_per_address: str = ONVIF_FAILURES_PER_ADDRESS) -> None:
        from limits import parse
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self._items = {(PASSWORD_DOOR, "address"): parse(f"{int(per_address)}/{LOGIN_WINDOW}"),
                       (PASSWORD_DOOR, "global"): parse(f"{int(global_)}/{LOGIN_WINDOW}"),
                       (ONVIF_DOOR, "address"): parse(onvif_per_address)}
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, str, str], int] = {}
        self._known: set[tuple[str, str]] = set()

    def _checks(self, door: str, address: str) -> list[tuple[str, str, str]]:
        checks = [(door, "address", address)]
        if (door, "global") in self._items and (door, address) not in self._known:
            checks.append((door, "global", "all"))
        return checks

    def begin(self, address: str, door: str = PASSWORD_DOOR) -> tuple[list[tuple[str, str, str]] | None, int]:
        """Register one login attempt from ``address`` at ``door``: ``(checks, 0)`` when it may go on,
        else ``(None, retry_after_s)``. Pass ``checks`` to :meth:`end` once the credentials are checked.

        Raises:
            KeyError: an unknown ``door``.
        """
        with self._lock:
            checks = self._checks(door, address)
            for door_, rule, key in checks:
                item = self._items[(door_, rule)]
                stats = self._limiter.get_window_stats(item, f"{door_}-{rule}", key)
                if stats.remaining - self._inflight.get((door_, rule, key), 0) <= 0:
                    wait = max(1, math.ceil(stats.reset_time - time.time())) if stats.remaining <= 0 else 1
                    return None, wait
            for check in checks:
                self._inflight[check] = self._inflight.get(check, 0) + 1
            return checks, 0

    def end(self, address: str, checks: list[tuple[str, str, str]], ok: bool, counted: bool = True) -> None:
        """The attempt :meth:`begin` registered is over: a failure is counted under each budget, a
        success makes ``address`` known at that door (exempt from its global slow-down) and forgets its
        failures there. ``counted=False``: the credentials were never checked (no password-check slot:
        503; no credentials sent), so the attempt uses up nothing."""
        with self._lock:
            for check in checks:
                left = self._inflight.get(check, 0) - 1
                if left > 0:
                    self._inflight[check] = left
                else:
                    self._inflight.pop(check, None)
                door, rule, key = check
                if not ok and counted:
                    self._limiter.hit(self._items[(door, rule)], f"{door}-{rule}", key)
            if ok and checks:
                door = checks[0][0]
                self._known.add((door, address))
                self._limiter.clear(self._items[(door, "address")], f"{door}-address", address)


class TooManyLogins(Exception):
    """The login budget of the client's address (or the global one) is used up; retry in ``retry_after`` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class LoginAttempt:
    """The outcome a caller of :func:`login_attempt` reports: ``ok`` (right credentials) and
    ``counted`` (False when no credentials were checked: a failure then uses up no budget)."""

    ok: bool = False
    counted: bool = True


@contextmanager
def login_attempt(limiter: LoginLimiter, address: str, door: str = PASSWORD_DOOR) -> Iterator[LoginAttempt]:
    """The one login path: reserve an attempt from ``address`` at ``door``, let the caller check the
    credentials and set ``attempt.ok``, then count it.

    A failure (``ok`` False, also when the block raises) is counted under the door's budgets unless
    ``attempt.counted`` was set False or the block raised :class:`~pcs_common.limits.PasswordChecksBusy`
    (nothing was checked).

    Raises:
        TooManyLogins: the budget is used up (before anything is checked, even right credentials).
    """
    checks, retry_after = limiter.begin(address, door)
    if checks is None:
        raise TooManyLogins(retry_after)
    attempt = LoginAttempt()
    try:
        yield attempt
    except PasswordChecksBusy:
        attempt.ok, attempt.counted = False, False
        raise
    except BaseException:
        attempt.ok = False
        raise
    finally:
        limiter.end(address, checks, attempt.ok, attempt.counted)


def login_limiter_of(app: Any) -> LoginLimiter:
    """The app's :class:`LoginLimiter` (``app.state.login_limiter``), made from the settings on first use."""
    limiter = getattr(app.state, "login_limiter", None)
    if not isinstance(limiter, LoginLimiter):
        settings = getattr(app.state, "settings", None)
        limiter = app.state.login_limiter = LoginLimiter(
            getattr(settings, "login_failures_per_address", 10), getattr(settings, "login_failures_global", 30))
    return limiter


def login_limiter(request: Request) -> LoginLimiter:
    """The request's app's :class:`LoginLimiter` (see :func:`login_limiter_of`)."""
    return login_limiter_of(request.app)


def client_address(request: Request) -> str:
    """The client's IP address as the ASGI server reports it (uvicorn replaces it by ``X-Forwarded-For``
    only with ``CAMERA_TRUST_PROXY_HEADERS`` and a peer in ``CAMERA_FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else "unknown"
