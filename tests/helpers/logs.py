"""peerdp's log as JSON lines, captured in this process for a test to read."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from peerdp import logs


class CapturedLog:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        """The events logged so far (those named `event`), oldest first."""
        found = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return [e for e in found if event is None or e["event"] == event]


@contextmanager
def captured_log(level: int = logging.INFO) -> Iterator[CapturedLog]:
    """Set peerdp's logging up as JSON into memory; put everything back after."""
    root = logging.getLogger()
    handlers, old_level = root.handlers[:], root.level
    process = dict(logs._PROCESS)
    captured = CapturedLog()
    logs.setup("json", level=level, stream=captured.stream)
    try:
        yield captured
    finally:
        root.handlers[:] = handlers
        root.setLevel(old_level)
        logs._PROCESS.clear()
        logs._PROCESS.update(process)
