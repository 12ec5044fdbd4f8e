"""`GET /mp/v1/policy`, answered ahead of the web framework's routing.

A site holds one of these requests per waiting machine, tens of thousands at once, and
each coroutine frame a held request sits under costs memory for as long as it waits. So
the site's app (`SiteApp`) hands this one request straight to `answer_policy`, with no
middleware, router, request object or dependency results beneath it: just the query, the
caller and its waiter (site/mp/waiters.py). Its errors are the site's own (401, 403, 422
naming the field, 503 with Retry-After), rendered by the app's exception handlers as
every route's are.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers, QueryParams
from starlette.types import Receive, Scope, Send

from peerdp.site.context import SiteContext
from peerdp.site.mp import long_poll
from peerdp.site.mp.identity import identify

PATH = "/mp/v1/policy"
MACHINES = ("client", "branch_dp", "standard_dp")
WAIT_MAX_S = 3600


class SiteApp(FastAPI):
    """The site's FastAPI app, which answers `GET /mp/v1/policy` itself."""

    def openapi(self) -> dict[str, Any]:
        """The API's description, this endpoint's included (no route declares it)."""
        schema = super().openapi()
        schema["paths"].setdefault(PATH, {"get": OPENAPI})
        return schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET":
            try:
                await answer_policy(self.state.site, scope, receive, send)
            except Exception as exc:
                handler = _handler(self, exc)
                if handler is None:
                    raise  # the server logs it and answers 500
                response = await handler(Request(scope), exc)
                await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def answer_policy(ctx: SiteContext, scope: Scope, receive: Receive, send: Send) -> None:
    """The caller's signed policy, its version as the ETag; with `since` and `wait`, a
    long-poll for a newer one (the caller counts as in contact while it waits). 304 when
    If-None-Match names the version still in force when the answer is due; 503 with
    Retry-After when this process holds as many long-polls as it can."""
    since, wait_s = _query(scope)
    headers = Headers(scope=scope)
    caller = await identify(ctx, headers.get("authorization"), MACHINES)
    if_none_match = headers.get("if-none-match")
    del headers
    held = ctx.mp.held_polls.for_request(since, wait_s)  # 503 above the limit
    with held, ctx.mp.sightings.holding(caller.who):
        response = await long_poll.answer(ctx, caller, since, wait_s, if_none_match, receive)
    await response(scope, receive, send)


def _parameter(name: str, where: str, schema: dict[str, Any], says: str) -> dict[str, Any]:
    return {"name": name, "in": where, "required": False, "schema": schema, "description": says}


OPENAPI: dict[str, Any] = {
    "tags": ["management point"],
    "summary": "Get Policy",
    "operationId": "get_policy",
    "description": " ".join((answer_policy.__doc__ or "").split()),
    "parameters": [
        _parameter("since", "query", {"type": "integer", "minimum": 0}, "the version held"),
        _parameter(
            "wait",
            "query",
            {"type": "number", "minimum": 0, "maximum": WAIT_MAX_S, "default": 0},
            "seconds to wait for a newer version",
        ),
        _parameter("If-None-Match", "header", {"type": "string"}, 'the version held, as "N"'),
    ],
    "responses": {
        "200": {"description": "the signed policy", "content": {"application/json": {}}},
        "304": {"description": "the version named in If-None-Match is still the policy"},
        "401": {"description": "no machine credential, or an unknown or revoked one"},
        "422": {"description": "`since` or `wait` is not what it must be"},
        "503": {"description": "the held-poll limit is reached: ask again after Retry-After"},
    },
}


def _query(scope: Scope) -> tuple[int | None, float]:
    """`since` (a whole number >= 0, optional) and `wait` (seconds, 0 to 3600)."""
    params = QueryParams(scope.get("query_string", b""))
    errors: list[dict[str, Any]] = []
    since: int | None = None
    wait_s = 0.0
    if "since" in params:
        raw = params["since"]
        if not raw.isdigit():
            errors.append(_error("since", raw, "must be a whole number, 0 or more"))
        else:
            since = int(raw)
    if "wait" in params:
        raw = params["wait"]
        try:
            wait_s = float(raw)
        except ValueError:
            wait_s = math.nan
        if not 0 <= wait_s <= WAIT_MAX_S:
            errors.append(_error("wait", raw, f"must be a number of seconds, 0 to {WAIT_MAX_S}"))
    if errors:
        raise RequestValidationError(errors)
    return since, wait_s


def _error(field: str, raw: str, message: str) -> dict[str, Any]:
    # Shown as "since: must be a whole number, 0 or more (got 'abc')".
    return {"type": "query_value", "loc": ("query", field), "msg": message, "input": raw}


def _handler(app: FastAPI, exc: Exception) -> Any:
    for kind in type(exc).__mro__:
        handler = app.exception_handlers.get(kind)
        if handler is not None:
            return handler
    return None
