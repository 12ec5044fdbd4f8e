"""Answer bodies of the deployment and package status summaries (`/api/v1/.../status`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from peerdp.site.admin.schemas import OnDemandRequestOut, PackageDPOut


class DeploymentRowOut(BaseModel):
    """Where the advertisement stands on one client."""

    client_name: str
    state: str
    source_version: int
    reason: str = Field(
        description="the location reason (waiting_for_content, not_run), or why it failed"
    )
    exit_code: int | None
    restart_required: bool
    source_dp_id: int | None
    source_dp_name: str | None = Field(description="the DP its content comes or came from")
    boundary_id: int | None = Field(description="the boundary the MP last placed it in")
    boundary_name: str | None
    at: datetime = Field(description="the time of the message that reported the state")


class BoundaryCountsOut(BaseModel):
    boundary_id: int | None = Field(description="None: clients not placed in any boundary")
    boundary_name: str | None
    total: int
    counts: dict[str, int]


class AdvertisementStatusOut(BaseModel):
    advertisement_id: int
    advertisement_name: str
    package_id: str
    source_version: int = Field(description="the package's current source version")
    total: int = Field(description="clients that reported anything about the advertisement")
    counts: dict[str, int] = Field(description="clients per state (every state, 0 included)")
    behind: int = Field(description="clients whose state is of an older source version")
    boundaries: list[BoundaryCountsOut]
    matched: int = Field(description="client rows matching the filters (`state`, `client`)")
    limit: int
    offset: int
    clients: list[DeploymentRowOut]


class PackageDPStatusOut(PackageDPOut):
    dp_kind: str
    pulled_bytes: int = Field(description="bytes of this package the DP pulled over the WAN")
    served_bytes: int = Field(description="bytes of this package clients and DPs got from it")
    pull_done_bytes: int | None = Field(
        default=None, description="a branch DP's pull in progress: bytes held so far"
    )
    pull_total_bytes: int | None = Field(default=None, description="the pull's bytes in all")
    pull_bytes_per_s: int | None = Field(
        default=None, description="the pull's rate since its previous report (bytes/s)"
    )
    pull_at: datetime | None = Field(default=None, description="when the pull last reported")


class PackageStatusOut(BaseModel):
    package_id: str
    name: str
    source_version: int
    dps_total: int = Field(description="DPs on the package's list (M)")
    installed: int = Field(description="DPs holding the current source version (N of M)")
    counts: dict[str, int] = Field(description="DPs per state (every state, 0 included)")
    distribution_points: list[PackageDPStatusOut]
    on_demand: list[OnDemandRequestOut]
