"""`peerdp simulate --advertisement ID`, or `--package ID --collection ID` for a deployment
not advertised yet: a dry run on the site's real facts.

Reads the boundaries, DPs, the advertisement (or the one proposed), its package and DP
list, its collection and the clients' last-seen addresses through the admin API, and
prints the forecast of
`simulate/forecast.py`: where on-demand provisioning will fire or be delayed, which DP
the clients will use, WAN bytes, and the clients that will get nothing and why.
Nothing is changed on the site.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.table import Table

from peerdp.admin_client import AdminClient
from peerdp.cli.output import console
from peerdp.cli.resources import ADVERTISEMENT, COLLECTION, PACKAGE, item_path
from peerdp.content.manifest import Manifest
from peerdp.domain import location as rule
from peerdp.domain.boundaries import Boundary, placement
from peerdp.domain.sizes import human_size
from peerdp.simulate.forecast import Forecast, forecast

NOT_REGISTERED = "not_registered"


def advertised(api: AdminClient, advertisement: str) -> dict[str, Any]:
    """An advertisement of the site (by ID or name)."""
    found: dict[str, Any] = api.get(
        item_path("advertisements", ADVERTISEMENT.id_of(advertisement)(api))
    )
    return found


def proposed(
    api: AdminClient,
    package: str,
    collection: str,
    *,
    protected_only: bool,
    on_slow: str,
    allow_remote: bool,
) -> dict[str, Any]:
    """An advertisement not made yet: the package (ID or name) offered to the collection
    (ID or name) with these options, as `peerdp advertisement add` would make it."""
    return {
        "id": None,
        "name": "(not advertised yet)",
        "package_id": PACKAGE.id_of(package)(api),
        "collection_id": COLLECTION.id_of(collection)(api),
        "protected_only": protected_only,
        "on_slow": on_slow,
        "allow_remote": allow_remote,
    }


def dry_run(api: AdminClient, adv: dict[str, Any], json_path: Path | None) -> None:
    """Forecast `adv` (from `advertised` or `proposed`) and print it."""
    package = api.get(item_path("packages", adv["package_id"]))
    version = int(package["source_version"])
    size = 0
    if version > 0:
        manifest = api.get(item_path("packages", package["id"], "versions", version, "manifest"))
        size = Manifest.from_json(manifest).total_size
    boundaries = [
        Boundary(b["id"], b["name"], b["type"], b["value"], b["connection"])
        for b in api.get("/boundaries")
    ]
    dps = [_dp(d) for d in api.get("/distribution-points")]
    rows = {
        r["dp_id"]: rule.PackageDPRow(r["dp_id"], r["state"], int(r["source_version"]))
        for r in api.get(item_path("packages", package["id"], "distribution-points"))
    }
    members = api.get(item_path("collections", adv["collection_id"]))["member_names"]
    known = {c["name"]: c for c in api.get("/clients")}
    clients = [_client(known[name]) for name in members if name in known]
    result = forecast(
        rule.SiteView(boundaries, dps, {}),
        rows,
        rule.Advertisement(
            str(adv["id"] or "proposed"),
            package["id"],
            adv["protected_only"],
            adv["on_slow"],
            adv["allow_remote"],
        ),
        rule.Package(package["id"], version, package["on_demand"]),
        size,
        clients,
    )
    unknown = sum(1 for name in members if name not in known)
    _print(adv, package, result, unknown)
    if json_path is not None:
        data: dict[str, Any] = {
            "advertisement_id": adv["id"],
            "collection_id": adv["collection_id"],
            "package_id": package["id"],
            "source_version": version,
            "package_bytes": size,
            "on_demand": result.on_demand,
            "branch_dp_pulls_bytes": result.pulls,
            "remote_download_bytes": result.remote_bytes,
            "wan_bytes": result.wan_bytes,
            "never": {**result.never, **({NOT_REGISTERED: unknown} if unknown else {})},
            "clients": [asdict(c) for c in result.clients],
        }
        json_path.write_text(json.dumps(data, indent=2) + "\n")


def _dp(d: dict[str, Any]) -> rule.DistributionPoint:
    return rule.DistributionPoint(
        id=d["id"],
        name=d["name"],
        url=d["url"] or "",
        kind=d["kind"],
        bits_enabled=d["bits_enabled"],
        site_code=d["site_code"],
        protected_boundary_ids=frozenset(d["protected_boundary_ids"]),
        ip_addresses=tuple(d["ip_addresses"]),
        ad_site=d["ad_site"],
    )


def _client(c: dict[str, Any]) -> rule.Client:
    """Placed as the MP places it: by what it reported, or by its last peer address."""
    where = placement(tuple(c["ip_addresses"]), c["ad_site"], c["peer_address"], c["locate_by"])
    return rule.Client(c["name"], *where)


def _print(adv: dict[str, Any], package: dict[str, Any], f: Forecast, unknown: int) -> None:
    out = console()
    which = f"advertisement {adv['id']} {adv['name']}" if adv["id"] else adv["name"]
    table = Table(
        title=f"dry run: {which} · package {package['id']} v{package['source_version']} "
        f"· collection {adv['collection_id']}",
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column()
    table.add_row("clients", f"{len(f.clients) + unknown:,} in the collection")
    for name, action in sorted(f.on_demand.items()):
        pulled = f.pulls.get(name)
        detail = f", then pulls {human_size(pulled)} over the WAN" if pulled else ""
        table.add_row(f"on demand: {name}", f"{action}{detail}")
    uses = Counter(f"{c.dp} ({c.locality})" for c in f.clients if c.dp)
    for dp, n in uses.most_common():
        table.add_row(f"will use {dp}", f"{n:,} clients")
    table.add_row("WAN bytes", human_size(f.wan_bytes))
    for reason, n in [*f.never.items(), *([(NOT_REGISTERED, unknown)] if unknown else [])]:
        table.add_row("will get nothing", f"{n:,}: {reason}")
    out.print(table)
