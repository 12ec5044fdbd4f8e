"""Where one advertisement stands on one client: SCCM's advertisement status, derived from
the status messages the site already receives.

The states, in the order a deployment usually moves through them:

- `policy_received`: the client has the advertisement in its policy (`advertisement_received`);
- `waiting_for_content`: the MP named no DP the client may use, with the MP's reason
  (`on_demand_triggered`, `on_demand_in_progress`, `on_demand_delayed`,
  `no_content_accessible`); the client tries again later;
- `downloading`: the MP named DPs, the first of which is the source the client starts with;
- `running`: the program started;
- `succeeded`: the program's exit code means success (`restart_required` for 3010, 1641);
- `failed`: the program's exit code means failure, or the content could not be had, or the
  client gave up (`advertisement_failed`); a failed client may still try again;
- `not_run`: the client is in a slow boundary and the advertisement says do not run there.

Only the latest state counts: `is_newer` orders two reports of one advertisement on one
client by the package's source version, then by the time of the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

DeploymentState = Literal[
    "policy_received",
    "waiting_for_content",
    "downloading",
    "running",
    "succeeded",
    "failed",
    "not_run",
]
DEPLOYMENT_STATES: tuple[DeploymentState, ...] = get_args(DeploymentState)

# The MP's content-location reasons that mean "not yet" rather than "never".
WAITING_REASONS = frozenset(
    {"on_demand_triggered", "on_demand_in_progress", "on_demand_delayed", "no_content_accessible"}
)
SLOW_DO_NOT_RUN = "slow_boundary_do_not_run"
NOT_TARGETED = "not_targeted"
# States in which the DP the content comes from still matters (kept from the MP's answer).
WITH_SOURCE: frozenset[DeploymentState] = frozenset(
    {"downloading", "running", "succeeded", "failed"}
)
REASON_MAX = 500


@dataclass(frozen=True, slots=True)
class Derived:
    """What one status message says about a deployment."""

    state: DeploymentState
    reason: str = ""
    exit_code: int | None = None
    restart_required: bool = False


def derive(type_: str, state: str | None, exit_code: int | None, detail: str) -> Derived | None:
    """The deployment state a status message of `type_` (with its `state` field, exit code
    and detail) reports, or None when it says nothing about one.

    `content_location` is the MP's own record of its answer: its `state` is the reason the
    list is empty, None when it named DPs.
    """
    reason = detail[:REASON_MAX]
    if type_ == "advertisement_received":
        return Derived("policy_received")
    if type_ in ("content_location", "content_location_failed"):
        return _located(type_, state, reason)
    if type_ in ("content_download_failed", "content_refused", "advertisement_failed"):
        return Derived("failed", reason, exit_code)
    if type_ == "program_started":
        return Derived("running")
    if type_ == "program_succeeded":
        return Derived("succeeded", "", exit_code, restart_required=state == "restart_required")
    if type_ == "program_failed":
        return Derived("failed", reason, exit_code)
    return None


def _located(type_: str, state: str | None, reason: str) -> Derived | None:
    if type_ == "content_location" and state is None:
        return Derived("downloading")
    if state == SLOW_DO_NOT_RUN:
        return Derived("not_run", SLOW_DO_NOT_RUN)
    if state in WAITING_REASONS:
        return Derived("waiting_for_content", state)
    if state == NOT_TARGETED:
        return None  # the client is not offered this advertisement (any more)
    if type_ == "content_location_failed":
        # The request itself failed (the MP could not be reached): the client retries.
        return Derived("waiting_for_content", reason or "content location request failed")
    return None


def is_newer(
    version: int, at: datetime, held_version: int | None, held_at: datetime | None
) -> bool:
    """Whether a report at (`version`, `at`) replaces the one held: a later source version,
    or the same one at the same time or later (reports of one moment arrive in order)."""
    if held_version is None or held_at is None:
        return True
    return (version, at) >= (held_version, held_at)
