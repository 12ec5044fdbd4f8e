"""`/api/v1/on-demand-requests` and `/api/v1/status-messages`: what happened, and why."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from peerdp.domain.status_types import STATUS_TYPES, Severity, StatusComponent
from peerdp.site.admin.schemas import OnDemandRequestOut, PackageId, StatusMessageOut
from peerdp.site.context import SiteContext, get_or_404, site
from peerdp.site.errors import Invalid
from peerdp.store.models import OnDemandRequest, StatusMessage

router = APIRouter(tags=["history"])


@router.get("/on-demand-requests", response_model=list[OnDemandRequestOut])
def list_on_demand(
    package_id: PackageId | None = None,
    dp_id: int | None = None,
    state: str | None = Query(default=None, pattern="^(delayed|provisioned)$"),
    ctx: SiteContext = Depends(site),
) -> list[OnDemandRequest]:
    query = select(OnDemandRequest).order_by(OnDemandRequest.id)
    if package_id is not None:
        query = query.where(OnDemandRequest.package_id == package_id)
    if dp_id is not None:
        query = query.where(OnDemandRequest.dp_id == dp_id)
    if state is not None:
        query = query.where(OnDemandRequest.state == state)
    with ctx.transaction() as s:
        return list(s.scalars(query))


@router.get("/on-demand-requests/{request_id}", response_model=OnDemandRequestOut)
def get_on_demand(request_id: int, ctx: SiteContext = Depends(site)) -> OnDemandRequest:
    with ctx.transaction() as s:
        return get_or_404(s, OnDemandRequest, request_id, "on-demand request")


class StatusFilter(BaseModel):
    """Which status messages to read: every filter given must hold (the API's query, the
    console's form)."""

    model_config = ConfigDict(frozen=True)

    package_id: str | None = None
    dp_id: int | None = None
    client_name: str | None = None
    advertisement_id: int | None = None
    type: str | None = None
    state: str | None = None
    component: str | None = None
    severity: str | None = None
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before
    after_id: int | None = None
    before_id: int | None = None


def status_query(filters: StatusFilter, *, newest: bool, limit: int) -> Select[StatusMessage]:
    """The messages matching `filters`, the newest first (or the oldest), `limit` of them.

    Indexes keep a page cheap on a large log (migration 0016): component and severity
    (with the id, so the newest come in order), the time, and each column named alone."""
    order = StatusMessage.id.desc() if newest else StatusMessage.id
    query = select(StatusMessage).order_by(order).limit(limit)
    equal = {
        StatusMessage.package_id: filters.package_id,
        StatusMessage.dp_id: filters.dp_id,
        StatusMessage.client_name: filters.client_name,
        StatusMessage.advertisement_id: filters.advertisement_id,
        StatusMessage.type: filters.type,
        StatusMessage.state: filters.state,
        StatusMessage.component: filters.component,
        StatusMessage.severity: filters.severity,
    }
    for column, value in equal.items():
        if value is not None:
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(StatusMessage.at >= _utc(filters.since))
    if filters.until is not None:
        query = query.where(StatusMessage.at < _utc(filters.until))
    if filters.after_id is not None:
        query = query.where(StatusMessage.id > filters.after_id)
    if filters.before_id is not None:
        query = query.where(StatusMessage.id < filters.before_id)
    return query


def status_messages(
    ctx: SiteContext, filters: StatusFilter, *, newest: bool, limit: int
) -> list[StatusMessage]:
    """Read a page of the log (Invalid: a type that no message has)."""
    with ctx.db.reading() as s:
        if filters.type is not None:
            _check_type(s, filters.type)
        return list(s.scalars(status_query(filters, newest=newest, limit=limit)))


def _utc(moment: datetime) -> datetime:
    """A time without a zone is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/status-messages", response_model=list[StatusMessageOut])
def list_status(
    package_id: PackageId | None = None,
    dp_id: int | None = None,
    client_name: str | None = None,
    advertisement_id: int | None = None,
    type: str | None = Query(
        default=None, description="only this type; an unknown type is refused with the list"
    ),
    state: str | None = None,
    component: StatusComponent | None = Query(
        default=None, description="only messages written by this component"
    ),
    severity: Severity | None = Query(default=None, description="only this severity"),
    since: datetime | None = Query(default=None, description="only messages at or after this"),
    until: datetime | None = Query(default=None, description="only messages before this"),
    after_id: int | None = Query(default=None, description="only messages with a larger id"),
    before_id: int | None = Query(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="only messages with a smaller id: with newest=true, the next (older) page",
    ),
    limit: int = Query(default=1000, ge=1, le=10000),
    newest: bool = Query(
        default=False, description="the newest `limit` messages, newest first (else oldest)"
    ),
    ctx: SiteContext = Depends(site),
) -> list[StatusMessage]:
    """The status message log, filtered; times without a zone are UTC."""
    filters = StatusFilter(
        package_id=package_id,
        dp_id=dp_id,
        client_name=client_name,
        advertisement_id=advertisement_id,
        type=type,
        state=state,
        component=component,
        severity=severity,
        since=since,
        until=until,
        after_id=after_id,
        before_id=before_id,
    )
    return status_messages(ctx, filters, newest=newest, limit=limit)


def _check_type(s: Session, type_: str) -> None:
    """Invalid unless `type_` is a known type or one in the log (agents may add types)."""
    if type_ in STATUS_TYPES:
        return
    if s.scalar(select(StatusMessage.id).where(StatusMessage.type == type_).limit(1)):
        return
    logged = s.scalars(select(StatusMessage.type).distinct())
    known = ", ".join(sorted(STATUS_TYPES.union(logged)))
    raise Invalid(f"type: no status message type is called {type_!r}; the types are {known}")
