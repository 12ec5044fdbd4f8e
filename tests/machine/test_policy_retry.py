"""How long an agent waits after a failed policy fetch: the site's Retry-After, else the
doubling backoff, stretched at random (a seeded random makes it exact)."""

from __future__ import annotations

import random

import pytest

from peerdp.machine.mp_client import RETRY_AFTER_MAX_S, MPError, policy_retry_s


def _stretch(seed: int) -> float:
    """The factor the first jitter of `random.Random(seed)` stretches a delay by."""
    return 1.0 + random.Random(seed).uniform(0.0, 0.5)


@pytest.mark.parametrize("failures", [1, 5, 50])
def test_the_sites_retry_after_is_honoured_whatever_the_failures(failures: int) -> None:
    refused = MPError("GET /policy: 503 …", status=503, retry_after_s=60.0)
    wait = policy_retry_s(refused, failures, 1.0, 30.0, random.Random(9))
    assert wait == pytest.approx(60.0 * _stretch(9))
    assert 60.0 <= wait <= 90.0


def test_without_retry_after_the_wait_doubles_up_to_the_cap() -> None:
    unreachable = MPError("cannot reach the management point")
    waits = [policy_retry_s(unreachable, n, 1.0, 60.0, random.Random(4)) for n in range(1, 9)]
    assert waits == pytest.approx([d * _stretch(4) for d in (1, 2, 4, 8, 16, 32, 60, 60)])
    assert policy_retry_s(None, 3, 2.0, 60.0, random.Random(4)) == pytest.approx(8 * _stretch(4))


def test_a_site_cannot_make_an_agent_wait_more_than_an_hour() -> None:
    greedy = MPError("503", status=503, retry_after_s=10 * 86400)
    wait = policy_retry_s(greedy, 1, 1.0, 60.0, random.Random(1))
    assert wait == pytest.approx(RETRY_AFTER_MAX_S * _stretch(1))


def test_agents_refused_together_do_not_return_together() -> None:
    refused = MPError("503", status=503, retry_after_s=61.0)
    rng = random.Random(2026)
    seconds = {int(policy_retry_s(refused, 1, 1.0, 60.0, rng)) for _ in range(1_000)}
    assert seconds == set(range(61, 92))
