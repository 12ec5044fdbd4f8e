"""A DP process's limit on transfers served at once, kept in line with the site.

The site's setting for the DP (`dp add/set --max-transfers`) comes in the DP's policy and
is applied as soon as a policy arrives, without a restart; the process's own
`--max-transfers` overrides it and is reported to the site once (`POST /mp/v1/dp-settings`),
so `peerdp dp show` shows what is in force. A standard DP follows its policy for this
alone (`follow`); a branch DP applies it with each policy it acts on.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from peerdp.domain.backoff import backoff_delay
from peerdp.domain.transfer_limits import describe, in_force
from peerdp.dp.http.response import TransferLimiter
from peerdp.machine.mp_client import MPClient, MPError

log = logging.getLogger(__name__)


@dataclass
class TransferLimit:
    """The limiter of one DP process and where its limit comes from."""

    limiter: TransferLimiter
    kind: str  # "standard" or "branch": the default when neither sets a limit
    override: int | None  # the process's --max-transfers
    reported: bool = False

    @classmethod
    def start(cls, limiter: TransferLimiter, kind: str, override: int | None) -> TransferLimit:
        """Until the first policy: the override, else the kind's default."""
        limiter.max_transfers = in_force(kind, None, override)
        return cls(limiter, kind, override)

    def report(self, mp: MPClient) -> None:
        """Tell the site the override, once (MPError: the caller tries again later)."""
        if not self.reported:
            mp.dp_settings(self.override)
            self.reported = True

    def apply(self, policy: dict[str, Any]) -> None:
        """Take the site's setting from a verified policy (unless overridden)."""
        value = policy.get("max_transfers")
        site_value = value if isinstance(value, int) and value >= 1 else None
        limit = in_force(self.kind, site_value, self.override)
        if limit != self.limiter.max_transfers:
            log.info(
                "transfers served at once: %s (was %s)",
                describe(limit),
                describe(self.limiter.max_transfers),
            )
            self.limiter.max_transfers = limit


def follow(mp: MPClient, limit: TransferLimit, stop: threading.Event, wait_s: float) -> None:
    """Report the override, then long-poll the policy and apply each one until `stop`."""
    version: int | None = None
    errors = 0
    while not stop.is_set():
        try:
            limit.report(mp)
            policy = mp.policy(since=version, wait=wait_s)
            version = int(policy["version"])
            limit.apply(policy)
            errors = 0
        except MPError as exc:
            errors += 1
            log.warning("policy: %s", exc)
            stop.wait(backoff_delay(errors, 1.0, 60.0))
