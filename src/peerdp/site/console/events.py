"""`GET /console/events`: server-sent events telling an open console page that the site
changed, so it fetches its `/live` fragment again.

The stream is an async generator waiting on the site's change bus (site/notify.py),
deployment states included: it holds no thread and reads nothing from the database; a
page fetches what it shows itself. Changes are coalesced (at most one event per
COALESCE_S), and a comment every KEEPALIVE_S keeps proxies from closing the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from peerdp.site.console.deps import user
from peerdp.site.console.sessions import SignedIn
from peerdp.site.context import SiteContext, site
from peerdp.site.notify import ChangeBus

router = APIRouter()
KEEPALIVE_S = 15.0
COALESCE_S = 0.5


async def changes(bus: ChangeBus) -> AsyncIterator[str]:
    seen = bus.seen
    yield "retry: 3000\n\n"
    while not bus.stopping:
        now = await bus.wait(seen, KEEPALIVE_S, deployments=True)
        if bus.stopping:
            return
        if now == seen:
            yield ": keepalive\n\n"
            continue
        seen = now
        yield f"event: change\ndata: {now}\n\n"
        await asyncio.sleep(COALESCE_S)


@router.get("/events")
async def events(
    who: SignedIn = Depends(user), ctx: SiteContext = Depends(site)
) -> StreamingResponse:
    return StreamingResponse(
        changes(ctx.changes),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
