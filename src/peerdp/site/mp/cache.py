"""A generic cache of facts read from the database, kept until a change generation moves.

Loads are single-flight: concurrent readers of one missing key wait for one load. Every
load counts in `CACHE_READS`, so a steady count shows answers come from memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Counter

T = TypeVar("T")

CACHE_READS = Counter(
    "peerdp_mp_cache_reads",
    "Database reads that fill the MP's caches, by cache (a steady count while clients are "
    "answered means they are answered from memory)",
    ["cache"],
)


class FactCache:
    """Facts read from the database, kept until a change generation moves."""

    def __init__(self, generation: Callable[[], int], name: str) -> None:
        self._generation = generation
        self._reads = CACHE_READS.labels(name)
        self._seen = -1
        self._entries: dict[Any, Any] = {}
        self._loading: dict[Any, threading.Lock] = {}
        self._lock = threading.Lock()

    def peek(self, key: Any) -> tuple[bool, Any]:
        """(True, value) when `key` is held for the current generation, else (False, None)."""
        with self._lock:
            if self._seen != self._generation() or key not in self._entries:
                return False, None
            return True, self._entries[key]

    def get(self, key: Any, load: Callable[[], T]) -> T:
        """The value for `key`, loaded once (concurrent callers wait for that one load)."""
        generation = self._generation()
        with self._lock:
            if generation != self._seen:
                self._entries.clear()
                self._seen = generation
            if key in self._entries:
                return self._entries[key]  # type: ignore[no-any-return]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if self._seen == generation and key in self._entries:
                    return self._entries[key]  # type: ignore[no-any-return]
            value = load()
            self._reads.inc()
            with self._lock:
                if self._seen == generation:
                    if len(self._entries) > 500_000:
                        self._entries.clear()
                    self._entries[key] = value
                self._loading.pop(key, None)
        return value
