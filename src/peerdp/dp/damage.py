"""What a DP does about damaged content: its content validation schedule and its reports.

A DP finds a held version damaged when a read fails its check or when content validation
(every held object hashed again, every `--validate-interval`) finds a wrong or missing file.
The store then stops offering the version (dp/store.py); here the DP tells the management
point, with a `package_state` message whose state is `content_damaged`, so that the site
takes the DP out of the version's locations and sends (or has it pull) the content again.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from typing import Any, Final

from peerdp.config import ConfigError
from peerdp.domain import dp_states
from peerdp.domain.backoff import backoff_delay
from peerdp.domain.timestamps import rfc3339_now
from peerdp.dp.store import DPStore, VersionCheck
from peerdp.logs import get_logger
from peerdp.machine.mp_client import MPClient, MPError
from peerdp.machine.reporting import package_state

log = get_logger("peerdp.dp.damage")

# Content validation hashes the whole store: daily by default, as a DP may hold a lot; the
# minimum keeps a mistyped interval from reading the disk without pause.
DEFAULT_VALIDATE_INTERVAL_S: Final = 24 * 3600.0
MIN_VALIDATE_INTERVAL_S: Final = 10.0


def checked_validate_interval(seconds: float) -> float:
    """The interval if it is allowed; ConfigError saying the limit if not."""
    if not seconds >= MIN_VALIDATE_INTERVAL_S:
        raise ConfigError(
            f"--validate-interval must be at least {MIN_VALIDATE_INTERVAL_S:g} s "
            f"(got {seconds:g} s)"
        )
    return seconds


def damage_detail(check: VersionCheck, how: str) -> str:
    """`content damaged: setup.exe (wrong SHA-256 or missing, found on read); …`."""
    paths = list(check.damaged) or ["its manifest"]
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return (
        f"content damaged: {shown} (wrong SHA-256 or missing, {how}); "
        "this DP deleted the damaged files and no longer serves this version"
    )


def damage_message(check: VersionCheck, how: str) -> dict[str, Any]:
    detail = damage_detail(check, how)[:4000]
    state = dp_states.CONTENT_DAMAGED
    return package_state(check.package_id, check.source_version, state, detail)


class DamageReporter:
    """Sends `content_damaged` reports from a thread of its own (a damaged read must not
    wait for the MP), retrying each until the MP takes or refuses it."""

    def __init__(self, mp: MPClient, retry_s: float = 2.0) -> None:
        self.mp = mp
        self.retry_s = retry_s
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()

    def found(self, check: VersionCheck, how: str) -> None:
        """The store's `on_damage`: log it and queue the report."""
        log.warning(
            "damaged content withdrawn",
            package_id=check.package_id,
            source_version=check.source_version,
            found=how,
            reason=check.reason,
        )
        self._queue.put(damage_message(check, how))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                message = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self._send(message, stop)

    def _send(self, message: dict[str, Any], stop: threading.Event) -> None:
        attempt = 0
        stamped = {"at": rfc3339_now(), **message}
        while not stop.is_set():
            try:
                answer = self.mp.status(stamped)
            except MPError as exc:
                attempt += 1
                delay = backoff_delay(attempt, self.retry_s, cap_s=60.0)
                log.warning("damage report not sent", retry_in_s=round(delay, 3), reason=str(exc))
                stop.wait(delay)
                continue
            for rejected in answer.get("rejected", []):
                log.info("damage report refused by the MP", reason=rejected.get("detail"))
            return


class ValidationSchedule:
    """Content validation every `interval_s` (the start-up check covers the start)."""

    def __init__(self, store: DPStore, interval_s: float) -> None:
        self.store = store
        self.interval_s = interval_s

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            try:
                found = self.store.validate()  # damaged versions go to the store's on_damage
            except OSError as exc:
                log.error("content validation failed", reason=str(exc))
                continue
            log.info("content validated", damaged_versions=len(found))


def start_damage_threads(
    store: DPStore,
    mp: MPClient,
    interval_s: float,
    stop: threading.Event,
    found_at_start: Iterable[VersionCheck] = (),
) -> list[threading.Thread]:
    """Report what the store finds damaged (and `found_at_start`, the start-up check's
    damaged versions) and validate it on schedule, until `stop`."""
    reporter = DamageReporter(mp)
    store.on_damage = reporter.found
    for check in found_at_start:
        reporter.found(check, "found at start")
    threads = [
        threading.Thread(target=reporter.run, args=(stop,), name="damage-report", daemon=True),
        threading.Thread(
            target=ValidationSchedule(store, interval_s).run,
            args=(stop,),
            name="content-validation",
            daemon=True,
        ),
    ]
    for thread in threads:
        thread.start()
    return threads
