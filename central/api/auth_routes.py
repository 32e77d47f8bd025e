"""Bootstrap (``/v1/setup``), login (``/v1/auth/token`` OAuth2 password grant), dashboard sessions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select

from pcs_common.limits import PasswordChecksBusy
from central import bootstrap
from central.admins import create_admin  # noqa: F401 - re-exported (the old place)
from central.api.deps import (
    DB, SESSION_COOKIE, SCOPES, Principal, authenticate, central, client_address, csrf_token_for, sessions,
    unauthorized,
)
from central.api.schemas import AdminCreate, AdminOut, TokenOut
from central.models import Admin, utcnow
from central.ratelimit import too_many
from central.security import (
    TokenError, decode_jwt, encode_jwt, hash_password, verify_and_update_password, verify_password,
)

router = APIRouter(tags=["auth"])


class SetupIn(BaseModel):
    """The bootstrap password printed in the server's log at first start."""

    password: str = Field(min_length=1, max_length=200)


@router.get("/v1/setup")
def setup_status(db: DB) -> dict[str, bool]:
    """``{"bootstrap_open": bool}``: whether the first admin still has to be created."""
    return {"bootstrap_open": bootstrap.is_open(db)}


@router.post("/v1/setup")
async def setup(body: SetupIn, request: Request) -> dict[str, Any]:
    """Exchange the one-time bootstrap password for a setup token (15 min) that can only create the
    first admin. 409 once bootstrap is closed; 401 for a wrong password; 429 after repeated failures."""
    state = central(request)
    address = client_address(request)
    checks = [("setup-address", address)]
    blocked = await run_in_threadpool(state.limiter.acquire, checks)  # atomic: reserved before the check
    if blocked:
        raise too_many("too many wrong bootstrap passwords from this address", blocked[1])

    def check() -> bool | None:
        with state.sessions() as db:
            if not bootstrap.is_open(db):
                return None
            return verify_password(body.password, bootstrap.password_hash(db))

    try:
        ok = await state.password_gate.run(check)
    except PasswordChecksBusy:  # nothing was checked: the attempt does not use up the budget
        await run_in_threadpool(state.limiter.release, checks)
        raise
    if ok is None:
        await run_in_threadpool(state.limiter.release, checks)
        raise HTTPException(409, "setup is already done: an admin exists; log in with POST /v1/auth/token")
    if not ok:
        raise unauthorized("wrong bootstrap password (it is printed in the server log at start-up)", "invalid_grant")
    await run_in_threadpool(state.limiter.release, checks)
    token, ttl = encode_jwt(state.secret_key, "bootstrap", "setup", state.settings.setup_token_ttl)
    return {"setup_token": token, "token_type": "bearer", "expires_in": ttl}


