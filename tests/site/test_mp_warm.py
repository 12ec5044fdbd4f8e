"""A starting site server reads the MP's caches before the first client asks."""

from __future__ import annotations

from pathlib import Path

from peerdp.config import SiteSettings
from peerdp.site.app import open_site
from peerdp.site.auth import token_hash
from peerdp.site.mp.location import Request
from peerdp.site.mp.management_point import ManagementPoint
from peerdp.site.mp.warm import warm
from tests.site.mp_seed import Shape, branch_net, package_id, seed

CREDENTIAL = "pdm_warm-test-credential"
# One branch whose protected branch DP holds a package advertised to its one client.
BRANCH_SITE = Shape(boundaries=1, branches=1, standard_dps=0, packages=1, clients=1)


def test_warm_caches_answer_the_first_request_from_memory(db_url: str, tmp_path: Path) -> None:
    ctx = open_site(SiteSettings(data_dir=tmp_path, db=db_url))
    ctx.mp = ManagementPoint.open(ctx)
    try:
        with ctx.transaction() as s:
            seed(s, BRANCH_SITE, lambda i: CREDENTIAL)
        request = Request("pc0", 1, package_id(0), 1, (f"{branch_net(0)}.20",), None)
        service = ctx.mp.location
        assert service.locate_cached(request) is None  # cold: it would need the database
        assert ctx.mp.callers.get(token_hash(CREDENTIAL)) is None

        warm(ctx)

        outcome = service.locate_cached(request)
        assert outcome is not None
        assert [r.dp.name for r in outcome.decision.distribution_points] == ["br0"]
        caller = ctx.mp.callers.get(token_hash(CREDENTIAL))
        assert caller is not None and caller.name == "pc0"
    finally:
        ctx.mp.close()
        ctx.db.dispose()
