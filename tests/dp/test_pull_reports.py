"""A branch DP's pull progress reports (dp/pull_reports.py): sent at the start, at most
every `every_s` while bytes arrive, and at the end, never after `done()` returns."""

from __future__ import annotations

import time

from peerdp.dp.pull_reports import PullReports
from peerdp.transfer.download import NullProgress
from tests.machine.support import RecordingMP


class Gauges(NullProgress):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self, total_bytes: int) -> None:
        self.calls.append(f"start {total_bytes}")

    def advance(self, n: int) -> None:
        self.calls.append(f"advance {n}")

    def done(self) -> None:
        self.calls.append("done")


def test_progress_is_reported_at_start_every_interval_and_at_the_end() -> None:
    mp, gauges = RecordingMP(), Gauges()
    reports = PullReports(mp, "PS100001", 3, also=gauges, every_s=0.2)  # type: ignore[arg-type]
    reports.start(1000)
    for _ in range(10):
        reports.advance(50)
        time.sleep(0.05)  # 0.5 s in all: about two reports on the way
    reports.advance(500)
    reports.done()
    sent = len(mp.progress)
    time.sleep(0.3)
    assert len(mp.progress) == sent, "nothing after done()"
    done = [m["bytes_done"] for m in mp.progress]
    assert done[0] == 0 and done[-1] == 1000
    assert 3 <= len(done) <= 6 and done == sorted(done)
    assert {m["type"] for m in mp.progress} == {"pull_progress"}
    assert {(m["package_id"], m["source_version"], m["bytes_total"]) for m in mp.progress} == {
        ("PS100001", 3, 1000)
    }
    assert mp.messages == []  # no status message
    assert gauges.calls[0] == "start 1000" and gauges.calls[-1] == "done"


def test_a_quiet_pull_sends_nothing_new() -> None:
    mp = RecordingMP()
    reports = PullReports(mp, "PS100001", 1, every_s=0.05)  # type: ignore[arg-type]
    reports.start(10)
    time.sleep(0.3)
    reports.done()
    assert [m["bytes_done"] for m in mp.progress] == [0]
