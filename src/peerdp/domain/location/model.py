"""What the content-location rule takes and returns: plain, immutable data.

The rule itself (and the site view it reads) is in :mod:`peerdp.domain.location.rule`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, get_args

from peerdp.domain import dp_states
from peerdp.domain.boundaries import BoundaryMatch

DPKind = Literal["standard", "branch"]
DP_KINDS: tuple[DPKind, ...] = get_args(DPKind)
Locality = Literal["local", "remote"]
ConnectionUsed = Literal["fast", "slow"]
SlowBoundaryOption = Literal["do_not_run", "download"]
OnDemandActionKind = Literal["add", "already_listed", "delayed"]
Reason = Literal[
    "on_demand_triggered",
    "on_demand_delayed",
    "on_demand_in_progress",
    "no_content_accessible",
    "slow_boundary_do_not_run",
    "not_targeted",
]

# Rank groups (rule 6, see rule.py).
GROUP_PROTECTED, GROUP_LOCAL, GROUP_REMOTE = 0, 1, 2
# Rank tiers inside a group (rule 6).
TIER_SAME_SUBNET, TIER_SAME_AD_SITE, TIER_OTHER = 0, 1, 2

RankKey = tuple[int, int, int, str, int]
"""(group, tier, 0 if BITS-enabled else 1, DP name, DP id): smaller ranks first."""


# ------------------------------------------------------------------------ input data


@dataclass(frozen=True, slots=True)
class DistributionPoint:
    id: int
    name: str
    url: str
    kind: DPKind
    bits_enabled: bool
    site_code: str
    protected_boundary_ids: frozenset[int]
    ip_addresses: tuple[str, ...]
    ad_site: str | None

    @property
    def protected(self) -> bool:
        return bool(self.protected_boundary_ids)


@dataclass(frozen=True, slots=True)
class PackageDPRow:
    """A row of a package's DP list: the DP's state for the package."""

    dp_id: int
    state: str
    source_version: int

    def __post_init__(self) -> None:
        if self.state not in dp_states.STATES:
            raise ValueError(f"unknown package DP state {self.state!r}")


@dataclass(frozen=True, slots=True)
class Advertisement:
    id: str
    package_id: str
    protected_only: bool
    on_slow: SlowBoundaryOption
    allow_remote: bool


@dataclass(frozen=True, slots=True)
class Package:
    id: str
    source_version: int
    on_demand: bool


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    ip_addresses: tuple[str, ...]
    ad_site: str | None


# ----------------------------------------------------------------------- output data


@dataclass(frozen=True, slots=True)
class RankedDP:
    """A DP the client may use, with what placed it where in the list."""

    dp: DistributionPoint
    locality: Locality
    connection: ConnectionUsed
    protected: bool
    rank_key: RankKey

    @property
    def group(self) -> int:
        return self.rank_key[0]


@dataclass(frozen=True, slots=True)
class OnDemandAction:
    """What on-demand provisioning does for one branch DP."""

    dp_id: int
    action: OnDemandActionKind


@dataclass(frozen=True, slots=True)
class OnDemandCheck:
    """The on-demand conditions as evaluated for an empty list (rule 8)."""

    list_empty: bool
    branch_dp_covers_client: bool
    protected_only: bool
    package_allows_on_demand: bool
    branch_dp_lacks_content: bool

    @property
    def fires(self) -> bool:
        return (
            self.list_empty
            and self.branch_dp_covers_client
            and self.protected_only
            and self.package_allows_on_demand
            and self.branch_dp_lacks_content
        )

    @property
    def failed_conditions(self) -> tuple[str, ...]:
        """Each failed condition, in words, prefixed with its letter."""
        failed = []
        if not self.list_empty:
            failed.append("(a) the client already has a DP with the content")
        if not self.branch_dp_covers_client:
            failed.append("(b) no protected branch DP includes the client's boundaries")
        if not self.protected_only:
            failed.append("(c) the advertisement is not protected_only")
        if not self.package_allows_on_demand:
            failed.append("(d) the package does not allow on-demand distribution")
        if self.branch_dp_covers_client and not self.branch_dp_lacks_content:
            failed.append("every protected branch DP covering the client already holds the content")
        return tuple(failed)


@dataclass(frozen=True, slots=True)
class LocationDecision:
    distribution_points: tuple[RankedDP, ...]
    reason: Reason | None
    on_demand: tuple[OnDemandAction, ...]
    client_boundaries: tuple[BoundaryMatch, ...]
    trace: tuple[str, ...]
    on_demand_check: OnDemandCheck | None = None
    """None when the list is not empty or the client is not targeted."""

    def with_race_lost(self) -> LocationDecision:
        """This decision as told to a client whose request added no DP because other
        requests added them first (provisioning is exactly-once): on-demand is then in
        progress, not triggered by this request. Other decisions are unchanged."""
        if self.reason != "on_demand_triggered":
            return self
        return replace(self, reason="on_demand_in_progress")
