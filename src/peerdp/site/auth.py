"""Admin bearer token: PEERDP_ADMIN_TOKEN, else one made on first start in the data dir."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from fastapi import Request

from peerdp.security.bearer import bearer_token
from peerdp.site.errors import Unauthorized


def load_or_create_admin_token(data_dir: Path, configured: str | None) -> tuple[str, Path | None]:
    """The admin token, and the file it was read from or written to (None when configured)."""
    if configured:
        return configured, None
    path = data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip(), path
    token = secrets.token_urlsafe(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token, path


def bearer(request: Request) -> str:
    """The bearer token of a request; 401 when there is none."""
    return bearer_of(request.headers.get("authorization"))


def bearer_of(authorization: str | None) -> str:
    """The bearer token of an Authorization header; 401 when there is none."""
    token = bearer_token(authorization)
    if token is None:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    return token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
