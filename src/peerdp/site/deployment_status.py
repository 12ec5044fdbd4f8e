"""Keeping `deployment_states`: each advertisement's latest state on each client.

Written in the transaction that records what reported it: a client's status message
(mp/status.py) or the MP's own record of a content-location answer (status_batch.py).
No extra message is needed: the state is derived from what the site already receives
(domain/deployment_states.py). A report older than the row's (an earlier source version,
or an earlier message time) changes nothing, so a batch written late or a message that
overtook another never moves a deployment backwards.

Also counted here: the bytes a machine says it downloaded from each DP (`bytes_by_dp` in
its status), added to that DP's row of the package's DP list (`served_bytes`) and, for a
branch DP's own pull, to its row's `pulled_bytes` (bytes over the WAN); and to each DP's
counts of the day (`dp_traffic_days`, by UTC day of receipt), which the dashboard shows.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, literal_column, or_, select, update
from sqlalchemy.orm import Session

from peerdp.domain.deployment_states import WITH_SOURCE, Derived, derive, is_newer
from peerdp.store.db import insert_for
from peerdp.store.models import (
    Advertisement,
    DeploymentStateRow,
    DistributionPoint,
    DPTrafficDay,
    PackageDistributionPoint,
    utcnow,
)

Key = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Report:
    """One message's word on one advertisement on one client."""

    advertisement_id: int
    client_name: str
    source_version: int
    at: datetime
    derived: Derived
    source_dp_id: int | None = None
    boundary_id: int | None = None

    @property
    def key(self) -> Key:
        return (self.advertisement_id, self.client_name)

    def row(self) -> dict[str, Any]:
        return {
            "advertisement_id": self.advertisement_id,
            "client_name": self.client_name,
            "state": self.derived.state,
            "source_version": self.source_version,
            "reason": self.derived.reason,
            "exit_code": self.derived.exit_code,
            "restart_required": self.derived.restart_required,
            "source_dp_id": self.source_dp_id,
            "boundary_id": self.boundary_id,
            "at": self.at,
        }


def report_of(message: Mapping[str, Any]) -> Report | None:
    """The report in a status message (its columns: type, client_name, advertisement_id,
    source_version, state, exit_code, detail, at; and, where known, source_dp_id and
    boundary_id), or None when it says nothing about a deployment."""
    adv, client, version = (
        message.get(k) for k in ("advertisement_id", "client_name", "source_version")
    )
    if adv is None or client is None or version is None:
        return None
    derived = derive(
        message["type"],
        message.get("state"),
        message.get("exit_code"),
        message.get("detail") or "",
    )
    if derived is None:
        return None
    return Report(
        adv,
        client,
        version,
        message["at"],
        derived,
        source_dp_id=message.get("source_dp_id"),
        boundary_id=message.get("boundary_id"),
    )


def upsert(s: Session, reports: Iterable[Report]) -> bool:
    """Apply the reports: the newest per row, rows of advertisements that still exist,
    in key order (site-server processes sharing a database lock rows in the same order).
    Whether any row was written."""
    latest: dict[Key, Report] = {}
    for report in reports:
        held = latest.get(report.key)
        if held is None:
            latest[report.key] = report
            continue
        newer, older = (
            (report, held)
            if is_newer(report.source_version, report.at, held.source_version, held.at)
            else (held, report)
        )
        latest[report.key] = replace(newer, boundary_id=newer.boundary_id or older.boundary_id)
    if not latest:
        return False
    wanted = {key[0] for key in latest}
    existing = set(s.scalars(select(Advertisement.id).where(Advertisement.id.in_(wanted))))
    rows = [report.row() for key, report in sorted(latest.items()) if key[0] in existing]
    if rows:
        s.connection().execute(_upsert_statement(s.get_bind().dialect.name), rows)
    return bool(rows)


