"""The site's upkeep: aged status messages, DP traffic days, audit entries and expired
console sessions deleted in batches, newer rows kept, 0 days keeping a kind forever."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from peerdp.config import SiteSettings
from peerdp.site import upkeep
from peerdp.site.metrics import UPKEEP_DELETED
from peerdp.site.services import SERVICES
from peerdp.store.db import Database, upgrade
from peerdp.store.models import (
    AuditEntry,
    ConsoleSession,
    DistributionPoint,
    DPTrafficDay,
    Site,
    StatusMessage,
    utcnow,
)

NOW = utcnow()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    upgrade(database.engine)
    yield database
    database.dispose()


def settings(**days: int) -> SiteSettings:
    return SiteSettings(**days)  # type: ignore[arg-type]


def messages(
    db: Database, count: int, days_ago: float, received_days_ago: float | None = None
) -> None:
    at = NOW - timedelta(days=days_ago)
    received = NOW - timedelta(days=days_ago if received_days_ago is None else received_days_ago)
    row = {"component": "site", "source": "PS1", "type": "package_state", "at": at}
    row["received_at"] = received
    with db.transaction() as s:
        s.execute(insert(StatusMessage), [{**row, "detail": f"#{n}"} for n in range(count)])


def audit(db: Database, count: int, days_ago: float) -> None:
    at = NOW - timedelta(days=days_ago)
    row = {"who": "admin", "role": "full", "method": "POST", "path": "/x", "resource": "/x"}
    with db.transaction() as s:
        s.execute(insert(AuditEntry), [{**row, "status": 201, "at": at}] * count)


def traffic(db: Database, dps: int, days: list[int]) -> None:
    with db.transaction() as s:
        s.add(Site(code="PS1", name="PS1"))
        s.flush()
        made = [
            DistributionPoint(name=f"dp{n}", kind="branch", site_code="PS1") for n in range(dps)
        ]
        s.add_all(made)
        s.flush()
        today = NOW.date()
        rows = [
            {
                "dp_id": dp.id,
                "day": today - timedelta(days=ago),
                "pulled_bytes": 1,
                "served_bytes": 1,
            }
            for dp in made
            for ago in days
        ]
        s.execute(insert(DPTrafficDay), rows)


def session(db: Database, key: str, created_ago: timedelta, seen_ago: timedelta) -> None:
    with db.transaction() as s:
        s.add(
            ConsoleSession(
                id=key,
                who="admin",
                role="full",
                credential_hash="0" * 64,
                csrf_token="c",
                created_at=NOW - created_ago,
                last_seen_at=NOW - seen_ago,
            )
        )


def count(db: Database, model: Any) -> int:
    with db.reading() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def ages(db: Database) -> list[datetime]:
    with db.reading() as s:
        return list(s.scalars(select(StatusMessage.at)))


def test_rows_older_than_the_settings_go_and_newer_stay(db: Database) -> None:
    messages(db, 3, days_ago=91)
    messages(db, 2, days_ago=89)
    # A machine whose clock is years behind: its message is kept as long as a new one.
    messages(db, 1, days_ago=3000, received_days_ago=1)
    audit(db, 4, days_ago=31)
    audit(db, 1, days_ago=29)
    traffic(db, 2, [0, 1, 399, 401, 500])
    session(db, "fresh", timedelta(hours=1), timedelta(minutes=1))
    session(db, "past-lifetime", timedelta(hours=9), timedelta(minutes=1))
    session(db, "idle", timedelta(hours=1), timedelta(minutes=31))

    deleted = upkeep.upkeep(db, settings(audit_days=30))

    assert deleted == {
        "status_messages": 3,
        "dp_traffic_days": 4,
        "audit_log": 4,
        "console_sessions": 2,
    }
    assert count(db, StatusMessage) == 3
    assert sorted((NOW - at).days for at in ages(db)) == [89, 89, 3000]
    assert count(db, AuditEntry) == 1
    with db.reading() as s:
        days = set(s.scalars(select(DPTrafficDay.day)))
        assert list(s.scalars(select(ConsoleSession.id))) == ["fresh"]
    today = NOW.date()
    assert days == {today, today - timedelta(days=1), today - timedelta(days=399)}
    # A second pass finds nothing more.
    assert set(upkeep.upkeep(db, settings(audit_days=30)).values()) == {0}


def test_the_audit_log_is_kept_by_default_and_zero_keeps_every_kind(db: Database) -> None:
    messages(db, 2, days_ago=5000)
    audit(db, 2, days_ago=5000)
    traffic(db, 1, [5000])
    keep_all = settings(status_message_days=0, traffic_days=0)
    assert keep_all.audit_days == 0
    assert set(upkeep.upkeep(db, keep_all).values()) == {0}
    assert (count(db, StatusMessage), count(db, AuditEntry), count(db, DPTrafficDay)) == (2, 2, 1)

    defaults = upkeep.upkeep(db, SiteSettings())
    assert (defaults["status_messages"], defaults["dp_traffic_days"], defaults["audit_log"]) == (
        2,
        1,
        0,
    )
    assert count(db, AuditEntry) == 2


def test_many_rows_go_in_bounded_batches(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    messages(db, 12_000, days_ago=100)
    messages(db, 10, days_ago=1)
    batches: list[int] = []
    real = upkeep.delete_batch

    def counted(*args: Any) -> int:
        gone = real(*args)
        batches.append(gone)
        return gone

    monkeypatch.setattr(upkeep, "delete_batch", counted)
    before = UPKEEP_DELETED.labels("status_messages")._value.get()
    deleted = upkeep.upkeep(db, settings(), rows=5_000)
    assert deleted["status_messages"] == 12_000
    # Status messages first: three transactions of at most 5,000 rows.
    assert batches[:3] == [5_000, 5_000, 2_000]
    assert count(db, StatusMessage) == 10
    assert UPKEEP_DELETED.labels("status_messages")._value.get() - before == 12_000


def test_a_stopping_server_ends_the_pass_after_its_batch(db: Database) -> None:
    messages(db, 3_000, days_ago=100)
    stop = threading.Event()
    real = upkeep.delete_batch

    def then_stop(*args: Any) -> int:
        stop.set()
        return real(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(upkeep, "delete_batch", then_stop)
        deleted = upkeep.upkeep(db, settings(), rows=1_000, stop=stop)
    assert deleted["status_messages"] == 1_000
    assert count(db, StatusMessage) == 2_000


def test_two_processes_at_once_delete_each_row_once(db: Database) -> None:
    messages(db, 6_000, days_ago=100)
    messages(db, 7, days_ago=1)
    audit(db, 3_000, days_ago=100)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            results.append(upkeep.upkeep(db, settings(audit_days=10), rows=500))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sum(r["status_messages"] for r in results) == 6_000
    assert sum(r["audit_log"] for r in results) == 3_000
    assert (count(db, StatusMessage), count(db, AuditEntry)) == (7, 0)


def test_the_service_runs_soon_after_start_and_again(db: Database) -> None:
    assert upkeep.site_upkeep in SERVICES
    ctx = SimpleNamespace(db=db, settings=settings())

    async def run() -> None:
        service = asyncio.ensure_future(
            upkeep.site_upkeep(ctx, first_after_s=0, every_s=0.05)  # type: ignore[arg-type]
        )
        try:
            for pass_ in range(2):
                messages(db, 3, days_ago=100)
                for _ in range(200):
                    if count(db, StatusMessage) == 0:
                        break
                    await asyncio.sleep(0.02)
                assert count(db, StatusMessage) == 0, f"pass {pass_}"
        finally:
            service.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await service

    asyncio.run(run())
