"""The management point's per-site objects, made once when the site server's app is made."""

from __future__ import annotations

from dataclasses import dataclass

from peerdp.site.context import SiteContext
from peerdp.site.mp.access_tokens import AccessTokens
from peerdp.site.mp.identity import CallerCache
from peerdp.site.mp.location import LocationService


@dataclass(frozen=True)
class ManagementPoint:
    location: LocationService
    callers: CallerCache
    access_tokens: AccessTokens

    @classmethod
    def open(cls, ctx: SiteContext) -> ManagementPoint:
        return cls(
            location=LocationService(ctx),
            callers=CallerCache(ctx),
            access_tokens=AccessTokens(ctx),
        )

    def close(self) -> None:
        """Flush what is batched (status messages, client sightings)."""
        self.location.close()
