"""What the dashboard lists, read from the site database (in process, on each database)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from peerdp.config import SiteSettings
from peerdp.site.app import create_app
from peerdp.site.console.dashboard import dashboard
from peerdp.site.context import SiteContext
from peerdp.store.models import DistributionPoint, OnDemandRequest, PackageDistributionPoint
from tests.site.mp_seed import Shape, package_id, seed


def _site(tmp_path: Path, db_url: str) -> SiteContext:
    settings = {"data_dir": tmp_path / "site", "admin_token": "secret", "db": db_url}
    ctx: SiteContext = create_app(SiteSettings.model_validate(settings)).state.site
    return ctx


def test_the_on_demand_queue_shows_a_request_until_its_dp_holds_the_version(
    tmp_path: Path, db_url: str
) -> None:
    """A provisioned request stays `provisioned` once its branch DP holds the content;
    the queue shows it only while the DP does not hold the version asked for yet."""
    ctx = _site(tmp_path, db_url)
    p1, p2 = package_id(0), package_id(1)
    with ctx.transaction() as s:
        # p1 installed (version 1) on branch DP br0, p2 on br1.
        seed(s, Shape(boundaries=2, branches=2, standard_dps=1, packages=2, clients=0), str)
        br0, br1 = (
            s.scalars(select(DistributionPoint.id).where(DistributionPoint.name == name)).one()
            for name in ("br0", "br1")
        )
        s.add(
            PackageDistributionPoint(
                package_id=p1, dp_id=br1, state="install_pending", source_version=1,
                origin="on_demand",
            )
        )  # fmt: skip
        for package, version, dp_id, state in [
            (p1, 1, br0, "provisioned"),  # its DP holds version 1: done
            (p1, 1, br1, "provisioned"),  # its DP is installing it
            (p2, 2, br1, "provisioned"),  # its DP holds version 1 only
            (p2, 1, br0, "delayed"),  # not on its DP's list yet
        ]:
            s.add(OnDemandRequest(package_id=package, source_version=version, dp_id=dp_id,
                                  client_name="pc0", state=state))  # fmt: skip

    def queue() -> set[tuple[str, int, int, str]]:
        return {(q.package_id, q.source_version, q.dp_id, q.state) for q in dashboard(ctx).queue}

    assert queue() == {
        (p1, 1, br1, "provisioned"),
        (p2, 2, br1, "provisioned"),
        (p2, 1, br0, "delayed"),
    }
    with ctx.transaction() as s:
        pdp = PackageDistributionPoint
        s.execute(update(pdp).where(pdp.dp_id == br1).values(state="installed", source_version=2))
    assert queue() == {(p2, 1, br0, "delayed")}
