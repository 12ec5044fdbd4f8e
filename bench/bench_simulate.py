"""Benchmark of `peerdp simulate`: a deployment of one 500 MiB package to 100,000 clients
in 2,000 branches, 10 % of the branch DPs down for the first hour.

Each size runs in its own process, so its peak memory (ru_maxrss) is its own. It
prints wall and CPU time (building the world included), peak memory and the
deployment's figures, and how wall time grows with the number of clients.

    .venv/bin/python bench/bench_simulate.py                    # 100,000 clients
    .venv/bin/python bench/bench_simulate.py --growth           # 10,000 and 100,000
    .venv/bin/python bench/bench_simulate.py --growth --million # and 1,000,000
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from typing import Any

from peerdp.simulate import scenario, world
from peerdp.simulate.results import simulate

CLIENTS_PER_BRANCH = 50
TARGET_S = 60.0
TARGET_BYTES = 2 << 30


def deployment(branches: int, policy: str = "peerdp") -> dict[str, Any]:
    """The benchmark's scenario, as a scenario file would read."""
    return {
        "name": f"{branches * CLIENTS_PER_BRANCH:,} clients",
        "hq": {"name": "HQ", "subnet": "172.16.0.0/24", "lan_mbps": 10_000},
        "generate": {
            "branches": branches,
            "clients_per_branch": CLIENTS_PER_BRANCH,
            "address_plan": "10.0.0.0/8",
            "lan_mbps": 1000,
            "wan": {"mbps": 20, "latency_ms": 40},
        },
        "distribution_points": [{"name": "HQ-DP01", "location": "HQ"}],
        "packages": [{"name": "Office", "size_mib": 500, "files": 40, "staged_on": ["HQ-DP01"]}],
        "advertisements": [{"name": "Office", "package": "Office"}],
        "clients": {"policy": policy},
        "events": [{"type": "dp_down", "branch_dp_fraction": 0.1, "from_s": 0, "until_s": 3600}],
    }


def one(branches: int, policy: str) -> dict[str, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    result = simulate(world.build(scenario.parse(deployment(branches, policy))))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    s = result.summary
    return {
        "clients": s["clients"],
        "policy": policy,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),  # less than wall when other processes share the cores
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "succeeded": s["succeeded"],
        "time_to_succeeded_s": s["time_to_succeeded_s"],
        "on_demand_provisionings": s["on_demand_provisionings"],
        "wan_bytes": s["wan_bytes"],
        "wan_floor_bytes": s["wan_floor_bytes"],
        "mp_requests": s["mp_requests"],
        "mp_requests_per_s_peak": s["mp_requests_per_s_peak"],
        "peak_transfers_by_dp_max": max(s["peak_transfers_by_dp"].values()),
        "never_succeeded": s["never_succeeded"],
    }


def in_subprocess(branches: int, policy: str) -> dict[str, Any]:
    args = [sys.executable, __file__, "--one", str(branches), "--policy", policy]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--growth", action="store_true", help="also 10,000 clients")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 clients")
    parser.add_argument("--policy", default="peerdp", choices=("peerdp", "sccm2007"))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.policy)))
        return 0
    sizes = [2_000]
    if args.growth:
        sizes.insert(0, 200)
    if args.million:
        sizes.append(20_000)
    print(f"python {platform.python_version()} on {platform.machine()}, policy {args.policy}")
    failed = False
    rows = []
    for branches in sizes:
        row = in_subprocess(branches, args.policy)
        rows.append(row)
        print(json.dumps(row))
        if branches == 2_000:
            failed = row["wall_s"] > TARGET_S or row["peak_rss_bytes"] > TARGET_BYTES
    base = rows[0]
    for row in rows[1:]:
        factor = row["clients"] / base["clients"]
        print(
            f"{base['clients']:,} -> {row['clients']:,} clients (x{factor:g}): "
            f"wall x{row['wall_s'] / base['wall_s']:.1f}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
