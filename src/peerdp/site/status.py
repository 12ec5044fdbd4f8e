"""Writing status messages: the append-only log of what every component did.

Each message recorded is logged too (`peerdp.site.status`, event "status message", with
its component, source, type, package, version, DP, client, state and detail), so the
site server's log tells every decision: DP state changes, on-demand provisioning
(`on_demand_triggered`, `on_demand_delayed`), registrations, and what machines report.
The high-volume content-location answers (status_batch.py) are not logged one by one.
Each transaction writing messages says so on the change bus (kind "messages": it wakes the
console's status message viewer, never a policy long-poll).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from peerdp.logs import get_logger
from peerdp.site.context import SiteContext
from peerdp.site.notify import ChangeBus
from peerdp.store.models import StatusMessage, utcnow

log = get_logger("peerdp.site.status")
_LEVELS = {"error": log.error, "warning": log.warning}


def record(
    session: Session,
    changes: ChangeBus,
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
    changes.publish(session, messages=True, concerns=())
    shown = {key: value for key, value in fields.items() if value is not None}
    _LEVELS.get(severity, log.info)(
        "status message", component=component, source=source, type=type, detail=detail, **shown
    )
    return message


def site_event(s: Session, ctx: SiteContext, type: str, **fields: Any) -> StatusMessage:
    """A status message of the site itself: what an administrator's change did."""
    return record(s, ctx.changes, component="site", source=ctx.site_code, type=type, **fields)


def mp_event(s: Session, ctx: SiteContext, type: str, **fields: Any) -> StatusMessage:
    """A status message of the site's management point (a registration, on-demand)."""
    return record(s, ctx.changes, component="mp", source=ctx.site_code, type=type, **fields)
