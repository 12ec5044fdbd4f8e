"""Reading a bearer credential (RFC 6750) from an ``Authorization`` header value."""

from __future__ import annotations

import hmac
from collections.abc import Iterable


def bearer_token(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None if the header is absent, names
    another scheme or carries no token. The scheme name is case-insensitive."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def bears_one_of(header: str | None, accepted: Iterable[str]) -> bool:
    """Whether the header's bearer token is one of `accepted` (compared in constant time)."""
    token = bearer_token(header)
    if token is None:
        return False
    given = token.encode()
    # Every candidate is compared, so the time taken does not tell which one came close.
    matches = [hmac.compare_digest(given, secret.encode()) for secret in accepted if secret]
    return any(matches)
