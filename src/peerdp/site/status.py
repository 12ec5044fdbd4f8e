"""Writing status messages: the append-only log of what every component did."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from peerdp.site.context import SiteContext
from peerdp.store.models import StatusMessage, utcnow


def record(
    session: Session,
    *,
    component: str,
    source: str,
    type: str,
    detail: str = "",
    severity: str = "info",
    at: datetime | None = None,
    **fields: Any,
) -> StatusMessage:
    """Append one status message in the caller's transaction."""
    message = StatusMessage(
        component=component,
        source=source,
        type=type,
        detail=detail,
        severity=severity,
        at=at or utcnow(),
        received_at=utcnow(),
        **fields,
    )
    session.add(message)
    return message


def site_event(s: Session, ctx: SiteContext, type: str, **fields: Any) -> StatusMessage:
    """A status message of the site itself: what an administrator's change did."""
    return record(s, component="site", source=ctx.site_code, type=type, **fields)


def mp_event(s: Session, ctx: SiteContext, type: str, **fields: Any) -> StatusMessage:
    """A status message of the site's management point (a registration, on-demand)."""
    return record(s, component="mp", source=ctx.site_code, type=type, **fields)
