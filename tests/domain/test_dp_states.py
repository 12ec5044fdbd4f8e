"""The seven states of a package on a DP (and peerdp's waiting_for_prestage) and the moves
between them, as a table."""

from __future__ import annotations

import pytest

from peerdp.domain import dp_states
from peerdp.domain.dp_states import (
    INSTALL_FAILED,
    INSTALL_PENDING,
    INSTALL_RETRYING,
    INSTALLED,
    REMOVAL_FAILED,
    REMOVAL_PENDING,
    REMOVAL_RETRYING,
    REMOVED,
    WAITING_FOR_PRESTAGE,
)

NOT_LISTED = None

# Every allowed move, written out once more by hand: a change to the table must change this.
ALLOWED: set[tuple[str | None, str | None]] = {
    (NOT_LISTED, INSTALL_PENDING),
    (INSTALL_PENDING, INSTALLED),
    (INSTALL_PENDING, INSTALL_RETRYING),
    (INSTALL_PENDING, INSTALL_FAILED),
    (INSTALL_PENDING, REMOVAL_PENDING),
    (INSTALL_RETRYING, INSTALLED),
    (INSTALL_RETRYING, INSTALL_PENDING),
    (INSTALL_RETRYING, INSTALL_RETRYING),
    (INSTALL_RETRYING, INSTALL_FAILED),
    (INSTALL_RETRYING, REMOVAL_PENDING),
    (INSTALL_FAILED, INSTALL_PENDING),
    (INSTALL_FAILED, REMOVAL_PENDING),
    (INSTALLED, INSTALL_PENDING),
    (INSTALLED, INSTALL_RETRYING),
    (INSTALLED, REMOVAL_PENDING),
    (REMOVAL_PENDING, NOT_LISTED),
    (REMOVAL_PENDING, REMOVAL_RETRYING),
    (REMOVAL_PENDING, REMOVAL_FAILED),
    (REMOVAL_PENDING, INSTALL_PENDING),
    (REMOVAL_RETRYING, NOT_LISTED),
    (REMOVAL_RETRYING, REMOVAL_PENDING),
    (REMOVAL_RETRYING, REMOVAL_RETRYING),
    (REMOVAL_RETRYING, REMOVAL_FAILED),
    (REMOVAL_RETRYING, INSTALL_PENDING),
    (REMOVAL_FAILED, NOT_LISTED),  # a DP back up after removal gave up deletes it then
    (REMOVAL_FAILED, REMOVAL_PENDING),
    (REMOVAL_FAILED, INSTALL_PENDING),
    # A branch DP of a package with automatic download off waits for a prestage archive.
    (NOT_LISTED, WAITING_FOR_PRESTAGE),
    (INSTALL_PENDING, WAITING_FOR_PRESTAGE),
    (INSTALL_RETRYING, WAITING_FOR_PRESTAGE),
    (INSTALL_FAILED, WAITING_FOR_PRESTAGE),
    (INSTALLED, WAITING_FOR_PRESTAGE),
    (REMOVAL_PENDING, WAITING_FOR_PRESTAGE),
    (REMOVAL_RETRYING, WAITING_FOR_PRESTAGE),
    (REMOVAL_FAILED, WAITING_FOR_PRESTAGE),
    (WAITING_FOR_PRESTAGE, INSTALLED),
    (WAITING_FOR_PRESTAGE, INSTALL_PENDING),
    (WAITING_FOR_PRESTAGE, REMOVAL_PENDING),
}
EVERY: tuple[str | None, ...] = (NOT_LISTED, *dp_states.STATES)
FORBIDDEN = sorted(
    ((a, b) for a in EVERY for b in EVERY if (a, b) not in ALLOWED),
    key=lambda move: (move[0] or "", move[1] or ""),
)


def test_there_are_seven_states_and_the_prestage_wait() -> None:
    assert len(dp_states.STATES) == len(set(dp_states.STATES)) == 8
    assert dp_states.STATES[-1] == WAITING_FOR_PRESTAGE
    assert len(WAITING_FOR_PRESTAGE) <= 20  # the column's width
    assert REMOVED not in dp_states.STATES  # a report, not a state: the row goes


