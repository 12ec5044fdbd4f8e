"""`/api/v1/admin-accounts` (administrators' credentials with roles; `full` only) and
`/api/v1/audit` (the changes made through the admin API; every role may read it).

The audit log is readable by every role: it holds no secret, and it is what an auditor,
typically given a `read_only` account, is there to read; an operator checks in it what
colleagues did before acting. Who the administrators are (the accounts' list) is for
`full` alone, as is changing them (see access.py).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator, AwareDatetime, Field
from sqlalchemy import func, select

from peerdp.domain.admin_roles import AdminRole
from peerdp.domain.visible_names import check_visible
from peerdp.site.admin.schemas import NO_NUL, Id, Out, Strict
from peerdp.site.auth import SITE_TOKEN_NAME, token_hash
from peerdp.site.context import SiteContext, get_or_404, site
from peerdp.site.errors import Conflict, Invalid
from peerdp.store.models import AdminAccount, AuditEntry, utcnow

router = APIRouter(tags=["administrators"])

# Shown in lists, 403 answers and the audit log: visible characters, no slash or space
# at either end, so that one name cannot pass for another.
AccountName = Annotated[
    str,
    Field(min_length=1, max_length=100, pattern=r"^[^\s/\\](?:[^/\\]*[^\s/\\])?$"),
    AfterValidator(check_visible),
]


class AdminAccountIn(Strict):
    name: AccountName
    role: AdminRole
    expires_at: AwareDatetime | None = None


class AdminAccountOut(Out):
    id: int
    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class AdminAccountCreated(AdminAccountOut):
    token: str


class AuditEntryOut(Out):
    id: int
    at: datetime
    who: str
    role: str
    method: str
    path: str
    resource: str
    status: int


@router.get("/admin-accounts", response_model=list[AdminAccountOut])
def list_accounts(ctx: SiteContext = Depends(site)) -> list[AdminAccount]:
    with ctx.transaction() as s:
        return list(s.scalars(select(AdminAccount).order_by(AdminAccount.id)))


@router.post("/admin-accounts", response_model=AdminAccountCreated, status_code=201)
def create_account(body: AdminAccountIn, ctx: SiteContext = Depends(site)) -> dict[str, object]:
    """Make an administrator account; its secret is shown only in this answer."""
    if body.expires_at is not None and body.expires_at <= utcnow():
        raise Invalid("expires_at is in the past")
    if body.name.casefold() == SITE_TOKEN_NAME:
        raise Invalid(f"name: {SITE_TOKEN_NAME!r} is the site's own admin token")
    with ctx.transaction() as s:
        same = select(AdminAccount).where(func.lower(AdminAccount.name) == body.name.lower())
        taken = s.scalar(same)
        if taken is not None:
            named = f"an admin account is already named {taken.name!r} (ID {taken.id})"
            raise Conflict(f"name: {named}")
        token = "pda_" + secrets.token_urlsafe(32)
        row = AdminAccount(token_hash=token_hash(token), **body.model_dump())
        s.add(row)
        s.flush()
        return {**AdminAccountOut.model_validate(row).model_dump(), "token": token}


@router.get("/admin-accounts/{account_id}", response_model=AdminAccountOut)
def get_account(account_id: Id, ctx: SiteContext = Depends(site)) -> AdminAccount:
    with ctx.transaction() as s:
        return get_or_404(s, AdminAccount, account_id, "admin account")


@router.delete("/admin-accounts/{account_id}", response_model=AdminAccountOut)
def revoke_account(account_id: Id, ctx: SiteContext = Depends(site)) -> AdminAccount:
    """Revoke an account: its secret stops working at once, in every site process. The
    account stays listed (and its name taken), so the audit log's names stay unambiguous."""
    with ctx.transaction() as s:
        account = get_or_404(s, AdminAccount, account_id, "admin account")
        if account.revoked_at is not None:
            raise Conflict(f"admin account {account.name!r} was already revoked")
        account.revoked_at = utcnow()
        return account


# A status class (`4xx`): the answers from 400 to 499.
StatusClass = Literal["2xx", "3xx", "4xx", "5xx"]


@router.get("/audit", response_model=list[AuditEntryOut])
def list_audit(
    who: str | None = Query(
        default=None, max_length=100, pattern=NO_NUL, description="only this credential's"
    ),
    since: datetime | None = Query(default=None, description="only entries at or after this"),
    path_prefix: str | None = Query(
        default=None, max_length=2000, pattern=NO_NUL, description="only paths starting so"
    ),
    status_class: StatusClass | None = Query(
        default=None, description="only answers of this class: 4xx are the refusals"
    ),
    before_id: int | None = Query(
        default=None, ge=1, le=2**31 - 1, description="the next page: entries older than this ID"
    ),
    limit: int = Query(default=100, ge=1, le=1000),
    ctx: SiteContext = Depends(site),
) -> list[AuditEntry]:
    """The newest entries first; page with `before_id` set to the last ID of a page."""
    return audit_entries(
        ctx,
        who=who,
        since=since,
        path_prefix=path_prefix,
        status_class=status_class,
        before_id=before_id,
        limit=limit,
    )


def audit_entries(
    ctx: SiteContext,
    *,
    who: str | None = None,
    since: datetime | None = None,
    path_prefix: str | None = None,
    status_class: StatusClass | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """A page of the audit log, the newest first (the API's and the console's)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if who is not None:
        query = query.where(AuditEntry.who == who)
    if since is not None:
        query = query.where(AuditEntry.at >= (since if since.tzinfo else since.replace(tzinfo=UTC)))
    if path_prefix is not None:
        query = query.where(AuditEntry.path.startswith(path_prefix, autoescape=True))
    if status_class is not None:
        lowest = int(status_class[0]) * 100
        query = query.where(AuditEntry.status >= lowest, AuditEntry.status < lowest + 100)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    with ctx.db.reading() as s:
        return list(s.scalars(query))
