"""What the console shows of distribution points: the list (2,000 DPs, a page at a time,
by kind and name) and one DP's page (what it protects, its package rows with those needing
attention first). Bytes served and pulled are the site's sums of its package rows; the
transfers a DP serves at this moment are counted by the DP alone (its /metrics): the site
is never told them, so the pages say so rather than guess."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from peerdp.domain import dp_states
from peerdp.site.admin.status_summaries import ATTENTION_FIRST
from peerdp.site.console.paging import page_of, starts_with
from peerdp.site.errors import NotFound
from peerdp.store.models import (
    Boundary,
    DistributionPoint,
    Package,
    PackageDistributionPoint,
    ProtectedBoundary,
    utcnow,
)

FAILED = (dp_states.INSTALL_FAILED, dp_states.REMOVAL_FAILED)
pdp = PackageDistributionPoint


@dataclass(frozen=True)
class Holdings:
    """A DP's package rows summed up."""

    rows: int = 0
    installed: int = 0
    failed: int = 0
    served_bytes: int = 0
    pulled_bytes: int = 0


@dataclass(frozen=True)
class Protected:
    id: int
    name: str
    type: str
    value: str
    connection: str


@dataclass(frozen=True)
class DPLine:
    id: int
    name: str
    kind: str
    url: str | None
    last_seen: datetime | None
    protects: list[Protected]
    held: Holdings


def distribution_points(s: Session, kind: str, text: str, number: int) -> tuple[list[DPLine], int]:
    """DPs of `kind` ("": either) whose name starts with `text`, by name."""
    query = select(
        DistributionPoint.id,
        DistributionPoint.name,
        DistributionPoint.kind,
        DistributionPoint.url,
        DistributionPoint.last_seen,
    ).order_by(DistributionPoint.name)
    if kind:
        query = query.where(DistributionPoint.kind == kind)
    if text:
        query = query.where(starts_with(DistributionPoint.name, text))
    rows, matched = page_of(s, query, number)
    ids = [row.id for row in rows]
    held = holdings(s, ids)
    protects = protected(s, ids)
    lines = [
        DPLine(
            id=row.id,
            name=row.name,
            kind=row.kind,
            url=row.url,
            last_seen=row.last_seen,
            protects=protects.get(row.id, []),
            held=held.get(row.id, Holdings()),
        )
        for row in rows
    ]
    return lines, matched


def holdings(s: Session, dp_ids: list[int]) -> dict[int, Holdings]:
    """Each DP's package rows summed up, in one grouped query over the given DPs."""
    if not dp_ids:
        return {}
    query = (
        select(
            pdp.dp_id,
            func.count(),
            func.count().filter(pdp.state == dp_states.INSTALLED),
            func.count().filter(pdp.state.in_(FAILED)),
            func.coalesce(func.sum(pdp.served_bytes), 0),
            func.coalesce(func.sum(pdp.pulled_bytes), 0),
        )
        .where(pdp.dp_id.in_(dp_ids))
        .group_by(pdp.dp_id)
    )
    return {dp_id: Holdings(*(int(n) for n in numbers)) for dp_id, *numbers in s.execute(query)}


def protected(s: Session, dp_ids: list[int]) -> dict[int, list[Protected]]:
    """The boundaries each of the DPs protects, by name."""
    if not dp_ids:
        return {}
    found: dict[int, list[Protected]] = defaultdict(list)
    for dp_id, boundary_id, name, type_, value, connection in s.execute(
        select(
            ProtectedBoundary.dp_id,
            Boundary.id,
            Boundary.name,
            Boundary.type,
            Boundary.value,
            Boundary.connection,
        )
        .join(Boundary, Boundary.id == ProtectedBoundary.boundary_id)
        .where(ProtectedBoundary.dp_id.in_(dp_ids))
        .order_by(Boundary.name)
    ):
        found[dp_id].append(Protected(boundary_id, name, type_, value, connection))
    return found


@dataclass(frozen=True)
class PackageRow:
    package_id: str
    package_name: str
    current_version: int  # the package's current source version
    state: str
    source_version: int  # the version the DP holds or is moving to
    origin: str
    attempts: int
    detail: str
    deadline_at: datetime | None
    overdue: bool
    pulled_bytes: int
    served_bytes: int
    updated_at: datetime

    @property
    def failed(self) -> bool:
        return self.state in FAILED


@dataclass(frozen=True)
class DPPage:
    id: int
    name: str
    kind: str
    url: str | None
    bits_enabled: bool
    ip_addresses: list[str]
    ad_site: str | None
    max_transfers_in_force: int | None
    last_seen: datetime | None
    created_at: datetime
    protects: list[Protected]
    held: Holdings
    counts: dict[str, int]  # its package rows per state
    packages: list[PackageRow]


def distribution_point(s: Session, dp_id: int, number: int) -> DPPage:
    """One DP and page `number` of its package rows: failed, then moving, then by ID."""
    dp = s.get(DistributionPoint, dp_id)
    if dp is None:
        raise NotFound(f"distribution point {dp_id} does not exist")
    query = (
        select(pdp, Package.name, Package.source_version)
        .join(Package, Package.id == pdp.package_id)
        .where(pdp.dp_id == dp_id)
        .order_by(ATTENTION_FIRST, pdp.package_id)
    )
    rows, _ = page_of(s, query, number)
    counts = dict.fromkeys(dp_states.STATES, 0)
    for state, n in s.execute(
        select(pdp.state, func.count()).where(pdp.dp_id == dp_id).group_by(pdp.state)
    ):
        counts[state] = n
    return DPPage(
        id=dp.id,
        name=dp.name,
        kind=dp.kind,
        url=dp.url,
        bits_enabled=dp.bits_enabled,
        ip_addresses=list(dp.ip_addresses),
        ad_site=dp.ad_site,
        max_transfers_in_force=dp.max_transfers_in_force,
        last_seen=dp.last_seen,
        created_at=dp.created_at,
        protects=protected(s, [dp.id]).get(dp.id, []),
        held=holdings(s, [dp.id]).get(dp.id, Holdings()),
        counts=counts,
        packages=[_package_row(*row) for row in rows],
    )


def _package_row(row: PackageDistributionPoint, name: str, current: int) -> PackageRow:
    now = utcnow()
    overdue = row.deadline_at is not None and row.deadline_at < now
    return PackageRow(
        package_id=row.package_id,
        package_name=name,
        current_version=current,
        state=row.state,
        source_version=row.source_version,
        origin=row.origin,
        attempts=row.attempts,
        detail=row.detail,
        deadline_at=row.deadline_at,
        overdue=overdue and row.state in dp_states.PENDING,
        pulled_bytes=row.pulled_bytes,
        served_bytes=row.served_bytes,
        updated_at=row.updated_at,
    )
