"""The console's pages: the dashboard, an advertisement's status, a package. Each has a
`/live` fragment, its changing part, which the page fetches again when the site changes
(events.py); without JavaScript the page is complete and a reload refreshes it."""

from __future__ import annotations

import weakref
from typing import Any, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from peerdp.domain.deployment_states import DEPLOYMENT_STATES, DeploymentState
from peerdp.site.admin.packages import list_programs, list_versions
from peerdp.site.admin.schemas import PackageId, ProgramOut
from peerdp.site.admin.status_schemas import BoundaryCountsOut
from peerdp.site.admin.status_summaries import (
    AdvertisementId,
    advertisement_summary,
    package_summary,
)
from peerdp.site.console.actions import may
from peerdp.site.console.dashboard import Dashboard, shown
from peerdp.site.console.deps import user
from peerdp.site.console.paging import PER_PAGE, Paging, one_of
from peerdp.site.console.render import answer, page, page_or_live, render
from peerdp.site.console.sessions import SignedIn
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import ApiError
from peerdp.site.notify import ChangeBus
from peerdp.store.models import DistributionPoint, PackageDistributionPoint

router = APIRouter()
CLIENTS_PER_PAGE = 50


@router.get("/")
def dashboard_page(
    request: Request, who: SignedIn = Depends(user), ctx: SiteContext = Depends(site)
) -> Response:
    return page(request, "dashboard.html", who, board=shown(ctx))


# The dashboard's live part as last rendered, with the board it shows: open consoles share
# one board a second (dashboard.shown), and its live part shows nothing of who asks, so it
# is rendered once for all of them (a render each cost the MP a third of its answers with
# 20 consoles open during a wave).
_rendered: weakref.WeakKeyDictionary[ChangeBus, tuple[Dashboard, str]] = weakref.WeakKeyDictionary()


@router.get("/live")
def dashboard_live(
    request: Request, who: SignedIn = Depends(user), ctx: SiteContext = Depends(site)
) -> Response:
    board = shown(ctx)
    held = _rendered.get(ctx.changes)
    if held is None or held[0] is not board:
        held = board, render(request, "_dashboard_live.html", None, board=board)
        _rendered[ctx.changes] = held
    return answer(held[1])


def _advertisement(
    request: Request,
    template: str,
    who: SignedIn,
    ctx: SiteContext,
    advertisement_id: int,
    state: DeploymentState | None,
    number: int,
) -> Response:
    try:
        summary = advertisement_summary(
            ctx,
            advertisement_id,
            state=state,
            limit=CLIENTS_PER_PAGE,
            offset=(number - 1) * CLIENTS_PER_PAGE,
        )
    except ApiError as exc:
        return refused(request, who, exc)
    pages = max(1, -(-summary.matched // CLIENTS_PER_PAGE))
    # The boundaries with the most clients not yet succeeded first (of those, the most
    # failed): a glance finds the branches in trouble, and 2,000 branches stay light.
    boundaries = sorted(
        summary.boundaries,
        key=lambda b: (b.counts["succeeded"] - b.total, -b.counts["failed"]),
    )
    return page(
        request,
        template,
        who,
        status=summary,
        boundaries=boundaries[:BOUNDARIES_SHOWN],
        left=_left(boundaries[BOUNDARIES_SHOWN:]),
        states=DEPLOYMENT_STATES,
        state=state,
        number=number,
        pages=pages,
        may=may(who),
        note=request.query_params.get("note"),
    )


BOUNDARIES_SHOWN = 50


# A select's "any" option sends the state empty: every state.
StateFilter = one_of(DEPLOYMENT_STATES)


def _state(chosen: str) -> DeploymentState | None:
    return cast(DeploymentState, chosen) if chosen else None


PageNumber = Query(default=1, ge=1, le=1_000_000)


@router.get("/advertisements/{advertisement_id}")
@router.get("/advertisements/{advertisement_id}/live")
def advertisement_page(
    request: Request,
    advertisement_id: AdvertisementId,
    state: str = StateFilter,
    number: int = PageNumber,
    who: SignedIn = Depends(user),
    ctx: SiteContext = Depends(site),
) -> Response:
    args = (ctx, advertisement_id, _state(state), number)
    return _advertisement(
        request, page_or_live(request, "advertisement.html", "_advertisement_live.html"), who, *args
    )


def _left(boundaries: list[BoundaryCountsOut]) -> dict[str, int]:
    """What the boundaries not shown hold: how many, their clients, those not succeeded."""
    clients = sum(b.total for b in boundaries)
    pending = clients - sum(b.counts["succeeded"] for b in boundaries)
    return {"boundaries": len(boundaries), "clients": clients, "pending": pending}


def _package(
    request: Request,
    template: str,
    who: SignedIn,
    ctx: SiteContext,
    package_id: str,
    number: int,
) -> Response:
    try:
        # A page of its DP rows, those needing attention first (2,050 drawn took 0.18 s).
        summary = package_summary(ctx, package_id, limit=PER_PAGE, offset=(number - 1) * PER_PAGE)
        versions = list_versions(package_id, ctx)
        programs = [ProgramOut.model_validate(p) for p in list_programs(package_id, ctx)]
    except ApiError as exc:
        return refused(request, who, exc)
    with ctx.db.reading() as s:
        listed = select(PackageDistributionPoint.dp_id).where(
            PackageDistributionPoint.package_id == summary.package_id
        )
        addable = s.execute(
            select(DistributionPoint.id, DistributionPoint.name, DistributionPoint.kind)
            .where(DistributionPoint.id.not_in(listed))
            .order_by(DistributionPoint.name)
        ).all()
        asked = {o.dp_id for o in summary.on_demand}
        named = s.execute(
            select(DistributionPoint.id, DistributionPoint.name).where(
                DistributionPoint.id.in_(asked)
            )
        )
        dp_names = {dp_id: name for dp_id, name in named}
    paging = Paging(f"/console/packages/{summary.package_id}", number, summary.dps_total)
    return page(
        request,
        template,
        who,
        status=summary,
        versions=versions,
        programs=programs,
        addable=addable,
        dp_names=dp_names,
        may=may(who),
        note=request.query_params.get("note"),
        paging=paging,
    )


@router.get("/packages/{package_id}")
@router.get("/packages/{package_id}/live")
def package_page(
    request: Request,
    package_id: PackageId,
    number: int = PageNumber,
    who: SignedIn = Depends(user),
    ctx: SiteContext = Depends(site),
) -> Response:
    return _package(
        request,
        page_or_live(request, "package.html", "_package_live.html"),
        who,
        ctx,
        package_id,
        number,
    )


def refused(request: Request, who: SignedIn, exc: ApiError, **more: Any) -> Response:
    """The page saying what was refused (or not found) and why."""
    return page(request, "refused.html", who, exc.status, detail=exc.detail, **more)
