"""The operating-system plumbing of the content store: opening without following
symlinks, hashing an open file, durable renames (fsync of the directory) and early
writeback of large downloads (Linux ``sync_file_range`` through ctypes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

# Read and hash files in 1 MiB blocks.
CHUNK_SIZE = 1 << 20


def open_nofollow(path: Path, flags: int, mode: int = 0o600) -> int:
    """os.open that refuses a symlink as the last path component."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def fsync_dir(path: Path) -> None:
    # The rename itself must survive a crash, not only the file's bytes.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# A file being written starts its writeback every this many bytes.
WRITEBACK_STEP = 32 << 20
_SYNC_FILE_RANGE_WRITE = 2


def _load_sync_file_range() -> Any:
    """libc's sync_file_range (Linux), or None where there is none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    call.restype = ctypes.c_int
    return call


_sync_file_range = _load_sync_file_range()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a range of a file to disk without waiting for it, so the fsync
    before publishing finds little left to do (a 1 GiB fsync at the end costs
    seconds; started as the bytes arrive it overlaps the download)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # advisory: errors ignored


def hash_fd(fd: int) -> tuple[str, int]:
    """SHA-256 and length of an open file, read from offset 0."""
    digest = hashlib.sha256()
    size = 0
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def lstat_regular(path: Path) -> os.stat_result | None:
    """lstat result if `path` is a plain regular file (not a link), else None."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


__all__ = [
    "CHUNK_SIZE",
    "WRITEBACK_STEP",
    "fsync_dir",
    "hash_fd",
    "lstat_regular",
    "open_nofollow",
    "start_writeback",
]
