"""The cameras' viewer keys, kept in the database encrypted, so that every server process can sign tickets.

A camera sends its viewer key (:func:`pcs_common.viewer_ticket.viewer_key`, derived from its device
secret) with each heartbeat; whichever server process then receives an admin's ticket request
(``POST /v1/cameras/{id}/live-ticket``) needs it. The key is a secret (it signs tickets that open the
camera's MJPEG view), so it is stored sealed in ``cameras.viewer_key_sealed``:

* AES-256-GCM (NIST SP 800-38D, ``cryptography``'s ``AESGCM``) with a random 96-bit nonce per write;
  the camera id is the associated data, so a sealed key copied to another camera's row does not open;
* the AES key is HKDF-SHA256 (RFC 5869) of the server's signing key (``CENTRAL_SECRET_KEY``, or the
  generated one in ``server_state``) with the label :data:`HKDF_INFO`.

Whoever reads the database without ``CENTRAL_SECRET_KEY`` (a dump, a backup, a read-only role) gets no
viewer key when ``CENTRAL_SECRET_KEY`` is set from a secret store. When it is not set, the signing key
is in the same database, and so is everything needed to unseal: such a reader could also forge admin
tokens, which grant far more (docs/security.md#secrets-and-file-modes). A key that no longer unseals
(the signing key was changed) counts as absent until the camera's next heartbeat replaces it.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from central.models import Camera

HKDF_INFO = b"pi-camera-central viewer key sealing v1"
"""HKDF ``info`` label: the sealing key serves nothing else than sealing viewer keys."""

NONCE_BYTES = 12


class ViewerKeySeal:
    """Seals and unseals viewer keys with a key derived from the server's signing key ``secret_key``."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("no signing key to derive the viewer-key sealing key from")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(secret_key.encode())
        self._aead = AESGCM(key)

    def seal(self, camera_id: str, viewer_key: str) -> str:
        """``base64url(nonce ‖ ciphertext ‖ tag)`` of ``viewer_key`` (80 characters for a 43-character key)."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, viewer_key.encode(), camera_id.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def unseal(self, camera_id: str, sealed: str | None) -> str | None:
        """The viewer key, or None when ``sealed`` is empty, damaged, for another camera or sealed with
        another signing key."""
        if not sealed:
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], camera_id.encode()).decode()
        except (InvalidTag, ValueError, binascii.Error, UnicodeError):
            return None

    def remember(self, camera: Camera, viewer_key: str) -> None:
        """Set ``camera``'s stored key to ``viewer_key`` (not committed); a key equal to the stored one
        is left as it is, so a heartbeat does not rewrite the column every time."""
        if self.unseal(camera.id, camera.viewer_key_sealed) != viewer_key:
            camera.viewer_key_sealed = self.seal(camera.id, viewer_key)

    def key_of(self, camera: Camera) -> str | None:
        """``camera``'s viewer key as its last heartbeat sent it, or None."""
        return self.unseal(camera.id, camera.viewer_key_sealed)
