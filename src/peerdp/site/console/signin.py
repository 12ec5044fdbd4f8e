"""Signing in to the console with an admin credential, and signing out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from peerdp.site.console import sessions
from peerdp.site.console.deps import posted
from peerdp.site.console.guard import check_origin
from peerdp.site.console.render import page
from peerdp.site.console.sessions import COOKIE, SignedIn
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import Unauthorized

router = APIRouter()
HOME = "/console/"
SIGN_IN = "/console/sign-in"


@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    return page(request, "sign_in.html", None)


@router.post("/sign-in")
async def sign_in(request: Request, ctx: SiteContext = Depends(site)) -> Response:
    check_origin(request)  # no session yet to hold a CSRF token: a forged sign-in fails here
    form = await request.form()
    given = form.get("credential")
    if not isinstance(given, str) or not given.strip():
        return page(request, "sign_in.html", None, 400, error="Enter an admin credential.")
    try:
        secret, _ = await run_in_threadpool(sessions.sign_in, ctx, given.strip())
    except Unauthorized as exc:
        return page(request, "sign_in.html", None, 401, error=f"Not signed in: {exc.detail}.")
    response = RedirectResponse(HOME, status_code=303)
    sessions.set_cookie(request, response, secret)
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request,
    checked: tuple[SignedIn, FormData] = Depends(posted),
    ctx: SiteContext = Depends(site),
) -> Response:
    await run_in_threadpool(sessions.sign_out, ctx, request.cookies.get(COOKIE))
    response = RedirectResponse(SIGN_IN, status_code=303)
    sessions.clear_cookie(request, response)
    return response
