"""How a status message maps to a deployment state, and which report is newer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from peerdp.domain.deployment_states import Derived, derive, is_newer

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("type_", "state", "exit_code", "expected"),
    [
        ("advertisement_received", None, None, Derived("policy_received")),
        ("content_location", None, None, Derived("downloading")),
        (
            "content_location",
            "on_demand_triggered",
            None,
            Derived("waiting_for_content", "on_demand_triggered"),
        ),
        (
            "content_location_failed",
            "on_demand_delayed",
            None,
            Derived("waiting_for_content", "on_demand_delayed"),
        ),
        (
            "content_location",
            "slow_boundary_do_not_run",
            None,
            Derived("not_run", "slow_boundary_do_not_run"),
        ),
        ("content_location_failed", "retrying", None, Derived("waiting_for_content", "why")),
        ("content_download_failed", "retrying", None, Derived("failed", "why")),
        ("content_refused", "retrying", None, Derived("failed", "why")),
        ("program_started", None, None, Derived("running")),
        ("program_succeeded", "succeeded", 0, Derived("succeeded", "", 0)),
        ("program_succeeded", "restart_required", 3010, Derived("succeeded", "", 3010, True)),
        ("program_failed", "retrying", 1603, Derived("failed", "why", 1603)),
        ("advertisement_failed", "failed", 1603, Derived("failed", "why", 1603)),
    ],
)
def test_each_message_that_reports_a_state(
    type_: str, state: str | None, exit_code: int | None, expected: Derived
) -> None:
    assert derive(type_, state, exit_code, "why") == expected


@pytest.mark.parametrize(
    ("type_", "state"),
    [
        ("content_location", "not_targeted"),
        ("policy_refused", None),
        ("package_state", "installed"),
    ],
)
def test_messages_that_report_no_state(type_: str, state: str | None) -> None:
    assert derive(type_, state, None, "") is None


def test_a_long_reason_is_cut() -> None:
    derived = derive("program_failed", "retrying", 1, "x" * 5000)
    assert derived is not None and len(derived.reason) == 500


def test_a_later_version_wins_whatever_its_time() -> None:
    assert is_newer(2, T0, 1, T0 + timedelta(hours=1))
    assert not is_newer(1, T0 + timedelta(hours=1), 2, T0)


def test_within_a_version_the_later_message_wins() -> None:
    assert is_newer(1, T0 + timedelta(seconds=1), 1, T0)
    assert is_newer(1, T0, 1, T0), "reports of one moment apply in the order they arrive"
    assert not is_newer(1, T0 - timedelta(seconds=1), 1, T0)
    assert is_newer(1, T0, None, None)
