"""Console sessions on each database: a session knows who and which role, ends at its
lifetime, when idle, when signed out, and when its credential stops signing in (an account
revoked or expired, the site's admin token changed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from peerdp.config import SiteSettings
from peerdp.site.app import open_site
from peerdp.site.auth import token_hash
from peerdp.site.console.sessions import (
    IDLE,
    LIFETIME,
    SignInNeeded,
    sign_in,
    sign_out,
    signed_in,
)
from peerdp.site.context import SiteContext
from peerdp.site.errors import Unauthorized
from peerdp.store.models import AdminAccount, ConsoleSession, utcnow


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[SiteContext]:
    site = open_site(SiteSettings(data_dir=tmp_path, db=db_url, admin_token="site-secret"))
    yield site
    site.db.dispose()


def _account(ctx: SiteContext, role: str, secret: str) -> int:
    with ctx.db.transaction() as s:
        account = AdminAccount(name=f"acc-{role}", role=role, token_hash=token_hash(secret))
        s.add(account)
        s.flush()
        return account.id


def _age(ctx: SiteContext, secret: str, **ago: timedelta) -> None:
    """Move the session's times into the past."""
    now = utcnow()
    values = {column: now - delta for column, delta in ago.items()}
    with ctx.db.transaction() as s:
        s.execute(
            update(ConsoleSession).where(ConsoleSession.id == token_hash(secret)).values(values)
        )


def _sessions(ctx: SiteContext) -> int:
    with ctx.db.reading() as s:
        return s.scalar(select(func.count()).select_from(ConsoleSession)) or 0


def test_a_session_knows_who_signed_in_and_their_role(ctx: SiteContext) -> None:
    secret, opened = sign_in(ctx, "site-secret")
    assert (opened.who, opened.role, opened.account_id) == ("admin-token", "full", None)
    assert signed_in(ctx, secret) == opened
    account_id = _account(ctx, "read_only", "reader-secret")
    reader_secret, reader = sign_in(ctx, "reader-secret")
    assert signed_in(ctx, reader_secret) == reader
    assert (reader.who, reader.role, reader.account_id) == (
        "acc-read_only",
        "read_only",
        account_id,
    )
    assert reader.csrf_token != opened.csrf_token and reader_secret != secret
    with pytest.raises(Unauthorized, match="wrong admin token"):
        sign_in(ctx, "not-a-credential")
    for bad in (None, "", "unknown"):
        with pytest.raises(SignInNeeded):
            signed_in(ctx, bad)


@pytest.mark.parametrize(
    "ended",
    [
        lambda ctx, secret: _age(ctx, secret, created_at=LIFETIME + timedelta(seconds=1)),
        lambda ctx, secret: _age(ctx, secret, last_seen_at=IDLE + timedelta(seconds=1)),
        lambda ctx, secret: sign_out(ctx, secret),
    ],
    ids=["lifetime", "idle", "signed-out"],
)
def test_a_session_ends(ctx: SiteContext, ended: Callable[[SiteContext, str], None]) -> None:
    secret, _ = sign_in(ctx, "site-secret")
    _age(ctx, secret, last_seen_at=IDLE - timedelta(minutes=1))
    signed_in(ctx, secret)  # nearly idle, still open: and the request keeps it open
    signed_in(ctx, secret)
    ended(ctx, secret)
    with pytest.raises(SignInNeeded):
        signed_in(ctx, secret)
    assert _sessions(ctx) == 0, "an ended session's row goes"


def test_a_session_ends_when_its_credential_stops_signing_in(ctx: SiteContext) -> None:
    revoked_id = _account(ctx, "operator", "op-secret")
    expired_id = _account(ctx, "full", "full-secret")
    revoked, _ = sign_in(ctx, "op-secret")
    expired, _ = sign_in(ctx, "full-secret")
    site, _ = sign_in(ctx, "site-secret")
    with ctx.db.transaction() as s:
        s.execute(
            update(AdminAccount).where(AdminAccount.id == revoked_id).values(revoked_at=utcnow())
        )
        s.execute(
            update(AdminAccount)
            .where(AdminAccount.id == expired_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    changed = replace(ctx, admin_token="a-new-site-secret")
    for secret in (revoked, expired):
        with pytest.raises(SignInNeeded):
            signed_in(ctx, secret)
    with pytest.raises(SignInNeeded):
        signed_in(changed, site)
    assert _sessions(ctx) == 0


def test_old_sessions_go_as_new_ones_open(ctx: SiteContext) -> None:
    old, _ = sign_in(ctx, "site-secret")
    _age(ctx, old, created_at=LIFETIME + timedelta(minutes=1))
    sign_in(ctx, "site-secret")
    assert _sessions(ctx) == 1


def test_a_page_refreshing_itself_does_not_keep_its_session_open(ctx: SiteContext) -> None:
    secret, _ = sign_in(ctx, "site-secret")
    _age(ctx, secret, last_seen_at=IDLE - timedelta(minutes=1))

    def last_seen() -> object:
        with ctx.db.reading() as s:
            return s.get(ConsoleSession, token_hash(secret)).last_seen_at  # type: ignore[union-attr]

    before = last_seen()
    signed_in(ctx, secret, touch=False)
    assert last_seen() == before
    signed_in(ctx, secret)
    assert last_seen() != before, "a request of the user's keeps it open"
