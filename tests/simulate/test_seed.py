"""The seed's flow in the simulator, and each of its conditions failing on its own.

The outcomes are the ones the end-to-end tests get from real processes
(tests/e2e/test_seed_conditions.py): the simulator asks the same rule.
"""

from __future__ import annotations

import pytest

from peerdp.domain import dp_states
from peerdp.domain.location import PackageDPRow
from peerdp.simulate import scenario, world
from peerdp.simulate.engine import Engine, SimulationError
from peerdp.simulate.results import decisions, summarise
from tests.simulate.support import PACKAGE_BYTES, run, seed, steps

CLIENTS = [f"BR01-PC00{n}" for n in range(1, 5)]


def test_seed_flow() -> None:
    engine = run(seed())
    located = steps(engine, "located")
    first = located[:4]
    # Every client's first attempt fails: the first triggers on-demand, the others find it
    # in progress; the branch DP is added once, pulls once, and the retries use it.
    assert sorted(who for who, _, _ in first) == CLIENTS
    assert [detail for _, _, detail in first] == [
        "answered with no DP: on_demand_triggered",
        *["answered with no DP: on_demand_in_progress"] * 3,
    ]
    assert steps(engine, "on_demand_added") == [("BR01-DP", "on_demand_added", "PS100001 v1")]
    assert steps(engine, "pull_started", "pulled") == [
        ("BR01-DP", "pull_started", "HQ-DP01"),
        ("BR01-DP", "pulled", "PS100001 v1"),
    ]
    retries = located[4:]
    assert sorted(who for who, _, _ in retries) == CLIENTS
    assert {detail for _, _, detail in retries} == {"answered with 1 DP(s): BR01-DP"}
    assert {d for _, _, d in steps(engine, "download_started")} == {"BR01-DP"}
    assert sorted(who for who, _, _ in steps(engine, "succeeded")) == CLIENTS
    # The order: the first attempts, the provisioning, the pull, then the retries.
    order = [s.what for s in engine.trace or []]
    assert order.index("pulled") < order.index("download_started")
    assert order.index("on_demand_added") < order.index("pull_started")

    summary = summarise(engine).summary
    assert summary["wan_bytes"] == PACKAGE_BYTES == summary["wan_floor_bytes"]
    assert summary["on_demand_provisionings"] == 1 and summary["branch_dp_pulls"] == 1
    assert summary["succeeded"] == 4 and summary["never_succeeded"] == {}
    assert engine.state_of("PS100001", 2) == _row(2, dp_states.INSTALLED)


def _row(dp_id: int, state: str, version: int = 1) -> PackageDPRow:
    return PackageDPRow(dp_id, state, version)


def _never(engine_summary: dict[str, object], reason: str) -> None:
    assert engine_summary["succeeded"] == 0
    assert engine_summary["never_succeeded"] == {f"gave up: {reason}": 4}


def test_no_protected_branch_dp_covers_the_client() -> None:
    """(b): the branch's DP protects nothing: nobody is provisioned, nothing crosses the WAN."""
    data = seed(branches__branch_dp=False)
    data["distribution_points"].append(
        {"name": "BR01-DP", "kind": "branch", "location": "BR01", "bits_enabled": False}
    )
    engine = run(data)
    summary = summarise(engine).summary
    _never(summary, "no_content_accessible")
    assert summary["on_demand_provisionings"] == 0 and summary["wan_bytes"] == 0
    assert engine.state_of("PS100001", 2) is None


def test_advertisement_not_protected_only() -> None:
    """(c): no provisioning; the remote standard DP only when remote and slow are allowed."""
    summary = summarise(run(seed(advertisements__protected_only=False))).summary
    _never(summary, "no_content_accessible")  # remote DPs not allowed
    summary = summarise(
        run(seed(advertisements__protected_only=False, advertisements__allow_remote=True))
    ).summary
    _never(summary, "slow_boundary_do_not_run")  # the remote DP is over a slow link
    engine = run(
        seed(
            advertisements__protected_only=False,
            advertisements__allow_remote=True,
            advertisements__on_slow="download",
        )
    )
    summary = summarise(engine).summary
    assert summary["succeeded"] == 4 and summary["on_demand_provisionings"] == 0
    assert {d for _, _, d in steps(engine, "download_started")} == {"HQ-DP01"}
    assert summary["wan_bytes"] == 4 * PACKAGE_BYTES  # each client over the WAN


def test_package_does_not_allow_on_demand() -> None:
    """(d)."""
    summary = summarise(run(seed(packages__on_demand=False))).summary
    _never(summary, "no_content_accessible")
    assert summary["on_demand_provisionings"] == 0


def test_no_bits_standard_dp_holds_the_content() -> None:
    """(a)'s note: delayed, once, and never carried out while no BITS-enabled one holds it."""
    engine = run(seed(distribution_points__bits_enabled=False))
    summary = summarise(engine).summary
    _never(summary, "on_demand_delayed")
    assert steps(engine, "on_demand_delayed") == [("BR01-DP", "on_demand_delayed", "")]
    assert summary["on_demand_provisionings"] == 0 and summary["on_demand_still_delayed"] == 1


def test_a_delayed_request_is_carried_out_when_the_content_is_staged() -> None:
    engine = run(seed(packages__staged_at=300))
    assert steps(engine, "on_demand_delayed") == [("BR01-DP", "on_demand_delayed", "")]
    [added] = [s for s in engine.trace or [] if s.what == "on_demand_added"]
    assert added.at == 300  # by the staging itself, not by a client's request
    summary = summarise(engine).summary
    assert summary["succeeded"] == 4 and summary["on_demand_still_delayed"] == 0
    assert summary["wan_bytes"] == PACKAGE_BYTES


def test_sccm2007_polling_is_slower_and_moves_the_same_bytes() -> None:
    fast, slow = (summarise(run(seed(), policy)).summary for policy in ("peerdp", "sccm2007"))
    assert fast["succeeded"] == slow["succeeded"] == 4
    assert slow["time_to_succeeded_s"]["100%"] > fast["time_to_succeeded_s"]["100%"] + 600
    assert slow["wan_bytes"] == fast["wan_bytes"] == PACKAGE_BYTES


def test_a_move_the_transition_table_refuses_is_an_error() -> None:
    engine = run(seed())
    with pytest.raises(SimulationError, match="cannot move from installed to install_failed"):
        engine.move("PS100001", 2, dp_states.INSTALL_FAILED, 1)


def test_a_failed_attempt_is_tried_again_when_the_agent_would() -> None:
    """After the retry interval exactly: the agent (agents/client.py) waits for the time
    `Attempts.after_failure` gives, with no jitter (only a failed policy fetch is
    jittered, `mp_client.policy_retry_s`), and so does the simulator."""
    engine = run(seed(clients={"retry_interval_s": 45.0}))
    trace = engine.trace or []
    for client in CLIENTS:
        failed = [s.at for s in trace if s.who == client and s.what == "attempt_failed"]
        located = [s.at for s in trace if s.who == client and s.what == "located"]
        assert len(failed) == 1 and len(located) == 2
        # (to the microsecond: the attempts' times are datetimes)
        assert located[1] - failed[0] == pytest.approx(45.0, abs=1e-6)


def test_decisions_are_the_located_steps_in_order_and_need_a_trace() -> None:
    engine = run(seed())
    assert [(d.client, d.answer) for d in decisions(engine)] == [
        (who, detail) for who, _, detail in steps(engine, "located")
    ]
    untraced = Engine(world.build(scenario.parse(seed()))).run()
    with pytest.raises(ValueError, match="not traced: build the Engine with trace=True"):
        decisions(untraced)
