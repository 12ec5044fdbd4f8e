"""Reading a bearer credential (RFC 6750) from an ``Authorization`` header value."""

from __future__ import annotations


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
