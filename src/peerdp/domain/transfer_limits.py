"""How many transfers a distribution point serves at once: which setting is in force.

The site sets a limit per DP (`dp add/set --max-transfers`) and sends it in the DP's
policy; a DP process started with its own `--max-transfers` overrides it; with neither,
the kind's default applies: a branch DP is often a workstation (SCCM's limit of 10
connections), a standard DP is a server (no limit). `None` means no limit.
"""

from __future__ import annotations

from typing import Final

DEFAULTS: Final[dict[str, int | None]] = {"branch": 10, "standard": None}


def in_force(kind: str, site_value: int | None, override: int | None) -> int | None:
    """The limit a DP of `kind` applies: its override, else the site's, else the default."""
    if override is not None:
        return override
    if site_value is not None:
        return site_value
    return DEFAULTS.get(kind)


def describe(limit: int | None) -> str:
    return "no limit" if limit is None else f"{limit} at once"
