"""The held-poll limit in process: the limit a descriptor count allows, the count, the 503
with a jittered Retry-After, and one warning per wave of refusals."""

from __future__ import annotations

import random
import resource

import pytest
from fastapi import HTTPException

from peerdp.config import SiteSettings
from peerdp.site.mp.held_polls import (
    WARN_EVERY_S,
    HeldPolls,
    configured_limit,
    limit_for,
    raise_open_files_limit,
)
from tests.helpers.logs import captured_log


def test_the_limit_leaves_a_reserve_for_everything_else_a_process_serves() -> None:
    assert limit_for(20_000) == 20_000 - 2_000 - 64  # a tenth, and the database's files
    assert limit_for(1_024) == 1_024 - 103 - 64
    assert limit_for(256) == 256 - 64 - 64  # at least 64 besides the database's
    assert limit_for(100) == 1  # never none at all
    assert limit_for(None) is None  # no limit on open files


def test_the_setting_overrides_the_descriptors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERDP_POLICY_MAX_HELD", "5")
    assert configured_limit(SiteSettings()) == 5
    monkeypatch.delenv("PEERDP_POLICY_MAX_HELD")
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    expected = None if soft == resource.RLIM_INFINITY else limit_for(soft)
    assert configured_limit(SiteSettings()) == expected


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_setting_that_cannot_work_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PEERDP_POLICY_MAX_HELD", value)
    with pytest.raises(ValueError, match="policy_max_held"):
        SiteSettings()


def test_raising_the_soft_limit_reaches_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
        before, now = raise_open_files_limit()
        assert before == min(soft, 256) and now == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_polls_above_the_limit_get_503_with_a_jittered_retry_after() -> None:
    polls = HeldPolls(2, 60.0, rng=random.Random(3))
    with polls.for_request(since=1, wait_s=30), polls.for_request(since=1, wait_s=30):
        assert polls.held == 2
        with polls.for_request(since=None, wait_s=30), polls.for_request(since=1, wait_s=0):
            pass  # asking without waiting holds nothing: never refused
        waits = set()
        for _ in range(20):
            with pytest.raises(HTTPException) as refused, polls.for_request(1, 30):
                pass
            assert refused.value.status_code == 503
            assert "as many policy long-polls as it can (2 in this process)" in refused.value.detail
            assert refused.value.headers is not None
            waits.add(int(refused.value.headers["Retry-After"]))
        assert polls.held == 2
    assert polls.held == 0
    assert min(waits) >= 60 and max(waits) <= 90 and len(waits) > 5, waits
    with polls.for_request(since=1, wait_s=30):
        assert polls.held == 1, "a freed place is taken again"


def test_a_wave_of_refusals_is_one_warning_saying_how_many() -> None:
    now = [100.0]
    polls = HeldPolls(1, 5.0, clock=lambda: now[0])
    with captured_log() as log, polls.holding():
        for _ in range(50):
            now[0] += 1.0
            with pytest.raises(HTTPException), polls.holding():
                pass
    warnings = log.events("policy long-polls refused: the held-poll limit is reached")
    # The first refusal at once, then one line per WARN_EVERY_S with the count since.
    assert len(warnings) == 1 + int(49 // WARN_EVERY_S)
    assert [w["refused"] for w in warnings] == [1, int(WARN_EVERY_S)]
    assert all(w["level"] == "warning" and w["limit"] == 1 for w in warnings)
