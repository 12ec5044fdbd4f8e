"""The inputs of a machine's policy, named, so a change wakes only the machines it concerns.

A change to the site says which policy inputs it touched (`ChangeBus.publish(concerns=…)`),
and each held long-poll is indexed by the inputs its policy was computed from. Only the
waiters holding one of the touched inputs are woken; a change that names none (adding a
boundary) wakes nobody. A change that cannot say what it touched names `EVERYTHING`.

A client's policy reads: its own machine row and collection memberships (`machine`), the
advertisements of each of its collections (`collection`), and each advertised package's
source version, manifest and programs (`package`). A DP's policy reads its own row and
package rows (`dp`), each package it holds (`package`), that package's other DP rows (its
pull sources: `package_dps`), and the site's DPs themselves (`DPS`: names and URLs).
"""

from __future__ import annotations

from peerdp.site.notify import EVERYTHING

__all__ = ["DPS", "EVERYTHING", "collection", "dp", "dp_row", "machine", "package", "package_dps"]
DPS = "dps"


def machine(name: str) -> str:
    return "m:" + name


def collection(collection_id: int) -> str:
    return f"c:{collection_id}"


def package(package_id: str) -> str:
    return "p:" + package_id


def package_dps(package_id: str) -> str:
    return "pd:" + package_id


def dp(dp_id: int) -> str:
    return f"d:{dp_id}"


def dp_row(package_id: str, dp_id: int) -> tuple[str, str]:
    """A package's row on one DP changed (state, version, origin): that DP's policy and
    the policies of the package's other DPs (whose sources it may be)."""
    return dp(dp_id), package_dps(package_id)
