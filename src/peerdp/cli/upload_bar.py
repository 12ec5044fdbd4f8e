"""Sending a package folder from the CLI, with a progress bar for a large one on a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from peerdp.admin_client import AdminClient, Entry, archive_size, checked_folder, send_folder
from peerdp.cli.connection import admin_errors_reported
from peerdp.cli.output import err_console

PROGRESS_FROM_BYTES = 8 * 1024 * 1024


def folder_entries(folder: Path) -> list[Entry]:
    """The folder's files, checked before anything is created on the site."""
    with admin_errors_reported():
        return checked_folder(folder)


def send_with_progress(client: AdminClient, path: str, entries: Sequence[Entry]) -> Any:
    """Upload `entries` to `path` (a package's versions); the site's answer."""
    size = archive_size(entries)
    if not (err_console().is_terminal and size >= PROGRESS_FROM_BYTES):
        return send_folder(client, path, entries)
    with _progress_bar() as bar:
        task = bar.add_task("sending", total=size)

        def show(sent: int, total: int) -> None:
            if sent < total:
                bar.update(task, completed=sent)
            else:
                bar.update(task, completed=sent, description="site storing")

        return send_folder(client, path, entries, show)


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console(),
        transient=True,
    )
