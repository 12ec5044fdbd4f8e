"""`/api/v1/explain`: the content-location rule's trace for one client, now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from peerdp.domain.boundaries import check_machine_address
from peerdp.domain.location import describe
from peerdp.domain.visible_names import check_visible
from peerdp.site.context import SiteContext, get_or_404, site
from peerdp.site.errors import Invalid, NotFound
from peerdp.site.mp.location import Request
from peerdp.store.models import Advertisement, Client, Package

router = APIRouter(tags=["explain"])


@router.get("/explain")
def explain(
    client: str = Query(min_length=1, max_length=200, description="the client's machine name"),
    advertisement_id: int = Query(),
    ip_address: list[str] | None = Query(default=None, description="override its addresses"),
    ad_site: str | None = Query(default=None, description="override its AD site"),
    ctx: SiteContext = Depends(site),
) -> dict[str, Any]:
    """What the MP would answer this client for this advertisement, and why, step by step.

    Nothing is changed: on-demand provisioning is reported, not carried out.
    """
    for address in ip_address or ():
        try:
            check_machine_address(address)
        except ValueError as exc:
            raise Invalid(f"ip_address: {exc}") from exc
    if ad_site is not None:
        try:
            check_visible(ad_site, "AD site name")
        except ValueError as exc:
            raise Invalid(f"ad_site: {exc}") from exc
    with ctx.transaction() as s:
        adv = get_or_404(s, Advertisement, advertisement_id, "advertisement")
        package = s.get(Package, adv.package_id)
        assert package is not None
        known = s.scalar(select(Client).where(Client.name == client))
        if known is None and ip_address is None and ad_site is None:
            raise NotFound(
                f"client {client} has not registered; give --ip-address/--ad-site to explain "
                "for an unregistered machine"
            )
        reported = list(known.ip_addresses) if known else []
        peer = known.peer_address if known else None
        overridden = ip_address is not None or ad_site is not None
        # Given addresses or an AD site are a what-if: they place the client, pinned or not.
        locate_by = known.locate_by if known and not overridden else "reported"
        request = Request(
            client_name=client,
            advertisement_id=adv.id,
            package_id=package.id,
            source_version=package.source_version,
            ip_addresses=tuple(ip_address if ip_address is not None else reported),
            ad_site=ad_site if ad_site is not None else (known.ad_site if known else None),
            peer_address=peer,
            locate_by=locate_by,
        )
    addresses, site_name = request.placement()
    outcome = ctx.mp.location.locate(request, explain=True)
    decision = outcome.decision
    check = decision.on_demand_check
    return {
        "client": client,
        # What placed the client in boundaries for this answer ...
        "ip_addresses": list(addresses),
        "ad_site": site_name,
        "located_by": "given" if overridden else locate_by,
        # ... its setting, what it last reported (taken on trust unless it is located by
        # "peer"), and the address its last request came from as the MP saw the connection.
        "locate_by": known.locate_by if known else "reported",
        "reported_ip_addresses": reported,
        "peer_address": peer,
        "advertisement_id": adv.id,
        "package_id": package.id,
        "source_version": package.source_version,
        "boundaries": [
            {
                "id": m.boundary.id,
                "name": m.boundary.name,
                "by": m.by,
                "connection": m.boundary.connection,
            }
            for m in decision.client_boundaries
        ],
        "distribution_points": [
            {
                "dp_id": r.dp.id,
                "name": r.dp.name,
                "locality": r.locality,
                "connection": r.connection,
                "protected": r.protected,
            }
            for r in decision.distribution_points
        ],
        "reason": decision.reason,
        "summary": describe(decision),
        "on_demand": [{"dp_id": a.dp_id, "action": a.action} for a in decision.on_demand],
        "on_demand_fires": bool(check and check.fires),
        "on_demand_failed_conditions": list(check.failed_conditions) if check else [],
        "trace": [_placement_line(request, overridden), *decision.trace],
    }


def _placement_line(request: Request, overridden: bool) -> str:
    """The trace's first step: what places the client in boundaries, and why."""
    if overridden:
        return "placed by the addresses and AD site given to explain"
    if request.locate_by == "peer":
        seen = request.peer_address or "no request seen yet"
        return (
            f"placed by the address its requests come from ({seen}), as an administrator "
            "pinned it; what it reports is not used"
        )
    return "placed by what it reports (peerdp client set --locate-by peer pins it)"
