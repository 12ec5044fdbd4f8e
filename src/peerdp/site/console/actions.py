"""The console's actions on a package's DP list: add a DP, remove one, retry a failed one
(SCCM's refresh). Each calls the API route's own function (not the API over HTTP), is
allowed by the API's role table (site/admin/access.py) for the API route it stands for,
and is written to the audit log. Done: back to the package page with a note."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from peerdp.domain.admin_roles import allows
from peerdp.site.admin.access import API, role_needed
from peerdp.site.admin.packages import add_package_dp, remove_package_dp
from peerdp.site.admin.refresh import refresh_package_dp
from peerdp.site.admin.schemas import PackageDPIn, PackageDPOut, PackageId
from peerdp.site.console.audit import record
from peerdp.site.console.deps import posted
from peerdp.site.console.render import page
from peerdp.site.console.sessions import SignedIn
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import ApiError, Forbidden, Invalid, describe_validation

router = APIRouter()

# The API routes the actions stand for: the role table's keys.
ADD_DP = ("POST", "/packages/{package_id}/distribution-points")
REMOVE_DP = ("DELETE", "/packages/{package_id}/distribution-points/{dp_id}")
RETRY_DP = ("POST", "/packages/{package_id}/distribution-points/{dp_id}/refresh")
RERUN = ("POST", "/advertisements/{advertisement_id}/rerun")
DELETE_CLIENT = ("DELETE", "/clients/{client_id}")
REENROL = ("POST", "/clients/{client_id}/reenrol")
CREATE_TOKEN = ("POST", "/enrolment-tokens")
REVOKE_TOKEN = ("DELETE", "/enrolment-tokens/{token_id}")

# Every console action by the name the templates use (`may.rerun`), with its API route.
ACTIONS: dict[str, tuple[str, str]] = {
    "add": ADD_DP,
    "remove": REMOVE_DP,
    "retry": RETRY_DP,
    "rerun": RERUN,
    "delete_client": DELETE_CLIENT,
    "reenrol": REENROL,
    "create_token": CREATE_TOKEN,
    "revoke_token": REVOKE_TOKEN,
}

Posted = tuple[SignedIn, FormData]
Body = TypeVar("Body", bound=BaseModel)
DpId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def may(who: SignedIn) -> dict[str, bool]:
    """Which action forms `who` is shown: those the API's role table lets them use."""
    return {name: allows(who.role, role_needed(*route)) for name, route in ACTIONS.items()}


def act(
    request: Request,
    ctx: SiteContext,
    who: SignedIn,
    route: tuple[str, str],
    back: str,
    do: Callable[[], str | Response],
) -> Response:
    """Run `do` if `who`'s role allows the API route `route`; record it in the audit log;
    done, back to the console page `back` with `do`'s note (or `do`'s own page, for an
    answer shown once); refused, a page saying why. Every console action goes through
    here."""
    method, template = route
    try:
        needed = role_needed(method, template)
        if not allows(who.role, needed):
            refused = f"{method} {API}{template} needs the {needed} role"
            raise Forbidden(f"{refused}; {who.credential.describe()}")
        note = do()
    except ApiError as exc:
        record(ctx, who, request.url.path, template, exc.status)
        return page(request, "refused.html", who, exc.status, detail=exc.detail, back=back)
    record(ctx, who, request.url.path, template, 200)
    if isinstance(note, Response):
        return note
    return RedirectResponse(f"{back}?note={quote(note)}", 303)


def api_body(model: type[Body], fields: dict[str, object]) -> Body:
    """The API route's body made of a form's fields, checked as the API checks it (Invalid,
    in the API's words, if it is not one)."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise Invalid(describe_validation(exc.errors())) from exc


def _package(package_id: str) -> str:
    return f"/console/packages/{quote(package_id)}"


def _dp_named(row: PackageDPOut) -> str:
    return f"{row.dp_name} is {row.state.replace('_', ' ')}"


@router.post("/packages/{package_id}/distribution-points")
def add_dp(
    request: Request,
    package_id: PackageId,
    checked: Posted = Depends(posted),
    ctx: SiteContext = Depends(site),
) -> Response:
    who, form = checked

    def do() -> str:
        given = form.get("dp_id")
        if not isinstance(given, str) or not given.isdigit():
            raise Invalid("choose a distribution point to add")
        row = add_package_dp(package_id, PackageDPIn(dp_id=int(given)), ctx)
        return f"Added: {_dp_named(row)}."

    return act(request, ctx, who, ADD_DP, _package(package_id), do)


@router.post("/packages/{package_id}/distribution-points/{dp_id}/remove")
def remove_dp(
    request: Request,
    package_id: PackageId,
    dp_id: DpId,
    checked: Posted = Depends(posted),
    ctx: SiteContext = Depends(site),
) -> Response:
    def do() -> str:
        return f"Removing: {_dp_named(remove_package_dp(package_id, dp_id, ctx))}."

    return act(request, ctx, checked[0], REMOVE_DP, _package(package_id), do)


@router.post("/packages/{package_id}/distribution-points/{dp_id}/retry")
def retry_dp(
    request: Request,
    package_id: PackageId,
    dp_id: DpId,
    checked: Posted = Depends(posted),
    ctx: SiteContext = Depends(site),
) -> Response:
    def do() -> str:
        return f"Sent again: {_dp_named(refresh_package_dp(package_id, dp_id, ctx))}."

    return act(request, ctx, checked[0], RETRY_DP, _package(package_id), do)
