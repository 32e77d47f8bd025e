"""Checks of the camera's JWT signing secret (``CAMERA_JWT_SECRET`` or the stored one): the shared
implementation in :mod:`pcs_common.jwt_secrets`, which the central server's ``CENTRAL_SECRET_KEY`` check
uses too; re-exported here for the old import path."""

from __future__ import annotations

from pcs_common.jwt_secrets import (  # noqa: F401 - re-exported
    GENERATE_SECRET_HINT,
    MIN_JWT_SECRET_LENGTH,
    _is_repetition,
    jwt_secret_problem,
)
