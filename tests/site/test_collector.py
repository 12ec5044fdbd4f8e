"""The site's pacing of the garbage collector: no automatic full passes, a full pass on
a clock that does find cyclic garbage."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from peerdp.site import collector


class Node:
    def __init__(self) -> None:
        self.other: Any = None


def old_cycle() -> weakref.ref[Node]:
    """Two objects referring to each other, moved to the oldest generation while reachable
    and then left: only a full pass frees them."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    held = [a]
    gc.collect(1)  # survivors of the middle generation go to the oldest
    held.clear()
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_clock_makes_full_passes_that_find_cyclic_garbage() -> None:
    async def run() -> tuple[bool, tuple[int, ...]]:
        service = asyncio.ensure_future(collector.paced_collection(None, every_s=0.05))  # type: ignore[arg-type]
        gone = old_cycle()
        gc.collect(1)
        assert gone() is not None  # young passes do not look there
        for _ in range(100):
            if gone() is None:
                break
            await asyncio.sleep(0.02)
        service.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await service
        return gone() is None, gc.get_threshold()

    freed, threshold = asyncio.run(run())
    assert freed
    assert threshold == (
        collector.YOUNG_PASS_AFTER,
        collector.MIDDLE_PASS_AFTER,
        collector.FULL_PASS_AFTER,
    )


def test_a_full_pass_counts_what_it_found() -> None:
    gc.collect()
    old_cycle()
    assert collector.full_pass() >= 2
