"""Console sessions: signing in with an admin credential opens one, kept in the database
(so every site-server process knows it, and signing out or a revocation ends it at once).

The cookie holds a random secret; the table keeps its SHA-256, who signed in, the role,
the SHA-256 of the credential used, and a CSRF token. Each request re-checks the
credential as the API does: a revoked or expired account, or a changed site admin token,
ends the session. A session ends after LIFETIME, or after IDLE without a request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from fastapi import Request, Response
from sqlalchemy import ColumnElement, delete, update
from sqlalchemy.orm import Session

from peerdp.domain.admin_roles import AdminRole
from peerdp.site.auth import (
    LAST_USED_GRANULARITY,
    Credential,
    account_credential,
    same_secret,
    site_token_credential,
    token_hash,
)
from peerdp.site.context import SiteContext
from peerdp.store.models import AdminAccount, ConsoleSession, utcnow

COOKIE = "peerdp_console"
PATH = "/console"
LIFETIME = timedelta(hours=8)
IDLE = timedelta(minutes=30)


@dataclass(frozen=True)
class SignedIn:
    """Who is using the console, with which role; the CSRF token of their forms."""

    who: str
    role: AdminRole
    account_id: int | None
    csrf_token: str

    @property
    def credential(self) -> Credential:
        return Credential(self.who, self.role, self.account_id)


def expired(now: datetime) -> ColumnElement[bool]:
    """Sessions past their lifetime or idle too long: they sign no one in any more (the
    site's upkeep deletes them, site/upkeep.py)."""
    return (ConsoleSession.created_at < now - LIFETIME) | (ConsoleSession.last_seen_at < now - IDLE)


class SignInNeeded(Exception):
    """No valid session: the console answers with its sign-in page."""


def sign_in(ctx: SiteContext, given: str) -> tuple[str, SignedIn]:
    """Open a session for the admin credential `given` (401 if it is none); the cookie's
    secret and who signed in."""
    credential = site_token_credential(ctx.admin_token, given) or account_credential(ctx.db, given)
    secret = secrets.token_urlsafe(32)
    signed = SignedIn(
        credential.name, credential.role, credential.account_id, secrets.token_urlsafe(32)
    )
    now = utcnow()
    with ctx.db.transaction() as s:
        # Sessions past their lifetime go as new ones come: the table stays small.
        s.execute(delete(ConsoleSession).where(ConsoleSession.created_at < now - LIFETIME))
        s.add(
            ConsoleSession(
                id=token_hash(secret),
                who=signed.who,
                role=signed.role,
                account_id=signed.account_id,
                credential_hash=token_hash(given),
                csrf_token=signed.csrf_token,
                created_at=now,
                last_seen_at=now,
            )
        )
    return secret, signed


def signed_in(ctx: SiteContext, secret: str | None, *, touch: bool = True) -> SignedIn:
    """The session of the cookie's secret, if it is still valid; SignInNeeded if not.
    `touch`: the request is the user's (not a page's own refresh): the session is not idle.

    Read without SQLite's write lock: every page, live refresh and event stream checks its
    session, and a write transaction each would queue behind (and hold up) the MP's
    writes. A write is made only to drop an ended session or to mark one used."""
    if not secret:
        raise SignInNeeded
    now = utcnow()
    key = token_hash(secret)
    with ctx.db.reading() as s:
        row = s.get(ConsoleSession, key)
        if row is None:
            raise SignInNeeded
        role = _role_now(ctx, s, row)
        ended = role is None or now - row.created_at > LIFETIME or now - row.last_seen_at > IDLE
        stale = touch and now - row.last_seen_at >= LAST_USED_GRANULARITY
        found = SignedIn(row.who, role, row.account_id, row.csrf_token) if role else None
    if ended or found is None:
        with ctx.db.transaction() as s:
            s.execute(delete(ConsoleSession).where(ConsoleSession.id == key))
        raise SignInNeeded
    if stale:
        with ctx.db.transaction() as s:
            s.execute(
                update(ConsoleSession).where(ConsoleSession.id == key).values(last_seen_at=now)
            )
    return found


def _role_now(ctx: SiteContext, s: Session, row: ConsoleSession) -> AdminRole | None:
    """The role the session's credential holds now; None if it no longer signs in."""
    if row.account_id is None:
        current = token_hash(ctx.admin_token)
        return cast(AdminRole, row.role) if same_secret(row.credential_hash, current) else None
    account = s.get(AdminAccount, row.account_id)
    if account is None or account.revoked_at is not None:
        return None
    if account.expires_at is not None and account.expires_at <= utcnow():
        return None
    if not same_secret(account.token_hash, row.credential_hash):
        return None
    return cast(AdminRole, account.role)


def sign_out(ctx: SiteContext, secret: str | None) -> None:
    if secret:
        with ctx.db.transaction() as s:
            s.execute(delete(ConsoleSession).where(ConsoleSession.id == token_hash(secret)))


def set_cookie(request: Request, response: Response, secret: str) -> None:
    response.set_cookie(
        COOKIE,
        secret,
        max_age=int(LIFETIME.total_seconds()),
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=_serves_tls(request),
    )


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path=PATH, httponly=True, samesite="strict", secure=_serves_tls(request)
    )


def _serves_tls(request: Request) -> bool:
    ctx: SiteContext = request.app.state.site
    return ctx.settings.tls_cert is not None or request.url.scheme == "https"
