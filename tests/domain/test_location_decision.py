"""What the MP and `peerdp explain` tell about a decision: the race rewrite and the words."""

from __future__ import annotations

import pytest

from peerdp.domain.location import PackageDPRow, describe
from tests.domain.test_location import decide, installed, row


def test_race_lost_turns_triggered_into_in_progress() -> None:
    decision = decide("br1", installed("HQ-A"), allow_remote=False)
    assert decision.reason == "on_demand_triggered"

    lost = decision.with_race_lost()

    assert lost.reason == "on_demand_in_progress"
    # Only the reason changes: the actions still say what the rule decided.
    assert lost.on_demand == decision.on_demand
    assert lost.on_demand_check == decision.on_demand_check
    assert lost.client_boundaries == decision.client_boundaries


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        (installed("HQ-A", "BR1-DP"), None),  # a list
        (installed("PS2-PLAIN") | row("BR4-DP", "install_failed"), "on_demand_delayed"),
        (installed("HQ-A") | row("BR1-DP", "install_pending"), "on_demand_in_progress"),
    ],
)
def test_race_lost_leaves_other_decisions_alone(
    rows: dict[int, PackageDPRow], reason: str | None
) -> None:
    client = "br4" if reason == "on_demand_delayed" else "br1"
    decision = decide(client, rows, allow_remote=False)
    assert decision.reason == reason
    assert decision.with_race_lost() is decision


def test_describe_a_list() -> None:
    decision = decide("br1", installed("HQ-A", "BR1-DP"))
    assert describe(decision) == "answered with 1 DP(s): BR1-DP"


def test_describe_an_empty_list_says_which_condition_failed() -> None:
    decision = decide("br1", installed("HQ-A"), allow_remote=False, on_demand=False)
    assert describe(decision) == (
        "answered with no DP: no_content_accessible; on-demand not possible: "
        "(d) the package does not allow on-demand distribution"
    )


def test_describe_on_demand_gives_the_reason_alone() -> None:
    decision = decide("br1", installed("HQ-A"), allow_remote=False)
    assert describe(decision) == "answered with no DP: on_demand_triggered"
    assert describe(decision.with_race_lost()) == "answered with no DP: on_demand_in_progress"
