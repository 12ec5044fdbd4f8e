"""The dry run's forecast, on the seed's site and its conditions."""

from __future__ import annotations

from typing import Any

from peerdp.domain import location as rule
from peerdp.simulate import scenario, world
from peerdp.simulate.engine import Engine
from peerdp.simulate.forecast import Forecast, forecast
from tests.simulate.support import PACKAGE_BYTES, seed


def dry_run(data: dict[str, Any]) -> Forecast:
    """The forecast from the site as the simulator holds it at the start."""
    engine = Engine(world.build(scenario.parse(data)))
    engine.run(until=0)  # staged, and no client has asked yet
    [adv] = engine.world.advertisements
    package = rule.Package(adv.package.id, 1, adv.package.on_demand)
    clients = [job.client for job in engine.jobs]
    return forecast(
        engine.view, engine.rows[package.id], adv.rule, package, adv.package.size, clients
    )


def test_the_seed_forecast() -> None:
    f = dry_run(seed())
    assert [c.first for c in f.clients] == [
        "answered with no DP: on_demand_triggered",
        *["answered with no DP: on_demand_in_progress"] * 3,
    ]
    assert f.on_demand == {"BR01-DP": "add"}
    assert f.pulls == {"BR01-DP": PACKAGE_BYTES} and f.wan_bytes == PACKAGE_BYTES
    assert {(c.dp, c.locality) for c in f.clients} == {("BR01-DP", "local")}
    assert f.never == {}


def test_delayed_and_never() -> None:
    f = dry_run(seed(distribution_points__bits_enabled=False))
    assert f.on_demand == {"BR01-DP": "delayed"} and f.pulls == {}
    assert f.never == {"on_demand_delayed": 4}
    f = dry_run(seed(packages__on_demand=False))
    assert f.on_demand == {} and f.never == {"no_content_accessible": 4}


def test_remote_downloads_count_on_the_wan() -> None:
    f = dry_run(
        seed(
            advertisements__protected_only=False,
            advertisements__allow_remote=True,
            advertisements__on_slow="download",
        )
    )
    assert {(c.dp, c.locality) for c in f.clients} == {("HQ-DP01", "remote")}
    assert f.remote_bytes == 4 * PACKAGE_BYTES and f.pulls == {}
