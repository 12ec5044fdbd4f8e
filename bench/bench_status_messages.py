"""A page of the status message log at 1,000,000 messages: the viewer's filters, with and
without migration 0016's indexes.

Fills a fresh database (SQLite file, or a PostgreSQL schema of its own) with 1,000,000
messages over 30 days, newest last: half from the MP, 40 % from clients, the rest from
the distribution manager, DPs and the site (1 %); 1 % errors and 2 % warnings, spread
independently of the component. Then, for each filter below, prints the query plan and
the median of 5 timings of the page the console asks for (`status_query`, newest first,
101 rows), first with every index, then with 0016's two indexes dropped:

    .venv/bin/python bench/bench_status_messages.py [--db postgresql://...] [--rows N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from policy_world import drop_pg_schema, new_pg_schema, pg_schema_url
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql, sqlite

from peerdp.site.admin.history import StatusFilter, status_query
from peerdp.store.db import Database, upgrade
from peerdp.store.models import StatusMessage

DAYS = 30
T0 = datetime(2026, 11, 1, tzinfo=UTC)
COMPONENTS = ["mp"] * 50 + ["client"] * 40 + ["distribution"] * 5 + ["standard_dp"] * 3
COMPONENTS += ["branch_dp", "site"]
NEW_INDEXES = {
    "ix_status_messages_severity_id": "severity, id",
    "ix_status_messages_component_id": "component, id",
    "ix_status_messages_component_severity_id": "component, severity, id",
}


def cases(rows: int) -> dict[str, StatusFilter]:
    middle = T0 + timedelta(days=DAYS / 2)
    return {
        "newest (no filter)": StatusFilter(),
        "component=client severity=error": StatusFilter(component="client", severity="error"),
        "component=site severity=error (rare)": StatusFilter(component="site", severity="error"),
        "severity=error": StatusFilter(severity="error"),
        "severity=error, older than the middle id": StatusFilter(
            severity="error", before_id=rows // 2
        ),
        "component=site": StatusFilter(component="site"),
        "one hour in the middle": StatusFilter(since=middle, until=middle + timedelta(hours=1)),
        "one hour, severity=error": StatusFilter(
            since=middle, until=middle + timedelta(hours=1), severity="error"
        ),
        "since 29 days ago (most of the log)": StatusFilter(since=T0 + timedelta(days=1)),
        # What a following page asks: only the messages newer than the newest it shows.
        "follow: type, newer than the last 1,000": StatusFilter(
            type="program_failed", after_id=rows - 1000
        ),
        "follow: client, newer than the last 1,000": StatusFilter(
            client_name="PC000042", after_id=rows - 1000
        ),
    }


def fill(db: Database, rows: int, first: int = 0, chunk: int = 20_000) -> None:
    """Messages `first` to `rows` - 1, `chunk` a transaction."""
    step = timedelta(days=DAYS) / rows
    for start in range(first, rows, chunk):
        batch: list[dict[str, Any]] = []
        for i in range(start, min(rows, start + chunk)):
            spread = (i // 100 * 7919) % 1000
            severity = "error" if spread < 10 else "warning" if spread < 30 else "info"
            component = COMPONENTS[i % 100]
            at = T0 + step * i
            batch.append(
                {
                    "at": at,
                    "received_at": at,
                    "component": component,
                    "source": f"{component}-{i % 997}",
                    "type": "program_failed" if severity == "error" else "content_location",
                    "severity": severity,
                    "client_name": f"PC{i % 100_000:06d}",
                    "advertisement_id": 1 + i % 20,
                    "detail": "",
                }
            )
        with db.transaction() as s:
            s.execute(insert(StatusMessage), batch)


def plan(db: Database, filters: StatusFilter) -> str:
    query = status_query(filters, newest=True, limit=101)
    dialect = sqlite.dialect() if db.is_sqlite else postgresql.dialect()
    sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
    with db.reading() as s:
        lines = s.execute(text(explain + sql)).all()
    return "\n".join("    " + str(line[-1]) for line in lines)


def timed(db: Database, filters: StatusFilter) -> float:
    query = status_query(filters, newest=True, limit=101)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        with db.reading() as s:
            list(s.scalars(query))
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(db: Database, rows: int, label: str) -> dict[str, float]:
    print(f"\n## {label}")
    found = {}
    for name, filters in cases(rows).items():
        found[name] = timed(db, filters)
        print(f"- {name}: {found[name]:.1f} ms\n{plan(db, filters)}")
    return found


def appending(db: Database, rows: int) -> float:
    """The median time to append a batch of 1,000 messages (as the MP's batches do)."""
    times = []
    for n in range(20):
        started = time.perf_counter()
        fill(db, rows + (n + 1) * 1000, rows + n * 1000, chunk=1000)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=None, help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench_messages_")
    schema = new_pg_schema(args.db) if args.db else None
    url = pg_schema_url(args.db, schema) if args.db and schema else f"sqlite:///{folder}/site.db"
    db = Database(url)
    try:
        upgrade(db.engine)
        started = time.perf_counter()
        fill(db, args.rows)
        print(f"filled {args.rows} messages in {time.perf_counter() - started:.0f} s")
        if not db.is_sqlite:
            with db.transaction() as s:
                s.execute(text("ANALYZE status_messages"))
        with_indexes = measure(db, args.rows, "with 0016's indexes")
        with db.transaction() as s:
            for index in NEW_INDEXES:
                s.execute(text(f"DROP INDEX {index}"))
        # SQLite's EXPLAIN QUERY PLAN would read the old schema on a pooled connection.
        db.read_engine.dispose()
        db.engine.dispose()
        without = measure(db, args.rows, "without them")
        # Appending, the MP's batches: without the indexes, then with them made again.
        appended_without = appending(db, args.rows)
        with db.transaction() as s:
            for index, columns in NEW_INDEXES.items():
                s.execute(text(f"CREATE INDEX {index} ON status_messages ({columns})"))
        appended = appending(db, args.rows + 20_000)
        print(f"\nappending 1,000 messages: {appended:.1f} ms with, {appended_without:.1f} without")
        print("\n| filter | with 0016 (ms) | without (ms) |\n|---|---|---|")
        for name in with_indexes:
            print(f"| {name} | {with_indexes[name]:.1f} | {without[name]:.1f} |")
    finally:
        db.dispose()
        if args.db and schema:
            drop_pg_schema(args.db, schema)
        for path in Path(folder).glob("*"):
            path.unlink()
        Path(folder).rmdir()


if __name__ == "__main__":
    main()
