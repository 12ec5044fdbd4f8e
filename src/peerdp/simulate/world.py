"""A scenario turned into the site it describes, in the domain's own objects.

Locations (the head office first, then each branch) each get an `ip_subnet` boundary
named after them, a LAN link and, for a branch, a WAN link to the head office. Names
are resolved here, so a DP protecting an unknown boundary or an advertisement of an
unknown package is refused with the field that names it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from peerdp.domain import location as rule
from peerdp.domain.boundaries import Boundary, Connection
from peerdp.domain.transfer_limits import in_force
from peerdp.simulate import scenario as sc

MIB = 1 << 20
MBIT = 1_000_000 / 8  # bytes per second in one Mbit/s


@dataclass(frozen=True, slots=True)
class Place:
    """A location: the head office (index 0) or a branch."""

    index: int
    name: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    ad_site: str | None
    clients: int
    lan_bps: float
    wan: sc.Link | None  # None: the head office, the hub every WAN link reaches
    boundary_id: int

    def host(self, n: int) -> str:
        return str(self.network.network_address + n)


@dataclass(frozen=True, slots=True)
class DP:
    rule: rule.DistributionPoint
    place: int
    max_transfers: int | None


@dataclass(frozen=True, slots=True)
class Package:
    id: str
    name: str
    size: int  # bytes
    files: int
    on_demand: bool
    staged_on: tuple[int, ...]  # standard DP ids
    staged_at: float


@dataclass(frozen=True, slots=True)
class Advertisement:
    rule: rule.Advertisement
    package: Package
    places: frozenset[int] | None  # None: every client
    available_at: float


@dataclass(frozen=True, slots=True)
class DPDown:
    dp_ids: tuple[int, ...]
    window: sc.Window


@dataclass(frozen=True, slots=True)
class LinkCut:
    place: int
    window: sc.Window


@dataclass(frozen=True, slots=True)
class NewVersion:
    package: Package
    at_s: float


@dataclass(frozen=True)
class World:
    scenario: sc.Scenario
    places: tuple[Place, ...]
    boundaries: tuple[Boundary, ...]
    dps: tuple[DP, ...]
    packages: tuple[Package, ...]
    advertisements: tuple[Advertisement, ...]
    dp_down: tuple[DPDown, ...]
    link_cuts: tuple[LinkCut, ...]
    new_versions: tuple[NewVersion, ...]

    @property
    def client_count(self) -> int:
        return sum(place.clients for place in self.places)


def build(s: sc.Scenario) -> World:
    places = _places(s)
    by_place = {p.name: p for p in places}
    boundaries = tuple(
        Boundary(p.boundary_id, p.name, "ip_subnet", str(p.network), _connection(s, p.index))
        for p in places
    )
    dps = _dps(s, places, by_place)
    dp_by_name = {dp.rule.name: dp for dp in dps}
    packages = _packages(s, dp_by_name)
    pkg_by_name = {p.name: p for p in packages}
    advertisements = tuple(
        _advertisement(s, n, a, pkg_by_name, by_place) for n, a in enumerate(s.advertisements)
    )
    downs, cuts, versions = _events(s, dps, dp_by_name, by_place, pkg_by_name)
    return World(s, places, boundaries, dps, packages, advertisements, downs, cuts, versions)


def _fail(field: str, message: str) -> sc.ScenarioError:
    return sc.ScenarioError(f"{field}: {message}")


def _connection(s: sc.Scenario, index: int) -> Connection:
    if index == 0:
        return s.hq.connection
    if index <= len(s.branches):
        return s.branches[index - 1].connection
    assert s.generate is not None
    return s.generate.connection


def _places(s: sc.Scenario) -> tuple[Place, ...]:
    hq_net = ipaddress.ip_network(s.hq.subnet, strict=False)
    places = [
        Place(0, s.hq.name, hq_net, s.hq.ad_site, s.hq.clients, s.hq.lan_mbps * MBIT, None, 1)
    ]
    seen = {s.hq.name: "hq.name"}
    nets = [hq_net]
    for n, b in enumerate(s.branches):
        field = f"branches[{n}]"
        if b.name in seen:
            raise _fail(f"{field}.name", f"{b.name!r} is already the name of {seen[b.name]}")
        seen[b.name] = f"{field}.name"
        net = ipaddress.ip_network(b.subnet, strict=False)
        for other in nets:
            if net.version == other.version and net.overlaps(other):
                raise _fail(f"{field}.subnet", f"{net} overlaps {other}")
        nets.append(net)
        index = len(places)
        places.append(
            Place(index, b.name, net, b.ad_site, b.clients, b.lan_mbps * MBIT, b.wan, index + 1)
        )
    if s.generate is not None:
        g = s.generate
        width = len(str(g.branches))
        subnets = _free_subnets(g, nets)
        for n in range(1, g.branches + 1):
            name = f"{g.name_prefix}{n:0{width}d}"
            if name in seen:
                raise _fail("generate.name_prefix", f"generated {name!r} is already {seen[name]}")
            free = next(subnets, None)
            if free is None:
                raise _fail("generate.address_plan", f"no room for {g.branches} branch subnets")
            index = len(places)
            places.append(
                Place(
                    index,
                    name,
                    free,
                    None,
                    g.clients_per_branch,
                    g.lan_mbps * MBIT,
                    g.wan,
                    index + 1,
                )
            )
    return tuple(places)


def _free_subnets(
    g: sc.Generate, taken: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> Iterator[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    plan = ipaddress.ip_network(g.address_plan, strict=False)
    for net in plan.subnets(new_prefix=g.branch_prefix):
        if not any(net.version == t.version and net.overlaps(t) for t in taken):
            yield net


def _dps(s: sc.Scenario, places: tuple[Place, ...], by_place: dict[str, Place]) -> tuple[DP, ...]:
    dps: list[DP] = []
    hosts: dict[int, int] = {}  # place -> next DP host number

    def add(
        name: str,
        kind: rule.DPKind,
        place: Place,
        bits: bool,
        protects: frozenset[int],
        limit: int | None,
    ) -> None:
        host = hosts.get(place.index, 1)
        hosts[place.index] = host + 1
        domain = rule.DistributionPoint(
            id=len(dps) + 1,
            name=name,
            url=f"sim://{name}",
            kind=kind,
            bits_enabled=bits,
            site_code=s.site_code,
            protected_boundary_ids=protects,
            ip_addresses=(place.host(host),),
            ad_site=place.ad_site,
        )
        dps.append(DP(domain, place.index, in_force(kind, limit, None)))

    names: dict[str, str] = {}
    for n, d in enumerate(s.distribution_points):
        field = f"distribution_points[{n}]"
        if d.name in names:
            raise _fail(f"{field}.name", f"{d.name!r} is already the name of {names[d.name]}")
        names[d.name] = field
        place = by_place.get(d.location)
        if place is None:
            raise _fail(f"{field}.location", f"no location named {d.location!r}")
        protects = set()
        for k, boundary in enumerate(d.protects):
            if boundary not in by_place:
                raise _fail(f"{field}.protects[{k}]", f"no boundary named {boundary!r}")
            protects.add(by_place[boundary].boundary_id)
        add(d.name, d.kind, place, d.bits_enabled, frozenset(protects), d.max_transfers)
    for place in places[1:]:
        spec = _branch_dp(s, place.index)
        if spec is None:
            continue
        name = spec.name or f"{place.name}-DP"
        if name in names:
            raise _fail("branches", f"branch DP name {name!r} is already {names[name]}")
        names[name] = f"the branch DP of {place.name}"
        add(
            name,
            "branch",
            place,
            spec.bits_enabled,
            frozenset({place.boundary_id}),
            spec.max_transfers,
        )
    return tuple(dps)


def _branch_dp(s: sc.Scenario, index: int) -> sc.BranchDP | None:
    if index <= len(s.branches):
        return s.branches[index - 1].branch_dp
    assert s.generate is not None
    return s.generate.branch_dp


def _packages(s: sc.Scenario, dp_by_name: dict[str, DP]) -> tuple[Package, ...]:
    packages = []
    names: set[str] = set()
    for n, p in enumerate(s.packages):
        field = f"packages[{n}]"
        if p.name in names:
            raise _fail(f"{field}.name", f"a package named {p.name!r} is already listed")
        names.add(p.name)
        staged = []
        for k, dp_name in enumerate(p.staged_on):
            dp = dp_by_name.get(dp_name)
            if dp is None:
                raise _fail(f"{field}.staged_on[{k}]", f"no distribution point named {dp_name!r}")
            if dp.rule.kind != "standard":
                raise _fail(
                    f"{field}.staged_on[{k}]",
                    f"{dp_name!r} is a branch DP: branch DPs get content on demand or by admin",
                )
            staged.append(dp.rule.id)
        package_id = f"{s.site_code}{n + 1:05X}"
        packages.append(
            Package(
                package_id,
                p.name,
                round(p.size_mib * MIB),
                p.files,
                p.on_demand,
                tuple(staged),
                p.staged_at,
            )
        )
    return tuple(packages)


def _advertisement(
    s: sc.Scenario,
    n: int,
    a: sc.Advertisement,
    packages: dict[str, Package],
    places: dict[str, Place],
) -> Advertisement:
    field = f"advertisements[{n}]"
    package = packages.get(a.package)
    if package is None:
        raise _fail(f"{field}.package", f"no package named {a.package!r}")
    targets: frozenset[int] | None = None
    if a.collection != "all":
        missing = [name for name in a.collection if name not in places]
        if missing:
            raise _fail(f"{field}.collection", f"no location named {missing[0]!r}")
        targets = frozenset(places[name].index for name in a.collection)
    domain = rule.Advertisement(str(n + 1), package.id, a.protected_only, a.on_slow, a.allow_remote)
    return Advertisement(domain, package, targets, a.available_at)


def _events(
    s: sc.Scenario,
    dps: tuple[DP, ...],
    dp_by_name: dict[str, DP],
    places: dict[str, Place],
    packages: dict[str, Package],
) -> tuple[tuple[DPDown, ...], tuple[LinkCut, ...], tuple[NewVersion, ...]]:
    downs, cuts, versions = [], [], []
    for n, e in enumerate(s.events):
        field = f"events[{n}]"
        if isinstance(e, sc.DPDown):
            if e.dp is not None:
                dp = dp_by_name.get(e.dp)
                if dp is None:
                    raise _fail(f"{field}.dp", f"no distribution point named {e.dp!r}")
                ids: tuple[int, ...] = (dp.rule.id,)
            else:
                assert e.branch_dp_fraction is not None
                branch = [dp.rule.id for dp in dps if dp.rule.kind == "branch"]
                if not branch:
                    raise _fail(f"{field}.branch_dp_fraction", "the scenario has no branch DP")
                ids = _spread(branch, e.branch_dp_fraction)
            downs.append(DPDown(ids, sc.Window(from_s=e.from_s, until_s=e.until_s)))
        elif isinstance(e, sc.LinkCut):
            place = places.get(e.location)
            if place is None or place.wan is None:
                raise _fail(f"{field}.location", f"no branch named {e.location!r}")
            cuts.append(LinkCut(place.index, sc.Window(from_s=e.from_s, until_s=e.until_s)))
        else:
            package = packages.get(e.package)
            if package is None:
                raise _fail(f"{field}.package", f"no package named {e.package!r}")
            versions.append(NewVersion(package, e.at_s))
    return tuple(downs), tuple(cuts), tuple(versions)


def _spread(ids: list[int], fraction: float) -> tuple[int, ...]:
    """`fraction` of `ids`, evenly spread over the list (deterministic)."""
    count = max(1, round(len(ids) * fraction))
    step = len(ids) / count
    return tuple(ids[int(k * step)] for k in range(count))
