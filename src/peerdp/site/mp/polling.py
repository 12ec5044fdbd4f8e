"""The site's policy-polling setting as the database holds it, and as clients are told it.

The setting lives on the site's row in `sites` (see domain/policy_polling.py for what the
modes mean). It concerns every client the database serves: clients belong to no site code,
so a database that has known several site codes keeps the setting the same on each row.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from peerdp.domain.policy_polling import PolicyPolling, PollingMode
from peerdp.store.models import Site


def read(s: Session) -> PolicyPolling:
    """The setting in force (long-polling for a site that never set one)."""
    row = s.scalars(select(Site).order_by(Site.created_at, Site.code).limit(1)).first()
    if row is None or row.policy_polling != "interval":
        return PolicyPolling()
    return PolicyPolling(
        cast(PollingMode, row.policy_polling),
        row.policy_poll_interval_s,
        row.policy_poll_randomise_s,
    )


def for_clients(s: Session) -> dict[str, Any]:
    """The `polling` part of every client's policy."""
    return read(s).to_json()


def write(s: Session, polling: PolicyPolling) -> None:
    """Keep `polling` as the site's setting (in the caller's transaction)."""
    s.execute(
        update(Site).values(
            policy_polling=polling.mode,
            policy_poll_interval_s=polling.interval_s,
            policy_poll_randomise_s=polling.randomise_s,
        )
    )
