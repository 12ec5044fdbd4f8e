"""The administrator's console at `/console`: server-rendered pages on the admin API's own
service code, signed in with an admin credential (sessions.py), live over server-sent
events (events.py)."""

from __future__ import annotations

import inspect

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from peerdp.site.console import (
    actions,
    audit_log,
    clients,
    events,
    explain,
    inventory,
    messages,
    pages,
    reruns,
    signin,
    tokens,
)
from peerdp.site.console.guard import FormRefused
from peerdp.site.console.render import STATIC, page
from peerdp.site.console.sessions import SignInNeeded
from peerdp.site.errors import describe_validation

PREFIX = "/console"
# The modules whose routers make the console, in the order they are matched: the
# inventory's fixed paths (/packages/live) before the pages' /packages/{package_id}.
MODULES = (
    signin,
    inventory,
    clients,
    tokens,
    pages,
    reruns,
    actions,
    events,
    messages,
    explain,
    audit_log,
)


def install(app: FastAPI) -> None:
    """Mount the console on the site's app."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    for module in MODULES:
        router.include_router(module.router)
    app.include_router(router)
    app.mount(PREFIX + "/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_exception_handler(SignInNeeded, _sign_in_needed)
    app.add_exception_handler(FormRefused, _form_refused)
    api_validation = app.exception_handlers[RequestValidationError]

    async def validation(request: Request, exc: Exception) -> Response:
        """A bad path or query value: a page on the console, JSON on the API."""
        if not request.url.path.startswith(PREFIX + "/"):
            answer = api_validation(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        assert isinstance(exc, RequestValidationError)
        detail = describe_validation(exc.errors())
        return page(request, "refused.html", None, 422, detail=detail)

    app.add_exception_handler(RequestValidationError, validation)

    @app.get(PREFIX, include_in_schema=False)
    def console_root() -> Response:
        return RedirectResponse(PREFIX + "/", status_code=307)


async def _sign_in_needed(request: Request, exc: Exception) -> Response:
    if request.method == "GET" and not request.url.path.endswith(("/live", "/events")):
        return RedirectResponse(signin.SIGN_IN, status_code=303)
    # A fragment, the event stream or a form: say so plainly, the page will reload.
    return page(request, "sign_in.html", None, 401, error="Your session has ended.")


async def _form_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FormRefused)
    return page(request, "forbidden.html", None, 403, reason=exc.reason)
