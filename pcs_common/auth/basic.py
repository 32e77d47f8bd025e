"""Parsing of HTTP Basic credentials (RFC 7617), the one parser of both services.

Used for the camera's ``GET /v1/auth/login``, the central server's device credentials (on both
sides) and ONVIF's snapshot URI. Credentials are decoded as UTF-8 (RFC 7617 §2.1, ``charset="UTF-8"``).
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import NamedTuple

MAX_BASIC_HEADER = 4096
"""Longest ``Authorization: Basic`` value decoded, characters (longer ones are refused unread)."""


class BasicCredentials(NamedTuple):
    """``user-id`` and ``password`` of RFC 7617 §2 (the password may contain ``:``)."""

    username: str
    password: str


class BasicCredentialsError(ValueError):
    """The Basic credentials are malformed; ``str()`` says how (for a 401 ``detail``)."""


def basic_scheme(authorization: str | None) -> tuple[str, str]:
    """``(scheme, credentials)`` of an ``Authorization`` value; ``("", "")`` for None or empty."""
    scheme, _, param = (authorization or "").strip().partition(" ")
    return scheme, param.strip()


def parse_basic(authorization: str | None, what: str = "user:password") -> BasicCredentials | None:
    """The credentials of an ``Authorization: Basic <base64(user:password)>`` header value.

    Returns None when the header is missing or of another scheme. ``what`` names the two parts in
    error messages (``"device_id:device_secret"``).

    Raises:
        BasicCredentialsError: the scheme is Basic but the value is over :data:`MAX_BASIC_HEADER`,
            not base64, not UTF-8 or lacks the ``:`` between user and password.
    """
    scheme, param = basic_scheme(authorization)
    if scheme.lower() != "basic":
        return None
    if len(param) > MAX_BASIC_HEADER:
        raise BasicCredentialsError(f"Basic credentials are longer than {MAX_BASIC_HEADER} characters")
    try:
        decoded = b64decode(param, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BasicCredentialsError(f"Basic credentials are not valid base64 of UTF-8 {what}") from None
    username, separator, password = decoded.partition(":")
    if not separator:
        first, _, second = what.partition(":")
        raise BasicCredentialsError(f"Basic credentials lack the ':' between {first} and {second}")
    return BasicCredentials(username, password)
