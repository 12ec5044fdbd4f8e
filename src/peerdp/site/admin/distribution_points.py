"""`/api/v1/distribution-points`: standard and branch DPs, and what they protect."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerdp.domain import dp_states
from peerdp.site import dp_rows, provisioning
from peerdp.site.admin.schemas import (
    DistributionPointIn,
    DistributionPointOut,
    DistributionPointPatch,
)
from peerdp.site.context import SiteContext, get_or_404, site
from peerdp.site.errors import Invalid
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.package_deletion import purge_all_removed
from peerdp.store.models import (
    Boundary,
    DistributionPoint,
    PackageDistributionPoint,
    ProtectedBoundary,
)

router = APIRouter(prefix="/distribution-points", tags=["distribution points"])


def set_protected(session: Session, dp: DistributionPoint, boundary_ids: list[int]) -> None:
    wanted = sorted(set(boundary_ids))
    found = set(session.scalars(select(Boundary.id).where(Boundary.id.in_(wanted))))
    missing = [b for b in wanted if b not in found]
    if missing:
        raise Invalid(f"protected boundary id(s) {', '.join(map(str, missing))} do not exist")
    dp.protected_boundaries = [ProtectedBoundary(boundary_id=b) for b in wanted]


@router.get("", response_model=list[DistributionPointOut])
def list_dps(ctx: SiteContext = Depends(site)) -> list[DistributionPoint]:
    with ctx.transaction() as s:
        return list(s.scalars(select(DistributionPoint).order_by(DistributionPoint.id)))


@router.post("", response_model=DistributionPointOut, status_code=201)
def create_dp(body: DistributionPointIn, ctx: SiteContext = Depends(site)) -> DistributionPoint:
    with ctx.transaction() as s:
        fields = body.model_dump(exclude={"protected_boundary_ids"})
        dp = DistributionPoint(site_code=ctx.site_code, **fields)
        set_protected(s, dp, body.protected_boundary_ids)
        s.add(dp)
        s.flush()
        ctx.changes.publish(s, topology=True, concerns=[inputs.dp(dp.id)])
        return dp


@router.get("/{dp_id}", response_model=DistributionPointOut)
def get_dp(dp_id: int, ctx: SiteContext = Depends(site)) -> DistributionPoint:
    with ctx.transaction() as s:
        return get_or_404(s, DistributionPoint, dp_id, "distribution point")


@router.patch("/{dp_id}", response_model=DistributionPointOut)
def patch_dp(
    dp_id: int, body: DistributionPointPatch, ctx: SiteContext = Depends(site)
) -> DistributionPoint:
    with ctx.transaction() as s:
        dp = get_or_404(s, DistributionPoint, dp_id, "distribution point")
        changes = body.model_dump(exclude_unset=True)
        if "protected_boundary_ids" in changes:
            set_protected(s, dp, changes.pop("protected_boundary_ids") or [])
        for name, value in changes.items():
            if value is None and name in {"name", "bits_enabled", "ip_addresses"}:
                raise Invalid(f"{name} cannot be null")
            setattr(dp, name, value)
        s.flush()
        if changes.get("bits_enabled") and dp.kind == "standard":
            # Now a pull source: delayed on-demand requests for what it holds can go ahead.
            held = s.scalars(
                select(PackageDistributionPoint).where(
                    PackageDistributionPoint.dp_id == dp.id,
                    PackageDistributionPoint.state == dp_states.INSTALLED,
                )
            )
            for row in list(held):
                provisioning.carry_out_delayed(ctx, s, row.package_id, row.source_version)
        if changes.get("url"):  # what failed because the old URL did not answer goes now
            dp_rows.retry_on_contact(ctx, s, dp, f"was given the URL {dp.url} by an administrator")
        # Its own policy, and the DPs it may be a pull source of (its name, URL, BITS).
        ctx.changes.publish(s, topology=True, concerns=[inputs.dp(dp.id), inputs.DPS])
        return dp


@router.delete("/{dp_id}", status_code=204)
def delete_dp(dp_id: int, ctx: SiteContext = Depends(site)) -> None:
    with ctx.transaction() as s:
        s.delete(get_or_404(s, DistributionPoint, dp_id, "distribution point"))
        s.flush()
        # Its rows went with it: a deleted package it alone still held goes now.
        purge_all_removed(ctx, s)
        # Its credential dies with it; it is no pull source any more.
        concerned = [inputs.dp(dp_id), inputs.DPS]
        ctx.changes.publish(s, topology=True, machines=True, concerns=concerned)
