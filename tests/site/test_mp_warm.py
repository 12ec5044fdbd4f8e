"""A starting site server reads the MP's caches before the first client asks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from peerdp.config import SiteSettings
from peerdp.site.app import open_site
from peerdp.site.auth import token_hash
from peerdp.site.context import SiteContext
from peerdp.site.mp.location import Request
from peerdp.site.mp.management_point import ManagementPoint
from peerdp.site.mp.warm import warm
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

CREDENTIAL = "pdm_warm-test-credential"


def _branch_site(ctx: SiteContext) -> Request:
    """A branch DP protecting 10.7.0.0/24 holds a package advertised to PC-WARM."""
    now = datetime.now(UTC)
    with ctx.transaction() as s:
        s.add(Boundary(id=1, name="branch", type="ip_subnet", value="10.7.0.0/24"))
        s.flush()
        dp = DistributionPoint(id=1, name="BR-DP", kind="branch", site_code=ctx.site_code)
        dp.protected_boundaries = [ProtectedBoundary(boundary_id=1)]
        s.add(dp)
        s.add(Package(id="PS100001", name="pkg", source_version=1, on_demand=True))
        s.add(Collection(id=1, name="all"))
        s.flush()
        s.add(
            PackageVersion(
                package_id="PS100001",
                source_version=1,
                manifest={},
                manifest_digest="0" * 64,
                file_count=1,
                total_size=1,
            )
        )
        s.add(Program(package_id="PS100001", name="install", command_line="true"))
        s.add(CollectionMember(collection_id=1, machine_name="PC-WARM"))
        s.add(
            Advertisement(
                id=1,
                name="adv",
                package_id="PS100001",
                program_name="install",
                collection_id=1,
                protected_only=True,
                available_at=now,
            )
        )
        s.add(
            PackageDistributionPoint(
                package_id="PS100001",
                dp_id=1,
                state="installed",
                source_version=1,
                origin="admin",
                updated_at=now,
            )
        )
        s.add(Client(id=1, name="PC-WARM", ip_addresses=["10.7.0.20"]))
        s.flush()
        s.add(
            Machine(
                id="m1",
                role="client",
                name="PC-WARM",
                client_id=1,
                credential_hash=token_hash(CREDENTIAL),
            )
        )
    return Request("PC-WARM", 1, "PS100001", 1, ("10.7.0.20",), None)


def test_warm_caches_answer_the_first_request_from_memory(db_url: str, tmp_path: Path) -> None:
    ctx = open_site(SiteSettings(data_dir=tmp_path, db=db_url))
    ctx.mp = ManagementPoint.open(ctx)
    try:
        request = _branch_site(ctx)
        service = ctx.mp.location
        assert service.locate_cached(request) is None  # cold: it would need the database
        assert ctx.mp.callers.get(token_hash(CREDENTIAL)) is None

        warm(ctx)

        outcome = service.locate_cached(request)
        assert outcome is not None
        assert [r.dp.name for r in outcome.decision.distribution_points] == ["BR-DP"]
        caller = ctx.mp.callers.get(token_hash(CREDENTIAL))
        assert caller is not None and caller.name == "PC-WARM"
    finally:
        ctx.mp.close()
        ctx.db.dispose()
