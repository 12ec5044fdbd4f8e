"""`/console/audit`: the audit log (the API's reader, site/admin/accounts.py): who, with
which role, when, the method, the path and the route it stands for, and the status;
filtered by who and by status class, the newest first, 100 a page ("older" by ID).
Every role may read it."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from peerdp.site.admin.accounts import StatusClass, audit_entries
from peerdp.site.admin.schemas import NO_NUL
from peerdp.site.console.deps import user
from peerdp.site.console.render import page
from peerdp.site.console.sessions import SignedIn
from peerdp.site.context import SiteContext, site

router = APIRouter()
PER_PAGE = 100
# The form sends empty fields: "" is "any".
Who = Annotated[str, Query(max_length=100, pattern=NO_NUL)]


def _class(value: str) -> StatusClass | None:
    return next((c for c in get_args(StatusClass) if c == value), None)


@router.get("/audit")
def audit_page(
    request: Request,
    who: Who = "",
    status_class: Annotated[str, Query(pattern=r"^([2-5]xx)?$")] = "",
    before_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    user_: SignedIn = Depends(user),
    ctx: SiteContext = Depends(site),
) -> Response:
    who = who.strip()
    entries = audit_entries(
        ctx,
        who=who or None,
        status_class=_class(status_class),
        before_id=before_id,
        limit=PER_PAGE + 1,
    )
    older = entries[PER_PAGE - 1].id if len(entries) > PER_PAGE else None
    query = {k: v for k, v in (("who", who), ("status_class", status_class)) if v}
    return page(
        request,
        "audit.html",
        user_,
        entries=entries[:PER_PAGE],
        who=who,
        status_class=status_class,
        classes=get_args(StatusClass),
        before_id=before_id,
        older=older,
        query=query,
    )
