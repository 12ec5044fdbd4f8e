"""Python's cyclic garbage collector, paced for a server holding many long-lived objects.

A site server holding 10,000 long-polls has millions of objects that live for minutes (the
held requests, every machine's policy), and makes hardly any cyclic garbage: measured at
10,000 held polls, a change concerning all of them set off full collections of 130 to
470 ms each, several a second, that found nothing, stalling every request behind them. So
the collector's automatic full passes are put off, its young passes kept, and a full pass
is made on a clock instead (a stall of at most some hundred milliseconds every few minutes).
"""

from __future__ import annotations

import asyncio
import gc
import time

from peerdp.logs import get_logger
from peerdp.site.context import SiteContext

log = get_logger("peerdp.site")

# New objects between young passes (CPython's default is 700: a pass per 700 at scale).
YOUNG_PASS_AFTER = 10_000
# Young passes between passes of the middle generation (CPython's default is 10).
MIDDLE_PASS_AFTER = 20
# Middle passes between automatic full passes: so many that the clock's come first.
FULL_PASS_AFTER = 1_000_000
FULL_PASS_EVERY_S = 300.0


def pace() -> None:
    """Set the collector's thresholds for this process."""
    gc.set_threshold(YOUNG_PASS_AFTER, MIDDLE_PASS_AFTER, FULL_PASS_AFTER)


def full_pass() -> int:
    """Collect every generation now; how many unreachable objects were found."""
    started = time.perf_counter()
    found = gc.collect()
    log.debug(
        "garbage collected", found=found, elapsed_ms=round(1000 * (time.perf_counter() - started))
    )
    return found


async def paced_collection(ctx: SiteContext, every_s: float = FULL_PASS_EVERY_S) -> None:
    """The background service (site/services.py): pace the collector, and make a full
    pass every `every_s` seconds."""
    pace()
    while True:
        await asyncio.sleep(every_s)
        full_pass()
