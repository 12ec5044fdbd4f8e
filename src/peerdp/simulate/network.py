"""Links and the transfers (flows) that share them.

A flow crosses a path of links; its rate is its fair share of the most crowded link on
its path: `min(capacity / flows on the link)`. That never lets a link carry more than
its capacity (the shares on a link add up to at most its capacity), and it is what a
link shared by equal TCP connections converges to; bandwidth a flow leaves unused on a
link because it is held back elsewhere is not handed to the others (conservative).

Rates change only when a flow starts or ends on a link, or a link goes down; the
simulator then calls :meth:`Network.reflow` once for the instant, which recomputes the
flows on the links touched and returns those whose rate changed, so their completion
can be scheduled again. Nothing is done per byte.

A crowded link (more than `crowd` flows, such as the head office's link while two
thousand branch DPs pull from it) would make every start and end recompute thousands of
flows. Its shares are recomputed at most every `quantum_s` instead (a "tick"); until
then a new flow on it waits with rate 0 and a flow's rate may only go down, so the
link is still never over its capacity: each flow has at most the share it was given
when there were no more flows than now. The cost: a new flow may start up to
`quantum_s` late, and a share freed by a flow that ended stays idle as long.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

# A link with more flows than this recomputes their shares at most every QUANTUM_S.
CROWD = 64
QUANTUM_S = 5.0


@dataclass(eq=False, slots=True)
class Link:
    name: str
    capacity: float  # bytes per second
    wan: bool = False
    latency: float = 0.0  # seconds, one way
    up: bool = True
    flows: set[Flow] = field(default_factory=set)
    rate: float = 0.0  # sum of the rates of its flows
    bytes: float = 0.0  # carried so far
    peak_rate: float = 0.0


@dataclass(eq=False, slots=True)
class Flow:
    path: tuple[Link, ...]
    remaining: float
    source: str  # the DP (or the site) sending it
    on_done: Callable[[Flow], None]
    on_abort: Callable[[Flow], None]
    size: float = 0.0
    rate: float = 0.0
    settled_at: float = 0.0
    token: int = 0  # completion events carry it; a stale one is ignored
    active: bool = True

    @property
    def done_bytes(self) -> float:
        return self.size - self.remaining


class Network:
    def __init__(self, crowd: int = CROWD, quantum_s: float = QUANTUM_S) -> None:
        self.links: list[Link] = []
        self.crowd = crowd
        self.quantum_s = quantum_s
        self._dirty: set[Link] = set()
        self._held: set[Link] = set()  # crowded links waiting for the next tick
        self.wan_rate = 0.0  # bytes per second on WAN links, now
        self.wan_rates: list[tuple[float, float]] = [(0.0, 0.0)]  # (time, wan_rate) changes

    def link(self, name: str, capacity: float, *, wan: bool = False, latency: float = 0.0) -> Link:
        made = Link(name, capacity, wan, latency)
        self.links.append(made)
        return made

    @property
    def dirty(self) -> bool:
        return bool(self._dirty)

    @property
    def held(self) -> bool:
        return bool(self._held)

    def next_tick(self, now: float) -> float:
        return (math.floor(now / self.quantum_s) + 1) * self.quantum_s

    def start(self, flow: Flow, now: float) -> None:
        flow.size = flow.remaining
        flow.settled_at = now
        for link in flow.path:
            link.flows.add(flow)
            self._dirty.add(link)

    def stop(self, flow: Flow, now: float) -> None:
        """Take a flow off its links (finished or aborted); its bytes are counted."""
        if not flow.active:
            return
        self._settle(flow, now)
        self._set_rate(flow, 0.0)
        flow.active = False
        flow.token += 1
        for link in flow.path:
            link.flows.discard(flow)
            self._dirty.add(link)

    def fail_link(self, link: Link, now: float) -> list[Flow]:
        """The link goes down: its flows are stopped and returned (to be aborted)."""
        link.up = False
        cut = list(link.flows)
        for flow in cut:
            self.stop(flow, now)
        return cut

    def reflow(self, now: float, *, tick: bool = False) -> list[Flow]:
        """New rates for the flows on links touched since the last call (crowded ones
        only at a `tick`); the flows whose rate changed (their completion time moved)."""
        held = self._held
        if tick:
            self._dirty |= held
            held.clear()
        elif self.quantum_s > 0:
            crowded = [link for link in self._dirty if len(link.flows) > self.crowd]
            held.update(crowded)
            self._dirty.difference_update(crowded)
        touched: set[Flow] = set()
        for link in self._dirty:
            touched.update(link.flows)
        self._dirty.clear()
        moves = []
        for flow in touched:
            rate = min(link.capacity / len(link.flows) for link in flow.path)
            if held and rate > flow.rate and not held.isdisjoint(flow.path):
                continue  # on a crowded link: no more than it has until the tick
            if rate != flow.rate:
                moves.append((rate - flow.rate, rate, flow))
        # Slow flows down before speeding others up, so no link is over its capacity
        # even between two updates of one instant.
        moves.sort(key=_by_change)
        changed = []
        for _, rate, flow in moves:
            self._settle(flow, now)
            self._set_rate(flow, rate)
            flow.token += 1
            changed.append(flow)
        if self.wan_rates[-1][1] != self.wan_rate:
            self.wan_rates.append((now, self.wan_rate))
        return changed

    def settle_all(self, now: float) -> None:
        """Count every flow's bytes up to `now` (links' byte counts are otherwise brought
        up to date only when a rate changes)."""
        for link in self.links:
            for flow in link.flows:
                if flow.settled_at < now:
                    self._settle(flow, now)

    def _settle(self, flow: Flow, now: float) -> None:
        moved = flow.rate * (now - flow.settled_at)
        if moved:
            moved = min(moved, flow.remaining)
            flow.remaining -= moved
            for link in flow.path:
                link.bytes += moved
        flow.settled_at = now

    def _set_rate(self, flow: Flow, rate: float) -> None:
        delta = rate - flow.rate
        flow.rate = rate
        for link in flow.path:
            link.rate += delta
            if link.rate > link.peak_rate:
                link.peak_rate = link.rate
            if link.wan:
                self.wan_rate += delta


def _by_change(move: tuple[float, float, Flow]) -> float:
    return move[0]
