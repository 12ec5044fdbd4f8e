"""Sending a package folder to the site as a tar stream, never held in memory.

The tar archive is produced piece by piece (each file's PAX header, its bytes,
the padding) while httpx sends it, so its exact length is known in advance
(`Content-Length`, and a progress bar with a true total) and a folder of any
size needs no temporary copy.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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

from peerdp.cli.http import Api, fail
from peerdp.cli.output import err_console

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
CHUNK = 1024 * 1024
PROGRESS_FROM_BYTES = 8 * 1024 * 1024


class FolderChanged(Exception):
    """A file changed or vanished between the check and the upload."""


@dataclass(frozen=True)
class Entry:
    """One file to send: its path in the package and its header in the archive."""

    relpath: str
    path: Path
    size: int
    header: bytes


def checked_folder(folder: Path) -> list[Entry]:
    """The folder's files, checked as the site will check them (no symlinks, no specials)."""
    from peerdp.content.manifest import UnsafeContent, scan_folder

    try:
        files = scan_folder(folder)
        return [_entry(f.relpath, f.abs_path) for f in files]
    except UnsafeContent as exc:
        fail(f"cannot send {folder}: {exc}")
    except OSError as exc:
        fail(f"cannot read {folder}: {exc.strerror or exc} ({exc.filename or folder})")


def _entry(relpath: str, path: Path) -> Entry:
    info = tarfile.TarInfo(relpath)
    facts = path.stat()
    info.size = facts.st_size
    info.mtime = int(facts.st_mtime)
    info.mode = 0o644
    header = info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")
    return Entry(relpath, path, facts.st_size, header)


def _padding(size: int, unit: int) -> int:
    return -size % unit


def archive_size(entries: Sequence[Entry]) -> int:
    body = sum(len(e.header) + e.size + _padding(e.size, BLOCK) for e in entries) + 2 * BLOCK
    return body + _padding(body, RECORD)


def archive_chunks(entries: Sequence[Entry], progress: Progress | None = None) -> Iterator[bytes]:
    """The tar archive of `entries`, as `archive_size(entries)` bytes in pieces."""
    task = progress.add_task("sending", total=archive_size(entries)) if progress else None
    sent = 0
    for entry in entries:
        for chunk in _entry_chunks(entry):
            sent += len(chunk)
            if progress is not None and task is not None:
                progress.update(task, completed=sent)
            yield chunk
    tail = 2 * BLOCK + _padding(sent + 2 * BLOCK, RECORD)
    if progress is not None and task is not None:
        progress.update(task, completed=sent + tail, description="site storing")
    yield bytes(tail)


def _entry_chunks(entry: Entry) -> Iterator[bytes]:
    yield entry.header
    remaining = entry.size
    try:
        with entry.path.open("rb") as source:
            while remaining:
                chunk = source.read(min(CHUNK, remaining))
                if not chunk:
                    raise FolderChanged(f"{entry.path} got shorter while it was being sent")
                remaining -= len(chunk)
                yield chunk
            if source.read(1):
                raise FolderChanged(f"{entry.path} grew while it was being sent")
    except OSError as exc:
        raise FolderChanged(f"cannot read {entry.path}: {exc.strerror or exc}") from exc
    yield bytes(_padding(entry.size, BLOCK))


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


def send_folder(api: Api, path: str, entries: Sequence[Entry]) -> Any:
    """Upload `entries` to `path` (a package's versions); the site's answer."""
    size = archive_size(entries)
    show = err_console().is_terminal and size >= PROGRESS_FROM_BYTES
    try:
        if not show:
            return api.upload(path, archive_chunks(entries), size, "application/x-tar")
        with _progress_bar() as progress:
            chunks = archive_chunks(entries, progress)
            return api.upload(path, chunks, size, "application/x-tar")
    except FolderChanged as exc:
        fail(f"upload stopped: {exc}; nothing was stored, send the folder again")