@functools.cache
def _upsert_statement(dialect: str) -> Any:
    """INSERT, or on the row's key take the report's values where it is newer. The
    boundary is taken from any report that has one (an older answer of the MP still tells
    where the client is), the newer one first. Built once per dialect: every batch of the
    MP's answers runs it, and building it costs more than running it."""
    statement = insert_for(dialect, DeploymentStateRow)
    new, held = statement.excluded, DeploymentStateRow.__table__.c
    newer = or_(
        new.source_version > held.source_version,
        and_(new.source_version == held.source_version, new.at >= held.at),
    )
    # A report without a source DP (the program started from the cache) keeps the one the
    # MP named, while the content still matters; earlier states have none.
    source = case(
        (new.state.in_(_literals(WITH_SOURCE)), func.coalesce(new.source_dp_id, held.source_dp_id)),
        else_=new.source_dp_id,
    )
    changes: dict[str, Any] = {
        name: case((newer, getattr(new, name)), else_=getattr(held, name))
        for name in ("state", "source_version", "reason", "exit_code", "restart_required", "at")
    }
    changes["source_dp_id"] = case((newer, source), else_=held.source_dp_id)
    changes["boundary_id"] = case(
        (and_(newer, new.boundary_id.is_not(None)), new.boundary_id),
        else_=func.coalesce(held.boundary_id, new.boundary_id),
    )
    return statement.on_conflict_do_update(
        index_elements=["advertisement_id", "client_name"], set_=changes
    )


def _literals(values: Iterable[str]) -> list[Any]:
    """Constants written into the statement: an executemany takes no list parameter."""
    return [literal_column(f"'{value}'") for value in sorted(values)]


def dp_ids(s: Session, names: Iterable[str]) -> dict[str, int]:
    """The IDs of the DPs with these names (unknown names are left out)."""
    wanted = set(names)
    if not wanted:
        return {}
    found = s.execute(
        select(DistributionPoint.name, DistributionPoint.id).where(
            DistributionPoint.name.in_(wanted)
        )
    )
    return {name: dp_id for name, dp_id in found}


def count_bytes(
    s: Session, package_id: str, by_dp: Mapping[int, int], *, puller_dp_id: int | None = None
) -> None:
    """Add the bytes of `package_id` a machine downloaded from each DP (`by_dp`) to their
    rows' `served_bytes`, and their sum to the pulling branch DP's `pulled_bytes`; and the
    same to each DP's counts of the UTC day the site receives the report (one upsert)."""
    table = PackageDistributionPoint
    for dp_id, count in sorted(by_dp.items()):
        if count > 0:
            s.execute(
                update(table)
                .where(table.package_id == package_id, table.dp_id == dp_id)
                .values(served_bytes=table.served_bytes + count)
            )
    total = sum(by_dp.values())
    if puller_dp_id is not None and total > 0:
        s.execute(
            update(table)
            .where(table.package_id == package_id, table.dp_id == puller_dp_id)
            .values(pulled_bytes=table.pulled_bytes + total)
        )
    count_today(s, {dp_id: n for dp_id, n in by_dp.items() if n > 0}, puller_dp_id, total)


def count_today(
    s: Session, served: Mapping[int, int], puller_dp_id: int | None, pulled: int
) -> None:
    """Add to today's (UTC) row of each DP: `served[dp]` served, `pulled` to the puller's."""
    day = utcnow().date()
    counts = {dp_id: [0, n] for dp_id, n in served.items()}
    if puller_dp_id is not None and pulled > 0:
        counts.setdefault(puller_dp_id, [0, 0])[0] += pulled
    rows = [
        {"dp_id": dp_id, "day": day, "pulled_bytes": p, "served_bytes": v}
        for dp_id, (p, v) in sorted(counts.items())  # key order: no deadlock between sites
    ]
    if rows:
        s.connection().execute(_today_statement(s.get_bind().dialect.name), rows)


@functools.cache
def _today_statement(dialect: str) -> Any:
    """INSERT today's row of a DP, or add to it."""
    statement = insert_for(dialect, DPTrafficDay)
    new, held = statement.excluded, DPTrafficDay.__table__.c
    return statement.on_conflict_do_update(
        index_elements=["dp_id", "day"],
        set_={
            "pulled_bytes": held.pulled_bytes + new.pulled_bytes,
            "served_bytes": held.served_bytes + new.served_bytes,
        },
    )
