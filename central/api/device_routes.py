"""Camera-facing endpoints: pairing requests with their long poll, and heartbeats (device credentials).

Bodies and answers are the protocol's models (:mod:`pcs_common.protocol`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder

from central import pairing
from central.api.deps import DB, authenticate_device, central, client_address
from central.fleet import clean_status
from central.models import utcnow
from central.ratelimit import too_many
from central.security import digest, random_token
from pcs_common import protocol
from pcs_common.protocol import Heartbeat, HeartbeatAnswer, PairingCode, PairingPollAnswer, PairingRequest

router = APIRouter(tags=["devices"])
MAX_WAIT_S = protocol.MAX_POLL_WAIT_S


def _raise(exc: pairing.PairingError) -> None:
    raise HTTPException(exc.status, {"detail": str(exc), "error": exc.error}) from None


@router.post(protocol.PAIRING_REQUESTS_PATH, status_code=201)
async def request_code(body: PairingRequest, request: Request) -> dict[str, Any]:
    """An unpaired camera asks for a pairing code: ``{request_id, code, expires_at, poll_token}``.
    No authentication; limited per client address (429) and in total (503)."""
    state = central(request)
    address = client_address(request)
    blocked = await run_in_threadpool(state.limiter.acquire, [("pairing-requests", address)])  # atomic
    if blocked:
        raise too_many("too many pairing code requests from this address", blocked[1])

    def create() -> pairing.Issued:
        with state.sessions() as db:
            return pairing.create_request(db, body.model_dump(), address, state.settings.pairing_code_ttl,
                                          state.settings.max_pending_pairings)

    try:
        issued = await run_in_threadpool(create)
    except pairing.PairingError as exc:
        _raise(exc)
    row = issued.request
    return PairingCode(request_id=row.id, code=row.code, expires_at=_iso(row.expires_at),
                       poll_token=issued.poll_token, poll_url=protocol.pairing_request_path(row.id)).model_dump()


def _iso(moment: Any) -> str:
    """A stored time as the API has always sent it (FastAPI's JSON form of a datetime)."""
    return jsonable_encoder(moment)


@router.get(protocol.PAIRING_REQUESTS_PATH + "/{request_id}")
async def poll(
    request_id: str, request: Request, wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 30
) -> dict[str, Any]:
    """Long poll (``Authorization: Bearer <poll_token>``): holds up to ``wait`` s, then answers
    ``{"status": "pending"}`` or ``{"status": "paired", device_id, device_secret, camera_name}``.
    410 when the code expired or the credentials were already used; 404 unknown request."""
    state = central(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != protocol.POLL_TOKEN_SCHEME.lower() or not token:
        raise HTTPException(401, {"detail": "send Authorization: Bearer <poll_token>", "error": "invalid_poll_token"})

    def check() -> tuple[dict[str, Any] | None, Any]:
        with state.sessions() as db:
            row = pairing.find_for_poll(db, request_id, token)
            return pairing.poll_result(db, row), row.expires_at

    try:
        result, expires_at = await pairing.wait_for_pairing(state.waiters, request_id,
                                                            lambda: run_in_threadpool(check), wait)
    except pairing.PairingError as exc:
        _raise(exc)
    answer = PairingPollAnswer.model_validate(result) if result else PairingPollAnswer(
        status="pending", expires_at=_iso(expires_at))
    return answer.model_dump(exclude_none=True)


@router.post(protocol.HEARTBEAT_PATH)
def heartbeat(body: Heartbeat, request: Request, db: DB) -> dict[str, Any]:
    """A paired camera reports its state (and the key for its viewer tickets); the response may carry a
    rotated ``device_secret``.
    401 ``unknown_device`` (unpaired or wrong secret), 403 ``camera_disabled``."""
    auth = authenticate_device(request, db, allow_retiring=True)
    camera = auth.camera
    status = clean_status(body.status)
    camera.status = status
    camera.last_seen_at = utcnow()
    camera.last_address = client_address(request)
    camera.version = status.get("version") or camera.version
    camera.api_url = status.get("api_url") or camera.api_url
    camera.rtsp_url = status.get("rtsp_url") or camera.rtsp_url
    if body.viewer_key:
        central(request).viewer_seal.remember(camera, body.viewer_key)  # sealed, for every server process
    out = HeartbeatAnswer(camera_name=camera.name, device_id=camera.id,
                          heartbeat_interval_s=central(request).settings.heartbeat_interval)
    if camera.rotate_requested or auth.with_retiring_secret:
        secret = random_token()
        if not auth.with_retiring_secret:
            camera.retiring_secret_hash = camera.secret_hash
        camera.secret_hash = digest(secret)
        camera.rotate_requested = False
        camera.secret_rotated_at = utcnow()
        out.device_secret = secret
    db.commit()
    return out.model_dump(exclude_none=True)
