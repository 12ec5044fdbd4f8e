"""Token-bucket bandwidth limit shared by every transfer of one download."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Lets at most `rate` bytes per second through, with a small burst allowance.

    The bucket starts empty when the first bytes arrive, so connection set-up
    time earns no free burst; callers are debited after receiving a chunk and
    sleep off the debt, which keeps the long-run rate at `rate`.
    """

    def __init__(
        self,
        rate: float,
        burst_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("bandwidth limit must be a positive number of bytes per second")
        self.rate = float(rate)
        self.capacity = self.rate * burst_s
        self._clock = clock
        self._sleep = sleep
        self._tokens = 0.0
        self._last: float | None = None
        self._lock = threading.Lock()

    def consume(self, n: int) -> None:
        """Account for `n` bytes, sleeping as long as the limit requires."""
        with self._lock:
            now = self._clock()
            if self._last is not None:
                earned = (now - self._last) * self.rate
                self._tokens = min(self.capacity, self._tokens + earned)
            self._last = now
            self._tokens -= n
            debt = -self._tokens
        if debt > 0:
            self._sleep(debt / self.rate)
