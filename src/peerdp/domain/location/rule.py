"""The content location rule and the on-demand provisioning decision.

One pure function, :func:`locate`, answers a content-location request: plain data in
(a :class:`SiteView` of boundaries, distribution points and the packages' DP lists; the
client's network facts; the advertisement; the package), a :class:`LocationDecision` out.
No I/O: the management point and the simulator drive the same rule.

The rule, as decided by the team
--------------------------------
1. **Client boundaries** are the boundaries containing any client address or matching its
   AD site (case-insensitive). A client in no boundary counts as on a slow boundary: no
   DP is local to it, so every DP is remote and reached over a slow connection.
2. **Candidates** are the DPs whose row for the package is ``installed`` at exactly the
   package's source version.
3. A **protected** DP (non-empty protected boundary list) is accessible only when one of
   the client's boundaries is among its protected boundaries ("covers the client").
4. When the advertisement is ``protected_only`` and at least one protected DP covers the
   client (any protected DP, whether it holds the content or not), only protected DPs
   covering the client may be returned.
5. **Locality**: a DP is ``local`` when it shares a boundary with the client: one of the
   DP's own boundaries (those containing its addresses or AD site) or, for a protected
   DP, one of its protected boundaries containing the client; otherwise ``remote``. The
   connection is ``fast`` when local through a fast boundary, else ``slow``. Remote DPs
   are dropped unless the advertisement allows remote DPs; DPs reached over a slow
   connection are dropped when the advertisement says ``do_not_run`` on slow boundaries.
6. **Order**: group 0 protected DPs covering the client, group 1 other local DPs, group
   2 remote DPs. Inside a group: DPs sharing an IP subnet or range boundary with the
   client first, then DPs in the client's AD site (same name, case-insensitive, or a
   shared AD-site boundary), then the rest; BITS-enabled before others; then by name and
   id so the order is deterministic. So when the advertisement is not ``protected_only``
   unprotected DPs come after the client's protected DPs.
7. A client the advertisement does not target gets an empty list, reason
   ``not_targeted``, and never triggers on-demand provisioning.
8. **On-demand provisioning** (seed conditions, all required): (a) the list is empty;
   (b) at least one protected **branch** DP has a client boundary among its protected
   boundaries; (c) the advertisement is ``protected_only``; (d) the package allows
   on-demand distribution. Then, for each such branch DP that does not already hold the
   content at this source version, one :class:`OnDemandAction`:

   - ``add``: the DP has no row for the package, or its row is ``install_failed`` or in a
     ``removal_*`` state;
   - ``delayed`` instead of ``add`` when no BITS-enabled *standard* DP with the branch
     DP's site code has the package installed at this source version (seed, condition 1
     note): the branch DP would have nowhere to pull from;
   - ``already_listed``: the row is ``install_pending``/``install_retrying`` or installed
     at another source version (the distribution manager is already on it).

   Reason ``on_demand_triggered`` if any action is ``add``, else ``on_demand_delayed`` if
   any is ``delayed``, else ``on_demand_in_progress``.

   Precision: a covering branch DP that is already installed at this source version (it
   can only have been dropped by the slow-boundary option) gets no action, and when every
   covering branch DP is such a DP on-demand does not fire (see
   :attr:`OnDemandCheck.branch_dp_lacks_content`): provisioning it again would change
   nothing.

   If on-demand does not fire: reason ``slow_boundary_do_not_run`` when some candidate
   was dropped only because of the slow-boundary option, else ``no_content_accessible``;
   :attr:`LocationDecision.on_demand_check` says which condition failed.

With ``explain=True`` the decision carries a human-readable trace (for ``peerdp
explain``); the hot path never builds it.

The function is observably pure: the :class:`SiteView` memoises work that depends only on
boundaries and DPs, never on DP lists, and a long-lived view answers exactly like a fresh
one (tested).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from peerdp.domain.boundaries import Boundary, BoundaryIndex, BoundaryMatch, BoundarySet
from peerdp.domain.dp_states import INSTALLED, READDABLE
from peerdp.domain.location.model import (
    GROUP_LOCAL,
    GROUP_PROTECTED,
    GROUP_REMOTE,
    TIER_OTHER,
    TIER_SAME_AD_SITE,
    TIER_SAME_SUBNET,
    Advertisement,
    Client,
    DistributionPoint,
    LocationDecision,
    OnDemandAction,
    OnDemandActionKind,
    OnDemandCheck,
    Package,
    PackageDPRow,
    RankedDP,
    RankKey,
    Reason,
)

# ------------------------------------------------------------------------- site view


@dataclass(frozen=True, slots=True)
class _DPProfile:
    """A DP with its boundary relations precomputed, so a decision only does set tests."""

    dp: DistributionPoint
    own: frozenset[int]  # boundaries containing the DP's addresses or AD site
    reach: frozenset[int]  # own + protected boundaries: sharing one makes the DP local
    reach_fast: frozenset[int]
    reach_ip: frozenset[int]  # ip_subnet / ip_range boundaries in reach
    reach_ad: frozenset[int]  # ad_site boundaries in reach
    site_key: str | None  # AD site, casefolded
    tie_break: tuple[int, str, int]


@dataclass(frozen=True, slots=True)
class _Holders:
    """The DPs holding one package at one source version (state installed)."""

    ids: frozenset[int]
    unprotected: tuple[_DPProfile, ...]
    # Site codes with a BITS-enabled standard DP holding it: branch DPs there can pull it.
    pull_source_sites: frozenset[str]


_NOBODY = _Holders(frozenset(), (), frozenset())


@dataclass(frozen=True, slots=True, eq=False)
class _Placement:
    """Where a client stands: its boundaries and AD site, and the protected DPs covering
    it. Depends on boundaries and DPs only, never on DP lists."""

    matches: tuple[BoundaryMatch, ...]
    site_key: str | None
    covering: Mapping[int, _DPProfile]
    ids: frozenset[int] = field(init=False)
    branch_ids: tuple[int, ...] = field(init=False)  # covering branch DPs, by id
    # Memos, per DP asked about: the same for every client standing here, and creating a
    # RankedDP is a large share of a decision. At most one entry per DP.
    reach: dict[int, tuple[bool, bool]] = field(init=False)  # (local, fast)
    ranked: dict[int, RankedDP] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", frozenset(m.boundary.id for m in self.matches))
        branch = sorted(i for i, p in self.covering.items() if p.dp.kind == "branch")
        object.__setattr__(self, "branch_ids", tuple(branch))
        object.__setattr__(self, "reach", {})
        object.__setattr__(self, "ranked", {})


# Distinct placements are few (about one per boundary combination in use); the bound only
# guards against a flood of odd client facts.
_PLACEMENT_MEMO_LIMIT = 1 << 16


class SiteView:
    """An immutable snapshot of what the rule needs, precomputed for cheap decisions.

    Built from boundaries, DPs and ``rows`` (package id → DP id → row). The management
    point rebuilds it when boundaries or DPs change, and calls :meth:`with_package_rows`
    (cheap: boundary and DP work is shared) when one package's DP list changes.

    Precomputed at build: the boundary index, each DP's own boundaries, the protected DPs
    of each boundary, and per package and source version the DPs holding it. Memoised as
    requests come (bounded, safe to share between threads, invisible in the answers):
    each client *placement* (the set of boundaries it stands in plus its AD site; all the
    clients of a branch share one) with the protected DPs covering it and how it ranks
    each DP. Views made by :meth:`with_package_rows` share these memos.
    """

    __slots__ = (
        "_derived",
        "_holders",
        "_placements",
        "_profiles",
        "_protected_by_boundary",
        "_rows",
        "boundary_index",
    )

    def __init__(
        self,
        boundaries: Iterable[Boundary],
        distribution_points: Iterable[DistributionPoint],
        rows: Mapping[str, Mapping[int, PackageDPRow]],
    ) -> None:
        self.boundary_index = BoundaryIndex(boundaries)
        self._profiles: dict[int, _DPProfile] = {}
        for dp in distribution_points:
            if dp.id in self._profiles:
                raise ValueError(f"distribution point id {dp.id} appears twice")
            self._profiles[dp.id] = _profile(dp, self.boundary_index)
        self._protected_by_boundary = _protected_by_boundary(self._profiles.values())
        self._placements: dict[tuple[str | None, tuple[BoundarySet, ...]], _Placement] = {}
        self._rows: dict[str, dict[int, PackageDPRow]] = {}
        self._holders: dict[str, dict[int, _Holders]] = {}
        self._derived: dict[str, tuple[Mapping[int, PackageDPRow], SiteView]] = {}
        for package_id, package_rows in rows.items():
            self._set_package_rows(package_id, package_rows)

    def with_package_rows(self, package_id: str, rows: Mapping[int, PackageDPRow]) -> SiteView:
        """A new view in which ``package_id``'s DP list is ``rows``; this view is unchanged.

        Costs O(rows of the package). Asked again with the very same ``rows`` object (a
        caller's cache of DP lists), it answers the view it made last time for that
        package, so do not mutate a mapping after passing it here.
        """
        made = self._derived.get(package_id)
        if made is not None and made[0] is rows:
            return made[1]
        view = object.__new__(SiteView)
        view.boundary_index = self.boundary_index
        view._profiles = self._profiles
        view._protected_by_boundary = self._protected_by_boundary
        view._placements = self._placements  # placements do not depend on DP lists
        view._rows = dict(self._rows)
        view._holders = dict(self._holders)
        view._derived = {}
        view._set_package_rows(package_id, rows)
        self._derived[package_id] = (rows, view)
        return view

    def _set_package_rows(self, package_id: str, rows: Mapping[int, PackageDPRow]) -> None:
        known: dict[int, PackageDPRow] = {}
        for dp_id, row in rows.items():
            if row.dp_id != dp_id:
                raise ValueError(f"package {package_id}: row for DP {row.dp_id} filed as {dp_id}")
            if dp_id in self._profiles:  # rows of deleted DPs are ignored
                known[dp_id] = row
        self._rows[package_id] = known
        self._holders[package_id] = _holders_by_version(known, self._profiles)

    def distribution_point(self, dp_id: int) -> DistributionPoint | None:
        profile = self._profiles.get(dp_id)
        return profile.dp if profile else None

    def own_boundary_ids(self, dp_id: int) -> frozenset[int]:
        """Boundaries containing the DP's addresses or AD site."""
        profile = self._profiles.get(dp_id)
        return profile.own if profile else frozenset()

    def package_rows(self, package_id: str) -> Mapping[int, PackageDPRow]:
        return self._rows.get(package_id, {})

    def _placement(self, client: Client) -> _Placement:
        """Where the client stands, memoised: clients of one branch share a placement."""
        sets = self.boundary_index.boundary_sets(client.ip_addresses, client.ad_site)
        # Boundary sets are interned, so they hash by identity; the AD site goes in as
        # given (spellings of one site just get separate, equal placements).
        key = (client.ad_site, sets)
        placement = self._placements.get(key)
        if placement is None:
            matches = self.boundary_index.merge(sets)
            placement = _Placement(matches, _site_key(client.ad_site), self._covering(matches))
            if len(self._placements) >= _PLACEMENT_MEMO_LIMIT:
                self._placements.clear()  # crude bound; refilled by the next requests
            self._placements[key] = placement
        return placement

    def _covering(self, matches: Iterable[BoundaryMatch]) -> dict[int, _DPProfile]:
        covering: dict[int, _DPProfile] = {}
        for match in matches:
            for profile in self._protected_by_boundary.get(match.boundary.id, ()):
                covering[profile.dp.id] = profile
        return covering

    def _holders_of(self, package: Package) -> _Holders:
        by_version = self._holders.get(package.id)
        if by_version is None:
            return _NOBODY
        return by_version.get(package.source_version, _NOBODY)


def _profile(dp: DistributionPoint, index: BoundaryIndex) -> _DPProfile:
    own = frozenset(m.boundary.id for m in index.match(dp.ip_addresses, dp.ad_site))
    reach_boundaries = [
        boundary
        for boundary in (index.get(i) for i in own | dp.protected_boundary_ids)
        if boundary is not None
    ]
    return _DPProfile(
        dp=dp,
        own=own,
        reach=frozenset(b.id for b in reach_boundaries),
        reach_fast=frozenset(b.id for b in reach_boundaries if b.connection == "fast"),
        reach_ip=frozenset(b.id for b in reach_boundaries if b.type != "ad_site"),
        reach_ad=frozenset(b.id for b in reach_boundaries if b.type == "ad_site"),
        site_key=_site_key(dp.ad_site),
        tie_break=(0 if dp.bits_enabled else 1, dp.name, dp.id),
    )


def _protected_by_boundary(profiles: Iterable[_DPProfile]) -> dict[int, tuple[_DPProfile, ...]]:
    by_boundary: dict[int, list[_DPProfile]] = {}
    for profile in profiles:
        for boundary_id in profile.dp.protected_boundary_ids:
            by_boundary.setdefault(boundary_id, []).append(profile)
    return {boundary_id: tuple(found) for boundary_id, found in by_boundary.items()}


def _holders_by_version(
    rows: Mapping[int, PackageDPRow], profiles: Mapping[int, _DPProfile]
) -> dict[int, _Holders]:
    by_version: dict[int, list[_DPProfile]] = {}
    for row in rows.values():
        if row.state == INSTALLED:
            by_version.setdefault(row.source_version, []).append(profiles[row.dp_id])
    return {
        version: _Holders(
            ids=frozenset(p.dp.id for p in holders),
            unprotected=tuple(
                sorted((p for p in holders if not p.dp.protected), key=_by_tie_break)
            ),
            pull_source_sites=frozenset(
                p.dp.site_code for p in holders if p.dp.kind == "standard" and p.dp.bits_enabled
            ),
        )
        for version, holders in by_version.items()
    }


def _by_tie_break(profile: _DPProfile) -> tuple[int, str, int]:
    return profile.tie_break


def _site_key(ad_site: str | None) -> str | None:
    if ad_site is None:
        return None
    key = ad_site.strip().casefold()
    return key or None


# ---------------------------------------------------------------------------- the rule

_Drop = Literal["remote_not_allowed", "slow_do_not_run"]


def locate(
    view: SiteView,
    client: Client,
    adv: Advertisement,
    package: Package,
    *,
    targeted: bool = True,
    explain: bool = False,
) -> LocationDecision:
    """Answer a content-location request (see the module docstring for the rule)."""
    if adv.package_id != package.id:
        raise ValueError(
            f"advertisement {adv.id} is for package {adv.package_id}, not {package.id}"
        )
    placement = view._placement(client)
    matches = placement.matches
    trace = _trace_header(client, adv, package, matches) if explain else None
    if not targeted:
        if trace is not None:
            trace.append("the advertisement does not target this client: reason not_targeted")
        return LocationDecision((), "not_targeted", (), matches, _frozen(trace))

    holders = view._holders_of(package)
    covering = placement.covering
    # Rule 4: protected_only and inside protected boundaries -> unprotected DPs excluded.
    restricted = adv.protected_only and bool(covering)
    ranked: list[RankedDP] = []
    dropped: dict[int, _Drop] = {}  # candidates dropped by the advertisement's options
    for dp_id, profile in covering.items():
        if dp_id in holders.ids:
            verdict = _judge(profile, placement, adv, protected=True)
            if isinstance(verdict, str):
                dropped[dp_id] = verdict
            else:
                ranked.append(verdict)
    if not restricted:
        for profile in holders.unprotected:
            verdict = _judge(profile, placement, adv, protected=False)
            if isinstance(verdict, str):
                dropped[profile.dp.id] = verdict
            else:
                ranked.append(verdict)
    if len(ranked) > 1:
        ranked.sort(key=_by_rank_key)
    if trace is not None:
        _trace_candidates(trace, view, package, covering, holders, restricted, ranked, dropped)
        _trace_order(trace, ranked)
    if ranked:
        if trace is not None:
            trace.append("on-demand: not needed, the list is not empty")
        return LocationDecision(tuple(ranked), None, (), matches, _frozen(trace))

    check, actions = _on_demand(view, package, adv, placement, holders)
    slow_dropped = "slow_do_not_run" in dropped.values()
    reason = _empty_list_reason(check, actions, slow_dropped)
    if trace is not None:
        _trace_on_demand(trace, view, check, actions, reason)
    return LocationDecision((), reason, actions, matches, _frozen(trace), check)


def _judge(
    profile: _DPProfile, placement: _Placement, adv: Advertisement, *, protected: bool
) -> RankedDP | _Drop:
    """An accessible candidate as ranked for this client, or why the options drop it."""
    dp_id = profile.dp.id
    reach = placement.reach.get(dp_id)
    if reach is None:
        reach = placement.reach[dp_id] = _reach(profile, placement.ids)
    local, fast = reach
    if not local and not adv.allow_remote:
        return "remote_not_allowed"
    if not fast and adv.on_slow == "do_not_run":
        return "slow_do_not_run"
    ranked = placement.ranked.get(dp_id)
    if ranked is None:
        ranked = placement.ranked[dp_id] = _rank(profile, placement, local, fast, protected)
    return ranked


def _reach(profile: _DPProfile, client_ids: frozenset[int]) -> tuple[bool, bool]:
    """(local, fast): does the DP share a boundary with the client, a fast one?"""
    fast = not profile.reach_fast.isdisjoint(client_ids)
    return fast or not profile.reach.isdisjoint(client_ids), fast


def _rank(
    profile: _DPProfile, placement: _Placement, local: bool, fast: bool, protected: bool
) -> RankedDP:
    """The DP's place in the list of a client standing at ``placement`` (rule 6)."""
    client_ids = placement.ids
    group = GROUP_PROTECTED if protected else GROUP_LOCAL if local else GROUP_REMOTE
    if not profile.reach_ip.isdisjoint(client_ids):
        tier = TIER_SAME_SUBNET
    elif (placement.site_key is not None and placement.site_key == profile.site_key) or (
        not profile.reach_ad.isdisjoint(client_ids)
    ):
        tier = TIER_SAME_AD_SITE
    else:
        tier = TIER_OTHER
    return RankedDP(
        dp=profile.dp,
        locality="local" if local else "remote",
        connection="fast" if fast else "slow",
        protected=protected,
        rank_key=(group, tier, *profile.tie_break),
    )


def _by_rank_key(ranked: RankedDP) -> RankKey:
    return ranked.rank_key


def _on_demand(
    view: SiteView,
    package: Package,
    adv: Advertisement,
    placement: _Placement,
    holders: _Holders,
) -> tuple[OnDemandCheck, tuple[OnDemandAction, ...]]:
    branch_ids = placement.branch_ids
    lacking = [dp_id for dp_id in branch_ids if dp_id not in holders.ids]
    flags = bool(branch_ids), bool(adv.protected_only), bool(package.on_demand), bool(lacking)
    check = _ON_DEMAND_CHECKS[flags]
    if not check.fires:
        return check, ()
    rows = view.package_rows(package.id)
    covering = placement.covering
    actions = []
    for dp_id in lacking:
        kind = _on_demand_action(rows.get(dp_id), covering[dp_id].dp, holders)
        action = _ACTIONS.get((dp_id, kind))
        if action is None:  # interned: there are only three per branch DP
            action = _ACTIONS[dp_id, kind] = OnDemandAction(dp_id, kind)
        actions.append(action)
    return check, tuple(actions)


_ACTIONS: dict[tuple[int, OnDemandActionKind], OnDemandAction] = {}

# Every possible check, made once: they are immutable and a decision needs one.
_ON_DEMAND_CHECKS: dict[tuple[bool, bool, bool, bool], OnDemandCheck] = {
    (b, c, d, lacks): OnDemandCheck(True, b, c, d, lacks)
    for b in (False, True)
    for c in (False, True)
    for d in (False, True)
    for lacks in (False, True)
}


def _on_demand_action(
    row: PackageDPRow | None, branch_dp: DistributionPoint, holders: _Holders
) -> OnDemandActionKind:
    if row is not None and row.state not in READDABLE:
        return "already_listed"  # install pending/retrying, or installed at another version
    if branch_dp.site_code not in holders.pull_source_sites:
        return "delayed"
    return "add"


def _empty_list_reason(
    check: OnDemandCheck, actions: tuple[OnDemandAction, ...], slow_dropped: bool
) -> Reason:
    if check.fires:
        kinds = {a.action for a in actions}
        if "add" in kinds:
            return "on_demand_triggered"
        if "delayed" in kinds:
            return "on_demand_delayed"
        return "on_demand_in_progress"
    return "slow_boundary_do_not_run" if slow_dropped else "no_content_accessible"


# ------------------------------------------------------------------------------ trace


def describe(decision: LocationDecision) -> str:
    """The decision in one line, as the client's status message and `peerdp explain` say it."""
    dps = decision.distribution_points
    if dps:
        return f"answered with {len(dps)} DP(s): " + ", ".join(r.dp.name for r in dps)
    check = decision.on_demand_check
    why = ""
    if check is not None and not check.fires:
        why = "; on-demand not possible: " + ", ".join(check.failed_conditions)
    return f"answered with no DP: {decision.reason}{why}"


def _frozen(trace: list[str] | None) -> tuple[str, ...]:
    return tuple(trace) if trace is not None else ()


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _dp_label(dp: DistributionPoint) -> str:
    traits = [dp.kind, "protected" if dp.protected else "unprotected"]
    if dp.bits_enabled:
        traits.append("BITS")
    return f"DP #{dp.id} {dp.name!r} ({', '.join(traits)})"


def _boundary_label(match: BoundaryMatch) -> str:
    b = match.boundary
    return f"#{b.id} {b.name!r} {b.type} {b.value} {b.connection} (by {match.by})"


def _trace_header(
    client: Client, adv: Advertisement, package: Package, matches: tuple[BoundaryMatch, ...]
) -> list[str]:
    addresses = ", ".join(client.ip_addresses) or "none"
    lines = [
        f"client {client.name!r}: addresses {addresses}; AD site {client.ad_site or 'none'}",
        f"package {package.id} source version {package.source_version}; "
        f"on-demand distribution {_yes_no(package.on_demand)}",
        f"advertisement {adv.id}: protected_only {_yes_no(adv.protected_only)}, "
        f"on slow boundary {adv.on_slow}, allow remote DPs {_yes_no(adv.allow_remote)}",
    ]
    if matches:
        lines.extend(f"client boundary {_boundary_label(m)}" for m in matches)
    else:
        lines.append("client is in no boundary: treated as on a slow boundary")
    return lines


def _trace_candidates(
    trace: list[str],
    view: SiteView,
    package: Package,
    covering: Mapping[int, _DPProfile],
    holders: _Holders,
    restricted: bool,
    ranked: list[RankedDP],
    dropped: Mapping[int, _Drop],
) -> None:
    verdicts: dict[int, RankedDP | _Drop] = {r.dp.id: r for r in ranked}
    verdicts.update(dropped)
    if covering:
        names = ", ".join(_dp_label(p.dp) for p in covering.values())
        trace.append(f"protected DPs covering the client: {names}")
    else:
        trace.append("no protected DP covers the client")
    rows = view.package_rows(package.id)
    considered = {dp_id: view._profiles[dp_id].dp for dp_id in rows.keys() | covering.keys()}
    for dp in sorted(considered.values(), key=lambda d: (d.name, d.id)):
        why = _why(dp, rows.get(dp.id), package, covering, holders, restricted, verdicts)
        trace.append(f"{_dp_label(dp)}: {why}")


def _why(
    dp: DistributionPoint,
    row: PackageDPRow | None,
    package: Package,
    covering: Mapping[int, _DPProfile],
    holders: _Holders,
    restricted: bool,
    verdicts: Mapping[int, RankedDP | _Drop],
) -> str:
    if dp.id not in holders.ids:
        if row is None:
            return "dropped: no content (not on the package's DP list)"
        return (
            f"dropped: no content at version {package.source_version} "
            f"(state {row.state} at version {row.source_version})"
        )
    if dp.protected and dp.id not in covering:
        return "dropped: protected, and the client is outside its protected boundaries"
    if not dp.protected and restricted:
        return (
            "dropped: the advertisement is protected_only and the client is inside "
            "protected boundaries, so unprotected DPs are excluded"
        )
    verdict = verdicts[dp.id]
    if verdict == "remote_not_allowed":
        return "dropped: remote, and the advertisement does not allow remote DPs"
    if verdict == "slow_do_not_run":
        return "dropped: reached over a slow connection, and the advertisement says do not run"
    assert isinstance(verdict, RankedDP)
    return f"kept: {_ranked_traits(verdict)}"


_GROUP_NAMES = {GROUP_PROTECTED: "protected", GROUP_LOCAL: "local", GROUP_REMOTE: "remote"}
_TIER_NAMES = {
    TIER_SAME_SUBNET: "same subnet",
    TIER_SAME_AD_SITE: "same AD site",
    TIER_OTHER: "other",
}


def _ranked_traits(ranked: RankedDP) -> str:
    group, tier = ranked.rank_key[0], ranked.rank_key[1]
    return (
        f"{ranked.locality}, {ranked.connection}, group {_GROUP_NAMES[group]}, "
        f"{_TIER_NAMES[tier]}, {'BITS' if ranked.dp.bits_enabled else 'no BITS'}"
    )


def _trace_order(trace: list[str], ranked: list[RankedDP]) -> None:
    if not ranked:
        trace.append("final order: empty")
        return
    trace.append("final order:")
    trace.extend(f"  {n}. {r.dp.name} ({_ranked_traits(r)})" for n, r in enumerate(ranked, start=1))


def _trace_on_demand(
    trace: list[str],
    view: SiteView,
    check: OnDemandCheck,
    actions: tuple[OnDemandAction, ...],
    reason: Reason,
) -> None:
    if check.fires:
        trace.append("on-demand: fires (all four conditions hold)")
        for action in actions:
            dp = view.distribution_point(action.dp_id)
            label = _dp_label(dp) if dp else f"DP #{action.dp_id}"
            trace.append(f"  {label}: {_ACTION_WORDS[action.action]}")
    else:
        trace.append("on-demand: does not fire:")
        trace.extend(f"  {condition}" for condition in check.failed_conditions)
    trace.append(f"reason: {reason}")


_ACTION_WORDS: dict[OnDemandActionKind, str] = {
    "add": "add to the package's DP list (install_pending, origin on_demand)",
    "delayed": "delayed: no BITS-enabled standard DP at its site holds this version yet",
    "already_listed": "already on the package's DP list: provisioning in progress",
}