@router.post("/v1/setup/admin", status_code=201)
def setup_admin(body: AdminCreate, request: Request, db: DB) -> AdminOut:
    """Create the first admin with ``Authorization: Bearer <setup_token>``; closes bootstrap for good.

    Concurrent requests create exactly one admin (the others get 409): bootstrap is closed by inserting
    one primary-key row in the admin's transaction (:func:`central.bootstrap.claim`), so every setup
    token is single-use."""
    state = central(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("a setup token is required: POST /v1/setup with the bootstrap password", "invalid_request")
    try:
        decode_jwt(state.secret_key, token, "setup")
    except TokenError as exc:
        raise unauthorized(str(exc)) from None
    if not bootstrap.is_open(db):
        raise HTTPException(409, "setup is already done: an admin exists")
    db.rollback()  # the claim below must be the transaction's first write (SQLite: no stale read snapshot)
    password_hash = hash_password(body.password)  # before the claim: no lock is held during argon2
    if not bootstrap.claim(db):  # exactly one of concurrent requests gets here; every setup token dies with it
        db.rollback()
        raise HTTPException(409, "setup is already done: an admin exists")
    admin = Admin(username=body.username, password_hash=password_hash)
    db.add(admin)
    db.commit()
    return AdminOut.from_admin(admin)


async def _login(request: Request, username: str | None, password: str | None) -> Admin:
    """Check a username and password within the login budgets (docs/security.md#rate-limits).

    Budgets, reserved atomically before the argon2 verification (:class:`central.ratelimit.AttemptLimiter`)
    and given back on success, following OWASP's Blocking Brute Force Attacks / Authentication cheat
    sheets (lock out the pair, not the account; slow down the account instead):

    * ``login-pair``: failures of one username from one address (``CENTRAL_LOGIN_FAILURES_PER_USER``
      per 15 min): a guesser is stopped, the owner at another address is not;
    * ``login-address``: failures from one address, any username (``CENTRAL_LOGIN_FAILURES_PER_ADDRESS``):
      password spraying from one host;
    * ``login-user``: a global slow-down per username from all addresses together
      (``CENTRAL_LOGIN_FAILURES_PER_USER_GLOBAL`` per 15 min) for distributed guessing, *not applied* to
      an address this username logged in from successfully in the last 30 days (``login-known``, the
      address as OWASP's "device cookie"), so the owner at a known place is never locked out by others.

    The password is verified (argon2) even for unknown or disabled usernames, so the time taken does
    not tell whether a username exists; verifications go through the password-check gate (at most
    ``CENTRAL_PASSWORD_CHECKS_MAX`` at once), and a hash of older argon2 parameters is replaced by a
    re-hash on success.

    Raises:
        HTTPException: 401 for any wrong or missing credential (one message for all), 429 with
            ``Retry-After`` when a budget is used up, 503 (``Retry-After``) when no password-check
            slot freed up in time.
    """
    state = central(request)
    username = (username or "").strip()
    address = client_address(request)
    user = username.lower()
    pair = f"{user}|{address}"
    checks = [("login-address", address)]
    if username:
        checks.append(("login-pair", pair))
        if not await run_in_threadpool(state.limiter.seen, "login-known", pair):
            checks.append(("login-user", user))
    blocked = await run_in_threadpool(state.limiter.acquire, checks)
    if blocked:
        what = {"login-pair": "this username from this address", "login-address": "this address",
                "login-user": "this username (from any address; known addresses are not slowed down)"}[blocked[0]]
        raise too_many(f"too many failed logins for {what}", blocked[1])

    def verify() -> Admin | None:
        with state.sessions() as db:
            admin = db.scalar(select(Admin).where(Admin.username == username)) if username else None
            ok, new_hash = verify_and_update_password(password or "", admin.password_hash if admin else None)
            if not ok or admin is None or admin.disabled or not password:
                return None
            if new_hash is not None:  # older argon2 parameters: same password, today's cost (not a change)
                admin.password_hash = new_hash
            admin.last_login_at = utcnow()
            db.commit()
            return admin

    try:
        admin = await state.password_gate.run(verify)
    except PasswordChecksBusy:  # nothing was checked: the attempt does not use up the budgets
        await run_in_threadpool(state.limiter.release, checks)
        raise
    if admin is None:
        raise unauthorized("incorrect username or password", "invalid_grant")

    def succeeded() -> None:
        state.limiter.release(checks)
        state.limiter.clear("login-pair", pair)
        state.limiter.mark("login-known", pair)

    await run_in_threadpool(succeeded)
    return admin


def _access_claims(admin: Admin) -> dict[str, Any]:
    return {"pwd": int(admin.password_changed_at.timestamp()), "name": admin.username}


@router.post("/v1/auth/token")
async def token(
    request: Request,
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    grant_type: Annotated[str | None, Form()] = None,
) -> TokenOut:
    """OAuth2 password grant (RFC 6749 §4.3, form-encoded): ``{access_token, token_type, expires_in}``,
    a 24 h JWT. Every wrong or missing credential gives the same 401."""
    if grant_type not in (None, "password"):
        raise HTTPException(400, {"detail": "only grant_type=password is supported", "error": "unsupported_grant_type"})
    admin = await _login(request, username, password)
    state = central(request)
    access, ttl = encode_jwt(state.secret_key, admin.id, "access", state.settings.access_token_ttl, **_access_claims(admin))
    return TokenOut(access_token=access, token_type="bearer", expires_in=ttl, scope=" ".join(sorted(SCOPES)))


@router.post("/v1/auth/session")
async def session_login(
    request: Request,
    response: Response,
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """Dashboard login: sets the HttpOnly, SameSite=Strict session cookie; returns ``{csrf_token, username}``."""
    admin = await _login(request, username, password)
    state = central(request)
    ttl = state.settings.session_ttl
    cookie, _, csrf = sessions(request).open(state.secret_key, admin.id, ttl, **_access_claims(admin))
    response.set_cookie(SESSION_COOKIE, cookie, max_age=ttl, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return {"csrf_token": csrf, "username": admin.username}


@router.post("/v1/auth/logout", status_code=204)
def logout(request: Request, response: Response, db: DB) -> Response:
    """End the dashboard session (the cookie's token is refused from now on) and clear the cookie."""
    principal = authenticate(request, db)
    if principal.via == "session":
        sessions(request).end(principal.claims)
    response.status_code = 204
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/v1/auth/me")
def me(request: Request, db: DB) -> dict[str, Any]:
    """The calling admin, how they authenticated, their scopes, and the CSRF token of a cookie session."""
    principal: Principal = authenticate(request, db)
    out: dict[str, Any] = {"admin": AdminOut.from_admin(principal.admin), "via": principal.via,
                           "scopes": sorted(principal.scopes)}
    if principal.via == "session":
        out["csrf_token"] = csrf_token_for(central(request).secret_key, principal.claims.get("jti", ""))
    return out
