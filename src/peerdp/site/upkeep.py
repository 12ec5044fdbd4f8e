"""The site's upkeep (SCCM's site maintenance tasks): rows that only pile up with time are
deleted once they are older than the settings say, every hour and once soon after start.

What ages: status messages (`status_message_days`, by the later of the time they say they
happened and the time the site received them), DPs' bytes per day (`traffic_days`), the
audit log (`audit_days`, kept forever by default) and console sessions past their
lifetime or idle too long. 0 days keeps a kind forever.

Rows go in batches of BATCH_ROWS, each its own short transaction, so that a first run on a
huge table neither holds SQLite's write lock nor a PostgreSQL transaction for long. Every
site-server process (`--workers`) runs it: on PostgreSQL a batch skips rows another
process is deleting (FOR UPDATE SKIP LOCKED), on SQLite writers take turns; either way
each row is deleted, and counted, once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from peerdp.config import SiteSettings
from peerdp.logs import get_logger
from peerdp.site.console.sessions import expired
from peerdp.site.context import SiteContext
from peerdp.site.metrics import UPKEEP_DELETED
from peerdp.store.db import Database
from peerdp.store.models import AuditEntry, ConsoleSession, DPTrafficDay, StatusMessage, utcnow

log = get_logger("peerdp.site")

BATCH_ROWS = 5_000
EVERY_S = 3600.0
# After start: long enough to keep out of the start's way, soon enough to be seen working.
FIRST_AFTER_S = 60.0

Aging = Callable[[datetime], ColumnElement[bool] | None]


@dataclass(frozen=True)
class Aged:
    """One kind of row that ages: its table, key, the column its age is read from, and
    which rows are aged at a moment (None: the kind is kept forever)."""

    table: str
    key: tuple[InstrumentedAttribute[Any], ...]
    age: InstrumentedAttribute[Any]
    aged: Aging


def _older_than(days: int, at: InstrumentedAttribute[datetime]) -> Aging:
    def aged(now: datetime) -> ColumnElement[bool] | None:
        return None if days == 0 else at < now - timedelta(days=days)

    return aged


def _messages_older_than(days: int) -> Aging:
    """A status message is aged when both the time it says it happened and the time the
    site received it are: a machine whose clock is years behind does not have its
    messages deleted as they come. Found through the index on `at`."""

    def aged(now: datetime) -> ColumnElement[bool] | None:
        if days == 0:
            return None
        cutoff = now - timedelta(days=days)
        return (StatusMessage.at < cutoff) & (StatusMessage.received_at < cutoff)

    return aged


def _days_older_than(days: int) -> Aging:
    """A DP's traffic is kept per UTC day: whole days go."""

    def aged(now: datetime) -> ColumnElement[bool] | None:
        return None if days == 0 else DPTrafficDay.day < now.date() - timedelta(days=days)

    return aged


def aged_kinds(settings: SiteSettings) -> list[Aged]:
    return [
        Aged(
            "status_messages",
            (StatusMessage.id,),
            StatusMessage.at,
            _messages_older_than(settings.status_message_days),
        ),
        Aged(
            "dp_traffic_days",
            (DPTrafficDay.dp_id, DPTrafficDay.day),
            DPTrafficDay.day,
            _days_older_than(settings.traffic_days),
        ),
        Aged(
            "audit_log",
            (AuditEntry.id,),
            AuditEntry.at,
            _older_than(settings.audit_days, AuditEntry.at),
        ),
        Aged("console_sessions", (ConsoleSession.id,), ConsoleSession.created_at, expired),
    ]


def delete_batch(db: Database, kind: Aged, now: datetime, rows: int) -> int:
    """Delete at most `rows` of the oldest aged rows of one kind, in one transaction; how
    many went."""
    aged = kind.aged(now)
    if aged is None:
        return 0
    keys = (
        select(*kind.key)
        .where(aged)
        .order_by(kind.age)
        .limit(rows)
        .with_for_update(skip_locked=True)  # SQLite has no row locks: ignored there
    )
    target = kind.key[0] if len(kind.key) == 1 else tuple_(*kind.key)
    statement = (
        delete(kind.key[0].class_)
        .where(target.in_(keys))
        .execution_options(synchronize_session=False)
    )
    with db.transaction() as s:
        return int(s.execute(statement).rowcount)  # type: ignore[attr-defined]


def upkeep(
    db: Database,
    settings: SiteSettings,
    *,
    rows: int = BATCH_ROWS,
    stop: threading.Event | None = None,
) -> dict[str, int]:
    """One pass: every aged row of every kind deleted, batch by batch; how many per table.
    `stop` set ends the pass after the batch in progress (the server is stopping)."""
    now = utcnow()
    deleted: dict[str, int] = {}
    for kind in aged_kinds(settings):
        total = 0
        while not (stop and stop.is_set()):
            gone = delete_batch(db, kind, now, rows)
            total += gone
            UPKEEP_DELETED.labels(kind.table).inc(gone)
            # Fewer than a batch: none left (or another process is deleting the rest).
            if gone < rows:
                break
        deleted[kind.table] = total
        if total:
            log.info("aged rows deleted", table=kind.table, rows=total)
    return deleted


async def site_upkeep(
    ctx: SiteContext, *, first_after_s: float = FIRST_AFTER_S, every_s: float = EVERY_S
) -> None:
    """The background service (site/services.py): a pass soon after start, then hourly,
    each on a worker thread."""
    stop = threading.Event()
    try:
        await asyncio.sleep(first_after_s)
        while True:
            try:
                await asyncio.to_thread(upkeep, ctx.db, ctx.settings, stop=stop)
            except Exception:  # the next pass tries again
                log.exception("site upkeep pass failed")
            await asyncio.sleep(every_s)
    finally:
        # Cancelled: a pass on its thread stops after its batch, not keeping the server up.
        stop.set()
