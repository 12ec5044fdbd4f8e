"""What the dashboard shows: each advertisement's deployment counts, the on-demand queue,
the DPs whose package rows failed or are past their deadline, the bytes DPs moved today
(UTC), the branch DPs' pulls in progress, and the newest errors of the status log.
Each part is one or two indexed queries, whatever the site's size."""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from peerdp.domain import dp_states
from peerdp.domain.deployment_states import DEPLOYMENT_STATES
from peerdp.site.context import SiteContext
from peerdp.site.notify import ChangeBus
from peerdp.site.pull_progress import INSTALLING
from peerdp.store.models import (
    Advertisement,
    DeploymentStateRow,
    DistributionPoint,
    DPTrafficDay,
    OnDemandRequest,
    Package,
    PackageDistributionPoint,
    StatusMessage,
    utcnow,
)

# The on-demand requests still moving (a provisioned one stays until its DP installs).
QUEUE_STATES = ("delayed", "provisioning", "provisioned")
PROVISIONED = "provisioned"
FAILED_STATES = (dp_states.INSTALL_FAILED, dp_states.REMOVAL_FAILED)
SHOWN = 200  # rows per list: the dashboard is a glance, the pages have the rest
TOP_DPS = 10  # the branch DPs that pulled the most today
ERRORS_SHOWN, ERRORS_SINCE = 20, timedelta(hours=24)
# A pull not heard of for this long is not shown as in progress (its DP may be down).
PULL_QUIET = timedelta(minutes=10)


@dataclass(frozen=True)
class TroubledRow:
    package_id: str
    dp_id: int
    dp_name: str
    state: str
    detail: str
    attempts: int
    deadline_at: datetime | None
    overdue: bool


@dataclass(frozen=True)
class QueuedRequest:
    id: int
    package_id: str
    source_version: int
    dp_id: int
    dp_name: str
    client_name: str
    state: str
    created_at: datetime


@dataclass(frozen=True)
class Deployment:
    """An advertisement at a glance: its clients per state."""

    advertisement_id: int
    advertisement_name: str
    package_id: str
    source_version: int
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class DPTraffic:
    dp_id: int
    dp_name: str
    pulled: int
    served: int


@dataclass(frozen=True)
class Traffic:
    """Bytes moved on one UTC day: pulled over the WAN by branch DPs, served by branch DPs
    (over their LAN) and by standard DPs; the branch DPs that pulled the most."""

    day: date
    pulled: int
    served_by_branch: int
    served_by_standard: int
    top: list[DPTraffic]


@dataclass(frozen=True)
class Pull:
    """A branch DP's pull in progress, as it last reported it."""

    package_id: str
    source_version: int
    dp_name: str
    done: int
    total: int
    bytes_per_s: int | None
    at: datetime | None


@dataclass(frozen=True)
class RecentError:
    id: int
    at: datetime
    component: str
    source: str
    type: str
    state: str | None
    detail: str
    package_id: str | None
    dp_id: int | None
    client_name: str | None

    @property
    def query(self) -> dict[str, str | int]:
        """The status-message viewer's filters that find this message's like."""
        found = {
            "package_id": self.package_id,
            "dp_id": self.dp_id,
            "client_name": self.client_name,
        }
        return {"severity": "error", **{k: v for k, v in found.items() if v is not None}}


@dataclass(frozen=True)
class Dashboard:
    deployments: list[Deployment]
    queue: list[QueuedRequest]
    troubled: list[TroubledRow]
    traffic: Traffic
    pulls: list[Pull]
    errors: list[RecentError]


# During a deployment wave the clients' states move several times a second, and every open
# dashboard is told so (coalesced per page): one dashboard read serves every console for
# this long, unless something other than deployment states changed meanwhile.
SHARED_S = 2.0
# Per site (its change bus): the generation read at, when (monotonic), and the board.
_latest: weakref.WeakKeyDictionary[ChangeBus, tuple[int, float, Dashboard]] = (
    weakref.WeakKeyDictionary()
)


def shown(ctx: SiteContext) -> Dashboard:
    """The dashboard as the console shows it: read at most once per SHARED_S per site process
    while only deployment states change (20 consoles open during a wave cost one read)."""
    generation, now = ctx.changes.generation, time.monotonic()
    held = _latest.get(ctx.changes)
    if held is not None and held[0] == generation and now - held[1] < SHARED_S:
        return held[2]
    board = dashboard(ctx)
    _latest[ctx.changes] = (generation, now, board)
    return board


