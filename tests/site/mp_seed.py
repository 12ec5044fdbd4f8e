"""Seeds a management point's world straight into a site database, through the models.

Quicker than the admin API (which `mp_world` drives) for large worlds: the MP benchmark
seeds 100,000 clients with it. Boundary ``i + 1`` is the subnet
``10.<i // 250>.<i % 250>.0/24``; the first ones are branches, each protected by branch DP
``br<i>`` at ``.5`` of it. Package ``p``
(``PS1<p + 1:05X>``, source version 1, advertisement ``p + 1``) is installed on up to
three standard DPs and on branch DP ``p mod branches``. Every client ``pc<i>`` is in
collection 1, which every advertisement targets, and may call the MP with
``credential_of(i)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from peerdp.site.auth import token_hash
from peerdp.store.models import (
    Advertisement,
    Boundary,
    Client,
    Collection,
    CollectionMember,
    DistributionPoint,
    Machine,
    Package,
    PackageDistributionPoint,
    PackageVersion,
    Program,
    ProtectedBoundary,
)


@dataclass(frozen=True)
class Shape:
    boundaries: int  # at least one per branch; those past the branches hold no DP
    branches: int
    standard_dps: int
    packages: int
    clients: int
    site_code: str = "PS1"


def package_id(p: int) -> str:
    return f"PS1{p + 1:05X}"


def branch_net(i: int) -> str:
    """The first three octets of branch ``i``'s subnet."""
    return f"10.{i // 250}.{i % 250}"


def seed(s: Session, shape: Shape, credential_of: Callable[[int], str]) -> None:
    now = datetime.now(UTC)
    for i in range(max(shape.boundaries, shape.branches)):
        s.add(
            Boundary(
                id=i + 1,
                name=f"b{i}",
                type="ip_subnet",
                value=f"{branch_net(i)}.0/24",
                connection="fast",
            )
        )
    s.flush()
    for i in range(shape.standard_dps):
        s.add(
            DistributionPoint(
                id=i + 1,
                name=f"std{i}",
                kind="standard",
                bits_enabled=True,
                url=f"http://127.0.0.1:{9000 + i}",
                site_code=shape.site_code,
                ip_addresses=[f"172.16.0.{i + 1}"],
            )
        )
    for i in range(shape.branches):
        dp = DistributionPoint(
            id=shape.standard_dps + i + 1,
            name=f"br{i}",
            kind="branch",
            bits_enabled=True,
            url=f"http://127.0.0.1:{20000 + i}",
            site_code=shape.site_code,
            ip_addresses=[f"{branch_net(i)}.5"],
        )
        dp.protected_boundaries = [ProtectedBoundary(boundary_id=i + 1)]
        s.add(dp)
    s.flush()
    s.add(Collection(id=1, name="all"))
    for p in range(shape.packages):
        s.add(Package(id=package_id(p), name=f"pkg{p}", source_version=1, on_demand=True))
    s.flush()
    for p in range(shape.packages):
        _add_package(s, shape, p, now)
    s.flush()
    s.bulk_insert_mappings(
        Client,
        [
            {"id": i + 1, "name": f"pc{i}", "ip_addresses": [], "created_at": now}
            for i in range(shape.clients)
        ],
    )
    s.bulk_insert_mappings(
        CollectionMember,
        [{"collection_id": 1, "machine_name": f"pc{i}"} for i in range(shape.clients)],
    )
    s.bulk_insert_mappings(
        Machine,
        [
            {
                "id": f"m{i}",
                "role": "client",
                "name": f"pc{i}",
                "client_id": i + 1,
                "credential_hash": token_hash(credential_of(i)),
                "created_at": now,
            }
            for i in range(shape.clients)
        ],
    )


def _add_package(s: Session, shape: Shape, p: int, now: datetime) -> None:
    pid = package_id(p)
    s.add(
        PackageVersion(
            package_id=pid,
            source_version=1,
            manifest={},
            manifest_digest="0" * 64,
            file_count=1,
            total_size=1,
        )
    )
    s.add(Program(package_id=pid, name="install", command_line="true"))
    s.add(
        Advertisement(
            id=p + 1,
            name=f"adv{p}",
            package_id=pid,
            program_name="install",
            collection_id=1,
            protected_only=True,
            available_at=now,
        )
    )
    holders = [(p + d) % shape.standard_dps + 1 for d in range(min(3, shape.standard_dps))]
    if shape.branches:
        holders.append(shape.standard_dps + p % shape.branches + 1)
    for dp_id in holders:
        s.add(
            PackageDistributionPoint(
                package_id=pid,
                dp_id=dp_id,
                state="installed",
                source_version=1,
                origin="admin",
                updated_at=now,
            )
        )
