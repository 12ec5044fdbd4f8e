"""The policy long-polls one site-server process holds, and the limit above which it
refuses more.

Every held long-poll is an open connection, so a file descriptor, and a process may have
only so many (RLIMIT_NOFILE). `site serve` raises its soft limit to the hard one as it
starts (`raise_open_files_limit`). A process then holds at most its soft limit less a
reserve for what else it serves: `RESERVE_MIN` descriptors, or `RESERVE_SHARE` of the
limit if more, for content-location requests, the admin API and its log, plus
`DATABASE_FILES` for its database connections. PEERDP_POLICY_MAX_HELD sets another
limit. A long-poll above the limit is answered at once with 503 and a Retry-After
stretched by a random share (domain/backoff.py `jittered`), so thousands of refused
clients do not come back in the same second; the process keeps serving everything else.
A policy asked for without waiting (wait=0) holds nothing and is never refused.
"""

from __future__ import annotations

import math
import random
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from fastapi import HTTPException

from peerdp.config import SiteSettings
from peerdp.domain.backoff import jittered
from peerdp.logs import get_logger
from peerdp.site.metrics import POLICY_HELD, POLICY_HELD_MAX, POLICY_REFUSED

log = get_logger("peerdp.site.mp")

RESERVE_MIN = 64
RESERVE_SHARE = 0.10
# The database pool's 30 connections (store/db.py), two files each on SQLite (the database
# and its write-ahead log).
DATABASE_FILES = 64
# Refusals come in waves: one warning per this many seconds says how many there were.
WARN_EVERY_S = 30.0


def raise_open_files_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (its children inherit
    it); the soft limit before and after. A limit that cannot be raised stays as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft, soft
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_files_limit() -> int | None:
    """This process's soft RLIMIT_NOFILE; None when unlimited."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def limit_for(open_files: int | None) -> int | None:
    """The long-polls a process with `open_files` descriptors may hold; None: no limit."""
    if open_files is None:
        return None
    reserve = max(RESERVE_MIN, math.ceil(open_files * RESERVE_SHARE)) + DATABASE_FILES
    return max(1, open_files - reserve)


def configured_limit(settings: SiteSettings) -> int | None:
    """PEERDP_POLICY_MAX_HELD if set, else what this process's descriptors allow."""
    return settings.policy_max_held or limit_for(open_files_limit())


class HeldPolls:
    """Counts this process's held long-polls (on its event loop) and refuses those above
    `limit` with 503."""

    def __init__(
        self,
        limit: int | None,
        retry_after_s: float,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.held = 0
        self.refused = 0  # since the last warning
        self._rng = rng or random.Random()
        self._clock = clock
        self._warned_at: float | None = None
        POLICY_HELD_MAX.set(limit or 0)

    @classmethod
    def of(cls, settings: SiteSettings) -> HeldPolls:
        return cls(configured_limit(settings), settings.policy_retry_after_s)

    def for_request(self, since: int | None, wait_s: float) -> AbstractContextManager[None]:
        """Count the request while it runs if it may wait for a change (a long-poll);
        a request that does not wait holds no connection for long and is not counted."""
        return self.holding() if since is not None and wait_s > 0 else nullcontext()

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Count one held long-poll while inside; HTTPException 503 if the limit is reached."""
        if self.limit is not None and self.held >= self.limit:
            raise self._refusal()
        self.held += 1
        POLICY_HELD.inc()
        try:
            yield
        finally:
            self.held -= 1
            POLICY_HELD.dec()

    def _refusal(self) -> HTTPException:
        POLICY_REFUSED.inc()
        self.refused += 1
        self._warn()
        retry_after = math.ceil(jittered(self.retry_after_s, self._rng))
        return HTTPException(
            status_code=503,
            detail=(
                f"the site holds as many policy long-polls as it can ({self.limit} in this "
                f"process); ask again after {retry_after} s"
            ),
            headers={"Retry-After": str(retry_after)},
        )

    def _warn(self) -> None:
        """One warning for a wave of refusals, not one per refusal."""
        now = self._clock()
        if self._warned_at is not None and now - self._warned_at < WARN_EVERY_S:
            return
        log.warning(
            "policy long-polls refused: the held-poll limit is reached",
            limit=self.limit,
            refused=self.refused,
            since_s=None if self._warned_at is None else round(now - self._warned_at),
            setting="PEERDP_POLICY_MAX_HELD, or the open-files limit (ulimit -n)",
        )
        self._warned_at = now
        self.refused = 0
