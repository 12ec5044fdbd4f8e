"""The content store's OS helpers (content/fs.py)."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from peerdp.content.fs import (
    CHUNK_SIZE,
    fsync_dir,
    hash_fd,
    lstat_regular,
    open_nofollow,
    start_writeback,
)


def test_open_nofollow_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"secret")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(OSError) as caught:
        open_nofollow(link, os.O_RDONLY)
    assert caught.value.errno == errno.ELOOP


def test_open_nofollow_creates_private_files(tmp_path: Path) -> None:
    path = tmp_path / "new"
    fd = open_nofollow(path, os.O_RDWR | os.O_CREAT)
    try:
        assert os.fstat(fd).st_mode & 0o777 == 0o600 & ~_umask()
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_hash_fd_reads_from_the_start_whatever_the_offset(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 17)  # several blocks and a partial one
    path = tmp_path / "data"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, 1000, os.SEEK_SET)
        assert hash_fd(fd) == (hashlib.sha256(data).hexdigest(), len(data))
    finally:
        os.close(fd)


def test_lstat_regular_only_for_plain_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(plain)
    assert lstat_regular(plain) is not None
    assert lstat_regular(link) is None
    assert lstat_regular(tmp_path) is None
    assert lstat_regular(tmp_path / "missing") is None


def test_fsync_dir_and_writeback_accept_real_files(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"y" * 4096)
    fd = os.open(path, os.O_RDWR)
    try:
        start_writeback(fd, 0, 4096)  # advisory: never raises
    finally:
        os.close(fd)
    fsync_dir(tmp_path)
