"""The management point's per-site objects, made once when the site server's app is made."""

from __future__ import annotations

from dataclasses import dataclass

from peerdp.site.context import SiteContext
from peerdp.site.mp.access_tokens import AccessTokens
from peerdp.site.mp.held_polls import HeldPolls
from peerdp.site.mp.identity import CallerCache
from peerdp.site.mp.location import LocationService
from peerdp.site.status_batch import Sightings


@dataclass(frozen=True)
class ManagementPoint:
    location: LocationService
    callers: CallerCache
    access_tokens: AccessTokens
    # When each machine was last in contact, and where each client was seen.
    sightings: Sightings
    # The policy long-polls this process holds, and its limit.
    held_polls: HeldPolls

    @classmethod
    def open(cls, ctx: SiteContext) -> ManagementPoint:
        sightings = Sightings(ctx.db)
        return cls(
            location=LocationService(ctx, sightings),
            callers=CallerCache(ctx),
            access_tokens=AccessTokens(ctx),
            sightings=sightings,
            held_polls=HeldPolls.of(ctx.settings),
        )

    def close(self) -> None:
        """Flush what is batched (status messages, machine sightings)."""
        self.location.close()
        self.sightings.close()
