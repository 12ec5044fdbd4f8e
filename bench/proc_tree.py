"""A server's process tree read from /proc: CPU time and memory of the process, every
thread of it, and its worker processes.

`/proc/<pid>/stat` counts every thread of the process: the site server's blocking work
runs in a thread pool, so its main thread's own figures (`/proc/<pid>/task/<pid>/stat`)
miss most of it. Workers may be started from any thread, so children are read from
every thread's `children` list.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of the process (all its threads) and its workers."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in children(pid))


def _status_kib(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status)[1])  # type: ignore[index]


def rss_kib(pid: int) -> int:
    """Resident memory of the process and its workers, summed."""
    return _status_kib(pid, "VmRSS") + sum(rss_kib(child) for child in children(pid))


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of the process and its workers, summed."""
    own = _status_kib(pid, "VmHWM") / 1024
    return own + sum(peak_rss_mib(child) for child in children(pid))
