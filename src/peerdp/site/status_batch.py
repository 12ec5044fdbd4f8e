"""Batched writing of the MP's high-volume records: content-location answer messages and
where each client was last seen.

One transaction per batch instead of one per request keeps the MP fast. Messages that
record a state change (on-demand triggered or delayed, a DP's report) are never batched:
they are written in the transaction that makes the change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from peerdp.store.db import Database
from peerdp.store.models import Client, StatusMessage, utcnow

T = TypeVar("T")


class Batcher(Generic[T]):
    """Items collected from any thread, written by `write` in one transaction per batch
    on a thread of its own (every `interval_s`, or sooner when `max_batch` are waiting)."""

    def __init__(
        self,
        db: Database,
        write: Callable[[Session, list[T]], None],
        *,
        name: str,
        interval_s: float = 0.1,
        max_batch: int = 1000,
    ) -> None:
        self.db = db
        self._write = write
        self.interval_s = interval_s
        self.max_batch = max_batch
        self._pending: list[T] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def add(self, item: T) -> None:
        with self._lock:
            self._pending.append(item)
            full = len(self._pending) >= self.max_batch
        if full:
            self._wake.set()

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            with self.db.transaction() as s:
                self._write(s, batch)
        except Exception:
            with self._lock:  # keep them for the next try
                self._pending[:0] = batch
            raise
        return len(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # keep the writer alive; the batch is kept and retried
                self._stop.wait(self.interval_s)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.flush()


def _insert_messages(s: Session, rows: list[dict[str, Any]]) -> None:
    s.execute(insert(StatusMessage), rows)


class StatusBatcher(Batcher[dict[str, Any]]):
    """Status messages written in batches."""

    def __init__(self, db: Database, **options: Any) -> None:
        super().__init__(db, _insert_messages, name="peerdp-status", **options)

    def message(self, **fields: Any) -> None:
        now = utcnow()
        self.add({"at": now, "received_at": now, "severity": "info", "detail": "", **fields})


# name, reported addresses, AD site, the connection's peer address, when
Sighting = tuple[str, tuple[str, ...], str | None, str | None, datetime]

_SEEN = (
    update(Client)
    .where(Client.name == bindparam("b_name"))
    .values(
        ip_addresses=bindparam("b_addresses"),
        ad_site=bindparam("b_ad_site"),
        peer_address=bindparam("b_peer"),
        last_seen=bindparam("b_at"),
    )
)


def _update_clients(s: Session, sightings: list[Sighting]) -> None:
    latest = {s[0]: s[1:] for s in sightings}
    rows = [
        {
            "b_name": name,
            "b_addresses": list(addresses),
            "b_ad_site": ad_site,
            "b_peer": peer,
            "b_at": at,
        }
        for name, (addresses, ad_site, peer, at) in latest.items()
    ]
    s.connection().execute(_SEEN, rows)  # Core: one executemany, no ORM bulk-by-key rules


class ClientSightings:
    """Where each client was last seen: the addresses and AD site it reports when it asks
    for content, and the address its request came from, written to its client row in
    batches. `explain` and the client list then show where a machine is now (a laptop
    moves between branches), not where it enrolled. A client's row is written again only
    when one of these changes, or after `refresh_s` to move its last-seen time on."""

    def __init__(self, db: Database, *, refresh_s: float = 300.0, interval_s: float = 1.0) -> None:
        self.refresh_s = refresh_s
        self._written: dict[str, tuple[tuple[str, ...], str | None, str | None, float]] = {}
        self._batch = Batcher(db, _update_clients, name="peerdp-sightings", interval_s=interval_s)

    def seen(
        self, name: str, addresses: tuple[str, ...], ad_site: str | None, peer: str | None = None
    ) -> None:
        now = time.monotonic()
        last = self._written.get(name)
        if (
            last is not None
            and last[:3] == (addresses, ad_site, peer)
            and now - last[3] < self.refresh_s
        ):
            return
        if len(self._written) > 500_000:
            self._written.clear()
        self._written[name] = (addresses, ad_site, peer, now)
        self._batch.add((name, addresses, ad_site, peer, utcnow()))

    def flush(self) -> int:
        return self._batch.flush()

    def close(self) -> None:
        self._batch.close()
