"""The scenario file (`SCENARIO.toml`): what is simulated, validated field by field.

Units: times in seconds from the start of the simulation, bandwidths in Mbit/s,
latencies in milliseconds, sizes in MiB. Every location (`[hq]` and each branch) gets an
`ip_subnet` boundary named after it; its clients take addresses in that subnet. Branches
are listed (`[[branches]]`) or generated (`[generate]`, each with a protected branch DP),
or both. A bad file raises :class:`ScenarioError` naming the field (``events[1].until_s:
...``) and the problem in words.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from peerdp.domain.boundaries import check_boundary_input


class ScenarioError(ValueError):
    """A scenario that cannot be simulated; the message names the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Seconds = Annotated[float, Field(ge=0)]


class Window(_Model):
    from_s: Seconds
    until_s: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.until_s <= self.from_s:
            raise ValueError(f"until_s: {self.until_s} is not after from_s ({self.from_s})")
        return self


class Link(_Model):
    mbps: float = Field(gt=0)
    latency_ms: float = Field(default=20.0, ge=0)
    outages: list[Window] = []


class BranchDP(_Model):
    """The branch DP of a location: protected by the location's boundary."""

    name: str | None = None  # default: "<location>-DP"
    bits_enabled: bool = False
    max_transfers: int | None = Field(default=None, ge=1)  # default: the kind's (10)


class Location(_Model):
    name: str = Field(min_length=1)
    subnet: str
    connection: Literal["fast", "slow"] = "fast"
    lan_mbps: float = Field(default=100.0, gt=0)
    clients: int = Field(default=0, ge=0)
    ad_site: str | None = None

    @model_validator(mode="after")
    def _subnet(self) -> Location:
        try:
            check_boundary_input("ip_subnet", self.subnet)
        except ValueError as exc:
            raise ValueError(f"subnet: {exc}") from None
        hosts = ipaddress.ip_network(self.subnet).num_addresses
        if self.clients > hosts - FIRST_CLIENT_HOST - 1:
            raise ValueError(
                f"clients: {self.clients} clients do not fit in {self.subnet} "
                f"(addresses from .{FIRST_CLIENT_HOST}; at most {max(0, hosts - 11)})"
            )
        return self


# Hosts of a location's subnet: .1 and .2 for its DPs, clients from .10.
FIRST_CLIENT_HOST = 10


def _no_branch_dp(value: Any) -> Any:
    """`branch_dp = false`: a location without a branch DP (TOML has no null)."""
    return None if value is False else value


OptionalBranchDP = Annotated[BranchDP | None, BeforeValidator(_no_branch_dp)]


class Branch(Location):
    wan: Link
    branch_dp: OptionalBranchDP = BranchDP()


class Generate(_Model):
    branches: int = Field(ge=1, le=1_000_000)
    clients_per_branch: int = Field(ge=0)
    address_plan: str = "10.0.0.0/8"
    branch_prefix: int = Field(default=24, ge=8, le=30)
    name_prefix: str = "BR"
    lan_mbps: float = Field(default=100.0, gt=0)
    connection: Literal["fast", "slow"] = "fast"
    wan: Link
    branch_dp: OptionalBranchDP = BranchDP()

    @model_validator(mode="after")
    def _plan(self) -> Generate:
        try:
            net = ipaddress.ip_network(self.address_plan)
        except ValueError as exc:
            raise ValueError(f"address_plan: {exc}") from None
        if self.branch_prefix < net.prefixlen:
            raise ValueError(f"branch_prefix: /{self.branch_prefix} is wider than the plan {net}")
        room = 2 ** (self.branch_prefix - net.prefixlen)
        if self.branches > room - 1:
            raise ValueError(
                f"branches: {self.branches} /{self.branch_prefix} subnets do not fit in "
                f"{net} (room for {room - 1} besides the head office's)"
            )
        return self


class DistributionPoint(_Model):
    name: str = Field(min_length=1)
    kind: Literal["standard", "branch"] = "standard"
    location: str
    bits_enabled: bool = True
    protects: list[str] = []  # boundary (location) names
    max_transfers: int | None = Field(default=None, ge=1)