def dashboard(ctx: SiteContext) -> Dashboard:
    with ctx.db.reading() as s:
        deployments = _deployments(s)
        pdp = PackageDistributionPoint
        request = OnDemandRequest
        # A provisioned request leaves the queue once its DP holds the version asked for
        # (its state stays `provisioned`: the request's record is kept).
        still_moving = or_(
            request.state != PROVISIONED,
            pdp.state.is_(None),
            pdp.state != dp_states.INSTALLED,
            pdp.source_version < request.source_version,
        )
        queued = s.execute(
            select(request, DistributionPoint.name)
            .join(DistributionPoint, DistributionPoint.id == request.dp_id)
            .outerjoin(pdp, (pdp.package_id == request.package_id) & (pdp.dp_id == request.dp_id))
            .where(request.state.in_(QUEUE_STATES), still_moving)
            .order_by(request.id.desc())
            .limit(SHOWN)
        ).all()
        now = utcnow()
        overdue = (pdp.deadline_at < now) & pdp.state.in_(dp_states.PENDING)
        troubled = s.execute(
            select(pdp, DistributionPoint.name)
            .join(DistributionPoint, DistributionPoint.id == pdp.dp_id)
            .where(or_(pdp.state.in_(FAILED_STATES), overdue))
            .order_by(DistributionPoint.name, pdp.package_id)
            .limit(SHOWN)
        ).all()
        queue = [
            QueuedRequest(
                r.id,
                r.package_id,
                r.source_version,
                r.dp_id,
                name,
                r.client_name,
                r.state,
                r.created_at,
            )
            for r, name in queued
        ]
        rows = [
            TroubledRow(
                r.package_id,
                r.dp_id,
                name,
                r.state,
                r.detail,
                r.attempts,
                r.deadline_at,
                r.deadline_at is not None and r.deadline_at < now,
            )
            for r, name in troubled
        ]
        traffic, pulls, errors = _traffic(s, now.date()), _pulls(s, now), _errors(s, now)
    return Dashboard(deployments, queue, rows, traffic, pulls, errors)


def _traffic(s: Session, day: date) -> Traffic:
    """Today's counts: one pass over today's rows (one per DP that moved bytes)."""
    day_row, dp = DPTrafficDay, DistributionPoint
    today = day_row.day == day
    by_kind = {
        kind: (pulled or 0, served or 0)
        for kind, pulled, served in s.execute(
            select(dp.kind, func.sum(day_row.pulled_bytes), func.sum(day_row.served_bytes))
            .join(dp, dp.id == day_row.dp_id)
            .where(today)
            .group_by(dp.kind)
        )
    }
    top = s.execute(
        select(dp.id, dp.name, day_row.pulled_bytes, day_row.served_bytes)
        .join(dp, dp.id == day_row.dp_id)
        .where(today, day_row.pulled_bytes > 0)
        .order_by(day_row.pulled_bytes.desc(), dp.name)
        .limit(TOP_DPS)
    ).all()
    branch, standard = by_kind.get("branch", (0, 0)), by_kind.get("standard", (0, 0))
    return Traffic(
        day,
        pulled=branch[0] + standard[0],
        served_by_branch=branch[1],
        served_by_standard=standard[1],
        top=[DPTraffic(*row) for row in top],
    )


def _pulls(s: Session, now: datetime) -> list[Pull]:
    """The pulls reported lately, newest report first."""
    return [
        Pull(package, version, name, done or 0, total or 0, rate, at)
        for package, version, name, done, total, rate, at in s.execute(pulls_query(now))
    ]


def pulls_query(
    now: datetime,
) -> Select[str, int, str, int | None, int | None, int | None, datetime | None]:
    """Served by the index on `pull_at`: no scan of every package's DP list."""
    pdp = PackageDistributionPoint
    return (
        select(
            pdp.package_id,
            pdp.source_version,
            DistributionPoint.name,
            pdp.pull_done_bytes,
            pdp.pull_total_bytes,
            pdp.pull_bytes_per_s,
            pdp.pull_at,
        )
        .join(DistributionPoint, DistributionPoint.id == pdp.dp_id)
        .where(pdp.pull_at >= now - PULL_QUIET, pdp.state.in_(INSTALLING))
        .order_by(pdp.pull_at.desc())
        .limit(SHOWN)
    )


def _errors(s: Session, now: datetime) -> list[RecentError]:
    """The newest error messages of the last day."""
    return [RecentError(**row) for row in s.execute(errors_query(now)).mappings()]


def errors_query(now: datetime) -> Select[Any]:
    """Served by the index on severity and time: no scan of the status log."""
    m = StatusMessage
    columns = ("id", "at", "component", "source", "type", "state", "detail")
    return (
        select(*(getattr(m, name) for name in columns), m.package_id, m.dp_id, m.client_name)
        .where(m.severity == "error", m.at >= now - ERRORS_SINCE)
        .order_by(m.at.desc())
        .limit(ERRORS_SHOWN)
    )


def _deployments(s: Session) -> list[Deployment]:
    """The first advertisements with their clients per state, in two queries whatever
    their number (not a whole summary each: at 100,000 clients that took 0.4 s a page)."""
    shown = s.execute(
        select(
            Advertisement.id, Advertisement.name, Advertisement.package_id, Package.source_version
        )
        .join(Package, Package.id == Advertisement.package_id)
        .order_by(Advertisement.id)
        .limit(SHOWN)
    ).all()
    counts = state_counts(s, [row[0] for row in shown])
    return [Deployment(i, name, package, version, counts[i]) for i, name, package, version in shown]


def state_counts(s: Session, advertisement_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each advertisement's clients per state (every state, 0 included), in one grouped
    query over the given advertisements alone."""
    counts: dict[int, dict[str, int]] = {
        i: dict.fromkeys(DEPLOYMENT_STATES, 0) for i in advertisement_ids
    }
    if not counts:
        return counts
    row = DeploymentStateRow
    for advertisement_id, state, number in s.execute(
        select(row.advertisement_id, row.state, func.count())
        .where(row.advertisement_id.in_(advertisement_ids))
        .group_by(row.advertisement_id, row.state)
    ):
        counts[advertisement_id][state] = number
    return counts
