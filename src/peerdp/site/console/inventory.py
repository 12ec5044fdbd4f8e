"""The console's inventory pages: packages, advertisements, distribution points (and one
DP), boundaries, collections (and one collection). Each list is paged and filtered in SQL
(catalogue.py, dp_inventory.py); the pages that change as the site works (the packages
and advertisements lists, a DP's page) have a `/live` fragment like the dashboard's."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from peerdp.domain.boundaries import BOUNDARY_TYPES
from peerdp.domain.location.model import DP_KINDS
from peerdp.site.console import catalogue, dp_inventory
from peerdp.site.console.deps import user
from peerdp.site.console.pages import refused
from peerdp.site.console.paging import PageNumber, Paging, one_of, prefix
from peerdp.site.console.render import page, page_or_live
from peerdp.site.console.sessions import SignedIn
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import ApiError

router = APIRouter()

RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Fetch = Callable[[Session], tuple[list[Any], int]]


def _listing(
    request: Request,
    who: SignedIn,
    ctx: SiteContext,
    template: str,
    paging: tuple[str, int, dict[str, str]],
    fetch: Fetch,
) -> Response:
    """A page of a list: `fetch` reads its rows and how many match; `paging` is the list's
    path, the page's number and the filters its links keep."""
    path, number, filters = paging
    with ctx.db.reading() as s:
        rows, matched = fetch(s)
    shown = Paging(path, number, matched, filters)
    return page(request, template, who, rows=rows, paging=shown, filters=filters)


Who = Depends(user)
Site = Depends(site)
Text = prefix("ID or name")


@router.get("/packages")
@router.get("/packages/live")
def packages_page(
    request: Request,
    q: str = Text,
    number: int = PageNumber,
    who: SignedIn = Who,
    ctx: SiteContext = Site,
) -> Response:
    return _packages(
        request, page_or_live(request, "packages.html", "_packages_live.html"), who, ctx, q, number
    )


def _packages(
    request: Request, template: str, who: SignedIn, ctx: SiteContext, q: str, number: int
) -> Response:
    paging = ("/console/packages", number, {"q": q})
    fetch = partial(catalogue.packages, text=q, number=number)
    return _listing(request, who, ctx, template, paging, fetch)


Name = prefix("name")


@router.get("/advertisements")
@router.get("/advertisements/live")
def advertisements_page(
    request: Request,
    q: str = Name,
    number: int = PageNumber,
    who: SignedIn = Who,
    ctx: SiteContext = Site,
) -> Response:
    return _advertisements(
        request,
        page_or_live(request, "advertisements.html", "_advertisements_live.html"),
        who,
        ctx,
        q,
        number,
    )


def _advertisements(
    request: Request, template: str, who: SignedIn, ctx: SiteContext, q: str, number: int
) -> Response:
    paging = ("/console/advertisements", number, {"q": q})
    fetch = partial(catalogue.advertisements, text=q, number=number)
    return _listing(request, who, ctx, template, paging, fetch)


@router.get("/distribution-points")
def distribution_points_page(
    request: Request,
    kind: str = one_of(DP_KINDS),
    q: str = Name,
    number: int = PageNumber,
    who: SignedIn = Who,
    ctx: SiteContext = Site,
) -> Response:
    paging = ("/console/distribution-points", number, {"kind": kind, "q": q})
    fetch = partial(dp_inventory.distribution_points, kind=kind, text=q, number=number)
    return _listing(request, who, ctx, "distribution_points.html", paging, fetch)


@router.get("/distribution-points/{dp_id}")
@router.get("/distribution-points/{dp_id}/live")
def distribution_point_page(
    request: Request,
    dp_id: RowId,
    number: int = PageNumber,
    who: SignedIn = Who,
    ctx: SiteContext = Site,
) -> Response:
    return _distribution_point(
        request,
        page_or_live(request, "distribution_point.html", "_distribution_point_live.html"),
        who,
        ctx,
        dp_id,
        number,
    )


def _distribution_point(
    request: Request, template: str, who: SignedIn, ctx: SiteContext, dp_id: int, number: int
) -> Response:
    try:
        with ctx.db.reading() as s:
            dp = dp_inventory.distribution_point(s, dp_id, number)
    except ApiError as exc:
        return refused(request, who, exc, back="/console/distribution-points")
    paging = Paging(f"/console/distribution-points/{dp_id}", number, dp.held.rows)
    return page(request, template, who, dp=dp, paging=paging)


@router.get("/boundaries")
def boundaries_page(
    request: Request,
    type: str = one_of(BOUNDARY_TYPES),
    q: str = prefix("value or name"),
    number: int = PageNumber,
    who: SignedIn = Who,
    ctx: SiteContext = Site,
) -> Response:
    paging = ("/console/boundaries", number, {"type": type, "q": q})
    fetch = partial(catalogue.boundaries, type_=type, text=q, number=number)
    return _listing(request, who, ctx, "boundaries.html", paging, fetch)


@router.get("/collections")
def collections_page(
    request: Request,
    q: str = Name,
    number: int = PageNumber,
    who: SignedIn = Who,
    ctx: SiteContext = Site,
) -> Response:
    paging = ("/console/collections", number, {"q": q})
    fetch = partial(catalogue.collections, text=q, number=number)
    return _listing(request, who, ctx, "collections.html", paging, fetch)


@router.get("/collections/{collection_id}")
def collection_page(
    request: Request,
    collection_id: RowId,
    q: str = prefix("member name"),
    number: int = PageNumber,
    who: SignedIn = Who,
    ctx: SiteContext = Site,
) -> Response:
    try:
        with ctx.db.reading() as s:
            found = catalogue.collection(s, collection_id, q, number)
    except ApiError as exc:
        return refused(request, who, exc, back="/console/collections")
    paging = Paging(f"/console/collections/{collection_id}", number, found.matched, {"q": q})
    return page(request, "collection.html", who, collection=found, paging=paging, filters={"q": q})
