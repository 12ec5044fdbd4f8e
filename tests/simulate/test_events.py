"""Events: a new source version, a branch DP down, a WAN outage."""

from __future__ import annotations

from peerdp.domain import dp_states
from peerdp.simulate.results import summarise
from tests.simulate.support import PACKAGE_BYTES, run, seed, steps


def test_a_new_version_after_the_deployment_runs_again_with_one_more_pull() -> None:
    engine = run(seed(events=[{"type": "new_version", "package": "Editor", "at_s": 1000}]))
    summary = summarise(engine).summary
    assert summary["succeeded"] == 4
    assert all(job.version == 2 and job.done_at and job.done_at > 1000 for job in engine.jobs)
    assert steps(engine, "pulled") == [
        ("BR01-DP", "pulled", "PS100001 v1"),
        ("BR01-DP", "pulled", "PS100001 v2"),
    ]
    assert summary["wan_bytes"] == 2 * PACKAGE_BYTES == summary["wan_floor_bytes"]
    assert summary["on_demand_provisionings"] == 1  # v2 goes to the branch DP as listed
    row = engine.state_of("PS100001", 2)
    assert row is not None and (row.state, row.source_version) == (dp_states.INSTALLED, 2)


def test_a_new_version_during_the_pull_replaces_it() -> None:
    engine = run(seed(events=[{"type": "new_version", "package": "Editor", "at_s": 10}]))
    summary = summarise(engine).summary
    assert summary["succeeded"] == 4
    assert all(job.version == 2 for job in engine.jobs)
    assert steps(engine, "pulled") == [("BR01-DP", "pulled", "PS100001 v2")]
    # What crossed the WAN for version 1 before the update is over the floor of v2 only.
    assert PACKAGE_BYTES < summary["wan_bytes"] < 2 * PACKAGE_BYTES


def test_a_branch_dp_down_holds_its_branch_back_until_it_is_up() -> None:
    engine = run(seed(events=[{"type": "dp_down", "dp": "BR01-DP", "from_s": 0, "until_s": 900}]))
    summary = summarise(engine).summary
    assert summary["succeeded"] == 4
    assert all(job.done_at and job.done_at > 900 for job in engine.jobs)
    [pull] = [s for s in engine.trace or [] if s.what == "pull_started"]
    assert pull.at == 900  # it asks for its policy as it starts
    assert summary["wan_bytes"] == PACKAGE_BYTES


def test_a_wan_outage_cuts_the_pull_which_resumes() -> None:
    data = seed()
    data["branches"][0]["wan"]["outages"] = [{"from_s": 10, "until_s": 300}]
    engine = run(data)
    summary = summarise(engine).summary
    assert summary["succeeded"] == 4
    assert len(steps(engine, "pull_started")) == 2
    assert summary["wan_bytes"] == PACKAGE_BYTES  # resumed, not started again
    # Cut off from the MP too: attempts in the outage fail without asking it.
    failed = [d for _, _, d in steps(engine, "attempt_failed")]
    assert "content_location_failed: the MP cannot be reached" in failed


def test_a_standard_dp_at_its_limit_makes_branch_dps_wait_and_retry() -> None:
    data = seed()
    data["distribution_points"][0]["max_transfers"] = 1
    data["branches"] = [
        {
            "name": f"BR0{n}",
            "subnet": f"10.1.{n}.0/24",
            "clients": 2,
            "wan": {"mbps": 10},
        }
        for n in (1, 2, 3)
    ]
    engine = run(data)
    summary = summarise(engine).summary
    assert summary["succeeded"] == 6 and summary["branch_dp_pulls"] == 3
    assert summary["peak_transfers_by_dp"]["HQ-DP01"] == 1
    assert len(steps(engine, "pull_failed")) >= 2  # two found it busy, and tried again
