"""URL helpers shared by both services."""

from __future__ import annotations


def redact_url(url: object) -> object:
    """``url`` with the password of its ``user:password@`` part replaced by ``***``, for logs and status.

    ``rtsp://pub:secret@127.0.0.1:8554/cam`` -> ``rtsp://pub:***@127.0.0.1:8554/cam``;
    ``mqtt://u:p@broker`` -> ``mqtt://u:***@broker``. Only the authority (RFC 3986 §3.2, up to the
    first ``/``, ``?`` or ``#``) is looked at, so an ``@`` in a path or query is left alone; the
    last ``@`` of the authority ends the userinfo (a password may contain an unescaped ``@``). A URL
    with no password (``rtsp://host/p``, ``mqtt://user@host``) and anything that is not a string
    are returned as given.
    """
    if not isinstance(url, str):
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}{tail}"


__all__ = ["redact_url"]
