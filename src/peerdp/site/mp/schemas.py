"""Request and answer bodies of the management point."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from peerdp.content.ids import API_PACKAGE_ID
from peerdp.domain.location import ConnectionUsed, Locality
from peerdp.site.fields import AdSite, IpAddresses, MachineName

DPName = Annotated[str, Field(min_length=1, max_length=200)]
ByteCount = Annotated[int, Field(ge=0, le=2**62)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(Strict):
    token: str = Field(min_length=8, max_length=200)
    name: MachineName
    ip_addresses: IpAddresses = Field(default_factory=list)
    ad_site: AdSite | None = None
    url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")
    # The role the machine means to take: a token of another role is refused unspent.
    role: Literal["client", "branch_dp", "standard_dp"] | None = None


class TokenCheckIn(Strict):
    token: str = Field(min_length=8, max_length=200)
    role: Literal["client", "branch_dp", "standard_dp"]


class RegisterOut(BaseModel):
    machine_id: str
    credential: str
    site_public_key: str
    site_code: str
    role: str
    dp_id: int | None = None
    client_id: int | None = None


class AnnounceIn(Strict):
    # The URL the DP now serves at; none: it has started again at the URL the site knows.
    url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")


class DPSettingsIn(Strict):
    # The --max-transfers the DP process was started with (None: it follows the site's).
    max_transfers_override: int | None = Field(default=None, ge=1, le=1_000_000)


class LocationIn(Strict):
    advertisement_id: int
    package_id: str = Field(pattern=API_PACKAGE_ID)
    source_version: int = Field(ge=1)
    ip_addresses: IpAddresses = Field(default_factory=list)
    ad_site: AdSite | None = None


class LocatedDP(BaseModel):
    dp_id: int
    name: str
    url: str | None
    kind: str
    protected: bool
    locality: Locality
    connection: ConnectionUsed
    bits_enabled: bool
    access_token: str


class LocationOut(BaseModel):
    advertisement_id: int
    package_id: str
    source_version: int
    distribution_points: list[LocatedDP]
    reason: str | None = None
    detail: str = ""
    on_demand: list[dict[str, Any]] = Field(default_factory=list)


class StatusIn(Strict):
    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")
    package_id: str | None = Field(default=None, pattern=API_PACKAGE_ID)
    source_version: int | None = Field(default=None, ge=0)
    advertisement_id: int | None = None
    state: str | None = Field(default=None, max_length=32)
    exit_code: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    # A client's attempt at an advertisement (1, 2, ...) and when it tries next (None: it
    # will not, on its own).
    attempt: int | None = Field(default=None, ge=1, le=2**31 - 1)
    next_attempt_at: datetime | None = None
    detail: str = Field(default="", max_length=4000)
    at: datetime | None = None
    # The bytes of the package the machine downloaded from each DP, by DP name (a client
    # when its program starts, a branch DP when it installed a pull).
    bytes_by_dp: dict[DPName, ByteCount] | None = Field(default=None, max_length=64)
    # A branch DP's pull in progress (`pull_progress`): bytes held so far, of the pull's total.
    bytes_done: ByteCount | None = None
    bytes_total: ByteCount | None = None


class StatusBatch(Strict):
    messages: list[StatusIn] = Field(min_length=1, max_length=1000)


class StatusResult(BaseModel):
    accepted: int
    rejected: list[dict[str, Any]]
