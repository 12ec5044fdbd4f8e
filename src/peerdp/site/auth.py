"""Admin credentials: the site's admin token (PEERDP_ADMIN_TOKEN, else one made on first
start in the data dir), which is `full`, and administrator accounts with a role."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import cast

from fastapi import Request
from sqlalchemy import select

from peerdp.domain.admin_roles import FULL, AdminRole
from peerdp.domain.timestamps import rfc3339
from peerdp.security.bearer import bearer_token
from peerdp.site.errors import Unauthorized
from peerdp.store.db import Database
from peerdp.store.models import AdminAccount, utcnow


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


# The name the site's own admin token goes by in 403 answers and the audit log; no account
# may take it.
SITE_TOKEN_NAME = "admin-token"
# How stale an account's last_used_at may get before a request writes it again: a write on
# every request would serialise every read behind the database's write lock.
LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class Credential:
    """Who made an admin API request: the site's admin token or an administrator account."""

    name: str
    role: AdminRole
    account_id: int | None = None

    def describe(self) -> str:
        """`admin account 'ops' holds the operator role`, for refusals."""
        who = f"admin account {self.name!r}"
        if self.account_id is None:
            who = "the site's admin token"
        return f"{who} holds the {self.role} role"


def site_token_credential(site_token: str, given: str) -> Credential | None:
    """The site's admin token's credential if `given` is it (no database read)."""
    return Credential(SITE_TOKEN_NAME, FULL) if same_secret(given, site_token) else None


def account_credential(db: Database, given: str) -> Credential:
    """The administrator account whose secret `given` is; 401 if none, revoked or expired.

    Read from the database on every request (never cached), so that a revocation or an
    expiry takes effect at once in every site process."""
    now = utcnow()
    with db.transaction() as s:
        found = select(AdminAccount).where(AdminAccount.token_hash == token_hash(given))
        account = s.scalar(found)
        if account is None:
            raise Unauthorized("wrong admin token")
        if account.revoked_at is not None:
            raise Unauthorized(f"admin account {account.name!r} was revoked")
        if account.expires_at is not None and account.expires_at <= now:
            expired = rfc3339(account.expires_at)
            raise Unauthorized(f"admin account {account.name!r} expired at {expired}")
        if account.last_used_at is None or now - account.last_used_at >= LAST_USED_GRANULARITY:
            account.last_used_at = now
        return Credential(account.name, cast(AdminRole, account.role), account.id)
