"""The SQL readers of the MP's location service: the rows the content-location rule needs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerdp.domain import location as rule
from peerdp.domain.boundaries import Boundary as BoundaryFact
from peerdp.site.errors import NotFound
from peerdp.store.models import (
    Advertisement,
    Boundary,
    CollectionMember,
    DistributionPoint,
    Package,
    PackageDistributionPoint,
    ProtectedBoundary,
)


@dataclass(frozen=True)
class AdvertisementFacts:
    id: int
    package_id: str
    collection_id: int
    protected_only: bool
    on_slow: str
    allow_remote: bool
    package_version: int
    package_on_demand: bool


def load_view(s: Session) -> rule.SiteView:
    """The site's boundaries and DPs as the rule sees them. Read as plain rows, not
    ORM objects: the view is rebuilt after every boundary or DP change, over every one."""
    boundaries = [
        BoundaryFact(*row)  # type: ignore[arg-type]
        for row in s.execute(
            select(Boundary.id, Boundary.name, Boundary.type, Boundary.value, Boundary.connection)
        )
    ]
    columns = (
        DistributionPoint.id,
        DistributionPoint.name,
        DistributionPoint.url,
        DistributionPoint.kind,
        DistributionPoint.bits_enabled,
        DistributionPoint.site_code,
        DistributionPoint.ip_addresses,
        DistributionPoint.ad_site,
    )
    protected: dict[int, set[int]] = {}
    for dp_id, boundary_id in s.execute(
        select(ProtectedBoundary.dp_id, ProtectedBoundary.boundary_id)
    ):
        protected.setdefault(dp_id, set()).add(boundary_id)
    dps = [
        rule.DistributionPoint(
            id=dp_id,
            name=name,
            url=url or "",
            kind=kind,  # type: ignore[arg-type]
            bits_enabled=bits_enabled,
            site_code=site_code,
            protected_boundary_ids=frozenset(protected.get(dp_id, ())),
            ip_addresses=tuple(addresses),
            ad_site=ad_site,
        )
        for dp_id, name, url, kind, bits_enabled, site_code, addresses, ad_site in (
            s.execute(select(*columns))
        )
    ]
    return rule.SiteView(boundaries, dps, {})


def advertisement_facts(s: Session, advertisement_id: int) -> AdvertisementFacts:
    row = s.execute(
        select(
            Advertisement.id,
            Advertisement.package_id,
            Advertisement.collection_id,
            Advertisement.protected_only,
            Advertisement.on_slow,
            Advertisement.allow_remote,
            Package.source_version,
            Package.on_demand,
        )
        .join(Package, Package.id == Advertisement.package_id)
        .where(Advertisement.id == advertisement_id)
    ).first()
    if row is None:
        raise NotFound(f"advertisement {advertisement_id} does not exist")
    return AdvertisementFacts(*row)


def targets(s: Session, collection_id: int, client_name: str) -> bool:
    found = s.execute(
        select(CollectionMember.machine_name).where(
            CollectionMember.collection_id == collection_id,
            CollectionMember.machine_name == client_name,
        )
    ).first()
    return found is not None


def collection_members(s: Session, collection_id: int) -> frozenset[str]:
    rows = s.scalars(
        select(CollectionMember.machine_name).where(CollectionMember.collection_id == collection_id)
    )
    return frozenset(rows)


def package_rows(
    s: Session, package_id: str, *, lock: bool = False
) -> dict[int, rule.PackageDPRow]:
    query = select(
        PackageDistributionPoint.dp_id,
        PackageDistributionPoint.state,
        PackageDistributionPoint.source_version,
    ).where(PackageDistributionPoint.package_id == package_id)
    if lock:
        query = query.with_for_update()  # PostgreSQL: row locks; SQLite: already exclusive
    rows = s.execute(query)
    return {dp_id: rule.PackageDPRow(dp_id, state, version) for dp_id, state, version in rows}
