"""Held policy long-polls, indexed by the inputs of each one's policy.

When a change touches some inputs (the change bus names them), only the waiters whose
policy reads one of them are released; the others stay held and cost nothing. Clients in
the same collections share their inputs (one frozenset), so they are indexed as one
group: a change to a collection finds its waiting members through one set, and each
waiter costs the index two set entries, not one per input.

Released waiters are answered at a steady pace (`answers_per_s`, from the site setting
`policy_spread_s`: the seconds over which the answers to 10,000 machines are spread), and
no faster than the event loop keeps up with, so a change that concerns every client
neither hits the site and its DPs at once nor starves the location and admin requests
being answered meanwhile.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from peerdp.site.metrics import POLICY_WAITING
from peerdp.site.notify import EVERYTHING

CHANGED, TIMEOUT, GONE, STOPPING = "changed", "timeout", "gone", "stopping"
TICK_S = 0.01  # how often the pacer releases its next share (small: the answers to one
# share are made on the event loop, and a location request waits behind them)
LATE_S = 0.005  # a tick this much late: the loop is behind, the next share waits
MAX_TICKS_HELD = 5  # ... but not longer than this many ticks

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class Waiter:
    """One held long-poll: its inputs, and the future its request awaits."""

    __slots__ = ("due", "future", "own", "queued", "shared")

    def __init__(self, own: tuple[str, ...], shared: frozenset[str]) -> None:
        self.future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.own = own
        self.shared = shared
        self.queued = False
        self.due = 0  # the second its wait runs out (a key of Waiters._due)

    def release(self, outcome: str) -> None:
        if not self.future.done():
            self.future.set_result(outcome)


class Waiters:
    def __init__(self, answers_per_s: float) -> None:
        self.answers_per_s = answers_per_s  # 0: answer every concerned waiter at once
        self._all: set[Waiter] = set()
        self._by_input: dict[str, set[Waiter]] = {}
        self._groups: dict[frozenset[str], set[Waiter]] = {}
        self._groups_by_input: dict[str, set[frozenset[str]]] = {}
        self._queue: deque[Waiter] = deque()
        self._pacer: asyncio.Task[None] | None = None
        # Waits run out by the second: one clock task for them all, not a timer each.
        self._due: dict[int, set[Waiter]] = {}
        self._clock: asyncio.Task[None] | None = None
        self.stopping = False

    def __len__(self) -> int:
        return len(self._all)

    # -- holding ---------------------------------------------------------------------

    def hold(self, own: Iterable[str], shared: frozenset[str]) -> Waiter:
        waiter = Waiter(tuple(own), shared)
        self._all.add(waiter)
        for key in waiter.own:
            self._by_input.setdefault(key, set()).add(waiter)
        group = self._groups.get(shared)
        if group is None:
            group = self._groups[shared] = set()
            for key in shared:
                self._groups_by_input.setdefault(key, set()).add(shared)
        group.add(waiter)
        if self.stopping:
            waiter.release(STOPPING)
        return waiter

    def drop(self, waiter: Waiter) -> None:
        self._all.discard(waiter)
        _discard(self._due, waiter.due, waiter)
        for key in waiter.own:
            _discard(self._by_input, key, waiter)
        group = self._groups.get(waiter.shared)
        if group is not None:
            group.discard(waiter)
            if not group:
                del self._groups[waiter.shared]
                for key in waiter.shared:
                    _discard(self._groups_by_input, key, waiter.shared)

    async def wait(self, waiter: Waiter, timeout_s: float, receive: Receive) -> str:
        """Until the waiter is released (CHANGED, STOPPING), its time runs out (TIMEOUT,
        within a second after `timeout_s`) or its client goes away (GONE); it is dropped
        from the index then."""
        waiter.due = math.ceil(time.monotonic() + timeout_s)
        self._due.setdefault(waiter.due, set()).add(waiter)
        if self._clock is None or self._clock.done():
            self._clock = asyncio.ensure_future(self._run_out())
        watch = asyncio.ensure_future(_until_gone(receive))
        watch.add_done_callback(lambda _: waiter.release(GONE))
        try:
            with POLICY_WAITING.track_inprogress():
                return await waiter.future
        finally:
            watch.cancel()
            self.drop(waiter)

    async def _run_out(self) -> None:
        """Release, each second, the waiters whose wait ran out; ends when none waits."""
        while self._due:
            now = time.monotonic()
            for second in [s for s in self._due if s <= now]:
                for waiter in self._due.pop(second):
                    waiter.release(TIMEOUT)
            await asyncio.sleep(max(0.05, math.ceil(now) - now))

    # -- releasing -------------------------------------------------------------------

    def changed(self, touched: frozenset[str]) -> None:
        """The change bus's listener (on the event loop): release who `touched` concerns."""
        if self.stopping:
            return
        if EVERYTHING in touched:
            self._release(list(self._all))
            return
        concerned: set[Waiter] = set()
        for key in touched:
            concerned |= self._by_input.get(key, set())
            for group in self._groups_by_input.get(key, ()):
                concerned |= self._groups[group]
        self._release(concerned)

    def stop(self) -> None:
        """Release every waiter at once: the server is stopping."""
        self.stopping = True
        self._queue.clear()
        for waiter in list(self._all):
            waiter.release(STOPPING)

    def _release(self, waiters: Iterable[Waiter]) -> None:
        for waiter in waiters:
            if not waiter.queued and not waiter.future.done():
                waiter.queued = True
                self._queue.append(waiter)
        if self._queue and (self._pacer is None or self._pacer.done()):
            self._pacer = asyncio.ensure_future(self._pace())

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            share = len(self._queue)
            if self.answers_per_s > 0:
                share = min(share, max(1, round(self.answers_per_s * TICK_S)))
            for _ in range(share):
                waiter = self._queue.popleft()
                waiter.queued = False
                waiter.release(CHANGED)
            # A tick that ends late means the event loop is behind (the answers to earlier
            # shares are still being made): the next share waits for it to catch up, a few
            # ticks at most, so every other request keeps its latency meanwhile.
            for _ in range(MAX_TICKS_HELD):
                if not self._queue:
                    break
                started = loop.time()
                await asyncio.sleep(TICK_S)
                if loop.time() - started < TICK_S + LATE_S:
                    break


async def _until_gone(receive: Receive) -> None:
    """Return when the client closes its connection (ASGI's http.disconnect)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _discard(index: dict[Any, set[Any]], key: Any, item: Any) -> None:
    found = index.get(key)
    if found is not None:
        found.discard(item)
        if not found:
            del index[key]
