"""`peerdp demo`: the whole seed scenario on this machine, narrated."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from peerdp.cli.connection import admin_errors_reported


def demo(
    clients: int = typer.Option(4, "--clients", min=1, max=20, help="Clients in the branch."),
    delayed: bool = typer.Option(
        False, "--delayed", help="Show condition 1: the content reaches the standard DP later."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Keep everything here (default: a temporary folder, removed)."
    ),
) -> None:
    """Run the seed's flow end to end with real processes on loopback ports."""
    # Imported when the demo runs, so that the other commands start without loading it.
    from peerdp.demo.narrator import Narrator
    from peerdp.demo.scenario import Options, run

    options = Options(clients=clients, delayed=delayed, data_dir=data_dir)
    with admin_errors_reported():
        code = run(options, Narrator(Console()))
    raise typer.Exit(code)
