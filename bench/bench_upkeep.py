"""The site's upkeep on a large status message log: how long each batch's transaction
lasts (SQLite's write lock, a PostgreSQL transaction), a whole first pass, and the hourly
pass that finds nothing to delete.

Fills a fresh database (SQLite file, or a PostgreSQL schema of its own) with N messages
over 30 days (as bench_status_messages.py), sets `status_message_days` so that the older
half is aged, and runs `upkeep` twice:

    .venv/bin/python bench/bench_upkeep.py [--db postgresql://...] [--rows N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench_status_messages import DAYS, T0, fill
from policy_world import drop_pg_schema, new_pg_schema, pg_schema_url
from sqlalchemy import func, select, text

from peerdp.config import SiteSettings
from peerdp.site import upkeep
from peerdp.store.db import Database, upgrade
from peerdp.store.models import StatusMessage, utcnow


def timed_pass(db: Database, settings: SiteSettings) -> tuple[float, list[float], int]:
    """One pass: its seconds, each batch's milliseconds, the rows deleted."""
    batches: list[float] = []
    real = upkeep.delete_batch

    def timed_batch(*args: object) -> int:
        started = time.perf_counter()
        gone = real(*args)  # type: ignore[arg-type]
        batches.append((time.perf_counter() - started) * 1000)
        return gone

    upkeep.delete_batch = timed_batch  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        deleted = upkeep.upkeep(db, settings)
        return time.perf_counter() - started, batches, deleted["status_messages"]
    finally:
        upkeep.delete_batch = real  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=None, help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench_upkeep_")
    schema = new_pg_schema(args.db) if args.db else None
    url = pg_schema_url(args.db, schema) if args.db and schema else f"sqlite:///{folder}/site.db"
    db = Database(url)
    try:
        upgrade(db.engine)
        fill(db, args.rows)
        if not db.is_sqlite:
            with db.transaction() as s:
                s.execute(text("ANALYZE status_messages"))
        middle = T0 + timedelta(days=DAYS / 2)
        settings = SiteSettings(status_message_days=(utcnow() - middle).days)
        seconds, batches, deleted = timed_pass(db, settings)
        with db.reading() as s:
            left = s.scalar(select(func.count()).select_from(StatusMessage))
        print(f"{db.engine.dialect.name}, {args.rows:,} messages: first pass deleted {deleted:,}")
        print(f"  in {seconds:.1f} s, {len(batches)} batches of {upkeep.BATCH_ROWS:,}")
        print(
            f"  a batch's transaction: median {statistics.median(batches):.0f} ms, "
            f"max {max(batches):.0f} ms; {left:,} messages left"
        )
        seconds, batches, deleted = timed_pass(db, settings)
        print(f"  the next pass (nothing aged): {seconds * 1000:.1f} ms, deleted {deleted}")
    finally:
        db.dispose()
        if args.db and schema:
            drop_pg_schema(args.db, schema)
        for path in Path(folder).glob("*"):
            path.unlink()
        Path(folder).rmdir()


if __name__ == "__main__":
    main()
