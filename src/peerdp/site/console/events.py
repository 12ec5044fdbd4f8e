"""`GET /console/events`: server-sent events telling an open console page that the site
changed, so it fetches its `/live` fragment again. `?kind=messages` (the status message
viewer following new messages) hears of status messages written, and of nothing else.

The stream is an async generator waiting on the site's change bus (site/notify.py),
deployment states included: it holds no thread between events; a page fetches what it
shows itself. Changes are coalesced (at most one event per COALESCE_S; while only
deployment states move, as during a wave, one per SHARED_S). Every
KEEPALIVE_S the session is checked again (one read), which also keeps proxies from
closing a quiet stream: a session that ended (signed out, revoked) gets `signed-out`
and the stream ends.

A page may be given a dashboard read up to SHARED_S before it asked (every open console
shares one read per SHARED_S: console/dashboard.py), so the last change of a burst could be
missing from what it shows. Each burst therefore ends with one more event, TRAILING_S
after the last: what the page fetches then was read after every change it was told of."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from peerdp.site.console.dashboard import SHARED_S
from peerdp.site.console.deps import user
from peerdp.site.console.sessions import COOKIE, SignedIn, SignInNeeded, signed_in
from peerdp.site.context import SiteContext, site
from peerdp.site.notify import MESSAGES

router = APIRouter()
KEEPALIVE_S = 15.0
COALESCE_S = 0.5
TRAILING_S = SHARED_S + 0.2


async def changes(
    ctx: SiteContext, secret: str | None, *, messages: bool = False
) -> AsyncIterator[str]:
    bus = ctx.changes
    seen = bus.generation_of(MESSAGES) if messages else bus.seen
    yield "retry: 3000\n\n"
    trailing = False  # a burst's closing event is due (not for messages: a tail reads anew)
    told_at, told_generation = 0.0, bus.generation  # the last event: when, and the site's
    while not bus.stopping:
        wait_s = TRAILING_S if trailing else KEEPALIVE_S
        now = await bus.wait(seen, wait_s, deployments=True, messages=messages)
        if bus.stopping:
            return
        if now == seen and trailing:
            trailing = False
            yield f"event: change\ndata: {now}\n\n"
            continue
        if now == seen:
            try:
                await run_in_threadpool(lambda: signed_in(ctx, secret, touch=False))
            except SignInNeeded:
                yield "event: signed-out\ndata: \n\n"
                return
            yield ": keepalive\n\n"
            continue
        if not messages and bus.generation == told_generation:
            # Only deployment states moved: a page would fetch the board it has (shared
            # for SHARED_S), so it is told at most once per SHARED_S during a wave.
            await asyncio.sleep(max(0.0, told_at + SHARED_S - time.monotonic()))
            now = bus.seen
        seen, trailing = now, not messages
        told_at, told_generation = time.monotonic(), bus.generation
        yield f"event: change\ndata: {now}\n\n"
        await asyncio.sleep(COALESCE_S)


@router.get("/events")
async def events(
    request: Request,
    kind: Literal["messages"] | None = Query(default=None, description="only this kind"),
    who: SignedIn = Depends(user),
    ctx: SiteContext = Depends(site),
) -> StreamingResponse:
    return StreamingResponse(
        changes(ctx, request.cookies.get(COOKIE), messages=kind == MESSAGES),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
