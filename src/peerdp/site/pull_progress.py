"""A branch DP's pull in progress, as it reports it: `pull_progress` messages (bytes held so
far of the pull's total) sent through the status channel every few seconds while it pulls.

Kept on the package's DP row (`pull_*` columns), not appended to the status log: a pull
would otherwise write a message every two seconds. The rate is the site's own reckoning,
from the previous report. A report counts only while the row is installing that version
(a late one, after `installed` or a failure, changes nothing), and any move of the row
clears it (packages.set_state). Each report wakes the console's live pages (a
"deployments" change: the MP's policy waiters do not wake for it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from peerdp.domain import dp_states
from peerdp.site.context import SiteContext
from peerdp.store.models import PackageDistributionPoint, utcnow

INSTALLING = (dp_states.INSTALL_PENDING, dp_states.INSTALL_RETRYING)


def note(
    ctx: SiteContext,
    s: Session,
    dp_id: int,
    package_id: str,
    source_version: int,
    done: int,
    total: int,
) -> bool:
    """Keep DP `dp_id`'s report of its pull of `package_id` v`source_version`; whether its
    row was installing that version (else the report is dropped)."""
    row = s.get(PackageDistributionPoint, (package_id, dp_id), with_for_update=True)
    if row is None or row.source_version != source_version or row.state not in INSTALLING:
        return False
    now = utcnow()
    row.pull_bytes_per_s = _rate(row.pull_done_bytes, row.pull_at, done, now)
    row.pull_done_bytes, row.pull_total_bytes, row.pull_at = min(done, total), total, now
    ctx.changes.publish(s, deployments=True, concerns=())
    return True


def _rate(before: int | None, before_at: datetime | None, done: int, now: datetime) -> int | None:
    """Bytes per second since the previous report (None: no previous one, or it is the
    same instant or a restarted pull)."""
    if before is None or before_at is None or done < before:
        return None
    seconds = (now - before_at).total_seconds()
    return round((done - before) / seconds) if seconds > 0 else None


def clear(row: PackageDistributionPoint) -> None:
    """The row moved: its pull, if any, is over."""
    row.pull_done_bytes = row.pull_total_bytes = row.pull_bytes_per_s = row.pull_at = None
