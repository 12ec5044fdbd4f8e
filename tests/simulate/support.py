"""Scenarios for the simulator's tests, built as the dicts a TOML file reads into."""

from __future__ import annotations

import copy
from typing import Any

from peerdp.simulate import scenario, world
from peerdp.simulate.engine import Engine
from peerdp.simulate.world import MIB

SIZE_MIB = 24

SEED: dict[str, Any] = {
    "name": "seed",
    "hq": {"name": "HQ", "subnet": "10.0.0.0/24", "lan_mbps": 1000},
    "branches": [
        {
            "name": "BR01",
            "subnet": "10.1.1.0/24",
            "lan_mbps": 100,
            "clients": 4,
            "wan": {"mbps": 10, "latency_ms": 30},
        }
    ],
    "distribution_points": [{"name": "HQ-DP01", "location": "HQ", "bits_enabled": True}],
    "packages": [
        {
            "name": "Editor",
            "size_mib": SIZE_MIB,
            "files": 3,
            "on_demand": True,
            "staged_on": ["HQ-DP01"],
        }
    ],
    "advertisements": [{"name": "Editor", "package": "Editor", "protected_only": True}],
}

PACKAGE_BYTES = SIZE_MIB * MIB


def seed(**changes: Any) -> dict[str, Any]:
    """The seed's scenario with `changes`: `section__field=value` sets a field of the
    first entry of a list section (`packages__on_demand=False`), `field=value` a top one."""
    data = copy.deepcopy(SEED)
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            target = data[section][0] if isinstance(data[section], list) else data[section]
            target[field] = value
        else:
            data[section] = value
    return data


def run(data: dict[str, Any], policy: str | None = None) -> Engine:
    return Engine(world.build(scenario.parse(data)), policy=policy, trace=True).run()


def steps(engine: Engine, *whats: str) -> list[tuple[str, str, str]]:
    """The trace's (who, what, detail), only the kinds named (all when none)."""
    assert engine.trace is not None
    return [(s.who, s.what, s.detail) for s in engine.trace if not whats or s.what in whats]
