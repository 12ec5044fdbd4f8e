"""The terminal's download progress: a Rich bar on a terminal, nothing elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from peerdp.cli.progress import RichProgress, terminal_progress
from peerdp.transfer.download import NullProgress


def test_progress_sinks() -> None:
    assert isinstance(terminal_progress(console=Console(file=io.StringIO())), NullProgress)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    sink = terminal_progress("PS100001", console=console)
    assert isinstance(sink, RichProgress)
    sink.start(1000)
    sink.advance(1000)
    sink.done()
    assert "PS100001" in out.getvalue()


def test_progress_follows_advances_back_and_forth() -> None:
    """A discarded partial moves the bar back; the bar shows the bytes held at the end."""
    out = io.StringIO()
    sink = RichProgress("PS100002 v1", Console(file=out, force_terminal=True, width=100))
    sink.start(2000)
    sink.advance(1500)
    sink.advance(-1500)
    sink.advance(2000)
    sink.done()
    assert "PS100002 v1" in out.getvalue() and "2.0" in out.getvalue()
