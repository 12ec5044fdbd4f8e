"""`/console/status-messages`: SCCM's status message viewer. A GET form of filters (a
filtered view is a URL to share), the newest first, 100 a page with an "older" link by ID
(keyset: never counting or skipping rows), and a follow mode whose live part fetches only
the messages newer than the newest shown (`after_id`) when the change bus says messages
were written. The query is the API's (site/admin/history.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.datastructures import QueryParams

from peerdp.content.ids import upper_package_id
from peerdp.domain.status_types import SEVERITIES, STATUS_COMPONENTS, STATUS_TYPES
from peerdp.site.admin.history import StatusFilter, status_messages
from peerdp.site.console.deps import user
from peerdp.site.console.pages import refused
from peerdp.site.console.render import page
from peerdp.site.console.sessions import SignedIn
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import ApiError, Invalid
from peerdp.store.models import Advertisement, DistributionPoint, StatusMessage

router = APIRouter()
PER_PAGE = 100
# The form's fields, in the URL's order (a shared link reads the same).
FIELDS = ("component", "severity", "type", "package", "dp", "client", "advertisement")
TIMES = ("from", "to")
_TYPE = re.compile(r"[a-z_]{1,64}")
_MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Form:
    """The form as given (shown back in its fields) and the filter it means."""

    values: dict[str, str]
    filters: StatusFilter
    before_id: int | None
    follow: bool

    def query(self, **more: str | int) -> str:
        """The URL query of these filters (and `more`), empty fields left out."""
        given = {k: v for k, v in self.values.items() if v}
        return urlencode({**given, **{k: str(v) for k, v in more.items()}})


def read_form(ctx: SiteContext, params: QueryParams) -> Form:
    """The filters of a query string (Invalid: a value that names nothing or is malformed)."""
    values = {name: params.get(name, "").strip() for name in (*FIELDS, *TIMES)}
    for name, value in values.items():
        if len(value) > 200 or not value.isprintable():
            raise Invalid(f"{name}: not a value this filter can hold")
    component, severity, type_ = values["component"], values["severity"], values["type"]
    if component and component not in STATUS_COMPONENTS:
        raise Invalid(f"component: {component!r} is not one of {', '.join(STATUS_COMPONENTS)}")
    if severity and severity not in SEVERITIES:
        raise Invalid(f"severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
    if type_ and not _TYPE.fullmatch(type_):
        raise Invalid(f"type: {type_!r} is not a status message type (letters and _)")
    since, until = _time(values, "from"), _time(values, "to")
    if since and until and since >= until:
        raise Invalid("from: the time range ends before it starts")
    filters = StatusFilter(
        component=component or None,
        severity=severity or None,
        type=type_ or None,
        package_id=upper_package_id(values["package"]) if values["package"] else None,
        dp_id=_dp(ctx, values["dp"]),
        client_name=values["client"] or None,
        advertisement_id=_number(values, "advertisement", 2**31 - 1),
        since=since,
        until=until,
    )
    before = _number({"before_id": params.get("before_id", "")}, "before_id", _MAX_ID)
    follow = params.get("follow", "") in ("1", "on", "yes", "true")
    return Form(values, filters, before, follow and before is None)


def _number(values: dict[str, str], name: str, highest: int) -> int | None:
    value = values[name]
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= highest:
        raise Invalid(f"{name}: {value!r} is not an ID")
    return int(value)


def _time(values: dict[str, str], name: str) -> datetime | None:
    """A time as the form sends it: UTC unless it names its zone (the page's script
    converts the browser's local time to UTC before sending)."""
    value = values[name]
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # not a time, or one whose UTC is out of range
        raise Invalid(f"{name}: {value!r} is not a date and time (YYYY-MM-DDTHH:MM, UTC)") from None


def _dp(ctx: SiteContext, value: str) -> int | None:
    """A DP by its ID or its name."""
    if not value:
        return None
    if value.isdigit() and int(value) <= 2**31 - 1:
        return int(value)
    with ctx.db.reading() as s:
        found = s.scalar(select(DistributionPoint.id).where(DistributionPoint.name == value))
    if found is None:
        raise Invalid(f"dp: no distribution point is named {value!r}")
    return found


def _dp_names(ctx: SiteContext, messages: list[StatusMessage]) -> dict[int, str]:
    ids = {m.dp_id for m in messages if m.dp_id is not None}
    if not ids:
        return {}
    with ctx.db.reading() as s:
        rows = s.execute(
            select(DistributionPoint.id, DistributionPoint.name).where(
                DistributionPoint.id.in_(ids)
            )
        )
        return {dp_id: name for dp_id, name in rows}


def _advertisements(ctx: SiteContext) -> list[tuple[int, str]]:
    with ctx.db.reading() as s:
        rows = s.execute(select(Advertisement.id, Advertisement.name).order_by(Advertisement.name))
        return [(i, name) for i, name in rows]


@router.get("/status-messages")
def messages_page(
    request: Request, who: SignedIn = Depends(user), ctx: SiteContext = Depends(site)
) -> Response:
    try:
        form = read_form(ctx, request.query_params)
        filters = form.filters.model_copy(update={"before_id": form.before_id})
        shown = status_messages(ctx, filters, newest=True, limit=PER_PAGE + 1)
    except ApiError as exc:
        return refused(request, who, exc, back="/console/status-messages")
    older = shown[PER_PAGE - 1].id if len(shown) > PER_PAGE else None
    shown = shown[:PER_PAGE]
    types = sorted(STATUS_TYPES | ({form.filters.type} if form.filters.type else set()))
    return page(
        request,
        "status_messages.html",
        who,
        form=form,
        messages=shown,
        dp_names=_dp_names(ctx, shown),
        newest=shown[0].id if shown else 0,
        older=older,
        components=STATUS_COMPONENTS,
        severities=SEVERITIES,
        types=types,
        advertisements=_advertisements(ctx),
    )


@router.get("/status-messages/live")
def messages_live(
    request: Request, who: SignedIn = Depends(user), ctx: SiteContext = Depends(site)
) -> Response:
    """The messages newer than `after_id` matching the filters (at most a page): the rows
    the following page puts on top."""
    try:
        form = read_form(ctx, request.query_params)
        after = _number({"after_id": request.query_params.get("after_id", "")}, "after_id", _MAX_ID)
        filters = form.filters.model_copy(update={"after_id": after or 0})
        shown = status_messages(ctx, filters, newest=True, limit=PER_PAGE)
    except ApiError as exc:
        return refused(request, who, exc)
    return page(request, "_status_rows.html", who, messages=shown, dp_names=_dp_names(ctx, shown))
