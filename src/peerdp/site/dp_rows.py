"""Moving a row of a package's DP list: the one way, for DP reports and the distribution manager.

A row moves only along SCCM's transitions (domain/dp_states). Repeating a retry moves its
deadline on; repeating `installed` (a DP re-reporting after a restart) is accepted. When a
BITS-enabled standard DP becomes `installed`, delayed on-demand requests waiting for it are
carried out in the same transaction; when the last row of a deleted package goes, the
package goes too (site/package_deletion.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from peerdp.domain import dp_states
from peerdp.site import package_deletion, provisioning
from peerdp.site.context import SiteContext
from peerdp.site.packages import set_state
from peerdp.store.models import DistributionPoint, PackageDistributionPoint

# A row may "move" to the state it is in for these: another retry, or a re-report.
REPEATABLE = frozenset(
    {
        dp_states.INSTALLED,
        dp_states.INSTALL_RETRYING,
        dp_states.REMOVAL_RETRYING,
        dp_states.WAITING_FOR_PRESTAGE,
    }
)
# Moves to these count one more attempt.
COUNTED = frozenset(
    {
        dp_states.INSTALL_RETRYING,
        dp_states.INSTALL_FAILED,
        dp_states.REMOVAL_RETRYING,
        dp_states.REMOVAL_FAILED,
    }
)


class BadMove(Exception):
    """The row cannot move to that state from the one it is in."""


def move(
    ctx: SiteContext,
    s: Session,
    row: PackageDistributionPoint,
    target: str | None,
    detail: str,
    *,
    deadline: datetime | None = None,
) -> None:
    """Move `row` to `target` (None: the row goes), explaining why in `detail`.

    A pending state gets the site's pending deadline unless `deadline` is given.
    """
    if not (row.state == target and target in REPEATABLE) and not dp_states.can_move(
        row.state, target
    ):
        raise BadMove(dp_states.explain_refusal(row.state, target))
    ctx.changes.publish(s)
    if target is None:
        s.delete(row)
        package_deletion.purge_if_removed(ctx, s, row.package_id)
        return
    if target in COUNTED:
        row.attempts += 1
    set_state(ctx, row, target, detail)
    if deadline is not None and target in dp_states.PENDING:
        row.deadline_at = deadline
    if target == dp_states.INSTALLED:
        dp = s.get(DistributionPoint, row.dp_id)
        if dp is not None and dp.kind == "standard" and dp.bits_enabled:
            s.flush()
            provisioning.carry_out_delayed(ctx, s, row.package_id, row.source_version)
