"""Deleting a package: its content is removed from every DP holding it, then it goes.

SCCM's deletion: the package stops being offered at once (its advertisements and on-demand
requests go with it), and every row of its DP list, standard and branch DPs alike, moves
to `removal_pending`. Standard DPs are removed from by the distribution manager, branch
DPs through their policy (`remove`); each DP's removal moves its row along the usual
states with a `package_state` status message, retrying a DP that is down and finally
`removal_failed` (a DP that comes back deletes the content at start and reports it, and
deleting the package again retries a failed removal). Meanwhile the package stays, marked
`deleted_at`, its rows showing how far removal has come (`peerdp package dp list ID`),
and nothing can be added to it. When the last row goes, so does the package, with its
versions and programs; its ID is never given again.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from peerdp.domain import dp_states
from peerdp.site.context import SiteContext
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.packages import set_state
from peerdp.site.status import site_event
from peerdp.store.models import (
    Advertisement,
    DistributionPoint,
    Machine,
    OnDemandRequest,
    Package,
    PackageDistributionPoint,
    utcnow,
)

Row = PackageDistributionPoint


def delete_package(ctx: SiteContext, s: Session, package: Package) -> int:
    """Start deleting `package` (again: retry failed removals). How many DPs still hold it;
    0 means it is gone already."""
    first = package.deleted_at is None
    if first:
        package.deleted_at = utcnow()
        s.execute(delete(Advertisement).where(Advertisement.package_id == package.id))
        s.execute(delete(OnDemandRequest).where(OnDemandRequest.package_id == package.id))
    rows = s.execute(
        select(Row, DistributionPoint)
        .join(DistributionPoint, DistributionPoint.id == Row.dp_id)
        .where(Row.package_id == package.id)
    ).all()
    holding = 0
    for row, dp in rows:
        if not _registered(s, dp):
            s.delete(row)  # no DP process ever registered as it: it holds nothing
            continue
        holding += 1
        if row.state in dp_states.REMOVING - {dp_states.REMOVAL_FAILED}:
            continue  # already being removed
        row.attempts = 0
        set_state(
            ctx,
            row,
            dp_states.REMOVAL_PENDING,
            f"package deleted: waiting for {dp.name} to delete the content",
        )
    if first:
        site_event(
            s,
            ctx,
            "package_deleted",
            package_id=package.id,
            detail=f"package '{package.name}' deleted; "
            + (f"removing it from {holding} DP(s)" if holding else "no DP held it"),
        )
    ctx.changes.publish(s, concerns=[inputs.package(package.id), inputs.package_dps(package.id)])
    s.flush()
    if first and not holding:
        s.delete(package)  # no DP holds it: it goes at once
        s.flush()
    else:
        purge_if_removed(ctx, s, package.id)
    return holding


def _registered(s: Session, dp: DistributionPoint) -> bool:
    return bool(s.scalar(select(func.count()).where(Machine.dp_id == dp.id)))


def purge_if_removed(ctx: SiteContext, s: Session, package_id: str) -> bool:
    """A deleted package that no DP holds any more goes for good; whether it went."""
    package = s.get(Package, package_id)
    if package is None or package.deleted_at is None:
        return False
    s.flush()
    if s.scalar(select(func.count()).where(Row.package_id == package_id)):
        return False
    s.delete(package)
    s.flush()
    site_event(
        s,
        ctx,
        "package_removed",
        package_id=package_id,
        detail=f"deleted package '{package.name}' is gone from every DP; its record went too",
    )
    ctx.changes.publish(s, concerns=[inputs.package(package_id), inputs.package_dps(package_id)])
    return True


def purge_all_removed(ctx: SiteContext, s: Session) -> None:
    """Every deleted package no DP holds any more goes (after a DP itself was deleted)."""
    held = select(Row.package_id)
    orphans = s.scalars(
        select(Package.id).where(Package.deleted_at.is_not(None), Package.id.not_in(held))
    )
    for package_id in list(orphans):
        purge_if_removed(ctx, s, package_id)
