"""The capped-doubling delay every retry loop waits."""

from __future__ import annotations

import pytest

from peerdp.domain.backoff import backoff_delay


def test_the_first_failure_waits_the_base() -> None:
    assert backoff_delay(1, 0.5) == 0.5
    assert backoff_delay(1, 3) == 3.0


def test_each_failure_doubles_the_delay() -> None:
    assert [backoff_delay(n, 1.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 32, 64]


def test_the_delay_stops_at_the_cap() -> None:
    assert [backoff_delay(n, 1.0, 60.0) for n in range(5, 10)] == [16, 32, 60, 60, 60]
    assert backoff_delay(10, 1.0) == 512.0
    assert backoff_delay(11, 1.0) == 600.0  # the default cap: ten minutes


@pytest.mark.parametrize("attempt", [0, -1, -100])
def test_attempts_below_one_count_as_the_first(attempt: int) -> None:
    assert backoff_delay(attempt, 2.5) == 2.5


@pytest.mark.parametrize("attempt", [1_024, 1_025, 5_000, 10**9])
@pytest.mark.parametrize("base_s", [1, 1.0, 0.25])
def test_a_loop_that_fails_for_days_still_gets_the_cap(attempt: int, base_s: float) -> None:
    """A retry loop counts failures without bound (a branch DP whose site is away for a
    weekend); 2**1024 does not fit a float, and that must not end the loop."""
    assert backoff_delay(attempt, base_s, 60.0) == 60.0


def test_the_delay_is_a_float() -> None:
    assert type(backoff_delay(3, 1)) is float
    assert type(backoff_delay(99, 1, 7)) is float
