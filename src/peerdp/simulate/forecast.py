"""A dry run on a site's real facts: what a deployment will do, decided by the real rule.

Given the site's boundaries and DPs (a `SiteView`), the package's DP list, the
advertisement and the clients it targets (placed by their last-seen addresses), it asks
the rule for every client in turn, as the MP would when they all ask at once: the first
answers (on-demand provisioning fires for the first client of a branch, the others find
it in progress, or it is delayed), then, with every branch DP that has a source pulled
and installed, the answers the retries get. No clock: `engine.py` is for how long.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from peerdp.domain import dp_states
from peerdp.domain import location as rule


@dataclass(frozen=True, slots=True)
class ClientForecast:
    name: str
    first: str  # the first answer, in words (`describe`)
    dp: str | None  # the DP it will download from, once branch DPs have pulled
    locality: str | None  # local or remote
    why_not: str | None  # the reason it will get nothing


@dataclass(frozen=True)
class Forecast:
    clients: tuple[ClientForecast, ...]
    on_demand: dict[str, str]  # branch DP name -> add, delayed or already_listed
    pulls: dict[str, int]  # branch DP name -> bytes it will pull over the WAN
    remote_bytes: int  # bytes clients will fetch from remote DPs
    never: dict[str, int]  # reason -> clients that will get nothing

    @property
    def wan_bytes(self) -> int:
        return sum(self.pulls.values()) + self.remote_bytes


def forecast(
    view: rule.SiteView,
    rows: Mapping[int, rule.PackageDPRow],
    adv: rule.Advertisement,
    package: rule.Package,
    size: int,
    clients: Iterable[rule.Client],
) -> Forecast:
    """The deployment of `package` (`size` bytes) to `clients` by `adv`."""
    listed = dict(rows)
    targets = sorted(clients, key=lambda c: c.name)
    on_demand: dict[str, str] = {}
    first: dict[str, str] = {}
    for client in targets:
        decision = rule.locate(
            view.with_package_rows(package.id, dict(listed)), client, adv, package
        )
        first[client.name] = rule.describe(decision)
        for action in decision.on_demand:
            dp = view.distribution_point(action.dp_id)
            assert dp is not None
            on_demand.setdefault(dp.name, action.action)
            if action.action == "add":
                _move(listed, action.dp_id, dp_states.INSTALL_PENDING, package.source_version)
    pulls = _pulled(view, listed, package, size)
    after = view.with_package_rows(package.id, dict(listed))
    forecasts, never, remote = [], Counter[str](), 0
    for client in targets:
        decision = rule.locate(after, client, adv, package)
        if decision.distribution_points:
            best = decision.distribution_points[0]
            remote += size if best.locality == "remote" else 0
            forecasts.append(
                ClientForecast(client.name, first[client.name], best.dp.name, best.locality, None)
            )
        else:
            reason = str(decision.reason)
            never[reason] += 1
            forecasts.append(ClientForecast(client.name, first[client.name], None, None, reason))
    return Forecast(tuple(forecasts), on_demand, pulls, remote, dict(never.most_common()))


def _move(rows: dict[int, rule.PackageDPRow], dp_id: int, state: str, version: int) -> None:
    row = rows.get(dp_id)
    if dp_states.can_move(row.state if row else None, state):
        rows[dp_id] = rule.PackageDPRow(dp_id, state, version)


def _pulled(
    view: rule.SiteView, rows: dict[int, rule.PackageDPRow], package: rule.Package, size: int
) -> dict[str, int]:
    """Branch DPs installing this version that have a source pull it and install it."""
    sources = {
        dp.site_code
        for dp_id, row in rows.items()
        if (dp := view.distribution_point(dp_id)) is not None
        and dp.kind == "standard"
        and dp.bits_enabled
        and row.state == dp_states.INSTALLED
        and row.source_version == package.source_version
    }
    pulls = {}
    for dp_id, row in list(rows.items()):
        dp = view.distribution_point(dp_id)
        if (
            dp is not None
            and dp.kind == "branch"
            and dp_states.is_installing(row.state)
            and row.source_version == package.source_version
            and dp.site_code in sources
        ):
            _move(rows, dp_id, dp_states.INSTALLED, package.source_version)
            pulls[dp.name] = size
    return pulls
