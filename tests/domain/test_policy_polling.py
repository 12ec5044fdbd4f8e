"""How clients fetch policy: the setting's rules, what agents read, when they poll next."""

from __future__ import annotations

import random
from typing import Any

import pytest

from peerdp.domain.policy_polling import PolicyPolling, PollingRefused


def test_interval_mode_takes_a_minute_or_more_and_a_spread_up_to_the_interval() -> None:
    assert PolicyPolling.every(3600, 900).to_json() == {
        "mode": "interval",
        "interval_s": 3600,
        "randomise_s": 900,
    }
    assert PolicyPolling.every(60).randomise_s == 0
    assert PolicyPolling.every(60, 60).randomise_s == 60


@pytest.mark.parametrize(
    ("interval", "randomise", "field", "words"),
    [
        (59, 0, "interval_s", "at least 1m"),
        (0, 0, "interval_s", "at least 1m"),
        (3600, 3601, "randomise_s", "between 0 and the interval"),
        (3600, -1, "randomise_s", "between 0 and the interval"),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_field(
    interval: int, randomise: int, field: str, words: str
) -> None:
    with pytest.raises(PollingRefused) as refused:
        PolicyPolling.every(interval, randomise)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ") and words in str(refused.value)


def test_a_lower_floor_may_be_configured() -> None:
    assert PolicyPolling.every(2, 1, min_interval_s=1).interval_s == 2
    with pytest.raises(PollingRefused, match="at least 5s"):
        PolicyPolling.every(4, min_interval_s=5)


def test_the_next_poll_comes_after_the_interval_plus_a_uniform_share_of_the_spread() -> None:
    setting = PolicyPolling.every(3600, 900)
    rng = random.Random(11)
    waits = [setting.next_poll_s(rng) for _ in range(2_000)]
    assert all(3600 <= w <= 4500 for w in waits)
    quarters = [
        sum(1 for w in waits if 3600 + q * 225 <= w < 3600 + (q + 1) * 225) for q in range(4)
    ]
    assert min(quarters) > 400, f"spread evenly: {quarters}"
    again = random.Random(11)
    assert [setting.next_poll_s(again) for _ in range(3)] == waits[:3]
    assert PolicyPolling.every(60).next_poll_s(rng) == 60.0


def test_a_hundred_thousand_clients_hourly_make_about_28_requests_a_second() -> None:
    assert round(PolicyPolling.every(3600).requests_per_second(100_000)) == 28
    # The spread's mean, half of it, adds to the period.
    assert round(PolicyPolling.every(3600, 1800).requests_per_second(100_000)) == 22
    assert PolicyPolling().requests_per_second(100_000) == 0.0


@pytest.mark.parametrize(
    "given",
    [
        None,
        "interval",
        {},
        {"mode": "long_poll"},
        {"mode": "interval"},
        {"mode": "interval", "interval_s": "3600"},
        {"mode": "interval", "interval_s": 0},
        {"mode": "interval", "interval_s": True},
        {"mode": "sometimes", "interval_s": 60},
    ],
)
def test_an_agent_long_polls_unless_its_policy_names_a_usable_interval(given: Any) -> None:
    assert PolicyPolling.from_policy(given) == PolicyPolling()


def test_an_agent_reads_the_interval_and_keeps_the_spread_within_it() -> None:
    read = PolicyPolling.from_policy({"mode": "interval", "interval_s": 600, "randomise_s": 60})
    assert (read.mode, read.interval_s, read.randomise_s) == ("interval", 600, 60)
    wide = PolicyPolling.from_policy({"mode": "interval", "interval_s": 60, "randomise_s": 600})
    assert wide.randomise_s == 60
    bad = PolicyPolling.from_policy({"mode": "interval", "interval_s": 60, "randomise_s": "x"})
    assert bad.randomise_s == 0


def test_described_for_an_administrator() -> None:
    assert "at once" in PolicyPolling().describe()
    assert "every 1h plus up to 15m at random" in PolicyPolling.every(3600, 900).describe()
    assert "every 1h30m;" in PolicyPolling.every(5400).describe()
