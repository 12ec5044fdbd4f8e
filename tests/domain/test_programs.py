"""Exit codes and the retry schedule of failed advertisements (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from peerdp.domain.programs import Attempts, RetryPolicy, exit_result

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "extra", "succeeded", "restart"),
    [
        (0, (), True, False),
        (3010, (), True, True),
        (1641, (), True, True),
        (1, (), False, False),
        (-9, (), False, False),
        (None, (), False, False),  # timed out
        (17, (17,), True, False),
        (1, (17,), False, False),
    ],
)
def test_exit_codes(
    code: int | None, extra: tuple[int, ...], succeeded: bool, restart: bool
) -> None:
    result = exit_result(code, extra)
    assert (result.succeeded, result.restart_required) == (succeeded, restart)


def test_the_words_say_restart_required() -> None:
    assert exit_result(3010).words == "succeeded, restart required"
    assert exit_result(0).words == "succeeded"
    assert exit_result(2).words == "failed"


def _waits(policy: RetryPolicy, kind: str, failures: int) -> tuple[list[float], Attempts]:
    attempts, waits = Attempts(), []
    now = NOW
    for _ in range(failures):
        attempts = attempts.after_failure(kind, "exit code 1", now, policy)  # type: ignore[arg-type]
        if attempts.next_attempt_at is not None:
            waits.append((attempts.next_attempt_at - now).total_seconds())
            now = attempts.next_attempt_at
    return waits, attempts


def test_defaults_three_runs_of_a_failing_program_then_failed() -> None:
    waits, attempts = _waits(RetryPolicy(), "program", 3)
    assert waits == [60, 120]
    assert attempts.program_failures == 3
    assert attempts.failed == "failed after 3 of 3 runs: exit code 1"
    assert attempts.next_attempt_at is None
    assert not attempts.due(NOW + timedelta(days=365))


def test_defaults_no_content_is_tried_for_about_a_day_growing_to_an_hour() -> None:
    waits, attempts = _waits(RetryPolicy(), "content", 30)
    assert waits[:7] == [60, 120, 240, 480, 960, 1920, 3600]
    assert set(waits[6:]) == {3600}
    assert len(waits) == 29
    assert 23 * 3600 < sum(waits) < 25 * 3600
    assert attempts.failed is not None and "30 of 30 attempts to get the content" in attempts.failed


def test_a_retry_is_due_at_its_time_and_not_before() -> None:
    attempts = Attempts().after_failure("content", "no DP", NOW, RetryPolicy(interval_s=30))
    assert attempts.failed is None
    assert attempts.next_attempt_at == NOW + timedelta(seconds=30)
    assert not attempts.due(NOW + timedelta(seconds=29))
    assert attempts.due(NOW + timedelta(seconds=30))
    assert Attempts().due(NOW)


def test_program_and_content_failures_count_apart() -> None:
    policy = RetryPolicy(program_attempts=2, content_attempts=3)
    attempts = Attempts().after_failure("content", "no DP", NOW, policy)
    attempts = attempts.after_failure("content", "no DP", NOW, policy)
    attempts = attempts.after_failure("program", "exit code 1", NOW, policy)
    assert (attempts.content_failures, attempts.program_failures) == (2, 1)
    assert attempts.failed is None
    # The wait grows with the failures of the kind that just failed.
    assert attempts.next_attempt_at == NOW + timedelta(seconds=60)
    final = attempts.after_failure("program", "exit code 1", NOW, policy)
    assert final.failed == "failed after 2 of 2 runs: exit code 1"


def test_one_attempt_allowed_fails_at_once() -> None:
    attempts = Attempts().after_failure(
        "program", "timed out", NOW, RetryPolicy(program_attempts=1)
    )
    assert attempts.failed == "failed after 1 of 1 runs: timed out"


def test_attempts_survive_a_restart_of_the_agent() -> None:
    policy = RetryPolicy(interval_s=0.25)
    attempts = Attempts().after_failure("program", "exit code 1", NOW, policy)
    assert Attempts.from_json(attempts.to_json()) == attempts
    final = Attempts(program_failures=2, failed="failed after 3 of 3 runs: x")
    assert Attempts.from_json(final.to_json()) == final
