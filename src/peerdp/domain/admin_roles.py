"""The roles an administrator's credential holds, from least to most: `read_only` reads
everything, `operator` also acts on deployments and DPs, `full` also changes the site's
configuration and its administrators. Each role may do all that the roles below it may."""

from __future__ import annotations

from typing import Literal

AdminRole = Literal["read_only", "operator", "full"]
ADMIN_ROLES: tuple[AdminRole, ...] = ("read_only", "operator", "full")
READ_ONLY: AdminRole = "read_only"
OPERATOR: AdminRole = "operator"
FULL: AdminRole = "full"


def allows(held: str, needed: str) -> bool:
    """Whether a credential holding `held` may do what needs `needed`."""
    return ADMIN_ROLES.index(held) >= ADMIN_ROLES.index(needed)
