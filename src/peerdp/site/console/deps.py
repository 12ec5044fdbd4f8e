"""The signed-in user of a console request, and the checked form of a console POST."""

from __future__ import annotations

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from peerdp.site.console.guard import check_csrf, check_origin
from peerdp.site.console.sessions import COOKIE, SignedIn, signed_in
from peerdp.site.context import SiteContext, site


async def user(request: Request, ctx: SiteContext = Depends(site)) -> SignedIn:
    """The request's session (SignInNeeded: the sign-in page answers instead). A page's own
    refreshes (its live part, its event stream) do not keep an unattended session open."""
    secret = request.cookies.get(COOKIE)
    touch = not request.url.path.endswith(("/live", "/events"))
    return await run_in_threadpool(lambda: signed_in(ctx, secret, touch=touch))


async def posted(request: Request, who: SignedIn = Depends(user)) -> tuple[SignedIn, FormData]:
    """A POST's form, once its origin and CSRF token are checked (FormRefused: 403)."""
    check_origin(request)
    form = await request.form()
    check_csrf(form, who)
    return who, form
