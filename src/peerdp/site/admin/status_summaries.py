"""`GET /api/v1/advertisements/{id}/status` and `GET /api/v1/packages/{id}/status`: how a
deployment went on its clients, and where a package stands on its DPs, without reading
the status log.

The counts come from `deployment_states` (one row per advertisement and client, kept as
status arrives: site/deployment_status.py) through one index, and from the package's DP
list, so they answer in milliseconds at 100,000 clients.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from peerdp.domain import dp_states
from peerdp.domain.deployment_states import DEPLOYMENT_STATES, DeploymentState
from peerdp.site.admin.schemas import NO_NUL, OnDemandRequestOut, PackageId
from peerdp.site.admin.status_schemas import (
    AdvertisementStatusOut,
    BoundaryCountsOut,
    DeploymentRowOut,
    PackageDPStatusOut,
    PackageStatusOut,
)
from peerdp.site.context import SiteContext, get_or_404, site
from peerdp.store.models import (
    Advertisement,
    Boundary,
    DeploymentStateRow,
    DistributionPoint,
    OnDemandRequest,
    Package,
    PackageDistributionPoint,
)

router = APIRouter(tags=["status"])

Row = DeploymentStateRow
AdvertisementId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/advertisements/{advertisement_id}/status", response_model=AdvertisementStatusOut)
def advertisement_status(
    advertisement_id: AdvertisementId,
    state: DeploymentState | None = Query(default=None, description="only clients in this state"),
    client: str | None = Query(
        default=None,
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="only clients whose name starts with this (ignoring case)",
    ),
    limit: int = Query(default=100, ge=1, le=1000, description="client rows per page"),
    offset: int = Query(default=0, ge=0, le=10_000_000, description="client rows skipped"),
    ctx: SiteContext = Depends(site),
) -> AdvertisementStatusOut:
    """Counts of the advertisement's clients per state and per boundary and state, and a
    page of its client rows in name order (filtered by `state` and `client`)."""
    with ctx.db.reading() as s:
        adv = get_or_404(s, Advertisement, advertisement_id, "advertisement")
        version = s.scalar(select(Package.source_version).where(Package.id == adv.package_id))
        current = version or 0
        counts, boundaries, behind = _counts(s, adv.id, current)
        filters: list[Any] = [Row.advertisement_id == adv.id]
        if state is not None:
            filters.append(Row.state == state)
        if client is not None:
            filters.append(Row.client_name.istartswith(client, autoescape=True))
        page = list(
            s.scalars(
                select(Row).where(*filters).order_by(Row.client_name).limit(limit).offset(offset)
            )
        )
        if client is not None:
            matched = s.scalar(select(func.count()).select_from(Row).where(*filters)) or 0
        else:
            matched = counts[state] if state is not None else sum(counts.values())
        dp_names = _names(s, DistributionPoint, {r.source_dp_id for r in page})
        boundary_names = _names(s, Boundary, {r.boundary_id for r in page})
        return AdvertisementStatusOut(
            advertisement_id=adv.id,
            advertisement_name=adv.name,
            package_id=adv.package_id,
            source_version=current,
            total=sum(counts.values()),
            counts=counts,
            behind=behind,
            boundaries=boundaries,
            matched=matched,
            limit=limit,
            offset=offset,
            clients=[_client_row(r, dp_names, boundary_names) for r in page],
        )


def _counts(
    s: Session, advertisement_id: int, current: int
) -> tuple[dict[str, int], list[BoundaryCountsOut], int]:
    """Clients per state, per boundary and state, and those behind the current version:
    one pass over the advertisement's entries of the counts index."""
    older = Row.source_version < current
    query = (
        select(Row.boundary_id, Row.state, older, func.count())
        .where(Row.advertisement_id == advertisement_id)
        .group_by(Row.boundary_id, Row.state, older)
    )
    counts: dict[str, int] = dict.fromkeys(DEPLOYMENT_STATES, 0)
    by_boundary: dict[int | None, dict[str, int]] = {}
    behind = 0
    for boundary_id, state, is_older, count in s.execute(query):
        counts[state] += count
        per = by_boundary.setdefault(boundary_id, dict.fromkeys(DEPLOYMENT_STATES, 0))
        per[state] += count
        behind += count if is_older else 0
    names = _names(s, Boundary, set(by_boundary))
    boundaries = [
        BoundaryCountsOut(
            boundary_id=boundary_id,
            boundary_name=names.get(boundary_id) if boundary_id is not None else None,
            total=sum(per.values()),
            counts=per,
        )
        for boundary_id, per in sorted(
            by_boundary.items(), key=lambda i: _boundary_order(i[0], names)
        )
    ]
    return counts, boundaries, behind


