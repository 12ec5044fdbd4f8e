"""How long to wait before trying again: the delay doubles after each failure, up to a cap.

Used by every retry loop in peerdp (status reporting, the distribution manager's pushes,
a download's rounds over its sources), so they all back off the same way.
"""

from __future__ import annotations


def backoff_delay(attempt: int, base_s: float, cap_s: float = 600.0) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...).

    ``base_s`` after the first failure, then twice as long each time, never more than
    ``cap_s``. Attempt numbers below 1 count as 1.
    """
    # A loop may count failures without bound; 2**1024 does not fit a float, and long
    # before 2**1023 every cap is reached.
    doublings = min(max(0, attempt - 1), 1023)
    return float(min(cap_s, base_s * 2**doublings))
