"""What the console's inventory lists show: packages, advertisements, boundaries and
collections, a page at a time. Each page is one query for its rows and one count, then one
grouped query per column drawn from other tables, over the page's keys alone: a page
costs the same at 10 rows and at 100,000."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from peerdp.domain import dp_states
from peerdp.site.console.dashboard import QUEUE_STATES, state_counts
from peerdp.site.console.paging import page_of, starts_with
from peerdp.site.errors import NotFound
from peerdp.store.models import (
    Advertisement,
    Boundary,
    Client,
    Collection,
    CollectionMember,
    DistributionPoint,
    OnDemandRequest,
    Package,
    PackageDistributionPoint,
    PackageVersion,
    Program,
    ProtectedBoundary,
)


@dataclass(frozen=True)
class PackageLine:
    id: str
    name: str
    source_version: int
    size: int | None  # of the current source version (None: none uploaded)
    programs: int
    installed: int  # DPs holding the current version (N) ...
    dps: int  # ... of the DPs on its list (M)
    on_demand_open: int
    deleted: bool


def packages(s: Session, text: str, number: int) -> tuple[list[PackageLine], int]:
    """Packages whose ID or name starts with `text`, by ID."""
    query = (
        select(Package, PackageVersion.total_size)
        .outerjoin(
            PackageVersion,
            (PackageVersion.package_id == Package.id)
            & (PackageVersion.source_version == Package.source_version),
        )
        .order_by(Package.id)
    )
    if text:
        query = query.where(or_(starts_with(Package.id, text), starts_with(Package.name, text)))
    rows, matched = page_of(s, query, number)
    ids = [package.id for package, _ in rows]
    programs = _counted(s, select(Program.package_id, func.count()), Program.package_id, ids)
    queued = select(OnDemandRequest.package_id, func.count()).where(
        OnDemandRequest.state.in_(QUEUE_STATES)
    )
    on_demand = _counted(s, queued, OnDemandRequest.package_id, ids)
    held = _holders(s, ids)
    lines = [
        PackageLine(
            id=package.id,
            name=package.name,
            source_version=package.source_version,
            size=size,
            programs=programs.get(package.id, 0),
            installed=held.get((package.id, package.source_version), 0),
            dps=held.get((package.id, None), 0),
            on_demand_open=on_demand.get(package.id, 0),
            deleted=package.deleted_at is not None,
        )
        for package, size in rows
    ]
    return lines, matched


def _counted(
    s: Session, query: Select[*tuple[Any, ...]], key: Any, keys: list[Any]
) -> dict[Any, int]:
    """`query` (key, count) grouped by `key`, over `keys` alone."""
    if not keys:
        return {}
    return {k: n for k, n in s.execute(query.where(key.in_(keys)).group_by(key))}


def _holders(s: Session, ids: list[str]) -> dict[tuple[str, int | None], int]:
    """Per package: its DP rows (key version None), and its installed rows per version."""
    if not ids:
        return {}
    pdp = PackageDistributionPoint
    found: dict[tuple[str, int | None], int] = defaultdict(int)
    for package_id, version, state, number in s.execute(
        select(pdp.package_id, pdp.source_version, pdp.state, func.count())
        .where(pdp.package_id.in_(ids))
        .group_by(pdp.package_id, pdp.source_version, pdp.state)
    ):
        found[(package_id, None)] += number
        if state == dp_states.INSTALLED:
            found[(package_id, version)] += number
    return found


@dataclass(frozen=True)
class AdvertisementLine:
    id: int
    name: str
    package_id: str
    package_name: str
    program_name: str
    collection_id: int
    collection_name: str
    available_at: datetime
    mandatory_at: datetime | None
    protected_only: bool
    allow_remote: bool
    on_slow: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def advertisements(s: Session, text: str, number: int) -> tuple[list[AdvertisementLine], int]:
    """Advertisements whose name starts with `text`, newest first, with their clients per
    state (one grouped query for the page, as the dashboard's)."""
    query = _ADVERTISEMENTS
    if text:
        query = query.where(starts_with(Advertisement.name, text))
    rows, matched = page_of(s, query, number)
    return _advertisement_lines(s, rows), matched


_ADVERTISEMENTS = (
    select(Advertisement, Package.name, Collection.name)
    .join(Package, Package.id == Advertisement.package_id)
    .join(Collection, Collection.id == Advertisement.collection_id)
    .order_by(Advertisement.id.desc())
)


def _advertisement_lines(s: Session, rows: list[Any]) -> list[AdvertisementLine]:
    counts = state_counts(s, [adv.id for adv, _, _ in rows])
    return [
        AdvertisementLine(
            id=adv.id,
            name=adv.name,
            package_id=adv.package_id,
            package_name=package_name,
            program_name=adv.program_name,
            collection_id=adv.collection_id,
            collection_name=collection_name,
            available_at=adv.available_at,
            mandatory_at=adv.mandatory_at,
            protected_only=adv.protected_only,
            allow_remote=adv.allow_remote,
            on_slow=adv.on_slow,
            counts=counts[adv.id],
        )
        for adv, package_name, collection_name in rows
    ]


@dataclass(frozen=True)
class DPName:
    id: int
    name: str
    kind: str


@dataclass(frozen=True)
class BoundaryLine:
    id: int
    name: str
    type: str
    value: str
    connection: str
    protected_by: list[DPName]


def boundaries(s: Session, type_: str, text: str, number: int) -> tuple[list[BoundaryLine], int]:
    """Boundaries of type `type_` ("": any) whose value or name starts with `text`, by
    type and value, with the DPs that protect each."""
    query = select(Boundary).order_by(Boundary.type, Boundary.value, Boundary.id)
    if type_:
        query = query.where(Boundary.type == type_)
    if text:
        query = query.where(
            or_(starts_with(Boundary.value, text), starts_with(Boundary.name, text))
        )
    rows, matched = page_of(s, query, number)
    protectors = protecting(s, [b.id for (b,) in rows])
    lines = [
        BoundaryLine(b.id, b.name, b.type, b.value, b.connection, protectors.get(b.id, []))
        for (b,) in rows
    ]
    return lines, matched


def protecting(s: Session, boundary_ids: list[int]) -> dict[int, list[DPName]]:
    """The DPs protecting each of the boundaries, by name."""
    if not boundary_ids:
        return {}
    found: dict[int, list[DPName]] = defaultdict(list)
    for boundary_id, dp_id, name, kind in s.execute(
        select(
            ProtectedBoundary.boundary_id,
            DistributionPoint.id,
            DistributionPoint.name,
            DistributionPoint.kind,
        )
        .join(DistributionPoint, DistributionPoint.id == ProtectedBoundary.dp_id)
        .where(ProtectedBoundary.boundary_id.in_(boundary_ids))
        .order_by(DistributionPoint.name)
    ):
        found[boundary_id].append(DPName(dp_id, name, kind))
    return found


@dataclass(frozen=True)
class CollectionLine:
    id: int
    name: str
    members: int
    advertisements: int


def collections(s: Session, text: str, number: int) -> tuple[list[CollectionLine], int]:
    """Collections whose name starts with `text`, by name, with their member and
    advertisement counts (never their members: `all` may hold 100,000)."""
    query = select(Collection.id, Collection.name).order_by(Collection.name)
    if text:
        query = query.where(starts_with(Collection.name, text))
    rows, matched = page_of(s, query, number)
    ids = [row.id for row in rows]
    members = _counted(
        s, select(CollectionMember.collection_id, func.count()), CollectionMember.collection_id, ids
    )
    targeting = _counted(
        s, select(Advertisement.collection_id, func.count()), Advertisement.collection_id, ids
    )
    lines = [
        CollectionLine(row.id, row.name, members.get(row.id, 0), targeting.get(row.id, 0))
        for row in rows
    ]
    return lines, matched


@dataclass(frozen=True)
class Member:
    name: str
    registered: bool
    last_seen: datetime | None


@dataclass(frozen=True)
class CollectionPage:
    id: int
    name: str
    created_at: datetime
    members: list[Member]
    matched: int
    advertisements: list[AdvertisementLine]


def collection(s: Session, collection_id: int, text: str, number: int) -> CollectionPage:
    """A collection: a page of its members whose name starts with `text` (and whether each
    has registered as a client), and the advertisements targeting it."""
    found = s.execute(
        select(Collection.id, Collection.name, Collection.created_at).where(
            Collection.id == collection_id
        )
    ).first()
    if found is None:  # not get_or_404: it would load every member
        raise NotFound(f"collection {collection_id} does not exist")
    query = (
        select(CollectionMember.machine_name)
        .where(CollectionMember.collection_id == collection_id)
        .order_by(CollectionMember.machine_name)
    )
    if text:
        query = query.where(starts_with(CollectionMember.machine_name, text))
    rows, matched = page_of(s, query, number)
    names = [name for (name,) in rows]
    # The page's names alone are looked up (joined before the page, a deep page of
    # 100,000 members would look up every member before it).
    clients = s.execute(select(Client.name, Client.last_seen).where(Client.name.in_(names))).all()
    seen = {name: last_seen for name, last_seen in clients}
    members = [Member(name, name in seen, seen.get(name)) for name in names]
    return CollectionPage(
        found.id, found.name, found.created_at, members, matched, _targeting(s, collection_id)
    )


TARGETING_SHOWN = 200  # newest first; more than that is the advertisements list's job


def _targeting(s: Session, collection_id: int) -> list[AdvertisementLine]:
    query = _ADVERTISEMENTS.where(Advertisement.collection_id == collection_id)
    return _advertisement_lines(s, list(s.execute(query.limit(TARGETING_SHOWN)).all()))
