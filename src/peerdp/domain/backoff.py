"""How long to wait before trying again: the delay doubles after each failure, up to a cap.

Used by every retry loop in peerdp (status reporting, the distribution manager's pushes,
a download's rounds over its sources), so they all back off the same way. Where many
machines fail at the same moment (a site that refused thousands of policy polls at once),
`jittered` spreads their next attempts so they do not all come back in the same second.
"""

from __future__ import annotations

import random

# How far a jittered delay may stretch: up to half as long again.
JITTER_SPREAD = 0.5


def backoff_delay(attempt: int, base_s: float, cap_s: float = 600.0) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...).

    ``base_s`` after the first failure, then twice as long each time, never more than
    ``cap_s``. Attempt numbers below 1 count as 1.
    """
    # A loop may count failures without bound; 2**1024 does not fit a float, and long
    # before 2**1023 every cap is reached.
    doublings = min(max(0, attempt - 1), 1023)
    return float(min(cap_s, base_s * 2**doublings))


def jittered(delay_s: float, rng: random.Random, spread: float = JITTER_SPREAD) -> float:
    """``delay_s`` stretched by a random share of itself, between 0 and ``spread``.

    Never shorter than ``delay_s``, so a server's Retry-After or a minimum backoff is
    still honoured; a negative delay counts as zero.
    """
    base = max(0.0, delay_s)
    return base * (1.0 + rng.uniform(0.0, max(0.0, spread)))
