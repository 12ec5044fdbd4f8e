"""Held policy long-polls: a change releases only the waiters whose policy reads one of the
inputs it touched, at a steady pace; a client that goes away is dropped at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import MutableMapping
from typing import Any

from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.mp.waiters import CHANGED, GONE, STOPPING, TICK_S, TIMEOUT, Waiter, Waiters

COLLECTION_1 = frozenset({inputs.collection(1), inputs.package("P1")})
COLLECTION_2 = frozenset({inputs.collection(2), inputs.package("P2")})


class Connection:
    """An ASGI `receive` whose client hangs up when told to."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()
        self.calls = 0

    async def receive(self) -> MutableMapping[str, Any]:
        self.calls += 1
        if self.calls == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def hold_many(
    waiters: Waiters, count: int, shared: frozenset[str], prefix: str
) -> list[asyncio.Task[str]]:
    tasks = []
    for i in range(count):
        waiter = waiters.hold((inputs.machine(f"{prefix}{i}"),), shared)
        tasks.append(asyncio.ensure_future(waiters.wait(waiter, 60, Connection().receive)))
    await asyncio.sleep(0)
    return tasks


def test_a_change_to_a_collection_releases_its_members_only() -> None:
    async def scenario() -> None:
        waiters = Waiters(answers_per_s=0)
        first = await hold_many(waiters, 3, COLLECTION_1, "a")
        second = await hold_many(waiters, 2, COLLECTION_2, "b")
        waiters.changed(frozenset({inputs.collection(1)}))
        assert await asyncio.gather(*first) == [CHANGED] * 3
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in second)
        assert len(waiters) == 2  # the released ones left the index
        waiters.changed(frozenset({inputs.package("P2")}))
        assert await asyncio.gather(*second) == [CHANGED] * 2
        assert len(waiters) == 0

    run(scenario())


def test_a_machines_own_input_releases_that_machine_alone() -> None:
    async def scenario() -> None:
        waiters = Waiters(answers_per_s=0)
        tasks = await hold_many(waiters, 3, COLLECTION_1, "pc")
        waiters.changed(frozenset({inputs.machine("pc1")}))
        assert await tasks[1] == CHANGED
        await asyncio.sleep(0.05)
        assert not tasks[0].done() and not tasks[2].done()
        waiters.changed(frozenset({inputs.EVERYTHING}))
        assert await asyncio.gather(tasks[0], tasks[2]) == [CHANGED, CHANGED]

    run(scenario())


def test_a_change_that_names_no_input_held_releases_nobody() -> None:
    async def scenario() -> None:
        waiters = Waiters(answers_per_s=0)
        tasks = await hold_many(waiters, 4, COLLECTION_1, "pc")
        waiters.changed(frozenset({inputs.collection(99), inputs.dp(3), inputs.DPS}))
        await asyncio.sleep(0.1)
        assert not any(task.done() for task in tasks)
        waiters.stop()
        assert await asyncio.gather(*tasks) == [STOPPING] * 4

    run(scenario())


def test_answers_to_many_are_spread_at_the_set_pace() -> None:
    async def scenario() -> None:
        rate = 2_000.0  # per second: 20 per tick
        waiters = Waiters(answers_per_s=rate)
        tasks = await hold_many(waiters, 450, COLLECTION_1, "pc")
        waiters.changed(frozenset({inputs.collection(1)}))
        await asyncio.sleep(TICK_S / 5)  # the first share is out, the second not yet due
        released_at_once = sum(task.done() for task in tasks)
        assert released_at_once == rate * TICK_S
        assert await asyncio.gather(*tasks) == [CHANGED] * 450

    run(scenario())


def test_a_small_change_is_answered_in_the_first_share() -> None:
    async def scenario() -> None:
        rate = 2_000.0
        waiters = Waiters(answers_per_s=rate)
        tasks = await hold_many(waiters, int(rate * TICK_S), COLLECTION_1, "pc")
        waiters.changed(frozenset({inputs.collection(1)}))
        await asyncio.sleep(TICK_S / 5)
        assert all(task.done() for task in tasks)

    run(scenario())


def test_a_client_that_goes_away_is_dropped_at_once() -> None:
    async def scenario() -> None:
        waiters = Waiters(answers_per_s=0)
        connection = Connection()
        waiter = waiters.hold((inputs.machine("pc"),), COLLECTION_1)
        task = asyncio.ensure_future(waiters.wait(waiter, 60, connection.receive))
        await asyncio.sleep(0.01)
        assert len(waiters) == 1
        connection.gone.set()
        assert await task == GONE
        assert len(waiters) == 0
        # The group index let go of it too: a change finds nobody.
        waiters.changed(frozenset({inputs.collection(1)}))

    run(scenario())


def test_a_wait_runs_out() -> None:
    async def scenario() -> Waiter:
        waiters = Waiters(answers_per_s=0)
        waiter = waiters.hold((inputs.machine("pc"),), COLLECTION_1)
        assert await waiters.wait(waiter, 0.05, Connection().receive) == TIMEOUT
        assert len(waiters) == 0
        return waiter

    run(scenario())


def test_a_waiter_held_while_stopping_is_released_at_once() -> None:
    async def scenario() -> None:
        waiters = Waiters(answers_per_s=0)
        waiters.stop()
        waiter = waiters.hold((inputs.machine("pc"),), COLLECTION_1)
        assert await waiters.wait(waiter, 60, Connection().receive) == STOPPING

    run(scenario())


def test_a_busy_event_loop_holds_the_next_share_back() -> None:
    """While the loop is behind (here a task blocking it 20 ms at a time, as the answers
    to a share would), shares wait up to MAX_TICKS_HELD ticks each: 100 waiters at 20 a
    tick take about 5 x 5 late ticks, where an unheld pacer would need 5."""

    async def scenario() -> None:
        waiters = Waiters(answers_per_s=2_000.0)
        tasks = await hold_many(waiters, 100, COLLECTION_1, "pc")
        busy = True

        async def hog() -> None:
            while busy:
                time.sleep(0.02)
                await asyncio.sleep(0)

        hogging = asyncio.ensure_future(hog())
        started = time.monotonic()
        waiters.changed(frozenset({inputs.collection(1)}))
        await asyncio.sleep(0.3)  # an unheld pacer is done in about 5 ticks of 20+ ms
        released = sum(task.done() for task in tasks)
        busy = False
        await hogging
        assert await asyncio.gather(*tasks) == [CHANGED] * 100
        assert 20 <= released < 100, f"{released} released after {time.monotonic() - started} s"

    run(scenario())
