"""The console's event stream (console/events.py) on a change bus of its own: a burst of
changes ends with one more event, so a page's last fetch comes after the dashboard's
shared read (up to a second old) has been read again."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from peerdp.site.console.dashboard import SHARED_S
from peerdp.site.console.events import COALESCE_S, TRAILING_S, changes
from peerdp.site.notify import DEPLOYMENTS, MESSAGES, ChangeBus


async def _next(stream: AsyncIterator[str], within: float) -> str:
    return await asyncio.wait_for(anext(stream), within)


def _run(test: Any) -> None:
    async def run() -> None:
        bus = ChangeBus("sqlite://", shared=False)
        bus.start(asyncio.get_running_loop())
        try:
            await test(bus)
        finally:
            bus.stop()

    asyncio.run(run())


def test_a_burst_of_changes_ends_with_one_more_event_after_the_shared_read() -> None:
    async def test(bus: ChangeBus) -> None:
        stream = changes(SimpleNamespace(changes=bus), "secret")  # type: ignore[arg-type]
        assert await _next(stream, 1) == "retry: 3000\n\n"
        bus.bump({DEPLOYMENTS}, ())
        first = await _next(stream, 2)
        told = time.monotonic()
        assert first.startswith("event: change\n")
        closing = await _next(stream, TRAILING_S + 2)
        assert closing == first, "the same generation, told again"
        assert time.monotonic() - told >= TRAILING_S > SHARED_S
        with pytest.raises(TimeoutError):  # then quiet: one closing event, not a stream
            await _next(stream, TRAILING_S + 0.5)

    _run(test)


def test_a_message_tail_gets_no_closing_event() -> None:
    """A tail asks only for newer messages, never a shared read: nothing to close."""

    async def test(bus: ChangeBus) -> None:
        stream = changes(SimpleNamespace(changes=bus), "secret", messages=True)  # type: ignore[arg-type]
        assert await _next(stream, 1) == "retry: 3000\n\n"
        bus.bump({MESSAGES}, ())
        assert (await _next(stream, 2)).startswith("event: change\n")
        with pytest.raises(TimeoutError):
            await _next(stream, TRAILING_S + 0.5)

    _run(test)


def test_a_wave_of_deployment_states_is_told_once_per_shared_read() -> None:
    """During a wave (a deployment state moving every 0.1 s) a page is told at most once
    per SHARED_S: more often, it would fetch the board it already has. A change of
    anything else (an advertisement, a DP list) is told within COALESCE_S."""

    async def test(bus: ChangeBus) -> None:
        stream = changes(SimpleNamespace(changes=bus), "secret")  # type: ignore[arg-type]
        assert await _next(stream, 1) == "retry: 3000\n\n"
        told: list[float] = []

        async def listen() -> None:
            while True:
                if (await anext(stream)).startswith("event: change\n"):
                    told.append(time.monotonic())

        listener = asyncio.ensure_future(listen())
        started = time.monotonic()
        while time.monotonic() - started < 3 * SHARED_S:
            bus.bump({DEPLOYMENTS}, ())
            await asyncio.sleep(0.1)
        gaps = [b - a for a, b in itertools.pairwise(told)]
        assert told and all(gap >= SHARED_S - 0.05 for gap in gaps), gaps
        assert len(told) <= 4, f"{len(told)} events in {3 * SHARED_S} s"

        await asyncio.sleep(SHARED_S)  # the wave over, a site change: told at once
        before = len(told)
        bus.bump({"policy"})
        changed = time.monotonic()
        while len(told) == before and time.monotonic() - changed < 2:
            await asyncio.sleep(0.02)
        listener.cancel()
        assert len(told) > before and told[before] - changed < COALESCE_S + 0.3

    _run(test)
