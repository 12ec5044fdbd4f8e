"""Filling the management point's caches when a site server starts."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool

from peerdp.logs import get_logger
from peerdp.site.context import SiteContext

log = get_logger("peerdp.site.mp")


async def warm_caches(ctx: SiteContext) -> None:
    """The background service (site/services.py): read every caller and the location facts
    once, on a worker thread, as the server starts. Requests that come meanwhile are
    answered as usual, filling what they need themselves."""
    try:
        await run_in_threadpool(warm, ctx)
    except Exception:  # the caches still fill on first use
        log.warning("could not read the MP's caches at start", exc_info=True)


def warm(ctx: SiteContext) -> None:
    started = time.monotonic()
    ctx.mp.callers.load()
    ctx.mp.location.warm()
    policies = ctx.mp.policy.warm()
    log.info(
        "management point caches read",
        policies=policies,
        elapsed_s=round(time.monotonic() - started, 3),
    )
