"""The site server's own Prometheus gauges, and the text /metrics answers.

With several worker processes (`--workers N`) they count in prometheus-client's
multiprocess mode: the supervisor makes a directory for the run and names it in
PROMETHEUS_MULTIPROC_DIR before the workers start, each worker keeps its metrics in files
there, and /metrics, from whichever worker answers, reads them all: counters are summed
over the workers (those of a worker that died too), each gauge as its `multiprocess_mode`
says (`livesum`: the sum over the workers alive). The directory is removed at the end.
The per-process `process_*` and `python_*` metrics are not served then (they describe
one process, not the server).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, multiprocess

ENV = "PROMETHEUS_MULTIPROC_DIR"

PROCESSES = Gauge(
    "peerdp_site_processes",
    "Site-server processes serving (one per worker)",
    multiprocess_mode="livesum",
)
POLICY_WAITING = Gauge(
    "peerdp_mp_policy_waiting",
    "Policy long-polls waiting for a change now",
    multiprocess_mode="livesum",
)
POLICY_HELD = Gauge(
    "peerdp_mp_policy_held",
    "Policy long-polls held open now (each an open connection)",
    multiprocess_mode="livesum",
)
POLICY_HELD_MAX = Gauge(
    "peerdp_mp_policy_held_max",
    "Policy long-polls the server holds at most (over its processes); more get 503",
    multiprocess_mode="livesum",
)
POLICY_REFUSED = Counter(
    "peerdp_mp_policy_refused",
    "Policy long-polls refused with 503 because the held-poll limit was reached",
)
POLICY_ANSWERS = Counter(
    "peerdp_mp_policy_answers",
    "Policy answers by HTTP status: 200 (a policy), 304 (unchanged: If-None-Match)",
    ["status"],
)
UPKEEP_DELETED = Counter(
    "peerdp_site_upkeep_deleted",
    "Rows the site's upkeep deleted as aged, by table",
    ["table"],
)


def exposition() -> bytes:
    """The metrics of this server, every worker's when there are several."""
    directory = os.environ.get(ENV)
    if not directory:
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


@contextmanager
def shared_directory() -> Iterator[str]:
    """A new directory where the workers started within keep their metrics; removed after."""
    directory = tempfile.mkdtemp(prefix="peerdp-metrics-")
    previous = os.environ.get(ENV)
    os.environ[ENV] = directory
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


def forget_process(directory: str, pid: int | None) -> None:
    """A worker is gone: its `live*` gauges stop counting (its counters stay in the sums)."""
    if pid is not None:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
