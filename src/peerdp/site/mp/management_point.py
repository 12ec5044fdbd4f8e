"""The management point's per-site objects, made once when the site server's app is made."""

from __future__ import annotations

from dataclasses import dataclass

from peerdp.site.context import SiteContext
from peerdp.site.mp.access_tokens import AccessTokens
from peerdp.site.mp.held_polls import HeldPolls
from peerdp.site.mp.identity import CallerCache
from peerdp.site.mp.location import LocationService
from peerdp.site.mp.policy_service import PolicyService
from peerdp.site.mp.waiters import Waiters
from peerdp.site.status_batch import Sightings


@dataclass(frozen=True)
class ManagementPoint:
    location: LocationService
    callers: CallerCache
    access_tokens: AccessTokens
    # When each machine was last in contact, and where each client was seen.
    sightings: Sightings
    policy: PolicyService
    waiters: Waiters  # the held policy long-polls
    # The policy long-polls this process holds, and its limit.
    held_polls: HeldPolls

    @classmethod
    def open(cls, ctx: SiteContext) -> ManagementPoint:
        sightings = Sightings(ctx.db)
        spread_s = ctx.settings.policy_spread_s
        waiters = Waiters(answers_per_s=10_000 / spread_s if spread_s > 0 else 0)

        def changed(touched: frozenset[str]) -> None:
            if ctx.changes.stopping:
                waiters.stop()
            else:
                waiters.changed(touched)

        ctx.changes.listeners.append(changed)
        return cls(
            location=LocationService(ctx, sightings),
            callers=CallerCache(ctx),
            access_tokens=AccessTokens(ctx),
            sightings=sightings,
            policy=PolicyService(ctx),
            waiters=waiters,
            held_polls=HeldPolls.of(ctx.settings),
        )

    def close(self) -> None:
        """Flush what is batched (status messages, machine sightings)."""
        self.location.close()
        self.sightings.close()
