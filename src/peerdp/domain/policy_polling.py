"""How clients fetch their policy: held long-polls, or SCCM-style polling at an interval.

- `long_poll` (the default): a client keeps one request open at the site (`wait=`), so a
  change reaches it at once; each client costs the site one held connection all the time.
- `interval`: a client asks every `interval_s` plus a uniformly random delay of up to
  `randomise_s`, without waiting at the site (`wait=0`) and naming the version it holds
  (`If-None-Match`), so an unchanged policy costs a `304` and no connection is held. A
  change reaches it at its next poll. The random part spreads the clients' requests over
  time: 100,000 clients polling hourly make about 28 requests a second.

The site sends its choice in every client policy (`"polling"`); an agent that finds none
(an older site) long-polls.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard, get_args

PollingMode = Literal["long_poll", "interval"]
POLLING_MODES: tuple[str, ...] = get_args(PollingMode)

# The shortest interval a site may set: clients asking more often than a minute would cost
# more than the held connections interval mode saves.
MIN_INTERVAL_S = 60


class PollingRefused(ValueError):
    """A setting that cannot be used; `field` names the part that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class PolicyPolling:
    mode: PollingMode = "long_poll"
    interval_s: int | None = None  # interval mode only
    randomise_s: int | None = None  # interval mode only

    @classmethod
    def every(
        cls, interval_s: int, randomise_s: int = 0, *, min_interval_s: float = MIN_INTERVAL_S
    ) -> PolicyPolling:
        """Interval mode; PollingRefused unless `min_interval_s` <= interval and
        0 <= randomise <= interval."""
        if interval_s < min_interval_s:
            raise PollingRefused(
                "interval_s", f"must be at least {_words(min_interval_s)} (got {interval_s})"
            )
        if not 0 <= randomise_s <= interval_s:
            raise PollingRefused(
                "randomise_s",
                f"must be between 0 and the interval, {interval_s} (got {randomise_s})",
            )
        return cls("interval", interval_s, randomise_s)

    @classmethod
    def from_policy(cls, value: Any) -> PolicyPolling:
        """What a policy's `polling` says, read leniently: the policy is signed by the site,
        so anything but a usable interval (missing, an older site) is long-polling."""
        if not isinstance(value, dict) or value.get("mode") != "interval":
            return cls()
        interval, randomise = value.get("interval_s"), value.get("randomise_s", 0)
        if not _whole(interval) or interval < 1:
            return cls()
        randomise = randomise if _whole(randomise) else 0
        return cls("interval", interval, min(max(0, randomise), interval))

    @property
    def by_interval(self) -> bool:
        return self.mode == "interval"

    def to_json(self) -> dict[str, Any]:
        if not self.by_interval:
            return {"mode": self.mode}
        return {"mode": self.mode, "interval_s": self.interval_s, "randomise_s": self.randomise_s}

    def next_poll_s(self, rng: random.Random) -> float:
        """Seconds until a client's next poll in interval mode: the interval plus a uniform
        share of the randomisation."""
        return float(self.interval_s or 0) + rng.uniform(0.0, float(self.randomise_s or 0))

    def requests_per_second(self, clients: int) -> float:
        """The policy requests `clients` clients make on average in interval mode."""
        mean_period = (self.interval_s or 0) + (self.randomise_s or 0) / 2
        return clients / mean_period if mean_period > 0 else 0.0

    def describe(self) -> str:
        if not self.by_interval:
            return "long-poll: each client holds a request open; a change reaches it at once"
        spread = (
            f" plus up to {_words(self.randomise_s or 0)} at random" if self.randomise_s else ""
        )
        return (
            f"interval: each client asks every {_words(self.interval_s or 0)}{spread}; "
            "a change reaches it at its next poll"
        )


def _whole(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _words(seconds: float) -> str:
    """`3600` as `1h`, `5400` as `1h30m`, `90` as `1m30s`."""
    rest, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"
