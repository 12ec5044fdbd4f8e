"""Which transfer limit a DP applies: its own override, else the site's, else its kind's."""

from __future__ import annotations

from peerdp.domain.transfer_limits import describe, in_force


def test_the_override_wins_then_the_site_then_the_default() -> None:
    assert in_force("branch", 5, 2) == 2
    assert in_force("standard", 5, 2) == 2
    assert in_force("branch", 5, None) == 5
    assert in_force("standard", 5, None) == 5
    assert in_force("branch", None, None) == 10
    assert in_force("standard", None, None) is None


def test_described_for_an_administrator() -> None:
    assert describe(None) == "no limit"
    assert describe(3) == "3 at once"
