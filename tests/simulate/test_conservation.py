"""Conservation: no link carries more than its bandwidth allows in any interval, and
every client that succeeded received every byte of the package once."""

from __future__ import annotations

from typing import Any

from peerdp.simulate import scenario, world
from peerdp.simulate.engine import Engine
from peerdp.simulate.results import summarise
from tests.simulate.support import PACKAGE_BYTES, seed, steps

WINDOW_S = 5.0


def busy() -> dict[str, Any]:
    """Three branches of 30 clients behind slow links, branch DPs serving 5 at once, a WAN
    link cut during the pulls, a branch DP down while serving, a program that fails."""
    data = seed(duration_s=3 * 86400)
    data["branches"] = [
        {
            "name": f"BR0{n}",
            "subnet": f"10.1.{n}.0/24",
            "lan_mbps": 20,
            "clients": 30,
            "wan": {"mbps": 4, "latency_ms": 40},
            "branch_dp": {"max_transfers": 5},
        }
        for n in (1, 2, 3)
    ]
    data["hq"]["lan_mbps"] = 6  # the head office's link is shared by the three pulls
    data["hq"]["clients"] = 5
    data["clients"] = {"program_failure_rate": 0.2, "program_run_s": 30}
    data["events"] = [
        {"type": "link_cut", "location": "BR02", "from_s": 20, "until_s": 400},
        {"type": "dp_down", "dp": "BR03-DP", "from_s": 430, "until_s": 900},
    ]
    return data


def test_no_link_exceeds_its_bandwidth_in_any_interval() -> None:
    engine = Engine(world.build(scenario.parse(busy())))
    links = engine.net.links
    before = [0.0] * len(links)
    t = 0.0
    while not engine.finished:
        t += WINDOW_S
        engine.run(until=t)
        engine.net.settle_all(t)
        for n, link in enumerate(links):
            assert link.bytes - before[n] <= link.capacity * WINDOW_S * (1 + 1e-9), link.name
            before[n] = link.bytes
    summary = summarise(engine).summary
    assert summary["link_peak_utilisation"] <= 1 + 1e-9
    assert summary["succeeded"] > 0


def test_every_client_that_succeeded_got_every_byte_once() -> None:
    engine = Engine(world.build(scenario.parse(busy())), trace=True).run()
    # The faults hit transfers in flight: BR02-DP's pull was cut and started again, and
    # some BR03 clients lost their download when BR03-DP went down.
    assert steps(engine, "pull_started").count(("BR02-DP", "pull_started", "HQ-DP01")) == 2
    started = [who for who, _, d in steps(engine, "download_started") if d == "BR03-DP"]
    assert any(started.count(name) > 1 for name in started)  # cut, then resumed
    succeeded = [job for job in engine.jobs if job.done_at is not None]
    # The faults delay clients, they do not stop them; only a program failing every
    # one of its runs does.
    for job in engine.jobs:
        assert job.done_at is not None or job.failed == "program_failed: exit code 1"
    assert len(succeeded) > 0.9 * len(engine.jobs)
    for job in succeeded:
        assert abs(sum(job.received.values()) - PACKAGE_BYTES) < 1, job.client.name
    # Clients of an undisturbed branch each got it from one source, their branch DP.
    for job in succeeded:
        if job.client.name.startswith("BR01"):
            assert list(job.received) == ["BR01-DP"]
    # The branch DPs' transfer limit held; 503s sent clients to try again.
    for node in engine.dps.values():
        if node.dp.rule.kind == "branch":
            assert node.peak <= 5
            assert sum(node.pulled.values()) == 1  # each pulled once, the cut one resumed
    summary = summarise(engine).summary
    # The cut pull resumed: the WAN links carried one copy each, not more.
    assert summary["wan_links_over_floor"] == 0


def test_the_seed_run_ends_with_nothing_in_flight() -> None:
    engine = Engine(world.build(scenario.parse(seed()))).run()
    assert all(not link.flows and abs(link.rate) < 1e-6 for link in engine.net.links)
    assert all(node.active == 0 for node in engine.dps.values())