class Package(_Model):
    name: str = Field(min_length=1)
    size_mib: float = Field(gt=0)
    files: int = Field(default=1, ge=1)
    on_demand: bool = True
    staged_on: list[str] = []  # standard DPs holding it from `staged_at`
    staged_at: Seconds = 0.0


class Advertisement(_Model):
    name: str = Field(min_length=1)
    package: str
    collection: Literal["all"] | list[str] = "all"  # or location names
    protected_only: bool = True
    on_fast: Literal["download"] = "download"
    on_slow: Literal["do_not_run", "download"] = "do_not_run"
    allow_remote: bool = False
    available_at: Seconds = 0.0


class Behaviour(_Model):
    """How clients and branch DPs behave (defaults: the agents' own)."""

    policy: Literal["peerdp", "sccm2007"] = "peerdp"
    poll_interval_s: float = Field(default=3600.0, ge=60)  # sccm2007
    randomise_s: float = Field(default=0.0, ge=0)  # sccm2007: added at random to each poll
    retry_interval_s: float = Field(default=60.0, gt=0)
    max_retry_interval_s: float = Field(default=3600.0, gt=0)
    content_attempts: int = Field(default=30, ge=1)
    program_attempts: int = Field(default=3, ge=1)
    program_run_s: Seconds = 60.0
    program_failure_rate: float = Field(default=0.0, ge=0, le=1)
    branch_retry_s: float = Field(default=30.0, gt=0)  # a failed pull's first delay
    branch_attempts: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _randomise(self) -> Behaviour:
        if self.randomise_s > self.poll_interval_s:
            raise ValueError(
                f"randomise_s: {self.randomise_s} is more than poll_interval_s "
                f"({self.poll_interval_s})"
            )
        return self


class DPDown(Window):
    type: Literal["dp_down"]
    dp: str | None = None  # one DP by name, or:
    branch_dp_fraction: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _which(self) -> DPDown:
        if (self.dp is None) == (self.branch_dp_fraction is None):
            raise ValueError("give exactly one of dp and branch_dp_fraction")
        return self


class LinkCut(Window):
    type: Literal["link_cut"]
    location: str  # the branch whose WAN link is cut


class NewVersion(_Model):
    type: Literal["new_version"]
    package: str
    at_s: Seconds


Event = Annotated[DPDown | LinkCut | NewVersion, Field(discriminator="type")]


class Scenario(_Model):
    name: str = "scenario"
    seed: int = 1
    duration_s: float = Field(default=14 * 86400.0, gt=0)
    site_code: str = Field(default="PS1", pattern=r"^[A-Z0-9]{3}$")
    # A link with more than 64 transfers recomputes their shares at most this often
    # (network.py); 0: at every start and end (exact, slow for thousands of transfers).
    reflow_quantum_s: float = Field(default=5.0, ge=0)
    hq: Location
    branches: list[Branch] = []
    generate: Generate | None = None
    distribution_points: list[DistributionPoint] = []
    packages: list[Package] = Field(min_length=1)
    advertisements: list[Advertisement] = Field(min_length=1)
    clients: Behaviour = Behaviour()
    events: list[Event] = []


def load(path: Path) -> Scenario:
    """Read and validate a scenario file; ScenarioError says what is wrong and where."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, str(path))


def parse(data: dict[str, Any], origin: str = "scenario") -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{origin}: " + "; ".join(_words(e) for e in exc.errors())) from None


def _words(error: Any) -> str:
    where = _field_path(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    # A check of several fields names the one it blames first ("until_s: ...").
    blamed = _BLAMED.match(message)
    if blamed:
        where = f"{where}.{blamed[1]}" if where else blamed[1]
        message = blamed[2]
    return f"{where}: {message}" if where else message


_BLAMED = re.compile(r"^([a-z_]+): (.*)$", re.DOTALL)


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("dp_down", "link_cut", "new_version"):
            continue  # the event's type, already known from its index
        else:
            path += f".{part}" if path else str(part)
    return path
