"""Status messages a managed machine sends to the MP, and how a download reads in them.

Every message sent is logged too (`peerdp.status`, event "status reported" with its
type, package, version, advertisement, state, exit code and detail): the machine's log
tells what it told the site.
"""

from __future__ import annotations

from typing import Any

from peerdp.domain.timestamps import rfc3339_now
from peerdp.logs import get_logger
from peerdp.machine.mp_client import MPClient, MPError
from peerdp.transfer.download import DownloadFailed, DownloadReport, SourceFailure

log = get_logger("peerdp.status")
_LOGGED = ("package_id", "source_version", "advertisement_id", "state", "exit_code", "detail")


PACKAGE_STATE = "package_state"


def package_state(package_id: str, version: int, state: str, detail: str) -> dict[str, Any]:
    """A DP's `package_state` message: where one package version stands on this DP."""
    return {
        "type": PACKAGE_STATE,
        "package_id": package_id,
        "source_version": version,
        "state": state,
        "detail": detail,
    }


def send_status(mp: MPClient, type_: str, **fields: Any) -> bool:
    """Send one status message; log (never raise) if the MP refuses it or cannot be reached."""
    return send_message(mp, {"type": type_, **fields})


def send_message(mp: MPClient, message: dict[str, Any]) -> bool:
    """send_status for a message already built (its `type` set): stamped with the time now."""
    type_ = message["type"]
    message = {"type": type_, "at": rfc3339_now(), **message}
    fields = {key: message[key] for key in _LOGGED if message.get(key) is not None}
    # Info, even for a failure: `client run --once` prints its outcomes, and its log shows
    # only what went wrong besides them.
    log.info("status reported", type=type_, **fields)
    try:
        answer = mp.status(message)
    except MPError as exc:
        log.warning("status not sent", type=type_, reason=str(exc))
        return False
    for rejected in answer.get("rejected", []):
        log.warning("status refused by the MP", type=type_, reason=rejected.get("detail"))
        return False
    return True


def failure_summary(exc: DownloadFailed, limit: int = 6) -> str:
    """The download error in a few lines: the first line and the latest reason per source."""
    head = str(exc).splitlines()[0]
    latest: dict[str, SourceFailure] = {}
    for failure in exc.failures:
        latest[failure.source] = failure
    reasons = [str(f) for f in list(latest.values())[:limit]]
    return "; ".join([head, *reasons])


def transfer_summary(report: DownloadReport, total: int) -> str:
    """'N bytes over the network (from A: x, B: y), M held already, T in total'.

    N counts every byte received, also those of attempts that failed and were discarded
    (so it may exceed T); M is the bytes of the files that were held before.
    """
    parts = [f"{name}: {n}" for name, n in report.bytes_by_source.items() if n]
    origin = f" (from {', '.join(parts)})" if parts else ""
    return (
        f"{report.network_bytes} bytes over the network{origin}, "
        f"{report.bytes_reused} held already, {total} in total"
    )