def _boundary_order(boundary_id: int | None, names: dict[int, str]) -> tuple[int, str]:
    """By name, clients in no boundary last."""
    if boundary_id is None:
        return (1, "")
    return (0, names.get(boundary_id, ""))


def _names(
    s: Session, model: type[Boundary] | type[DistributionPoint], ids: set[Any]
) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    found = s.execute(select(model.id, model.name).where(model.id.in_(wanted)))
    return {key: name for key, name in found}  # not dict(): a Result has keys() of its own


def _client_row(
    row: DeploymentStateRow, dp_names: dict[int, str], boundary_names: dict[int, str]
) -> DeploymentRowOut:
    return DeploymentRowOut(
        client_name=row.client_name,
        state=row.state,
        source_version=row.source_version,
        reason=row.reason,
        exit_code=row.exit_code,
        restart_required=row.restart_required,
        source_dp_id=row.source_dp_id,
        source_dp_name=dp_names.get(row.source_dp_id) if row.source_dp_id is not None else None,
        boundary_id=row.boundary_id,
        boundary_name=boundary_names.get(row.boundary_id) if row.boundary_id is not None else None,
        at=row.at,
    )


@router.get("/packages/{package_id}/status", response_model=PackageStatusOut)
def package_status(package_id: PackageId, ctx: SiteContext = Depends(site)) -> PackageStatusOut:
    """On how many of its DPs the package's current version is installed, its DPs per state
    with each one's version and bytes (pulled over the WAN, served), and its on-demand
    requests."""
    with ctx.db.reading() as s:
        package = get_or_404(s, Package, package_id, "package")
        query = (
            select(PackageDistributionPoint, DistributionPoint.name, DistributionPoint.kind)
            .join(DistributionPoint, DistributionPoint.id == PackageDistributionPoint.dp_id)
            .where(PackageDistributionPoint.package_id == package.id)
            .order_by(DistributionPoint.name)
        )
        rows = [_dp_row(row, name, kind) for row, name, kind in s.execute(query)]
        counts = dict.fromkeys(dp_states.STATES, 0)
        for row in rows:
            counts[row.state] += 1
        on_demand = s.scalars(
            select(OnDemandRequest)
            .where(OnDemandRequest.package_id == package.id)
            .order_by(OnDemandRequest.id)
        )
        return PackageStatusOut(
            package_id=package.id,
            name=package.name,
            source_version=package.source_version,
            dps_total=len(rows),
            installed=sum(
                1
                for row in rows
                if row.state == dp_states.INSTALLED and row.source_version == package.source_version
            ),
            counts=counts,
            distribution_points=rows,
            on_demand=[OnDemandRequestOut.model_validate(r) for r in on_demand],
        )


def _dp_row(row: PackageDistributionPoint, name: str, kind: str) -> PackageDPStatusOut:
    return PackageDPStatusOut(
        package_id=row.package_id,
        dp_id=row.dp_id,
        dp_name=name,
        dp_kind=kind,
        state=row.state,
        source_version=row.source_version,
        origin=row.origin,
        detail=row.detail,
        attempts=row.attempts,
        deadline_at=row.deadline_at,
        updated_at=row.updated_at,
        pulled_bytes=row.pulled_bytes,
        served_bytes=row.served_bytes,
    )
