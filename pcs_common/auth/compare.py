"""Constant-time comparison of secrets (API keys, passwords, CSRF tokens, digest responses)."""

from __future__ import annotations

import hmac


def same(a: str, b: str) -> bool:
    """True when ``a == b``, compared in constant time (:func:`hmac.compare_digest` on the UTF-8 bytes,
    ``surrogatepass`` so any Python string works, also lone surrogates from a decoded header)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))
