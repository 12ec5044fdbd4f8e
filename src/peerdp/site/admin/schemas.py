"""Request and answer bodies of the admin API (`/api/v1`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from peerdp.content.ids import API_PACKAGE_ID, upper_package_id
from peerdp.domain.boundaries import BoundaryType, Connection, LocateBy
from peerdp.domain.location import DPKind, SlowBoundaryOption
from peerdp.domain.policy_polling import PollingMode
from peerdp.site.fields import AdSite, IpAddresses, VisibleName

# In a PATCH body every field is optional: absent means "leave it as it is".
# Free text the database must be able to store (PostgreSQL refuses NUL characters).
NO_NUL = r"^[^\x00]*$"
# Database IDs are 32-bit on PostgreSQL; a larger number can name nothing.
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


# A package ID in a path, a query or a body, in any case (`ps100001` is `PS100001`).
PackageId = Annotated[str, AfterValidator(upper_package_id)]
_Upper = BeforeValidator(lambda v: upper_package_id(v) if isinstance(v, str) else v)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class BoundaryIn(Strict):
    name: VisibleName
    type: BoundaryType
    value: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    connection: Connection = "fast"


class BoundaryPatch(Strict):
    name: VisibleName | None = None
    type: BoundaryType | None = None
    value: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_NUL)
    connection: Connection | None = None


class BoundaryOut(Out):
    id: int
    name: str
    type: str
    value: str
    connection: str
    created_at: datetime


class DistributionPointIn(Strict):
    name: VisibleName
    kind: DPKind
    bits_enabled: bool = True
    protected_boundary_ids: list[Id] = Field(default_factory=list)
    url: str | None = Field(default=None, max_length=500, pattern=r"^https?://[^\x00-\x20]+$")
    ip_addresses: IpAddresses = Field(default_factory=list)
    ad_site: AdSite | None = None
    max_transfers: int | None = Field(default=None, ge=1, le=10000)


class DistributionPointPatch(Strict):
    name: VisibleName | None = None
    bits_enabled: bool | None = None
    protected_boundary_ids: list[Id] | None = None
    url: str | None = Field(default=None, max_length=500, pattern=r"^https?://[^\x00-\x20]+$")
    ip_addresses: IpAddresses | None = None
    ad_site: AdSite | None = None
    max_transfers: int | None = Field(default=None, ge=1, le=10000)


LAST_CONTACT = (
    "the machine's last contact with the management point (registration, policy, a policy "
    "long-poll it holds, status, content location, ping), to within about a minute"
)


class DistributionPointOut(Out):
    id: int
    name: str
    kind: str
    bits_enabled: bool
    protected: bool
    protected_boundary_ids: list[int]
    url: str | None
    site_code: str
    ip_addresses: list[str]
    ad_site: str | None
    # The site's setting (sent in the DP's policy), the --max-transfers the DP process
    # reported it was started with (it overrides the site's), and the limit in force.
    max_transfers: int | None
    max_transfers_override: int | None
    max_transfers_in_force: int | None
    last_seen: datetime | None = Field(description=LAST_CONTACT)
    created_at: datetime


class PackageIn(Strict):
    name: VisibleName
    on_demand: bool = False
    auto_download_branch: bool = True


class PackagePatch(Strict):
    name: VisibleName | None = None
    on_demand: bool | None = None
    auto_download_branch: bool | None = None


class PackageOut(Out):
    id: str
    name: str
    source_version: int
    on_demand: bool
    auto_download_branch: bool
    created_at: datetime
    updated_at: datetime
    # Set when the package was deleted and some DP still holds it (removal under way).
    deleted_at: datetime | None = None


class ManifestFileOut(BaseModel):
    path: str
    size: int
    sha256: str


class PackageVersionOut(BaseModel):
    package_id: str
    source_version: int
    manifest_digest: str
    file_count: int
    total_size: int
    new_files: int
    new_bytes: int
    created_at: datetime
    manifest: dict[str, Any]
    # False: the upload was identical to the current version and no new one was made.
    changed: bool = True
    detail: str = ""


# Exit codes a program also succeeds with, besides 0, 3010 and 1641 (always success).
SuccessCodes = Annotated[
    list[Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]], Field(max_length=100)
]


class ProgramIn(Strict):
    name: VisibleName
    command_line: str = Field(min_length=1, max_length=4000, pattern=NO_NUL)
    timeout_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    success_exit_codes: SuccessCodes = Field(default_factory=list)


class ProgramPatch(Strict):
    command_line: str | None = Field(default=None, min_length=1, max_length=4000, pattern=NO_NUL)
    timeout_s: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)
    success_exit_codes: SuccessCodes | None = None


class ProgramOut(Out):
    id: int
    package_id: str
    name: str
    command_line: str
    timeout_s: int
    success_exit_codes: list[int]


class CollectionIn(Strict):
    name: VisibleName
    member_names: list[VisibleName] = Field(default_factory=list, max_length=100_000)


class CollectionPatch(Strict):
    name: VisibleName | None = None
    member_names: list[VisibleName] | None = Field(default=None, max_length=100_000)


class MembersIn(Strict):
    member_names: list[VisibleName] = Field(min_length=1, max_length=100_000)


class CollectionOut(Out):
    id: int
    name: str
    member_names: list[str]
    created_at: datetime


class AdvertisementIn(Strict):
    name: VisibleName
    package_id: Annotated[str, _Upper, Field(pattern=API_PACKAGE_ID)]
    program_name: VisibleName
    collection_id: Id
    available_at: AwareDatetime | None = None
    mandatory_at: AwareDatetime | None = None
    protected_only: bool = False
    on_fast: Literal["download"] = "download"
    on_slow: SlowBoundaryOption = "do_not_run"
    allow_remote: bool = False


class AdvertisementPatch(Strict):
    name: VisibleName | None = None
    program_name: VisibleName | None = None
    available_at: AwareDatetime | None = None
    mandatory_at: AwareDatetime | None = None
    protected_only: bool | None = None
    on_slow: Literal["do_not_run", "download"] | None = None
    allow_remote: bool | None = None


class AdvertisementOut(Out):
    id: int
    name: str
    package_id: str
    program_name: str
    collection_id: int
    available_at: datetime
    mandatory_at: datetime | None
    protected_only: bool
    on_fast: str
    on_slow: str
    allow_remote: bool
    created_at: datetime


class RerunIn(Strict):
    client_name: VisibleName | None = None
    """Rerun for this client only; absent: for every client of the collection."""
    failed: bool = Field(
        default=False,
        description="rerun on each client of the collection the advertisement failed on "
        "(one rerun each), instead of one client or all",
    )


class RerunOut(Out):
    id: int
    advertisement_id: int
    client_name: str | None
    requested_at: datetime
    failed_clients: int | None = Field(
        default=None, description="with failed: the clients it reruns on (id is the last's)"
    )


class PackageDPIn(Strict):
    dp_id: Id


class PackageDPOut(Out):
    package_id: str
    dp_id: int
    dp_name: str
    state: str
    source_version: int
    origin: str
    detail: str
    attempts: int
    deadline_at: datetime | None
    updated_at: datetime


class EnrolmentTokenIn(Strict):
    role: Literal["client", "branch_dp", "standard_dp"]
    dp_id: Id | None = None
    max_uses: int = Field(default=1, ge=1, le=1_000_000)
    expires_at: AwareDatetime | None = None


class EnrolmentTokenOut(Out):
    id: int
    role: str
    dp_id: int | None
    max_uses: int
    uses: int
    expires_at: datetime | None
    created_at: datetime


class EnrolmentTokenCreated(EnrolmentTokenOut):
    token: str


class ClientOut(Out):
    id: int
    name: str
    ip_addresses: list[str]
    ad_site: str | None
    peer_address: str | None
    last_seen: datetime | None = Field(description=LAST_CONTACT)
    created_at: datetime
    reenrol_allowed: bool
    locate_by: LocateBy


class ClientPatch(Strict):
    locate_by: LocateBy = Field(
        description="what places the client in boundaries: the addresses and AD site it "
        "reports ('reported', the default), or the address its requests come from as the "
        "management point sees the connection ('peer')"
    )


class OnDemandRequestOut(Out):
    id: int
    package_id: str
    source_version: int
    dp_id: int
    client_name: str
    state: str
    created_at: datetime
    provisioned_at: datetime | None


class StatusMessageOut(Out):
    id: int
    at: datetime
    received_at: datetime
    component: str
    source: str
    type: str
    severity: str
    package_id: str | None
    source_version: int | None
    dp_id: int | None
    client_name: str | None
    advertisement_id: int | None
    state: str | None
    exit_code: int | None
    attempt: int | None
    next_attempt_at: datetime | None
    detail: str


class PackageDeletionOut(BaseModel):
    package_id: str
    name: str
    deleted_at: datetime
    removing_from: int
    detail: str
    distribution_points: list[PackageDPOut]


class PolicyPollingIn(Strict):
    mode: PollingMode = Field(
        description="how clients fetch policy: 'long_poll' (a held request: a change reaches "
        "them at once) or 'interval' (a poll every interval_s plus up to randomise_s at "
        "random, without waiting; an unchanged policy costs a 304)"
    )
    interval_s: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="interval mode: seconds between polls"
    )
    randomise_s: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="interval mode: at most this many seconds more, uniformly at random "
        "(0 to the interval; default 0)",
    )


class PolicyPollingOut(BaseModel):
    mode: PollingMode
    interval_s: int | None = None
    randomise_s: int | None = None
    description: str
