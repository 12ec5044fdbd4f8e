"""Sending a package folder to the site as a tar stream, never held in memory.

The tar archive is produced piece by piece (each file's PAX header, its bytes,
the padding) while httpx sends it, so its exact length is known in advance
(`Content-Length`, and progress with a true total) and a folder of any size
needs no temporary copy.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peerdp.admin_client.api import AdminClient
from peerdp.admin_client.errors import AdminError

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
CHUNK = 1024 * 1024

# Told (bytes sent so far, bytes in all) as the archive goes out; when the two are equal
# every byte is sent and the site is storing the version.
OnProgress = Callable[[int, int], None]


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
    """The folder's files, checked as the site will check them (no symlinks, no specials).

    Raises `AdminError` (without a status) for a folder the site would refuse or that
    cannot be read.
    """
    # Imported here, not above: every CLI command imports this module, and the content
    # library costs its start-up time only when a folder is sent.
    from peerdp.content.manifest import UnsafeContent, scan_folder

    try:
        files = scan_folder(folder)
        return [_entry(f.relpath, f.abs_path) for f in files]
    except UnsafeContent as exc:
        raise AdminError(f"cannot send {folder}: {exc}") from exc
    except OSError as exc:
        raise AdminError(
            f"cannot read {folder}: {exc.strerror or exc} ({exc.filename or folder})"
        ) from exc


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


def archive_chunks(
    entries: Sequence[Entry], on_progress: OnProgress | None = None
) -> Iterator[bytes]:
    """The tar archive of `entries`, as `archive_size(entries)` bytes in pieces."""
    total = archive_size(entries)
    sent = 0
    for entry in entries:
        for chunk in _entry_chunks(entry):
            sent += len(chunk)
            if on_progress is not None:
                on_progress(sent, total)
            yield chunk
    tail = 2 * BLOCK + _padding(sent + 2 * BLOCK, RECORD)
    if on_progress is not None:
        on_progress(sent + tail, total)
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


def send_folder(
    client: AdminClient,
    path: str,
    entries: Sequence[Entry],
    on_progress: OnProgress | None = None,
) -> Any:
    """Upload `entries` to `path` (a package's versions); the site's answer.

    A file that changes while it is sent stops the upload (`AdminError`): the site then
    stores nothing.
    """
    size = archive_size(entries)
    try:
        return client.upload(path, archive_chunks(entries, on_progress), size, "application/x-tar")
    except FolderChanged as exc:
        raise AdminError(
            f"upload stopped: {exc}; nothing was stored, send the folder again"
        ) from exc
