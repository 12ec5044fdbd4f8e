"""Download progress on the terminal: a Rich bar the commands hand to the download engine."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from peerdp.transfer.download import NullProgress, ProgressSink


class RichProgress:
    """A Rich progress bar with bytes, speed and time remaining."""

    def __init__(self, description: str = "Downloading", console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._description = description
        self._task: TaskID | None = None

    def start(self, total_bytes: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task(self._description, total=total_bytes)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)

    def done(self) -> None:
        self._progress.stop()


def terminal_progress(
    description: str = "Downloading", console: Console | None = None
) -> ProgressSink:
    """A RichProgress when attached to a terminal, else a NullProgress."""
    console = console or Console(stderr=True)
    if console.is_terminal:
        return RichProgress(description, console)
    return NullProgress()
