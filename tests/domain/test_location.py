"""The content location rule and the on-demand decision, table-driven over one small site.

The site (boundary ids in brackets; ``P`` = protects):

    HQ LAN       [1] 10.0.0.0/16 fast      HQ-A (standard, BITS, PS1), HQ-B (standard, PS1)
    BR1 LAN      [2] 10.1.1.0/24 fast      BR1-DP (branch, PS1, P 2+3)
    BR1 site     [3] AD site BRANCH-01 fast
    BR2 LAN      [4] 10.1.2.0/24 slow      BR2-DP (branch, PS1, P 4)
    VPN pool     [5] 10.9.0.1-10.9.0.200 slow   VPN-DP (standard, BITS, PS1)
    BR3 LAN v6   [6] fd00:3::/64 fast      BR3-DP (branch, PS1, P 6)
    REGION       [7] 10.2.0.0/16 fast      REGION-DP (standard, BITS, PS1, P 7)
    HQ site      [8] AD site HQ fast
    BR4 LAN      [9] 10.1.4.0/24 fast      BR4-DP (branch, site PS2, P 9)
    (no boundary)                          PS2-PLAIN (standard, PS2),
                                           PS2-BITS (standard, BITS, PS2),
                                           PS2-PEER (branch, BITS, PS2)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pytest

from peerdp.domain.boundaries import Boundary
from peerdp.domain.location import (
    Advertisement,
    Client,
    DistributionPoint,
    LocationDecision,
    OnDemandAction,
    Package,
    PackageDPRow,
    SiteView,
    locate,
)

PKG = "PS100001"
VERSION = 3

BOUNDARIES = [
    Boundary(1, "HQ LAN", "ip_subnet", "10.0.0.0/16", "fast"),
    Boundary(2, "BR1 LAN", "ip_subnet", "10.1.1.0/24", "fast"),
    Boundary(3, "BR1 site", "ad_site", "BRANCH-01", "fast"),
    Boundary(4, "BR2 LAN", "ip_subnet", "10.1.2.0/24", "slow"),
    Boundary(5, "VPN pool", "ip_range", "10.9.0.1-10.9.0.200", "slow"),
    Boundary(6, "BR3 LAN v6", "ip_subnet", "fd00:3::/64", "fast"),
    Boundary(7, "REGION", "ip_subnet", "10.2.0.0/16", "fast"),
    Boundary(8, "HQ site", "ad_site", "HQ", "fast"),
    Boundary(9, "BR4 LAN", "ip_subnet", "10.1.4.0/24", "fast"),
]


def _dp(
    id_: int,
    name: str,
    kind: str,
    address: str,
    *,
    bits: bool = True,
    protects: frozenset[int] = frozenset(),
    site: str = "PS1",
    ad_site: str | None = None,
) -> DistributionPoint:
    return DistributionPoint(
        id=id_,
        name=name,
        url=f"http://{name.lower()}:8080",
        kind="branch" if kind == "branch" else "standard",
        bits_enabled=bits,
        site_code=site,
        protected_boundary_ids=protects,
        ip_addresses=(address,),
        ad_site=ad_site,
    )


DPS = [
    _dp(1, "HQ-A", "standard", "10.0.0.5", ad_site="HQ"),
    _dp(2, "HQ-B", "standard", "10.0.0.6", bits=False, ad_site="HQ"),
    _dp(3, "BR1-DP", "branch", "10.1.1.5", protects=frozenset({2, 3}), ad_site="BRANCH-01"),
    _dp(4, "BR2-DP", "branch", "10.1.2.5", protects=frozenset({4})),
    _dp(5, "VPN-DP", "standard", "10.9.0.10"),
    _dp(6, "BR3-DP", "branch", "fd00:3::5", protects=frozenset({6})),
    _dp(7, "REGION-DP", "standard", "10.2.0.5", protects=frozenset({7})),
    _dp(8, "BR4-DP", "branch", "10.1.4.5", protects=frozenset({9}), site="PS2"),
    _dp(9, "PS2-PLAIN", "standard", "172.16.0.5", bits=False, site="PS2"),
    _dp(10, "PS2-BITS", "standard", "172.16.0.6", site="PS2"),
    _dp(11, "PS2-PEER", "branch", "172.16.0.7", site="PS2"),  # unprotected branch DP
]
DP_ID = {dp.name: dp.id for dp in DPS}

CLIENTS = {
    "br1": Client("BR1-WS", ("10.1.1.20",), None),
    "br1-by-ad-site": Client("BR1-LAPTOP", (), "branch-01"),
    "br2": Client("BR2-WS", ("10.1.2.20",), None),
    "br3-v6": Client("BR3-WS", ("fd00:3::20",), None),
    "br4": Client("BR4-WS", ("10.1.4.20",), None),
    "vpn": Client("VPN-WS", ("10.9.0.50",), None),
    "hq": Client("HQ-WS", ("10.0.0.20",), "HQ"),
    "region": Client("REGION-WS", ("10.2.3.4",), None),
    "nowhere": Client("HOME-WS", ("192.168.7.7",), None),
    "junk": Client("ODD-WS", ("not-an-ip",), None),
}


def installed(*names: str, version: int = VERSION) -> dict[int, PackageDPRow]:
    return {DP_ID[n]: PackageDPRow(DP_ID[n], "installed", version) for n in names}


def row(name: str, state: str, version: int = VERSION) -> dict[int, PackageDPRow]:
    return {DP_ID[name]: PackageDPRow(DP_ID[name], state, version)}


def decide(
    client: str,
    rows: Mapping[int, PackageDPRow],
    *,
    protected_only: bool = True,
    on_slow: str = "download",
    allow_remote: bool = True,
    on_demand: bool = True,
    targeted: bool = True,
    explain: bool = False,
) -> LocationDecision:
    view = SiteView(BOUNDARIES, DPS, {PKG: rows})
    adv = Advertisement(
        "ADV1",
        PKG,
        protected_only=protected_only,
        on_slow="do_not_run" if on_slow == "do_not_run" else "download",
        allow_remote=allow_remote,
    )
    package = Package(PKG, VERSION, on_demand)
    return locate(view, CLIENTS[client], adv, package, targeted=targeted, explain=explain)


def names(decision: LocationDecision) -> list[str]:
    return [r.dp.name for r in decision.distribution_points]


def actions(decision: LocationDecision) -> list[tuple[str, str]]:
    by_id = {dp.id: dp.name for dp in DPS}
    return [(by_id[a.dp_id], a.action) for a in decision.on_demand]


# ---------------------------------------------------------- the four seed conditions


@pytest.mark.parametrize("list_empty", [True, False])
@pytest.mark.parametrize("branch_covers", [True, False])
@pytest.mark.parametrize("protected_only", [True, False])
@pytest.mark.parametrize("on_demand", [True, False])
def test_on_demand_fires_only_when_all_four_seed_conditions_hold(
    list_empty: bool, branch_covers: bool, protected_only: bool, on_demand: bool
) -> None:
    # (b) false: the REGION client is covered only by a protected *standard* DP.
    client = "br1" if branch_covers else "region"
    # (a): content on the HQ DP only, remote DPs refused -> nothing usable; or everywhere.
    rows = installed("HQ-A") if list_empty else installed("HQ-A", "BR1-DP", "REGION-DP")
    decision = decide(
        client,
        rows,
        protected_only=protected_only,
        allow_remote=not list_empty,
        on_demand=on_demand,
    )

    if not list_empty:
        assert decision.distribution_points
        assert decision.reason is None
        assert decision.on_demand == ()
        assert decision.on_demand_check is None
        return
    assert decision.distribution_points == ()
    check = decision.on_demand_check
    assert check is not None
    failed_letters = {c[:3] for c in check.failed_conditions}
    expected_failed = {
        letter
        for letter, holds in (("(b)", branch_covers), ("(c)", protected_only), ("(d)", on_demand))
        if not holds
    }
    assert failed_letters == expected_failed
    if branch_covers and protected_only and on_demand:
        assert check.fires
        assert decision.reason == "on_demand_triggered"
        assert actions(decision) == [("BR1-DP", "add")]
    else:
        assert not check.fires
        assert decision.reason == "no_content_accessible"
        assert decision.on_demand == ()


# ------------------------------------------------------------------ the rule, by table


@dataclass(frozen=True)
class Case:
    id: str
    client: str
    rows: dict[int, PackageDPRow]
    expect: list[str]
    reason: str | None = None
    on_demand: list[tuple[str, str]] = field(default_factory=list)
    protected_only: bool = True
    on_slow: str = "download"
    allow_remote: bool = True
    package_on_demand: bool = True
    localities: list[str] | None = None
    connections: list[str] | None = None


CASES = [
    # --- protected vs unprotected
    Case("protected DP serves its branch", "br1", installed("BR1-DP", "HQ-A"), ["BR1-DP"]),
    Case(
        "not protected_only: protected first, then unprotected",
        "br1",
        installed("BR1-DP", "HQ-A", "HQ-B"),
        ["BR1-DP", "HQ-A", "HQ-B"],
        protected_only=False,
        localities=["local", "remote", "remote"],
        connections=["fast", "slow", "slow"],
    ),
    Case(
        "protected DP never serves a client outside its boundaries",
        "hq",
        installed("BR1-DP", "BR2-DP", "REGION-DP"),
        [],
        reason="no_content_accessible",
    ),
    Case(
        "protected_only excludes unprotected DPs for covered clients",
        "region",
        installed("HQ-A", "VPN-DP"),
        [],
        reason="no_content_accessible",  # REGION-DP is standard: (b) fails
    ),
    Case(
        "protected_only is moot for a client no protected DP covers",
        "hq",
        installed("HQ-A", "HQ-B"),
        ["HQ-A", "HQ-B"],
        localities=["local", "local"],
        connections=["fast", "fast"],
    ),
    Case(
        "protected standard DP serves its region",
        "region",
        installed("REGION-DP", "HQ-A"),
        ["REGION-DP"],
    ),
    # --- content must be installed at exactly this source version
    Case(
        "older version is not content",
        "hq",
        installed("HQ-A", version=VERSION - 1) | installed("HQ-B"),
        ["HQ-B"],
    ),
    Case(
        "newer version is not content either",
        "hq",
        installed("HQ-A", "HQ-B", version=VERSION + 1),
        [],
        reason="no_content_accessible",
    ),
    *[
        Case(f"state {state} is not content", "hq", row("HQ-A", state), [], "no_content_accessible")
        for state in (
            "install_pending",
            "install_retrying",
            "install_failed",
            "removal_pending",
            "removal_retrying",
            "removal_failed",
        )
    ],
    # --- remote and slow options
    Case(
        "remote refused when the advertisement does not allow it",
        "br1",
        installed("HQ-A"),
        [],
        reason="no_content_accessible",
        protected_only=False,
        allow_remote=False,
    ),
    Case(
        "remote DP is slow: dropped by do_not_run",
        "br1",
        installed("HQ-A"),
        [],
        reason="slow_boundary_do_not_run",
        protected_only=False,
        on_slow="do_not_run",
    ),
    Case(
        "client in no boundary: everything remote and slow",
        "nowhere",
        installed("HQ-A", "BR1-DP"),
        ["HQ-A"],
        localities=["remote"],
        connections=["slow"],
    ),
    Case(
        "client in no boundary and do_not_run",
        "nowhere",
        installed("HQ-A"),
        [],
        reason="slow_boundary_do_not_run",
        on_slow="do_not_run",
    ),
    Case(
        "unparseable client address counts as no boundary",
        "junk",
        installed("HQ-A"),
        [],
        reason="no_content_accessible",
        allow_remote=False,
    ),
    Case(
        "protected DP on a slow boundary: local but slow",
        "br2",
        installed("BR2-DP"),
        ["BR2-DP"],
        localities=["local"],
        connections=["slow"],
    ),
    Case(
        "protected DP on a slow boundary with do_not_run: no on-demand, it has the content",
        "br2",
        installed("BR2-DP"),
        [],
        reason="slow_boundary_do_not_run",
        on_slow="do_not_run",
    ),
    Case(
        "slow boundary, branch DP lacks content: on-demand still fires",
        "br2",
        installed("HQ-A"),
        [],
        reason="on_demand_triggered",
        on_demand=[("BR2-DP", "add")],
        on_slow="do_not_run",
    ),
    Case(
        "address range match, local over a slow boundary",
        "vpn",
        installed("VPN-DP", "HQ-A"),
        ["VPN-DP", "HQ-A"],
        localities=["local", "remote"],
        connections=["slow", "slow"],
    ),
    Case(
        "address range match, slow local DP dropped by do_not_run",
        "vpn",
        installed("VPN-DP"),
        [],
        reason="slow_boundary_do_not_run",
        on_slow="do_not_run",
    ),
    # --- match kinds
    Case("IPv6 prefix match", "br3-v6", installed("BR3-DP", "HQ-A"), ["BR3-DP"]),
    Case(
        "IPv6 client triggers its branch DP",
        "br3-v6",
        installed("HQ-A"),
        [],
        reason="on_demand_triggered",
        on_demand=[("BR3-DP", "add")],
    ),
    Case("AD site match (case-insensitive)", "br1-by-ad-site", installed("BR1-DP"), ["BR1-DP"]),
    Case(
        "AD site match triggers on-demand",
        "br1-by-ad-site",
        installed("HQ-A"),
        [],
        reason="on_demand_triggered",
        on_demand=[("BR1-DP", "add")],
    ),
    # --- on-demand: delayed, in progress, re-add
    Case(
        "delayed: no BITS standard DP at the branch DP's site holds it",
        "br4",
        installed("HQ-A", "PS2-PLAIN"),
        [],
        reason="on_demand_delayed",
        on_demand=[("BR4-DP", "delayed")],
    ),
    Case(
        "delayed: a BITS *branch* DP at its site is no source",
        "br4",
        installed("HQ-A", "PS2-PEER"),
        [],
        reason="on_demand_delayed",
        on_demand=[("BR4-DP", "delayed")],
    ),
    Case(
        "delayed: the BITS standard DP at its site holds an older version",
        "br4",
        installed("HQ-A") | installed("PS2-BITS", version=VERSION - 1),
        [],
        reason="on_demand_delayed",
        on_demand=[("BR4-DP", "delayed")],
    ),
    Case(
        "added: a BITS standard DP at its site holds it",
        "br4",
        installed("PS2-BITS"),
        [],
        reason="on_demand_triggered",
        on_demand=[("BR4-DP", "add")],
    ),
    Case(
        "added: a protected BITS standard DP at its site counts as a source",
        "br1",
        installed("REGION-DP"),
        [],
        reason="on_demand_triggered",
        on_demand=[("BR1-DP", "add")],
    ),
    Case(
        "delayed: nothing holds the content anywhere",
        "br1",
        {},
        [],
        reason="on_demand_delayed",
        on_demand=[("BR1-DP", "delayed")],
    ),
    *[
        Case(
            f"in progress: row {state}",
            "br1",
            installed("HQ-A") | row("BR1-DP", state),
            [],
            reason="on_demand_in_progress",
            on_demand=[("BR1-DP", "already_listed")],
        )
        for state in ("install_pending", "install_retrying")
    ],
    Case(
        "in progress: installed at an older version",
        "br1",
        installed("HQ-A") | installed("BR1-DP", version=VERSION - 1),
        [],
        reason="on_demand_in_progress",
        on_demand=[("BR1-DP", "already_listed")],
    ),
    *[
        Case(
            f"re-added from {state}",
            "br1",
            installed("HQ-A") | row("BR1-DP", state),
            [],
            reason="on_demand_triggered",
            on_demand=[("BR1-DP", "add")],
        )
        for state in ("install_failed", "removal_pending", "removal_retrying", "removal_failed")
    ],
    Case(
        "re-add is delayed too when there is no source",
        "br1",
        row("BR1-DP", "removal_failed"),
        [],
        reason="on_demand_delayed",
        on_demand=[("BR1-DP", "delayed")],
    ),
    Case(
        "not on-demand package: no trigger",
        "br1",
        installed("HQ-A"),
        [],
        reason="no_content_accessible",
        package_on_demand=False,
    ),
]


def decide_case(case: Case, *, explain: bool = False) -> LocationDecision:
    return decide(
        case.client,
        case.rows,
        protected_only=case.protected_only,
        on_slow=case.on_slow,
        allow_remote=case.allow_remote,
        on_demand=case.package_on_demand,
        explain=explain,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(case: Case) -> None:
    decision = decide_case(case)
    assert names(decision) == case.expect
    assert decision.reason == case.reason
    assert actions(decision) == case.on_demand
    if case.localities is not None:
        assert [r.locality for r in decision.distribution_points] == case.localities
    if case.connections is not None:
        assert [r.connection for r in decision.distribution_points] == case.connections
    assert decision.trace == ()  # only filled on request


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_explain_changes_nothing_but_the_trace(case: Case) -> None:
    plain = decide_case(case)
    explained = decide_case(case, explain=True)
    assert explained.trace
    assert replace(explained, trace=()) == plain
    assert explained.trace[-1].startswith("reason:") or explained.reason is None


# ----------------------------------------------------------------------------- misc


def test_not_targeted_never_triggers_on_demand() -> None:
    decision = decide("br1", installed("HQ-A", "BR1-DP"), targeted=False, explain=True)
    assert decision.distribution_points == ()
    assert decision.reason == "not_targeted"
    assert decision.on_demand == ()
    assert [m.boundary.id for m in decision.client_boundaries] == [2]
    assert any("does not target" in line for line in decision.trace)


def test_several_branch_dps_each_get_their_action() -> None:
    second = _dp(21, "BR1-PEER", "branch", "10.1.1.6", protects=frozenset({2}))
    third = _dp(22, "BR1-OTHER-SITE", "branch", "10.1.1.7", protects=frozenset({3}), site="PS2")
    view = SiteView(
        BOUNDARIES,
        [*DPS, second, third],
        {PKG: installed("HQ-A") | {21: PackageDPRow(21, "install_pending", VERSION)}},
    )
    adv = Advertisement("ADV1", PKG, protected_only=True, on_slow="download", allow_remote=True)
    client = Client("BR1-WS", ("10.1.1.20",), "BRANCH-01")
    decision = locate(view, client, adv, Package(PKG, VERSION, True))
    assert decision.on_demand == (
        OnDemandAction(3, "add"),
        OnDemandAction(21, "already_listed"),
        OnDemandAction(22, "delayed"),
    )
    assert decision.reason == "on_demand_triggered"


def test_only_delayed_and_listed_gives_delayed() -> None:
    view = SiteView(
        BOUNDARIES,
        [*DPS, _dp(21, "BR4-PEER", "branch", "10.1.4.6", protects=frozenset({9}), site="PS2")],
        {PKG: installed("HQ-A") | {21: PackageDPRow(21, "install_retrying", VERSION)}},
    )
    adv = Advertisement("ADV1", PKG, protected_only=True, on_slow="download", allow_remote=True)
    decision = locate(view, CLIENTS["br4"], adv, Package(PKG, VERSION, True))
    assert decision.reason == "on_demand_delayed"
    assert decision.on_demand == (
        OnDemandAction(8, "delayed"),
        OnDemandAction(21, "already_listed"),
    )


def test_client_boundaries_are_reported() -> None:
    client = Client("MULTI", ("10.1.1.9", "fd00:3::9", "bogus"), "Branch-01")
    view = SiteView(BOUNDARIES, DPS, {})
    adv = Advertisement("ADV1", PKG, protected_only=True, on_slow="download", allow_remote=True)
    decision = locate(view, client, adv, Package(PKG, VERSION, True))
    assert [(m.boundary.id, m.by) for m in decision.client_boundaries] == [
        (2, "subnet"),
        (3, "ad_site"),
        (6, "subnet"),
    ]
    # Two branch DPs cover this client; nothing holds the content: both delayed.
    assert decision.on_demand == (OnDemandAction(3, "delayed"), OnDemandAction(6, "delayed"))


# ---------------------------------------------------------------------------- order


def test_order_groups_tiers_bits_name_id() -> None:
    boundaries = [
        Boundary(1, "SUBNET", "ip_subnet", "10.5.0.0/24", "fast"),
        Boundary(2, "SITE-X", "ad_site", "SITE-X", "fast"),
        Boundary(3, "REGIONAL", "ip_subnet", "10.5.0.0/16", "slow"),
    ]
    dps = [
        _dp(1, "P-subnet", "branch", "10.5.0.2", protects=frozenset({1})),
        _dp(2, "P-site", "standard", "172.20.0.1", protects=frozenset({2})),
        _dp(3, "L-nobits", "standard", "10.5.0.9", bits=False),
        _dp(4, "L-bravo", "standard", "10.5.0.10"),
        _dp(5, "L-alpha", "standard", "10.5.0.11"),
        _dp(6, "L-site", "standard", "172.20.0.2", ad_site="site-x"),
        _dp(7, "L-regional", "standard", "10.5.9.9", bits=False),
        _dp(8, "R-nobits", "standard", "192.168.0.1", bits=False),
        _dp(9, "R-bits", "standard", "192.168.0.2"),
        _dp(10, "L-alpha", "standard", "10.5.0.12"),  # same name: id breaks the tie
    ]
    rows = {dp.id: PackageDPRow(dp.id, "installed", 1) for dp in dps}
    view = SiteView(boundaries, dps, {PKG: rows})
    adv = Advertisement("ADV1", PKG, protected_only=False, on_slow="download", allow_remote=True)
    decision = locate(
        view, Client("WS", ("10.5.0.20",), "Site-X"), adv, Package(PKG, 1, True), explain=True
    )
    assert [(r.dp.id, r.group, r.rank_key[1]) for r in decision.distribution_points] == [
        (1, 0, 0),  # protected, same subnet
        (2, 0, 1),  # protected, same AD site
        (5, 1, 0),  # local, same subnet, BITS, 'L-alpha' id 5
        (10, 1, 0),  # 'L-alpha' id 10
        (4, 1, 0),  # 'L-bravo'
        (3, 1, 0),  # same subnet, no BITS
        (7, 1, 0),  # shares the regional subnet (slow), no BITS
        (6, 1, 1),  # local through the AD site only
        (9, 2, 2),  # remote, BITS
        (8, 2, 2),  # remote, no BITS
    ]
    regional = decision.distribution_points[6]
    assert (regional.locality, regional.connection) == ("local", "slow")
    assert "final order:" in decision.trace


def test_remote_same_ad_site_first() -> None:
    dps = [
        _dp(1, "A-far", "standard", "192.168.0.1"),
        _dp(2, "Z-same-site", "standard", "192.168.0.2", bits=False, ad_site="SITE-Y"),
    ]
    rows = {dp.id: PackageDPRow(dp.id, "installed", 1) for dp in dps}
    view = SiteView([], dps, {PKG: rows})
    adv = Advertisement("ADV1", PKG, protected_only=False, on_slow="download", allow_remote=True)
    decision = locate(view, Client("WS", (), "site-y"), adv, Package(PKG, 1, False))
    assert [r.dp.name for r in decision.distribution_points] == ["Z-same-site", "A-far"]
    assert all(r.locality == "remote" for r in decision.distribution_points)


# ------------------------------------------------------------------------ the trace


def test_trace_explains_every_dp_and_the_failed_condition() -> None:
    rows = installed("HQ-A", "BR2-DP") | row("HQ-B", "install_pending")
    decision = decide("br1", rows, protected_only=True, explain=True, on_demand=False)
    text = "\n".join(decision.trace)
    assert "client boundary #2 'BR1 LAN' ip_subnet 10.1.1.0/24 fast (by subnet)" in text
    assert "protected DPs covering the client: DP #3 'BR1-DP'" in text
    assert (
        "'HQ-A' (standard, unprotected, BITS): dropped: the advertisement is protected_only" in text
    )
    assert "'HQ-B' (standard, unprotected): dropped: no content at version 3" in text
    assert "state install_pending at version 3" in text
    assert (
        "'BR2-DP' (branch, protected, BITS): dropped: protected, and the client is outside" in text
    )
    assert "'BR1-DP' (branch, protected, BITS): dropped: no content" in text
    assert "final order: empty" in text
    assert "(d) the package does not allow on-demand distribution" in text
    assert decision.trace[-1] == "reason: no_content_accessible"


def test_trace_of_remote_and_slow_drops_and_on_demand_actions() -> None:
    decision = decide(
        "br1", installed("HQ-A"), protected_only=False, allow_remote=False, explain=True
    )
    assert any("dropped: remote, and the advertisement does not allow" in t for t in decision.trace)
    decision = decide("nowhere", installed("HQ-A"), on_slow="do_not_run", explain=True)
    text = "\n".join(decision.trace)
    assert "client is in no boundary: treated as on a slow boundary" in text
    assert "dropped: reached over a slow connection" in text
    decision = decide("br4", installed("HQ-A"), explain=True)
    text = "\n".join(decision.trace)
    assert "on-demand: fires" in text
    assert "'BR4-DP' (branch, protected, BITS): delayed" in text


# ------------------------------------------------------------------- view and inputs


def test_with_package_rows_leaves_the_old_view_alone() -> None:
    view = SiteView(BOUNDARIES, DPS, {PKG: installed("HQ-A")})
    newer = view.with_package_rows(PKG, installed("HQ-A", "BR1-DP"))
    adv = Advertisement("ADV1", PKG, protected_only=True, on_slow="download", allow_remote=True)
    package = Package(PKG, VERSION, True)
    assert locate(view, CLIENTS["br1"], adv, package).reason == "on_demand_triggered"
    assert names(locate(newer, CLIENTS["br1"], adv, package)) == ["BR1-DP"]
    assert newer.boundary_index is view.boundary_index


def test_with_package_rows_reuses_the_view_for_the_same_rows_object() -> None:
    base = SiteView(BOUNDARIES, DPS, {})
    rows = installed("HQ-A")
    first = base.with_package_rows(PKG, rows)
    assert base.with_package_rows(PKG, rows) is first
    equal_but_new = installed("HQ-A")
    assert base.with_package_rows(PKG, equal_but_new) is not first
    changed = base.with_package_rows(PKG, installed("HQ-A", "BR1-DP"))
    adv = Advertisement("ADV1", PKG, protected_only=True, on_slow="download", allow_remote=True)
    assert names(locate(changed, CLIENTS["br1"], adv, Package(PKG, VERSION, True))) == ["BR1-DP"]
    assert base.package_rows(PKG) == {}


def test_view_helpers() -> None:
    view = SiteView(
        BOUNDARIES, DPS, {PKG: installed("HQ-A") | {999: PackageDPRow(999, "installed", 3)}}
    )
    assert view.own_boundary_ids(DP_ID["HQ-A"]) == {1, 8}
    assert view.own_boundary_ids(999) == frozenset()
    assert view.distribution_point(999) is None
    assert set(view.package_rows(PKG)) == {DP_ID["HQ-A"]}  # rows of unknown DPs ignored
    assert view.package_rows("PS1FFFFF") == {}


def test_unknown_package_has_no_content() -> None:
    view = SiteView(BOUNDARIES, DPS, {})
    adv = Advertisement(
        "ADV9", "PS1FFFFF", protected_only=False, on_slow="download", allow_remote=True
    )
    decision = locate(view, CLIENTS["hq"], adv, Package("PS1FFFFF", 1, True))
    assert decision.reason == "no_content_accessible"


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown package DP state 'installing'"):
        PackageDPRow(1, "installing", 1)
    with pytest.raises(ValueError, match="filed as 2"):
        SiteView(BOUNDARIES, DPS, {PKG: {2: PackageDPRow(1, "installed", 1)}})
    with pytest.raises(ValueError, match="distribution point id 1 appears twice"):
        SiteView(BOUNDARIES, [DPS[0], DPS[0]], {})
    view = SiteView(BOUNDARIES, DPS, {})
    adv = Advertisement(
        "ADV1", "PS100002", protected_only=False, on_slow="download", allow_remote=True
    )
    with pytest.raises(ValueError, match="is for package PS100002, not PS100001"):
        locate(view, CLIENTS["hq"], adv, Package(PKG, 1, True))


def test_protected_property() -> None:
    assert DPS[2].protected
    assert not DPS[0].protected
