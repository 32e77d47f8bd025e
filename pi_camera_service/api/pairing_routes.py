"""Pairing routes (behind authentication): the state of the link to the central server, and re-pairing.

* ``GET /v1/pairing``: :meth:`~pi_camera_service.central_link.CentralLink.state` (state ``unconfigured``
  when ``CAMERA_CENTRAL_URL`` is unset); never contains the device secret.
* ``DELETE /v1/pairing``: forget the stored device credentials and request a new pairing code (204).

See docs/pairing-camera.md.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from pcs_common.service_errors import Conflict
from pi_camera_service.api.deps import CentralLinkDep
from pi_camera_service.api.schemas import Problem

router = APIRouter(tags=["pairing"])


class PairingState(BaseModel):
    """``GET /v1/pairing``: what the link to the central server is doing (times are ISO-8601 UTC)."""

    state: Literal["unconfigured", "requesting", "waiting_for_admin", "paired", "disabled", "error"] = Field(
        description="unconfigured: no CAMERA_CENTRAL_URL; requesting: asking for a code; waiting_for_admin: "
        "the code is shown, waiting for it to be entered on the central server; paired: reporting in; "
        "disabled: an administrator disabled the camera there; error: the central server cannot be reached "
        "or refuses the pairing request"
    )
    central_url: str | None
    code: str | None = Field(description="pairing code to enter on the central server (waiting_for_admin)")
    expires_at: str | None = Field(description="when the code expires")
    device_id: str | None = Field(description="the camera's id on the central server (paired, disabled)")
    camera_name: str | None = Field(description="the name the administrator gave the camera")
    last_error: str | None = Field(description="the latest failure, cleared by the next success")
    last_heartbeat_at: str | None = Field(description="time of the last accepted heartbeat")
    next_attempt_at: str | None = Field(description="time of the next planned call to the central server")


@router.get("/pairing", response_model=PairingState)
def pairing_state(link: CentralLinkDep) -> dict[str, Any]:
    """State of the pairing with the central server: code while waiting for an administrator, camera name
    and last heartbeat once paired."""
    return link.state()


@router.delete(
    "/pairing",
    status_code=204,
    response_class=Response,
    responses={409: {"model": Problem, "description": "no central server is configured"}},
)
async def pairing_forget(link: CentralLinkDep) -> Response:
    """Forget the device credentials stored on this camera and request a new pairing code.

    The central server is not told: remove the old entry there. 409 when ``CAMERA_CENTRAL_URL`` is unset.
    """
    if not link.central_url:
        raise Conflict("no central server is configured: set CAMERA_CENTRAL_URL=http(s)://host[:port] and restart")
    await link.unpair()
    return Response(status_code=204)
