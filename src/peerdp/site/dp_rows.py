"""Moving a row of a package's DP list: the one way, for DP reports and the distribution manager.

A row moves only along SCCM's transitions (domain/dp_states). Repeating a retry moves its
deadline on; repeating `installed` (a DP re-reporting after a restart) is accepted. When a
BITS-enabled standard DP becomes `installed`, delayed on-demand requests waiting for it are
carried out in the same transaction; when the last row of a deleted package goes, the
package goes too (site/package_deletion.py).

A row whose last attempt failed only because its DP could not be reached (no URL yet, no
answer, no report from a branch DP) is marked so; when the DP makes contact (registers,
or announces the URL it serves at as it starts), `retry_on_contact` sends it back to
pending with its attempts counted afresh, instead of leaving it to its backoff.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerdp.domain import dp_states
from peerdp.site import package_deletion, provisioning
from peerdp.site.context import SiteContext
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.packages import set_state
from peerdp.site.status import record
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
    unreachable: bool = False,
) -> None:
    """Move `row` to `target` (None: the row goes), explaining why in `detail`.

    A pending state gets the site's pending deadline unless `deadline` is given.
    `unreachable`: the move is a failure only because the DP could not be reached.
    """
    if not (row.state == target and target in REPEATABLE) and not dp_states.can_move(
        row.state, target
    ):
        raise BadMove(dp_states.explain_refusal(row.state, target))
    ctx.changes.publish(s, concerns=inputs.dp_row(row.package_id, row.dp_id))
    if target is None:
        s.delete(row)
        package_deletion.purge_if_removed(ctx, s, row.package_id)
        return
    if target in COUNTED:
        row.attempts += 1
    set_state(ctx, row, target, detail)
    row.dp_unreachable = unreachable
    if deadline is not None and target in dp_states.PENDING:
        row.deadline_at = deadline
    if target == dp_states.INSTALLED:
        dp = s.get(DistributionPoint, row.dp_id)
        if dp is not None and dp.kind == "standard" and dp.bits_enabled:
            s.flush()
            provisioning.carry_out_delayed(ctx, s, row.package_id, row.source_version)


# Where a row that failed only because its DP could not be reached goes at the DP's contact.
ON_CONTACT = {
    dp_states.INSTALL_RETRYING: dp_states.INSTALL_PENDING,
    dp_states.INSTALL_FAILED: dp_states.INSTALL_PENDING,
    dp_states.REMOVAL_RETRYING: dp_states.REMOVAL_PENDING,
    dp_states.REMOVAL_FAILED: dp_states.REMOVAL_PENDING,
}


def retry_on_contact(ctx: SiteContext, s: Session, dp: DistributionPoint, contact: str) -> int:
    """`dp` made contact, or may be reachable now (`contact` says what happened: it
    registered, announced its URL, was given one): every row of it that failed only because
    it could not be reached goes back to pending, its attempts counted afresh, so it is
    tried at once. Each move is a status message. How many rows moved."""
    query = select(PackageDistributionPoint).where(
        PackageDistributionPoint.dp_id == dp.id,
        PackageDistributionPoint.dp_unreachable.is_(True),
        PackageDistributionPoint.state.in_(tuple(ON_CONTACT)),
    )
    rows = s.scalars(query.with_for_update()).all()
    for row in rows:
        target = ON_CONTACT[row.state]
        doing = "deleting it" if target == dp_states.REMOVAL_PENDING else "sending it"
        detail = f"the DP {contact}: {doing} again now (it had failed: {row.detail})"
        row.attempts = 0
        move(ctx, s, row, target, detail)
        record_state(ctx, s, row.package_id, row.source_version, dp.id, target, detail, dp.name)
    return len(rows)


def record_state(
    ctx: SiteContext,
    s: Session,
    package_id: str,
    version: int,
    dp_id: int,
    state: str,
    detail: str,
    dp_name: str | None,
    severity: str = "info",
) -> None:
    """The distribution manager's status message for a row's move."""
    record(
        s,
        ctx.changes,
        component="distribution",
        source=f"{ctx.site_code} distribution manager",
        type="package_state",
        severity=severity,
        package_id=package_id,
        source_version=version,
        dp_id=dp_id,
        state=state,
        detail=f"{dp_name or dp_id}: {detail}",
    )
