"""The capped-doubling delay every retry loop waits."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from peerdp.domain.backoff import backoff_delay, jittered


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


# -- jitter --------------------------------------------------------------------------


def test_a_jittered_delay_is_never_shorter_and_at_most_half_as_long_again() -> None:
    rng = random.Random(7)
    delays = [jittered(10.0, rng) for _ in range(1_000)]
    assert all(10.0 <= d <= 15.0 for d in delays)
    assert max(delays) > 14.5 and min(delays) < 10.5, "the whole spread is used"


def test_jitter_is_deterministic_for_a_seeded_random() -> None:
    first = [jittered(30.0, random.Random(42)) for _ in range(3)]
    assert first == [jittered(30.0, random.Random(42))] * 3
    rng = random.Random(42)
    assert [round(jittered(30.0, rng), 6) for _ in range(3)] == [
        round(30.0 * (1 + 0.5 * x), 6) for x in _uniforms(42, 3)
    ]


def test_clients_refused_together_come_back_spread_out() -> None:
    """19,000 clients told to come back in 60 s: no second gets more than a few percent."""
    rng = random.Random(2026)
    seconds = Counter(int(jittered(60.0, rng)) for _ in range(19_000))
    assert set(seconds) == set(range(60, 90))
    assert max(seconds.values()) < 19_000 * 0.05


@pytest.mark.parametrize(
    ("delay", "spread", "low", "high"),
    [(0, 0.5, 0, 0), (-5, 0.5, 0, 0), (8, 0, 8, 8), (8, 1.0, 8, 16)],
)
def test_zero_negative_and_other_spreads(
    delay: float, spread: float, low: float, high: float
) -> None:
    rng = random.Random(1)
    assert all(low <= jittered(delay, rng, spread) <= high for _ in range(100))


def _uniforms(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0.0, 1.0) for _ in range(n)]
