"""On-demand provisioning of branch DPs, exactly once however many clients ask at once.

Idempotence comes from the database: the DP-list row and the on-demand request are
inserted with ON CONFLICT DO NOTHING (one winner on SQLite, on PostgreSQL and across
site-server processes); only the winner records "triggered" and changes policy.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, select, update
from sqlalchemy.orm import Session

from peerdp.domain import dp_states
from peerdp.site.context import SiteContext
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.packages import pending_deadline, pull_sources
from peerdp.site.status import mp_event
from peerdp.store.db import dialect_insert
from peerdp.store.models import (
    DistributionPoint,
    OnDemandRequest,
    Package,
    PackageDistributionPoint,
    utcnow,
)


def _changed(session: Session, statement: Any, key: Any) -> bool:
    """Run an INSERT ... ON CONFLICT or UPDATE; True if it wrote a row.

    RETURNING, not rowcount: psycopg reports -1 for rowcount of these statements.
    """
    return session.execute(statement.returning(key)).first() is not None


def provision(
    ctx: SiteContext, s: Session, package_id: str, version: int, dp_id: int, client_name: str
) -> bool:
    """Add branch DP `dp_id` to the package's list on demand; True if this call did it."""
    now = utcnow()
    waiting = "waiting for the branch DP to pull the content (added on demand)"
    pending = {
        "state": dp_states.INSTALL_PENDING,
        "source_version": version,
        "origin": "on_demand",
        "detail": waiting,
        "attempts": 0,
        "deadline_at": pending_deadline(ctx),
        "updated_at": now,
    }
    row: Insert = (
        dialect_insert(s, PackageDistributionPoint)
        .values(package_id=package_id, dp_id=dp_id, **pending)
        .on_conflict_do_nothing(index_elements=["package_id", "dp_id"])
    )
    added = _changed(s, row, PackageDistributionPoint.dp_id)
    if not added:
        added = _changed(
            s,
            update(PackageDistributionPoint)
            .where(
                PackageDistributionPoint.package_id == package_id,
                PackageDistributionPoint.dp_id == dp_id,
                PackageDistributionPoint.state.in_(dp_states.READDABLE),
            )
            .values(**pending),
            PackageDistributionPoint.dp_id,
        )
    if not added:
        return False
    request = (
        dialect_insert(s, OnDemandRequest)
        .values(
            package_id=package_id,
            source_version=version,
            dp_id=dp_id,
            client_name=client_name,
            state="provisioned",
            created_at=now,
            provisioned_at=now,
        )
        .on_conflict_do_update(
            index_elements=["package_id", "source_version", "dp_id"],
            set_={"state": "provisioned", "provisioned_at": now},
        )
    )
    s.execute(request)
    mp_event(
        s,
        ctx,
        "on_demand_triggered",
        package_id=package_id,
        source_version=version,
        dp_id=dp_id,
        client_name=client_name,
        state=dp_states.INSTALL_PENDING,
        detail=f"branch DP {dp_id} added to package {package_id} on demand of {client_name}",
    )
    ctx.changes.publish(s, concerns=inputs.dp_row(package_id, dp_id))
    return True


def delay(
    ctx: SiteContext, s: Session, package_id: str, version: int, dp_id: int, client_name: str
) -> bool:
    """Record a delayed on-demand request; True if this call recorded it."""
    request = (
        dialect_insert(s, OnDemandRequest)
        .values(
            package_id=package_id,
            source_version=version,
            dp_id=dp_id,
            client_name=client_name,
            state="delayed",
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["package_id", "source_version", "dp_id"])
    )
    if not _changed(s, request, OnDemandRequest.id):
        return False
    mp_event(
        s,
        ctx,
        "on_demand_delayed",
        severity="warning",
        package_id=package_id,
        source_version=version,
        dp_id=dp_id,
        client_name=client_name,
        detail="no BITS-enabled standard DP at the branch DP's site holds this version yet; "
        "provisioning will be carried out when one does",
    )
    return True


def carry_out_delayed(ctx: SiteContext, s: Session, package_id: str, version: int) -> int:
    """Carry out delayed requests now that a standard DP holds the version; how many."""
    package = s.get(Package, package_id)
    if package is None or package.source_version != version:
        return 0
    sites_with_source = {dp.site_code for dp in s.scalars(pull_sources(package_id, version))}
    delayed = s.execute(
        select(OnDemandRequest, DistributionPoint.site_code)
        .join(DistributionPoint, DistributionPoint.id == OnDemandRequest.dp_id)
        .where(
            OnDemandRequest.package_id == package_id,
            OnDemandRequest.source_version == version,
            OnDemandRequest.state == "delayed",
        )
    ).all()
    done = 0
    for request, site_code in delayed:
        if site_code not in sites_with_source:
            continue
        if provision(ctx, s, package_id, version, request.dp_id, request.client_name):
            done += 1
        else:
            request.state = "provisioned"
            request.provisioned_at = utcnow()
    return done
