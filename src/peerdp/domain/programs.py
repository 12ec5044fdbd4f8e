"""What a program's exit code means, and when a failed advertisement is tried again.

SCCM's handling of programs, as the client agent applies it:

- Exit code 0 is success; 3010 is success with a restart required (Windows Installer's
  ERROR_SUCCESS_REBOOT_REQUIRED) and 1641 success with a restart started
  (ERROR_SUCCESS_REBOOT_INITIATED). A program may list more success codes of its own.
  Anything else, and a timeout (no exit code), is a failure.
- A failed attempt is tried again after a growing interval (`RetryPolicy.interval_s`,
  doubled after each failure, never more than `max_interval_s`), at most
  `program_attempts` runs of a failing program and `content_attempts` attempts that found
  no content (the MP answered no DP, or no DP served it). Content gets more attempts: in
  the seed's flow the first fails by design while the branch DP is provisioned.
- After the last attempt the advertisement is `failed`, with the reason, until it starts
  afresh: a new source version of the package, a change to the advertisement or its
  program, or an administrator's rerun (each makes a new `Attempts`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from peerdp.domain.backoff import backoff_delay
from peerdp.domain.timestamps import parse_rfc3339, rfc3339

SUCCESS = 0
RESTART_REQUIRED = 3010
RESTART_INITIATED = 1641
RESTART_CODES = frozenset({RESTART_REQUIRED, RESTART_INITIATED})

FailureKind = Literal["program", "content"]


@dataclass(frozen=True, slots=True)
class ExitResult:
    succeeded: bool
    restart_required: bool

    @property
    def words(self) -> str:
        """'succeeded', 'succeeded, restart required' or 'failed'."""
        if not self.succeeded:
            return "failed"
        return "succeeded, restart required" if self.restart_required else "succeeded"


def exit_result(code: int | None, extra_success: Collection[int] = ()) -> ExitResult:
    """What exit `code` means (None: the program timed out and was killed)."""
    if code is None:
        return ExitResult(False, False)
    if code in RESTART_CODES:
        return ExitResult(True, True)
    return ExitResult(code == SUCCESS or code in extra_success, False)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and how soon, a failed advertisement is tried again."""

    interval_s: float = 60.0
    max_interval_s: float = 3600.0
    program_attempts: int = 3
    content_attempts: int = 30

    def limit(self, kind: FailureKind) -> int:
        return self.program_attempts if kind == "program" else self.content_attempts

    def delay_s(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failed attempt (1, 2, ...)."""
        return backoff_delay(failures, self.interval_s, self.max_interval_s)


@dataclass(frozen=True, slots=True)
class Attempts:
    """One advertisement's failed attempts since it last started afresh."""

    program_failures: int = 0
    content_failures: int = 0
    next_attempt_at: datetime | None = None
    failed: str | None = None
    """The final reason once every attempt is spent; None while attempts remain."""

    def due(self, now: datetime) -> bool:
        """May it be attempted at `now`? Never once failed."""
        if self.failed is not None:
            return False
        return self.next_attempt_at is None or now >= self.next_attempt_at

    def failures(self, kind: FailureKind) -> int:
        return self.program_failures if kind == "program" else self.content_failures

    def after_failure(
        self, kind: FailureKind, reason: str, now: datetime, policy: RetryPolicy
    ) -> Attempts:
        """The attempts after one more failure of `kind`: the next attempt's time, or
        `failed` when that was the last attempt allowed."""
        failures = self.failures(kind) + 1
        counted = (
            replace(self, program_failures=failures)
            if kind == "program"
            else replace(self, content_failures=failures)
        )
        limit = policy.limit(kind)
        if failures >= limit:
            final = f"failed after {failures} of {limit} {_attempts_of(kind)}: {reason}"
            return replace(counted, next_attempt_at=None, failed=final)
        later = now + timedelta(seconds=policy.delay_s(failures))
        return replace(counted, next_attempt_at=later, failed=None)

    def to_json(self) -> dict[str, Any]:
        at = self.next_attempt_at
        return {
            "program_failures": self.program_failures,
            "content_failures": self.content_failures,
            "next_attempt_at": rfc3339(at, fraction=True) if at is not None else None,
            "failed": self.failed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attempts:
        at = data.get("next_attempt_at")
        return cls(
            program_failures=int(data.get("program_failures", 0)),
            content_failures=int(data.get("content_failures", 0)),
            next_attempt_at=parse_rfc3339(at) if at else None,
            failed=data.get("failed"),
        )


def _attempts_of(kind: FailureKind) -> str:
    return "runs" if kind == "program" else "attempts to get the content"
