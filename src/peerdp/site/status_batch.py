"""Batched writing of high-volume status messages (the MP's content-location answers).

One transaction per batch instead of one per request keeps the MP fast. Messages that
record a state change (on-demand triggered or delayed, a DP's report) are never batched:
they are written in the transaction that makes the change.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import insert

from peerdp.store.db import Database
from peerdp.store.models import StatusMessage, utcnow


class StatusBatcher:
    def __init__(self, db: Database, *, interval_s: float = 0.1, max_batch: int = 1000) -> None:
        self.db = db
        self.interval_s = interval_s
        self.max_batch = max_batch
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peerdp-status", daemon=True)
        self._thread.start()

    def add(self, **fields: Any) -> None:
        now = utcnow()
        row = {"at": now, "received_at": now, "severity": "info", "detail": "", **fields}
        with self._lock:
            self._pending.append(row)
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
                s.execute(insert(StatusMessage), batch)
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
