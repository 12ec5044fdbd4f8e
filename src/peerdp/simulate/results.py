"""What a simulated deployment came to: the figures an administrator asks for, as JSON.

Times are seconds from the start of the simulation. "Succeeded" means the program ran
successfully at the package's latest source version. MP requests are those the
simulation makes (content-location requests, policy fetches that bring a change, status
messages); with interval polling every machine also polls each interval whether or not
anything changed, which adds a steady `policy_polls_per_s` (the mean of
`PolicyPolling.requests_per_second`), shown apart.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from peerdp.simulate.engine import Engine
from peerdp.simulate.world import World


@dataclass(frozen=True)
class Result:
    summary: dict[str, Any]
    curve: list[float]  # success times, sorted
    wan_rates: list[tuple[float, float]]  # (time, bytes per second over every WAN link)
    mp_per_s: dict[int, int]  # second -> MP requests
    branch_done: list[float]  # per branch, when its last client succeeded

    def to_json(self) -> dict[str, Any]:
        return {**self.summary, "curve": self.curve, "branch_completion_s": self.branch_done}


def summarise(engine: Engine) -> Result:
    world, jobs = engine.world, engine.jobs
    done = sorted(j.done_at for j in engine.jobs if j.done_at is not None)
    total = len(jobs)
    never: Counter[str] = Counter()
    for job in jobs:
        if job.done_at is None:
            never[f"gave up: {job.failed}" if job.failed else _still(job)] += 1
    wan = {link.name: link.bytes for link in engine.wan if link is not None}
    floor = _wan_floor(engine)
    over = sorted(
        ((name, round(b - floor.get(name, 0))) for name, b in wan.items()),
        key=lambda item: -item[1],
    )
    over = [(name, extra) for name, extra in over if extra > 1]
    mp_total = sum(engine.mp.values())
    span = max(1.0, (done[-1] if done else engine.now))
    polls = _policy_polls_per_s(engine)
    by_branch = _branch_completion(engine)
    summary: dict[str, Any] = {
        "scenario": world.scenario.name,
        "policy_model": engine.model,
        "clients": world.client_count,
        "targeted": total,
        "branches": len(world.places) - 1,
        "succeeded": len(done),
        "time_to_succeeded_s": {
            f"{pct}%": _time_to(done, total, pct / 100) for pct in (50, 95, 100)
        },
        "simulated_s": engine.now,
        "on_demand_provisionings": len(engine.on_demand),
        "on_demand_still_delayed": len(engine.delayed),
        "wan_bytes": round(sum(wan.values())),
        "wan_floor_bytes": round(sum(floor.values())),
        "wan_links_over_floor": len(over),
        "wan_most_over_floor": dict(over[:10]),  # link -> bytes beyond its floor
        "wan_bytes_by_link": {name: round(b) for name, b in wan.items() if b},
        "mp_requests": mp_total,
        "mp_requests_by_kind": dict(engine.mp_kinds),
        "mp_requests_per_s_peak": max(engine.mp.values(), default=0),
        "mp_requests_per_s_mean": round(mp_total / span, 3),
        "policy_polls_per_s": round(polls, 3),
        "peak_transfers_by_dp": {n.dp.rule.name: n.peak for n in engine.dps.values() if n.peak},
        "branch_dp_pulls": sum(sum(n.pulled.values()) for n in engine.dps.values()),
        "never_succeeded": dict(never.most_common()),
        "link_peak_utilisation": round(
            max((link.peak_rate / link.capacity for link in engine.net.links), default=0.0), 6
        ),
    }
    return Result(summary, done, engine.net.wan_rates, dict(engine.mp), by_branch)


@dataclass(frozen=True, slots=True)
class Decision:
    """One content-location answer, in the words the MP records it with: a real site's
    `content_location` status message has the client's name and the same `answer` (its
    detail, `location.describe`), so a run and a real site's messages compare as equals."""

    client: str
    answer: str


def decisions(engine: Engine) -> list[Decision]:
    """The location decisions of a traced run (`Engine(trace=True)`), in the order they
    were made."""
    if engine.trace is None:
        raise ValueError("the run was not traced: build the Engine with trace=True")
    return [Decision(s.who, s.detail) for s in engine.trace if s.what == "located"]


def _time_to(done: list[float], total: int, share: float) -> float | None:
    """When `share` of the targeted clients had succeeded; None if they never did."""
    need = math.ceil(total * share - 1e-9)
    if total == 0 or len(done) < need:
        return None
    return round(done[need - 1], 3)


def _still(job: Any) -> str:
    return f"still trying at the end: {job.reason}" if job.reason else "never attempted"


def _wan_floor(engine: Engine) -> dict[str, float]:
    """One copy of each version of each package per branch that has a targeted client."""
    versions = engine.version
    wanted: dict[int, set[str]] = {}
    for job in engine.jobs:
        wanted.setdefault(job.place, set()).add(job.adv.package.id)
    floor: dict[str, float] = {}
    for place, package_ids in wanted.items():
        link = engine.wan[place]
        if link is not None:
            floor[link.name] = sum(engine.packages[p].size * versions[p] for p in package_ids)
    return floor


def _policy_polls_per_s(engine: Engine) -> float:
    if not engine.polling.by_interval:
        return 0.0
    machines = engine.world.client_count + sum(
        1 for n in engine.dps.values() if n.dp.rule.kind == "branch"
    )
    return engine.polling.requests_per_second(machines)


def _branch_completion(engine: Engine) -> list[float]:
    last: dict[int, float] = {}
    missing: set[int] = set()
    for job in engine.jobs:
        if job.place == 0:
            continue
        if job.done_at is None:
            missing.add(job.place)
        else:
            last[job.place] = max(last.get(job.place, 0.0), job.done_at)
    return sorted(t for place, t in last.items() if place not in missing)


def simulate(world: World, policy: str | None = None) -> Result:
    """Run the world's scenario under `policy` (default: the scenario's) and summarise it."""
    return summarise(Engine(world, policy=policy).run())
