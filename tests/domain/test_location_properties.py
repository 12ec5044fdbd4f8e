"""Properties of the location rule over random sites, and agreement with a literal,
brute-force reading of the rule (scan every boundary and DP, no precomputation)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from peerdp.domain.boundaries import Boundary, BoundaryType, parse_boundary_value
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
    # Weighted so that most random sites hold the content somewhere.
    *["installed"] * 6,
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


# A 32-address IPv4 universe and a few IPv6 addresses, so random things overlap a lot.
_v4 = st.integers(0, 31).map(lambda n: str(ipaddress.IPv4Address(0x0A000000 + n)))
_v6 = st.integers(0, 15).map(lambda n: str(ipaddress.IPv6Address((0xFD00 << 112) + n)))
_address = st.one_of(_v4, _v4, _v4, _v4, _v6, st.just("not-an-address"))


@st.composite
def _boundary(draw: st.DrawFn, id_: int) -> Boundary:
    type_: BoundaryType = draw(st.sampled_from(["ip_subnet", "ip_range", "ad_site"]))
    if type_ == "ip_subnet":
        # Hypothesis favours simple draws (False, the first option...): make them IPv4.
        if not draw(st.booleans()):
            base = ipaddress.IPv4Address(0x0A000000 + draw(st.integers(0, 31)))
            value = str(ipaddress.ip_network(f"{base}/{draw(st.integers(27, 31))}", strict=False))
        else:
            base6 = ipaddress.IPv6Address((0xFD00 << 112) + draw(st.integers(0, 15)))
            value = str(
                ipaddress.ip_network(f"{base6}/{draw(st.integers(124, 128))}", strict=False)
            )
    elif type_ == "ip_range":
        low = draw(st.integers(0, 31))
        high = draw(st.integers(low, 31))
        v4 = ipaddress.IPv4Address
        value = f"{v4(0x0A000000 + low)}-{v4(0x0A000000 + high)}"
    else:
        value = draw(st.sampled_from(SITES))
    return Boundary(id_, f"B{id_}", type_, value, "fast" if draw(st.booleans()) else "slow")


@st.composite
def _site(draw: st.DrawFn) -> Site:
    boundaries = [draw(_boundary(i)) for i in range(1, draw(st.integers(1, 10)) + 1)]
    boundary_ids = [b.id for b in boundaries] + [99]  # 99: a deleted boundary
    inside = _inside_some(boundaries)
    dps = []
    for dp_id in range(1, draw(st.integers(1, 8)) + 1):
        protects = draw(
            st.frozensets(st.sampled_from(boundary_ids), max_size=2) | st.just(frozenset[int]())
        )
        dps.append(
            DistributionPoint(
                id=dp_id,
                name=draw(st.sampled_from(["alpha", "bravo", "charlie"])),
                url=f"http://dp{dp_id}",
                kind=draw(st.sampled_from(["branch", "standard"])),
                bits_enabled=draw(st.sampled_from([True, False])),
                site_code=draw(st.sampled_from(["PS1", "PS2"])),
                protected_boundary_ids=protects,
                ip_addresses=tuple(draw(st.lists(inside | _address, min_size=1, max_size=2))),
                ad_site=draw(st.none() | st.sampled_from(SITES)),
            )
        )
    rows = {}
    for dp in dps:
        if draw(st.integers(0, 3)) != 3:  # most DPs are on the package's DP list
            version = draw(st.sampled_from([1, 1, 1, 2]))
            rows[dp.id] = PackageDPRow(dp.id, draw(st.sampled_from(STATES)), version)
    return Site(boundaries, dps, rows)


@st.composite
def _client(draw: st.DrawFn, site: Site) -> Client:
    """A client often inside a boundary or next to a DP, so that DPs are often local and
    protected DPs often cover it."""
    with_addresses = draw(st.integers(0, 5)) != 5  # a few clients report only an AD site
    nearby = _inside_some(site.boundaries) | st.sampled_from(
        [a for dp in site.dps for a in dp.ip_addresses]
    )
    addresses = draw(st.lists(nearby | _address, min_size=1, max_size=2)) if with_addresses else []
    return Client("WS", tuple(addresses), draw(st.none() | st.sampled_from(SITES)))


def _inside_some(boundaries: list[Boundary]) -> st.SearchStrategy[str]:
    inside = [_last_address(b) for b in boundaries if b.type != "ad_site"]
    return st.sampled_from(inside) if inside else _address


def _last_address(boundary: Boundary) -> str:
    span = parse_boundary_value(boundary.type, boundary.value)
    assert not isinstance(span, str)
    return str(
        ipaddress.ip_address(span.last) if span.version == 4 else ipaddress.IPv6Address(span.last)
    )


_advertisement = st.builds(
    Advertisement,
    id=st.just("ADV1"),
    package_id=st.just(PKG),
    protected_only=st.sampled_from([True, True, False]),  # on-demand needs it
    on_slow=st.sampled_from(["do_not_run", "download"]),
    allow_remote=st.booleans(),
)
_package = st.builds(
    Package,
    id=st.just(PKG),
    source_version=st.sampled_from([1, 1, 2]),
    on_demand=st.sampled_from([True, True, False]),
)


@dataclass(frozen=True)
class Scenario:
    site: Site
    client: Client
    adv: Advertisement
    package: Package


@st.composite
def _scenario(draw: st.DrawFn) -> Scenario:
    site = draw(_site())
    return Scenario(site, draw(_client(site)), draw(_advertisement), draw(_package))


@st.composite
def _on_demand_scenario(draw: st.DrawFn) -> Scenario:
    """Conditions (b), (c), (d) hold by construction: a protected branch DP covers the
    client, the advertisement is protected_only, the package allows on-demand."""
    site = draw(_site())
    home = draw(st.sampled_from(site.boundaries))
    branch = replace(
        site.dps[0],
        kind="branch",
        protected_boundary_ids=site.dps[0].protected_boundary_ids | {home.id},
    )
    site = replace(site, dps=[branch, *site.dps[1:]])
    client = draw(_client(site))
    if home.type == "ad_site":
        client = replace(client, ad_site=home.value)
    else:
        client = replace(client, ip_addresses=(_last_address(home), *client.ip_addresses[:1]))
    adv = replace(draw(_advertisement), protected_only=True)
    package = replace(draw(_package), on_demand=True)
    return Scenario(site, client, adv, package)


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
    """The rule as its docstring states it, read literally: scan everything, compute
    nothing ahead."""
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


@settings(max_examples=200, deadline=None)
@given(scenario=_scenario() | _on_demand_scenario())
def test_agrees_with_the_literal_reading_of_the_rule(scenario: Scenario) -> None:
    site, client, adv, package = scenario.site, scenario.client, scenario.adv, scenario.package
    decision = _decide(site, client, adv, package)
    expected = _reference(site, client, adv, package)
    assert [r.dp.id for r in decision.distribution_points] == expected.order
    assert decision.reason == expected.reason
    assert [(a.dp_id, a.action) for a in decision.on_demand] == expected.actions


@settings(max_examples=150, deadline=None)
@given(scenario=_scenario())
def test_safety_properties(scenario: Scenario) -> None:
    site, client, adv, package = scenario.site, scenario.client, scenario.adv, scenario.package
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


@settings(max_examples=75, deadline=None)
@given(scenario=_scenario())
def test_explain_and_incremental_views_change_nothing(scenario: Scenario) -> None:
    site, client, adv, package = scenario.site, scenario.client, scenario.adv, scenario.package
    plain = _decide(site, client, adv, package)
    explained = _decide(site, client, adv, package, explain=True)
    assert explained.trace
    assert replace(explained, trace=()) == plain

    incremental = SiteView(site.boundaries, site.dps, {PKG: {}}).with_package_rows(PKG, site.rows)
    assert locate(incremental, client, adv, package) == plain


@settings(max_examples=30, deadline=None)
@given(scenario=_scenario())
def test_not_targeted_is_always_empty(scenario: Scenario) -> None:
    site, client, adv, package = scenario.site, scenario.client, scenario.adv, scenario.package
    view = SiteView(site.boundaries, site.dps, {PKG: site.rows})
    decision = locate(view, client, adv, package, targeted=False)
    assert (decision.distribution_points, decision.reason, decision.on_demand) == (
        (),
        "not_targeted",
        (),
    )


@st.composite
def _request_stream(draw: st.DrawFn) -> tuple[Site, list[tuple[Client, Advertisement, Package]]]:
    site = draw(_site())
    requests = draw(
        st.lists(st.tuples(_client(site), _advertisement, _package), min_size=2, max_size=12)
    )
    return site, requests


@settings(max_examples=50, deadline=None)
@given(stream=_request_stream())
def test_a_long_lived_view_answers_like_a_fresh_one(
    stream: tuple[Site, list[tuple[Client, Advertisement, Package]]],
) -> None:
    """The view memoises placements and rankings; the answers must not depend on them."""
    site, requests = stream
    shared = SiteView(site.boundaries, site.dps, {PKG: site.rows})
    for client, adv, package in requests + requests:  # twice: the second pass hits the memos
        fresh = SiteView(site.boundaries, site.dps, {PKG: site.rows})
        assert locate(shared, client, adv, package) == locate(fresh, client, adv, package)
