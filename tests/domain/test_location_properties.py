"""Properties of the location rule over random sites, and agreement with a literal,
brute-force reading of the rule (scan every boundary and DP, no precomputation)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from peerdp.domain.boundaries import Boundary, BoundaryType
from peerdp.domain.location import (
    Advertisement,
    Client,
    DistributionPoint,
    LocationDecision,
    Package,
    PackageDPRow,
    SiteView,
    locate,
)

PKG = "PS100001"
STATES = (
    "installed",
    "installed",  # weighted: most interesting sites hold content somewhere
    "install_pending",
    "install_retrying",
    "install_failed",
    "removal_pending",
    "removal_retrying",
    "removal_failed",
)
SITES = ("A", "a", "B", "C")


@dataclass(frozen=True)
class Site:
    boundaries: list[Boundary]
    dps: list[DistributionPoint]
    rows: dict[int, PackageDPRow]


# A 64-address IPv4 universe and a few IPv6 addresses, so random things overlap a lot.
_v4 = st.integers(0, 63).map(lambda n: str(ipaddress.IPv4Address(0x0A000000 + n)))
_v6 = st.integers(0, 15).map(lambda n: str(ipaddress.IPv6Address((0xFD00 << 112) + n)))
_address = st.one_of(_v4, _v4, _v6, st.just("not-an-address"))


@st.composite
def _boundary(draw: st.DrawFn, id_: int) -> Boundary:
    type_: BoundaryType = draw(st.sampled_from(["ip_subnet", "ip_range", "ad_site"]))
    if type_ == "ip_subnet":
        if draw(st.booleans()):
            base = ipaddress.IPv4Address(0x0A000000 + draw(st.integers(0, 63)))
            value = str(ipaddress.ip_network(f"{base}/{draw(st.integers(26, 32))}", strict=False))
        else:
            base6 = ipaddress.IPv6Address((0xFD00 << 112) + draw(st.integers(0, 15)))
            value = str(
                ipaddress.ip_network(f"{base6}/{draw(st.integers(124, 128))}", strict=False)
            )
    elif type_ == "ip_range":
        low = draw(st.integers(0, 63))
        high = draw(st.integers(low, 63))
        v4 = ipaddress.IPv4Address
        value = f"{v4(0x0A000000 + low)}-{v4(0x0A000000 + high)}"
    else:
        value = draw(st.sampled_from(SITES))
    return Boundary(id_, f"B{id_}", type_, value, "fast" if draw(st.booleans()) else "slow")


@st.composite
def _site(draw: st.DrawFn) -> Site:
    boundaries = [draw(_boundary(i)) for i in range(1, draw(st.integers(0, 8)) + 1)]
    boundary_ids = [b.id for b in boundaries] + [99]  # 99: a deleted boundary
    dps = []
    for dp_id in range(1, draw(st.integers(1, 8)) + 1):
        protects = draw(st.frozensets(st.sampled_from(boundary_ids), max_size=2))
        dps.append(
            DistributionPoint(
                id=dp_id,
                name=draw(st.sampled_from(["alpha", "bravo", "charlie"])),
                url=f"http://dp{dp_id}",
                kind="branch" if draw(st.booleans()) else "standard",
                bits_enabled=draw(st.booleans()),
                site_code=draw(st.sampled_from(["PS1", "PS2"])),
                protected_boundary_ids=protects,
                ip_addresses=tuple(draw(st.lists(_address, max_size=2))),
                ad_site=draw(st.none() | st.sampled_from(SITES)),
            )
        )
    rows = {}
    for dp in dps:
        if draw(st.integers(0, 3)) > 0:
            rows[dp.id] = PackageDPRow(
                dp.id, draw(st.sampled_from(STATES)), draw(st.sampled_from([1, 2]))
            )
    return Site(boundaries, dps, rows)


_client = st.builds(
    Client,
    name=st.just("WS"),
    ip_addresses=st.lists(_address, max_size=2).map(tuple),
    ad_site=st.none() | st.sampled_from(SITES),
)
_advertisement = st.builds(
    Advertisement,
    id=st.just("ADV1"),
    package_id=st.just(PKG),
    protected_only=st.booleans(),
    on_slow=st.sampled_from(["do_not_run", "download"]),
    allow_remote=st.booleans(),
)
_package = st.builds(
    Package, id=st.just(PKG), source_version=st.sampled_from([1, 2]), on_demand=st.booleans()
)


# --------------------------------------------------------------- the literal reference


def _contains(boundary: Boundary, addresses: tuple[str, ...], ad_site: str | None) -> bool:
    if boundary.type == "ad_site":
        return ad_site is not None and ad_site.strip().casefold() == boundary.value.casefold()
    parsed = []
    for text in addresses:
        try:
            parsed.append(ipaddress.ip_address(text))
        except ValueError:
            continue
    if boundary.type == "ip_subnet":
        network = ipaddress.ip_network(boundary.value)
        return any(a.version == network.version and a in network for a in parsed)
    first, last = (int(ipaddress.ip_address(x)) for x in boundary.value.split("-"))
    return any(a.version == 4 and first <= int(a) <= last for a in parsed)


@dataclass(frozen=True)
class Expected:
    order: list[int]
    reason: str | None
    actions: list[tuple[int, str]]


def _reference(site: Site, client: Client, adv: Advertisement, package: Package) -> Expected:
    """DESIGN §3 read literally: scan everything, compute nothing ahead."""
    by_id = {b.id: b for b in site.boundaries}
    client_ids = {
        b.id for b in site.boundaries if _contains(b, client.ip_addresses, client.ad_site)
    }
    covering = [dp for dp in site.dps if dp.protected_boundary_ids & client_ids]
    restricted = adv.protected_only and bool(covering)
    kept: list[tuple[tuple[int, int, int, str, int], int]] = []
    slow_only_drop = False
    for dp in site.dps:
        row = site.rows.get(dp.id)
        if row is None or row.state != "installed" or row.source_version != package.source_version:
            continue
        if dp.protected and dp not in covering:
            continue
        if restricted and not dp.protected:
            continue
        own = {b.id for b in site.boundaries if _contains(b, dp.ip_addresses, dp.ad_site)}
        shared = (own | dp.protected_boundary_ids) & client_ids
        fast = any(by_id[i].connection == "fast" for i in shared)
        if not shared and not adv.allow_remote:
            continue
        if not fast and adv.on_slow == "do_not_run":
            slow_only_drop = True
            continue
        group = 0 if dp.protected else 1 if shared else 2
        same_site = (
            client.ad_site is not None
            and dp.ad_site is not None
            and client.ad_site.casefold() == dp.ad_site.casefold()
        )
        if any(by_id[i].type != "ad_site" for i in shared):
            tier = 0
        elif same_site or any(by_id[i].type == "ad_site" for i in shared):
            tier = 1
        else:
            tier = 2
        kept.append(((group, tier, 0 if dp.bits_enabled else 1, dp.name, dp.id), dp.id))
    if kept:
        return Expected([dp_id for _, dp_id in sorted(kept)], None, [])

    sources = {
        dp.site_code
        for dp in site.dps
        if dp.kind == "standard"
        and dp.bits_enabled
        and (r := site.rows.get(dp.id)) is not None
        and r.state == "installed"
        and r.source_version == package.source_version
    }
    actions = []
    for dp in sorted((d for d in covering if d.kind == "branch"), key=lambda d: d.id):
        row = site.rows.get(dp.id)
        if (
            row is not None
            and row.state == "installed"
            and row.source_version == package.source_version
        ):
            continue  # already holds it
        if row is None or row.state in (
            "install_failed",
            "removal_pending",
            "removal_retrying",
            "removal_failed",
        ):
            actions.append((dp.id, "add" if dp.site_code in sources else "delayed"))
        else:
            actions.append((dp.id, "already_listed"))
    if adv.protected_only and package.on_demand and actions:
        kinds = {a for _, a in actions}
        reason = (
            "on_demand_triggered"
            if "add" in kinds
            else "on_demand_delayed"
            if "delayed" in kinds
            else "on_demand_in_progress"
        )
        return Expected([], reason, actions)
    return Expected(
        [], "slow_boundary_do_not_run" if slow_only_drop else "no_content_accessible", []
    )


# ---------------------------------------------------------------------------- properties


def _decide(
    site: Site, client: Client, adv: Advertisement, package: Package, explain: bool = False
) -> LocationDecision:
    view = SiteView(site.boundaries, site.dps, {PKG: site.rows})
    return locate(view, client, adv, package, explain=explain)


def _client_boundary_ids(decision: LocationDecision) -> set[int]:
    return {m.boundary.id for m in decision.client_boundaries}


@settings(max_examples=250, deadline=None)
@given(site=_site(), client=_client, adv=_advertisement, package=_package)
def test_agrees_with_the_literal_reading_of_the_rule(
    site: Site, client: Client, adv: Advertisement, package: Package
) -> None:
    decision = _decide(site, client, adv, package)
    expected = _reference(site, client, adv, package)
    assert [r.dp.id for r in decision.distribution_points] == expected.order
    assert decision.reason == expected.reason
    assert [(a.dp_id, a.action) for a in decision.on_demand] == expected.actions


@settings(max_examples=250, deadline=None)
@given(site=_site(), client=_client, adv=_advertisement, package=_package)
def test_safety_properties(
    site: Site, client: Client, adv: Advertisement, package: Package
) -> None:
    decision = _decide(site, client, adv, package)
    client_ids = _client_boundary_ids(decision)
    returned = decision.distribution_points

    for ranked in returned:
        dp = ranked.dp
        # Never a DP without the content installed at this source version.
        row = site.rows[dp.id]
        assert (row.state, row.source_version) == ("installed", package.source_version)
        # Never a protected DP to a client outside its protected boundaries.
        if dp.protected:
            assert dp.protected_boundary_ids & client_ids
        # Options honoured.
        if not adv.allow_remote:
            assert ranked.locality == "local"
        if adv.on_slow == "do_not_run":
            assert ranked.connection == "fast"

    # Never an unprotected DP to a protected_only client inside protected boundaries.
    inside_protected = any(dp.protected_boundary_ids & client_ids for dp in site.dps)
    if adv.protected_only and inside_protected:
        assert all(r.dp.protected for r in returned)

    # Order respects the groups: protected, local, remote; and the full rank key.
    groups = [r.group for r in returned]
    assert groups == sorted(groups)
    assert [r.rank_key for r in returned] == sorted(r.rank_key for r in returned)
    for ranked in returned:
        assert (ranked.group == 0) == ranked.protected
        assert (ranked.group == 2) == (ranked.locality == "remote")

    # A reason exactly when the list is empty; on-demand only then, only for covering branch DPs.
    assert (decision.reason is None) == bool(returned)
    if returned:
        assert decision.on_demand == ()
    for action in decision.on_demand:
        dp = next(d for d in site.dps if d.id == action.dp_id)
        assert dp.kind == "branch" and dp.protected_boundary_ids & client_ids
        assert adv.protected_only and package.on_demand


@settings(max_examples=100, deadline=None)
@given(site=_site(), client=_client, adv=_advertisement, package=_package)
def test_explain_and_incremental_views_change_nothing(
    site: Site, client: Client, adv: Advertisement, package: Package
) -> None:
    plain = _decide(site, client, adv, package)
    explained = _decide(site, client, adv, package, explain=True)
    assert explained.trace
    assert replace(explained, trace=()) == plain

    incremental = SiteView(site.boundaries, site.dps, {PKG: {}}).with_package_rows(PKG, site.rows)
    assert locate(incremental, client, adv, package) == plain


@settings(max_examples=50, deadline=None)
@given(site=_site(), client=_client, adv=_advertisement, package=_package)
def test_not_targeted_is_always_empty(
    site: Site, client: Client, adv: Advertisement, package: Package
) -> None:
    view = SiteView(site.boundaries, site.dps, {PKG: site.rows})
    decision = locate(view, client, adv, package, targeted=False)
    assert (decision.distribution_points, decision.reason, decision.on_demand) == (
        (),
        "not_targeted",
        (),
    )
