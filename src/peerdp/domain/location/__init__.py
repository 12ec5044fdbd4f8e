"""The content-location rule: which DPs a client may use, and on-demand provisioning.

`model` holds the data the rule takes and returns; `rule` holds the rule itself with the
site view it reads and the explanation it can write (they share internals, so they stay
in one module).
"""

from peerdp.domain.location.model import (
    GROUP_LOCAL,
    GROUP_PROTECTED,
    GROUP_REMOTE,
    TIER_OTHER,
    TIER_SAME_AD_SITE,
    TIER_SAME_SUBNET,
    Advertisement,
    Client,
    ConnectionUsed,
    DistributionPoint,
    DPKind,
    Locality,
    LocationDecision,
    OnDemandAction,
    OnDemandActionKind,
    OnDemandCheck,
    Package,
    PackageDPRow,
    RankedDP,
    RankKey,
    Reason,
    SlowBoundaryOption,
)
from peerdp.domain.location.rule import SiteView, describe, locate

__all__ = [
    "GROUP_LOCAL",
    "GROUP_PROTECTED",
    "GROUP_REMOTE",
    "TIER_OTHER",
    "TIER_SAME_AD_SITE",
    "TIER_SAME_SUBNET",
    "Advertisement",
    "Client",
    "ConnectionUsed",
    "DPKind",
    "DistributionPoint",
    "Locality",
    "LocationDecision",
    "OnDemandAction",
    "OnDemandActionKind",
    "OnDemandCheck",
    "Package",
    "PackageDPRow",
    "RankKey",
    "RankedDP",
    "Reason",
    "SiteView",
    "SlowBoundaryOption",
    "describe",
    "locate",
]
