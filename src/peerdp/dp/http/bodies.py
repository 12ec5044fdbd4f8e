"""Where a response's bytes come from: an open store file or a small buffer.

Files are opened once with ``O_NOFOLLOW`` and checked with ``fstat`` to be regular files
of the expected size; every later read uses that descriptor, so a symlink planted in the
store is never followed and nothing can be swapped in between the check and the read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Protocol

import anyio


class BodySource(Protocol):
    """Where a response's bytes come from."""

    async def read(self, offset: int, size: int) -> bytes: ...

    def fileno(self) -> int | None:
        """An OS file descriptor for zero-copy sending, if the body is a file."""
        ...

    def close(self) -> None: ...


class FileBody:
    """An already-open, already-checked file descriptor."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def read(self, offset: int, size: int) -> bytes:
        # pread in a worker thread: a cold disk must not stall the event loop.
        data = await anyio.to_thread.run_sync(os.pread, self._fd, size, offset)
        if len(data) != size:
            # Not an OSError: that would be mistaken for a client disconnect.
            raise RuntimeError("content file shrank while being served")
        return data

    def fileno(self) -> int | None:
        return self._fd if self._fd >= 0 else None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class BytesBody:
    """A small in-memory body, e.g. a manifest."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    async def read(self, offset: int, size: int) -> bytes:
        return bytes(self._data[offset : offset + size])

    def fileno(self) -> int | None:
        return None

    def close(self) -> None:
        pass


def open_regular_file(path: Path, expected_size: int, root: Path | None = None) -> int | None:
    """Open ``path`` read-only without following symlinks.

    With ``root`` (the store's trusted top directory) every component below
    it is opened with ``O_NOFOLLOW`` too, so neither a planted file symlink nor
    a planted directory symlink is followed. Returns the descriptor, or None
    when the file is missing, is not a regular file, or does not have the size
    the manifest promises (so an unverified or damaged file is never served).
    """
    try:
        fd = _open_nofollow(path, root)
    except (OSError, ValueError):
        return None  # ENOENT, ELOOP (symlink), ENOTDIR, EACCES, outside root …
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_size == expected_size:
            os.set_blocking(fd, True)
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


_NOFOLLOW_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # no FIFO hang
_NOFOLLOW_DIR = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_DIRECTORY


def _open_nofollow(path: Path, root: Path | None) -> int:
    if root is None:
        return os.open(path, _NOFOLLOW_FILE)
    parts = path.relative_to(root).parts
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError("path is not inside the store")
    dir_fd = os.open(root, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, _NOFOLLOW_DIR, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        return os.open(parts[-1], _NOFOLLOW_FILE, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


__all__ = ["BodySource", "BytesBody", "FileBody", "open_regular_file"]
