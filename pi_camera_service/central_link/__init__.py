"""The camera's link to a central server: pairing with a one-time code, then heartbeats.

When ``CAMERA_CENTRAL_URL`` is set, :class:`CentralLink` runs as one asyncio task of the service:

1. **Pairing** (no stored credentials): ``POST <central>/v1/pairing/requests`` with the hardware id and
   the camera's secret pairing key (:func:`pairing_key`, which binds the code to this camera) gives an
   8-character code, logged at WARNING and published on the :class:`~pi_camera_service.events.EventLog` (event
   ``pairing``, so the web page shows it). The camera then long-polls
   ``GET <central>/v1/pairing/requests/{request_id}?wait=N`` with ``Authorization: Bearer <poll_token>``
   until an administrator enters the code on the central server (the camera never needs to be reachable
   from the central server for this). 410/404/401 (code expired, already claimed, unknown) ask for a new
   code. The ``paired`` answer carries ``device_id`` and ``device_secret``, stored in
   ``<state_dir>/central-credentials.json`` (mode 0600, written atomically).
2. **Heartbeats** (credentials stored): ``POST <central>/v1/devices/heartbeat`` with HTTP Basic
   ``device_id:device_secret`` and ``{"status": {...}, "viewer_key": ...}`` (see :func:`heartbeat_status`), every
   ``heartbeat_interval_s`` the server answers (30 s until it says otherwise). A ``device_secret`` in
   the answer replaces the stored one (rotation). 401 means the central server no longer knows the
   camera: the credentials are deleted and pairing starts again. 403 ``camera_disabled`` keeps the
   credentials and retries with backoff. Network errors and 5xx are retried with capped exponential
   backoff with jitter (:class:`Backoff`, cap ``CAMERA_CENTRAL_RETRY_MAX_DELAY``, 300 s by default).

Credentials stored for another central URL than the configured one are ignored (the camera pairs again).
While paired, the edge API also accepts the device credentials as HTTP Basic
(:meth:`CentralLink.device_credentials`, used by :func:`pi_camera_service.auth.require_auth`), so the
central server can read ``/v1/camera/status`` and ``/v1/camera/mjpeg``. Each heartbeat also carries the
``viewer_key`` derived from the device secret, with which the central server signs the tickets that open
``/v1/camera/mjpeg`` for its dashboard (:mod:`pcs_common.viewer_ticket`).

Modules, one job each: :mod:`.credentials` (credentials and pairing-key files), :mod:`.addresses`
(what the camera reports about itself), :mod:`.pairing` (pairing client), :mod:`.heartbeat`
(heartbeat client), :mod:`.link` (:class:`CentralLink`, the task tying them together), :mod:`.replies`
(error texts, ``Retry-After``). The wire format is :mod:`pcs_common.protocol`.
"""

from pcs_common.backoff import Backoff
from pcs_common.protocol import MJPEG_PATH
from pi_camera_service.central_link.addresses import advertised_urls, camera_host, heartbeat_status
from pi_camera_service.central_link.credentials import (
    CREDENTIALS_FILE,
    PAIRING_KEY_FILE,
    DeviceCredentials,
    credentials_path,
    forget_credentials,
    load_credentials,
    pairing_key,
    store_credentials,
    utc_iso,
)
from pi_camera_service.central_link.replies import REQUEST_TIMEOUT, cancel_and_close
from pi_camera_service.central_link.link import DEFAULT_HEARTBEAT_INTERVAL, EVENT_TYPE, STATES, CentralLink

__all__ = [
    "CREDENTIALS_FILE", "DEFAULT_HEARTBEAT_INTERVAL", "EVENT_TYPE", "MJPEG_PATH", "PAIRING_KEY_FILE",
    "REQUEST_TIMEOUT", "STATES", "Backoff", "CentralLink", "DeviceCredentials", "advertised_urls", "camera_host",
    "cancel_and_close", "credentials_path", "forget_credentials", "heartbeat_status", "load_credentials",
    "pairing_key", "store_credentials", "utc_iso",
]
