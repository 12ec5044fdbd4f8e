"""`/api/v1/on-demand-requests` and `/api/v1/status-messages`: what happened, and why."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerdp.domain.status_types import STATUS_TYPES
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
    since: datetime | None = Query(default=None, description="only messages at or after this"),
    after_id: int | None = Query(default=None, description="only messages with a larger id"),
    limit: int = Query(default=1000, ge=1, le=10000),
    newest: bool = Query(
        default=False, description="the newest `limit` messages, newest first (else oldest)"
    ),
    ctx: SiteContext = Depends(site),
) -> list[StatusMessage]:
    order = StatusMessage.id.desc() if newest else StatusMessage.id
    query = select(StatusMessage).order_by(order).limit(limit)
    filters = {
        StatusMessage.package_id: package_id,
        StatusMessage.dp_id: dp_id,
        StatusMessage.client_name: client_name,
        StatusMessage.advertisement_id: advertisement_id,
        StatusMessage.type: type,
        StatusMessage.state: state,
    }
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        query = query.where(StatusMessage.at >= since)
    if after_id is not None:
        query = query.where(StatusMessage.id > after_id)
    with ctx.transaction() as s:
        if type is not None:
            _check_type(s, type)
        return list(s.scalars(query))


def _check_type(s: Session, type_: str) -> None:
    """Invalid unless `type_` is a known type or one in the log (agents may add types)."""
    if type_ in STATUS_TYPES:
        return
    if s.scalar(select(StatusMessage.id).where(StatusMessage.type == type_).limit(1)):
        return
    logged = s.scalars(select(StatusMessage.type).distinct())
    known = ", ".join(sorted(STATUS_TYPES.union(logged)))
    raise Invalid(f"type: no status message type is called {type_!r}; the types are {known}")
