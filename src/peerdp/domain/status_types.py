"""The types of status messages peerdp's components write (`peerdp status list --type`).

Agents may report other types (the MP accepts any `[a-z_]+`); a type is known when it is
listed here or when a message of that type is in the site's log.
"""

from __future__ import annotations

from typing import Literal, get_args

STATUS_TYPES = frozenset(
    {
        # the site and its management point
        "package_version_created",
        "package_version_unchanged",
        "package_deleted",
        "package_removed",
        "package_exported",
        "dp_added_to_package",
        "dp_removal_requested",
        "dp_refresh_requested",
        "dp_url_changed",
        "dp_settings",
        "machine_registered",
        "conflicting_record",
        "reenrolment_allowed",
        "client_placement_changed",
        "advertisement_rerun",
        "policy_polling_changed",
        "content_location",
        "on_demand_triggered",
        "on_demand_delayed",
        # distribution points
        "package_state",
        "policy_refused",
        # clients
        "advertisement_received",
        "content_location_failed",
        "content_download_failed",
        "content_refused",
        "program_started",
        "program_succeeded",
        "program_failed",
        "advertisement_failed",
    }
)

# Who writes status messages (`component`): the site, its management point and its
# distribution manager, and the machines reporting (by their role).
StatusComponent = Literal["site", "mp", "distribution", "standard_dp", "branch_dp", "client"]
STATUS_COMPONENTS: tuple[StatusComponent, ...] = get_args(StatusComponent)
# How much a message matters: an error (a failure), a warning (damaged content), or info.
Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
# A branch DP's pull in progress: sent through the status channel, but kept on its row of
# the package's DP list, never written to the log (site/pull_progress.py).
PULL_PROGRESS = "pull_progress"
