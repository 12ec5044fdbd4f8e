"""The MP's fact cache: kept until its generation moves, one load per key at a time."""

from __future__ import annotations

import threading
import time

from prometheus_client import REGISTRY

from peerdp.site.mp.cache import FactCache


def _reads(name: str) -> float:
    return REGISTRY.get_sample_value("peerdp_mp_cache_reads_total", {"cache": name}) or 0.0


def test_a_value_is_kept_until_the_generation_moves() -> None:
    generation = [0]
    cache = FactCache(lambda: generation[0], "test-generation")
    loads = iter(range(100))

    assert cache.peek("k") == (False, None)
    assert cache.get("k", lambda: next(loads)) == 0
    assert cache.get("k", lambda: next(loads)) == 0
    assert cache.peek("k") == (True, 0)

    generation[0] += 1
    assert cache.peek("k") == (False, None)
    assert cache.get("k", lambda: next(loads)) == 1


def test_concurrent_readers_of_one_key_share_one_load() -> None:
    cache = FactCache(lambda: 0, "test-single-flight")
    before = _reads("test-single-flight")
    calls = []

    def load() -> str:
        calls.append(1)
        time.sleep(0.05)
        return "value"

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("k", load))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == ["value"] * 8
    assert len(calls) == 1
    assert _reads("test-single-flight") == before + 1
