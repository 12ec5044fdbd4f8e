"""`POST /api/v1/packages/{id}/distribution-points/{dp_id}/refresh`: send a version again.

SCCM's *refresh*: the DP is sent the same source version once more (a standard DP by the
distribution manager, a branch DP through its policy), so files it lost or damaged are
copied again. The row goes back to `install_pending`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from peerdp.domain import dp_states
from peerdp.site import dp_rows
from peerdp.site.admin.schemas import PackageDPOut, PackageId
from peerdp.site.context import SiteContext, get_or_404, site
from peerdp.site.errors import Conflict, NotFound
from peerdp.site.packages import live_package, package_dp_rows
from peerdp.site.status import site_event
from peerdp.store.models import DistributionPoint, Package, PackageDistributionPoint

router = APIRouter(prefix="/packages", tags=["packages"])

REFRESHABLE = frozenset({dp_states.INSTALLED, dp_states.INSTALL_FAILED, dp_states.INSTALL_RETRYING})


@router.post(
    "/{package_id}/distribution-points/{dp_id}/refresh",
    response_model=PackageDPOut,
    summary="Send the same source version to the DP again (SCCM's refresh)",
)
def refresh_package_dp(
    package_id: PackageId, dp_id: int, ctx: SiteContext = Depends(site)
) -> PackageDPOut:
    """Put an installed, retrying or failed row back to install_pending."""
    with ctx.transaction() as s:
        row = s.get(PackageDistributionPoint, (package_id, dp_id), with_for_update=True)
        if row is None:
            get_or_404(s, Package, package_id, "package")
            raise NotFound(f"distribution point {dp_id} is not on package {package_id}'s list")
        if row.state not in REFRESHABLE:
            raise Conflict(
                f"package {package_id} is {row.state} on distribution point {dp_id}; "
                f"only an installed, retrying or failed package can be refreshed"
            )
        live_package(s, package_id)
        dp = get_or_404(s, DistributionPoint, dp_id, "distribution point")
        row.attempts = 0
        detail = f"refresh: {dp.name} is to get source version {row.source_version} again"
        dp_rows.move(ctx, s, row, dp_states.INSTALL_PENDING, detail)
        site_event(
            s,
            ctx,
            "dp_refresh_requested",
            package_id=package_id,
            source_version=row.source_version,
            dp_id=dp_id,
            state=dp_states.INSTALL_PENDING,
            detail=detail,
        )
        s.flush()
        return package_dp_rows(s, package_id, only_dp=dp_id)[0]
