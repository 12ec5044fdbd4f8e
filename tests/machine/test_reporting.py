"""Status messages carry their type and time, and a refused one is logged, never raised."""

from __future__ import annotations

from typing import Any

from peerdp.domain.timestamps import parse_rfc3339
from peerdp.machine.mp_client import MPError
from peerdp.machine.reporting import (
    failure_summary,
    package_state,
    send_message,
    send_status,
    transfer_summary,
)
from peerdp.transfer.download import DownloadFailed, DownloadReport, SourceFailure


class MP:
    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.answer = answer
        self.messages: list[dict[str, Any]] = []

    def status(self, *messages: dict[str, Any]) -> dict[str, Any]:
        if self.answer is None:
            raise MPError("unreachable")
        self.messages.extend(messages)
        return self.answer


def test_send_status_stamps_the_message() -> None:
    mp = MP({"accepted": 1, "rejected": []})
    assert send_status(mp, "package_state", state="installed")  # type: ignore[arg-type]
    [message] = mp.messages
    assert message["type"] == "package_state" and message["state"] == "installed"
    assert message["at"].endswith("Z") and parse_rfc3339(message["at"])


def test_a_package_state_message_is_sent_as_built() -> None:
    mp = MP({"accepted": 1, "rejected": []})
    assert send_message(mp, package_state("PS100001", 3, "installed", "held"))  # type: ignore[arg-type]
    [message] = mp.messages
    assert set(message) == {"type", "at", "package_id", "source_version", "state", "detail"}
    assert (message["type"], message["source_version"], message["state"]) == (
        "package_state",
        3,
        "installed",
    )


def test_send_status_reports_refusal_and_unreachable_mp_as_false() -> None:
    refused = MP({"accepted": 0, "rejected": [{"index": 0, "detail": "no"}]})
    assert not send_status(refused, "program_started")  # type: ignore[arg-type]
    assert not send_status(MP(None), "program_started")  # type: ignore[arg-type]


def test_download_summaries() -> None:
    failures = [
        SourceFailure("std", "a.bin", "busy (503)"),
        SourceFailure("br", "a.bin", "not found (404)"),
        SourceFailure("std", "a.bin", "HTTP 500"),
    ]
    summary = failure_summary(DownloadFailed("PS100001 v1: no source delivered a.bin", failures))
    assert summary == (
        "PS100001 v1: no source delivered a.bin; std: a.bin: HTTP 500; br: a.bin: not found (404)"
    )
    report = DownloadReport("PS100001", 1, bytes_reused=700, bytes_by_source={"std": 300, "br": 0})
    assert transfer_summary(report, 1000) == (
        "300 bytes over the network (from std: 300), 700 held already, 1000 in total"
    )


def test_a_summary_after_failed_attempts_holds_nothing_negative() -> None:
    # A first source sent 600 bytes of a 1000-byte file and failed; the next sent it all.
    report = DownloadReport("PS100001", 1, bytes_by_source={"std": 600, "br": 1000})
    assert transfer_summary(report, 1000) == (
        "1600 bytes over the network (from std: 600, br: 1000), 0 held already, 1000 in total"
    )
