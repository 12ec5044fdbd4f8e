"""`GET /mp/v1/policy`: a machine's policy now, or held until it changes.

The answer carries `ETag: "<version>"`. A caller that sends `If-None-Match` with the
version it holds gets `304 Not Modified` (no body, nothing signed) when its policy is still
that version as the answer is due: at once without `wait`, or when the wait runs out, or
when the server stops. So a quiet poll costs a few dictionary reads, not a computation.
"""

from __future__ import annotations

import time

from fastapi import Response

from peerdp.site.context import SiteContext
from peerdp.site.metrics import POLICY_ANSWERS
from peerdp.site.mp.identity import Caller
from peerdp.site.mp.policy_service import PolicyState
from peerdp.site.mp.waiters import CHANGED, GONE, Receive

NOT_MODIFIED = 304


def etag(version: int) -> str:
    """A policy version as an entity tag: `"7"`."""
    return f'"{version}"'


def names_version(if_none_match: str | None, version: int) -> bool:
    """Whether an If-None-Match header names `version` (a weak `W/"7"` too, or `*`)."""
    if not if_none_match:
        return False
    wanted = etag(version)
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


async def answer(
    ctx: SiteContext,
    caller: Caller,
    since: int | None,
    wait_s: float,
    if_none_match: str | None,
    receive: Receive,
) -> Response:
    """The caller's policy, or, with `since`, as soon as its version passes `since`
    (at most `wait_s`)."""
    service = ctx.mp.policy
    deadline = time.monotonic() + min(wait_s, ctx.settings.policy_wait_max_s)
    state = await service.state(caller)
    while since is not None and state.version <= since and not ctx.mp.waiters.stopping:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        outcome = await _hold(ctx, state, remaining, receive)
        if outcome == GONE:  # nobody to answer
            return Response(status_code=NOT_MODIFIED)
        if outcome != CHANGED:
            break
        state = await service.state(caller)
    return _respond(ctx, caller, state, if_none_match)


async def _hold(ctx: SiteContext, state: PolicyState, timeout_s: float, receive: Receive) -> str:
    waiters = ctx.mp.waiters
    waiter = waiters.hold(state.own, state.shared)
    # A change between reading the state and holding it would have found no waiter.
    if state.changed_since_read(ctx.changes):
        waiter.release(CHANGED)
    return await waiters.wait(waiter, timeout_s, receive)


def _respond(
    ctx: SiteContext, caller: Caller, state: PolicyState, if_none_match: str | None
) -> Response:
    headers = {"ETag": etag(state.version), "Cache-Control": "no-cache"}
    if names_version(if_none_match, state.version):
        POLICY_ANSWERS.labels("304").inc()
        return Response(status_code=NOT_MODIFIED, headers=headers)
    POLICY_ANSWERS.labels("200").inc()
    document = ctx.mp.policy.signed(caller, state)
    return Response(document, media_type="application/json", headers=headers)
