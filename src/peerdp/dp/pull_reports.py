"""A branch DP's pull in progress, told to the site: bytes held so far of the pull's total,
sent as `pull_progress` through the status channel at the start, at most every
`every_s` seconds while bytes arrive, and at the end (site/pull_progress.py keeps it on the
package's DP row; the console shows it live). Also shown in /metrics (PullGauges).

Sent from a thread of its own: a slow or unreachable site never slows the pull, and a
report that cannot be sent is dropped (the next one says more). The thread is joined
before the pull's outcome (`installed`, a failure) is reported, so no progress report
arrives after it.
"""

from __future__ import annotations

import threading
from typing import Any

from peerdp.domain.status_types import PULL_PROGRESS
from peerdp.domain.timestamps import rfc3339_now
from peerdp.logs import get_logger
from peerdp.machine.mp_client import MPClient, MPError
from peerdp.transfer.download import NullProgress

log = get_logger("peerdp.branch")

EVERY_S = 2.0


class PullReports(NullProgress):
    """Reports one pull's progress to the site, passing it on to `also` (the gauges)."""

    def __init__(
        self,
        mp: MPClient,
        package_id: str,
        source_version: int,
        *,
        also: NullProgress | None = None,
        every_s: float = EVERY_S,
    ) -> None:
        self.mp = mp
        self.key = (package_id, source_version)
        self.also = also or NullProgress()
        self.every_s = every_s
        self.total = 0
        self.held = 0  # bytes held so far (written by the pulling thread only)
        self._sent = -1
        self._over = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, total_bytes: int) -> None:
        self.also.start(total_bytes)
        self.total, self.held, self._sent = total_bytes, 0, -1
        self._over.clear()
        self._thread = threading.Thread(target=self._run, name="pull-reports", daemon=True)
        self._thread.start()

    def advance(self, n: int) -> None:
        self.also.advance(n)
        self.held += n

    def done(self) -> None:
        self.also.done()
        self._over.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        self._send()  # at the start
        while not self._over.wait(self.every_s):
            if self.held != self._sent:
                self._send()
        if self.held != self._sent:
            self._send()  # at the end

    def _send(self) -> None:
        done = self.held
        self._sent = done
        message: dict[str, Any] = {
            "type": PULL_PROGRESS,
            "at": rfc3339_now(),
            "package_id": self.key[0],
            "source_version": self.key[1],
            "bytes_done": max(0, min(done, self.total)),
            "bytes_total": self.total,
        }
        try:
            self.mp.status(message)
        except MPError as exc:
            log.debug("pull progress not sent", reason=str(exc))