@pytest.mark.parametrize(("current", "new"), sorted(ALLOWED, key=str))
def test_allowed_moves_are_accepted(current: str | None, new: str | None) -> None:
    assert dp_states.can_move(current, new)


@pytest.mark.parametrize(("current", "new"), FORBIDDEN)
def test_other_moves_are_refused_and_explained(current: str | None, new: str | None) -> None:
    assert not dp_states.can_move(current, new)
    refusal = dp_states.explain_refusal(current, new)
    assert f"from {current or 'not listed'} to {new or 'removed'}" in refusal


def test_the_table_is_exactly_the_allowed_moves() -> None:
    table = {(a, b) for a, targets in dp_states.TRANSITIONS.items() for b in targets}
    assert table == ALLOWED
    assert set(dp_states.TRANSITIONS) == set(EVERY)


def test_some_forbidden_moves_by_name() -> None:
    assert not dp_states.can_move(NOT_LISTED, INSTALLED)  # never installed without a push
    assert not dp_states.can_move(INSTALLED, NOT_LISTED)  # removal goes through pending
    assert not dp_states.can_move(INSTALL_FAILED, INSTALLED)
    assert not dp_states.can_move(INSTALL_FAILED, NOT_LISTED)  # removal goes through pending
    assert not dp_states.can_move("no_such_state", INSTALL_PENDING)


def test_named_sets_are_consistent() -> None:
    states = set(dp_states.STATES)
    assert states >= dp_states.PENDING
    assert states >= dp_states.REMOVING
    assert states >= dp_states.READDABLE
    assert {
        INSTALL_PENDING,
        INSTALL_RETRYING,
        REMOVAL_PENDING,
        REMOVAL_RETRYING,
    } == dp_states.PENDING
    assert {s for s in states if s.startswith("removal_")} == dp_states.REMOVING
    assert dp_states.REMOVING | {INSTALL_FAILED} == dp_states.READDABLE
    # A DP can be added again exactly from the states that may move to install_pending
    # and are not already installing or installed.
    readdable = {s for s in states if dp_states.can_move(s, INSTALL_PENDING)}
    assert readdable - {INSTALLED, INSTALL_RETRYING, WAITING_FOR_PRESTAGE} == dp_states.READDABLE
    # Waiting for a prestage is not pending: no deadline, nothing to retry.
    assert WAITING_FOR_PRESTAGE not in dp_states.PENDING
    for state in states:
        assert dp_states.is_installing(state) == (state in {INSTALL_PENDING, INSTALL_RETRYING})


def test_only_a_branch_dp_without_auto_download_waits_for_a_prestage() -> None:
    assert dp_states.install_target(branch_dp=True, auto_download=False) == WAITING_FOR_PRESTAGE
    assert dp_states.install_target(branch_dp=True, auto_download=True) == INSTALL_PENDING
    assert dp_states.install_target(branch_dp=False, auto_download=False) == INSTALL_PENDING


def test_a_removed_report_means_the_row_goes() -> None:
    assert dp_states.reported_target(REMOVED) is None
    for state in dp_states.STATES:
        assert dp_states.reported_target(state) == state


def test_refusal_lists_what_is_allowed() -> None:
    text = dp_states.explain_refusal(INSTALL_FAILED, INSTALLED)
    assert text == (
        "a package cannot move from install_failed to installed; "
        "from install_failed it may move to install_pending, removal_pending, "
        "waiting_for_prestage"
    )
    assert dp_states.explain_refusal(None, INSTALLED).startswith(
        "a package cannot move from not listed to installed; from not listed it may move to"
    )


def test_a_damage_report_sends_an_installed_row_back_to_install_pending() -> None:
    assert dp_states.after_damage(dp_states.INSTALLED) == dp_states.INSTALL_PENDING
    assert dp_states.can_move(dp_states.INSTALLED, dp_states.after_damage(dp_states.INSTALLED))
    # Content already being sent again, given up on or removed: the row stays where it is.
    for state in set(dp_states.STATES) - {dp_states.INSTALLED}:
        assert dp_states.after_damage(state) is None
    assert dp_states.CONTENT_DAMAGED not in dp_states.STATES
