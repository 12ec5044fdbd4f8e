"""`GET /api/v1/advertisements/{id}/status` and `GET /api/v1/packages/{id}/status`: how a
deployment went on its clients, and where a package stands on its DPs, without reading
the status log.

The counts come from `deployment_states` (one row per advertisement and client, kept as
status arrives: site/deployment_status.py) through one index, and from the package's DP
list, so they answer in milliseconds at 100,000 clients.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel
from sqlalchemy import case, func, select
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


def _json(answer: BaseModel) -> Response:
    """The answer serialised once: FastAPI would dump a returned model, validate the dump
    against the response model and serialise it again (10,000s of nested values here).
    The response model still describes the answer in the OpenAPI document."""
    return Response(answer.model_dump_json(), media_type="application/json")


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
) -> Response:
    """Counts of the advertisement's clients per state and per boundary and state, and a
    page of its client rows in name order (filtered by `state` and `client`)."""
    return _json(advertisement_summary(ctx, advertisement_id, state, client, limit, offset))


def advertisement_summary(
    ctx: SiteContext,
    advertisement_id: int,
    state: str | None = None,
    client: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> AdvertisementStatusOut:
    """The advertisement's status (the API's answer, and the console's page)."""
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
        if client is None:
            matched = counts[state] if state is not None else sum(counts.values())
        elif offset == 0 and len(page) < limit:
            matched = len(page)  # the whole match is on this page: no second scan
        else:
            matched = s.scalar(select(func.count()).select_from(Row).where(*filters)) or 0
        dp_names = _names(s, DistributionPoint, {r.source_dp_id for r in page})
        boundary_names = _names(s, Boundary, {r.boundary_id for r in page})
        answer = AdvertisementStatusOut(
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
    return answer


def _counts(
    s: Session, advertisement_id: int, current: int
) -> tuple[dict[str, int], list[BoundaryCountsOut], int]:
    """Clients per state, per boundary and state, and those behind the current version:
    one pass over the advertisement's entries of the counts index, one row per boundary
    with a count per state (grouping by boundary alone halves PostgreSQL's work), joined
    to the boundaries' names after grouping; by name, clients in no boundary last."""
    per_state = [
        func.count().filter(Row.state == state).label(state) for state in DEPLOYMENT_STATES
    ]
    grouped = (
        select(
            Row.boundary_id,
            func.count().filter(Row.source_version < current).label("older"),
            *per_state,
        )
        .where(Row.advertisement_id == advertisement_id)
        .group_by(Row.boundary_id)
        .subquery()
    )
    query = (
        select(grouped, Boundary.name)
        .select_from(grouped.outerjoin(Boundary, Boundary.id == grouped.c.boundary_id))
        .order_by(grouped.c.boundary_id.is_(None), Boundary.name)
    )
    counts: dict[str, int] = dict.fromkeys(DEPLOYMENT_STATES, 0)
    boundaries = []
    behind = 0
    for boundary_id, older, *numbers, name in s.execute(query):
        per = dict(zip(DEPLOYMENT_STATES, numbers, strict=True))
        for state, number in per.items():
            counts[state] += number
        behind += older
        boundaries.append(
            BoundaryCountsOut(
                boundary_id=boundary_id, boundary_name=name, total=sum(numbers), counts=per
            )
        )
    return counts, boundaries, behind


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


_DP_ROW_COLUMNS = tuple(
    getattr(PackageDistributionPoint, name)
    for name in PackageDPStatusOut.model_fields
    if name not in ("dp_name", "dp_kind")
)


@router.get("/packages/{package_id}/status", response_model=PackageStatusOut)
def package_status(package_id: PackageId, ctx: SiteContext = Depends(site)) -> Response:
    """On how many of its DPs the package's current version is installed, its DPs per state
    with each one's version and bytes (pulled over the WAN, served), and its on-demand
    requests."""
    return _json(package_summary(ctx, package_id))


def package_summary(
    ctx: SiteContext, package_id: str, limit: int | None = None, offset: int = 0
) -> PackageStatusOut:
    """The package's status on its DPs (the API's answer, and the console's page). With
    `limit`, a page of its DP rows, those needing attention first (failed, then moving),
    then by name; without, every row by name. The counts are always of every row, in one
    grouped query."""
    with ctx.db.reading() as s:
        package = get_or_404(s, Package, package_id, "package")
        pdp = PackageDistributionPoint
        query = (
            select(
                *_DP_ROW_COLUMNS,
                DistributionPoint.name.label("dp_name"),
                DistributionPoint.kind.label("dp_kind"),
            )
            .join(DistributionPoint, DistributionPoint.id == pdp.dp_id)
            .where(pdp.package_id == package.id)
        )
        if limit is None:
            query = query.order_by(DistributionPoint.name)
        else:
            query = query.order_by(ATTENTION_FIRST, DistributionPoint.name)
            query = query.limit(limit).offset(offset)
        # Plain rows, not ORM objects: 2,000 DPs are loaded in a few milliseconds.
        rows = [PackageDPStatusOut.model_validate(row) for row in s.execute(query).mappings()]
        counts = dict.fromkeys(dp_states.STATES, 0)
        installed = 0
        current = pdp.source_version == package.source_version
        for state, number, of_current in s.execute(
            select(pdp.state, func.count(), func.count().filter(current))
            .where(pdp.package_id == package.id)
            .group_by(pdp.state)
        ):
            counts[state] = number
            installed += of_current if state == dp_states.INSTALLED else 0
        on_demand = s.scalars(
            select(OnDemandRequest)
            .where(OnDemandRequest.package_id == package.id)
            .order_by(OnDemandRequest.id)
        )
        answer = PackageStatusOut(
            package_id=package.id,
            name=package.name,
            source_version=package.source_version,
            dps_total=sum(counts.values()),
            installed=installed,
            counts=counts,
            distribution_points=rows,
            on_demand=[OnDemandRequestOut.model_validate(r) for r in on_demand],
        )
    return answer


# A package's DP rows that need an administrator's eye first: failed, then still moving.
ATTENTION_FIRST = case(
    (PackageDistributionPoint.state.in_((dp_states.INSTALL_FAILED, dp_states.REMOVAL_FAILED)), 0),
    (
        PackageDistributionPoint.state.in_(
            sorted(dp_states.PENDING | {dp_states.WAITING_FOR_PRESTAGE})
        ),
        1,
    ),
    else_=2,
)
