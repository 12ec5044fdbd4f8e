"""A role's data directory is checked at start: the reason it cannot be used, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerdp.config import ConfigError, writable_data_dir
from tests.helpers.mounts import tmpfs


def test_a_missing_data_directory_is_created(tmp_path: Path) -> None:
    wanted = tmp_path / "a" / "b"
    assert writable_data_dir(wanted) == wanted
    assert wanted.is_dir()
    assert list(wanted.iterdir()) == []  # the write check leaves nothing behind


def test_a_data_directory_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=f"cannot be made: {tmp_path / 'file'} is not a dir"):
        writable_data_dir(tmp_path / "file" / "sub")


def test_a_file_given_as_data_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="file is not a directory"):
        writable_data_dir(tmp_path / "file")


def test_a_read_only_data_directory_is_refused_even_for_root(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", read_only=True) as mounted:
        with pytest.raises(ConfigError, match="cannot be written: read-only file system"):
            writable_data_dir(mounted)
        with pytest.raises(ConfigError, match="cannot be written: read-only file system"):
            writable_data_dir(mounted / "sub")
