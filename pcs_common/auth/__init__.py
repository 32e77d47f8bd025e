"""Authentication building blocks shared by the camera and the central server.

One module a concern, each configured per service (issuer, audience, realm, cookie name, secret):

* :mod:`~pcs_common.auth.passwords`: argon2id hashing through pwdlib (``verify_and_update``);
* :mod:`~pcs_common.auth.tokens`: HS256 JWTs through PyJWT with typed claims and one :class:`TokenError`;
* :mod:`~pcs_common.auth.csrf`: the CSRF token of a cookie session (one format);
* :mod:`~pcs_common.auth.sessions`: sessions and their revocation, behind a storage interface;
* :mod:`~pcs_common.auth.basic`: the one HTTP Basic parser (RFC 7617);
* :mod:`~pcs_common.auth.answers`: the 401 answer (``unauthorized()`` with ``WWW-Authenticate``).

The password-check gate that bounds argon2 work in flight stays in :mod:`pcs_common.limits`
(:class:`~pcs_common.limits.PasswordCheckGate`). This package imports neither service.
"""

from pcs_common.auth.answers import bearer_challenge, unauthorized
from pcs_common.auth.basic import BasicCredentials, BasicCredentialsError, basic_scheme, parse_basic
from pcs_common.auth.compare import same
from pcs_common.auth.csrf import CSRF_HEADER, SAFE_METHODS, csrf_matches, csrf_token
from pcs_common.auth.passwords import (
    ARGON2_PARAMETERS, hash_password, is_argon2_hash, verify_and_update_password, verify_password,
)
from pcs_common.auth.sessions import JsonFileRevocations, RevocationStore, SessionEnded, SessionService
from pcs_common.auth.tokens import (
    ACCESS_TOKEN, JWT_ALGORITHM, SESSION_TOKEN, TokenClaims, TokenError, TokenService, header_safe,
)

__all__ = [
    "ACCESS_TOKEN", "ARGON2_PARAMETERS", "BasicCredentials", "BasicCredentialsError", "CSRF_HEADER",
    "JWT_ALGORITHM", "JsonFileRevocations", "RevocationStore", "SAFE_METHODS", "SESSION_TOKEN",
    "SessionEnded", "SessionService", "TokenClaims", "TokenError", "TokenService", "basic_scheme", "bearer_challenge",
    "csrf_matches", "csrf_token", "hash_password", "header_safe", "is_argon2_hash", "parse_basic", "same",
    "unauthorized", "verify_and_update_password", "verify_password",
]
