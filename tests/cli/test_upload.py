"""The streamed tar archive: readable by tarfile, exactly as long as announced."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import typer

from peerdp.cli.upload import (
    CHUNK,
    FolderChanged,
    archive_chunks,
    archive_size,
    checked_folder,
)
from tests.cli.support import write_files

FILES = {
    "setup.exe": bytes(range(256)) * 5000,
    "empty.txt": b"",
    "exactly-a-block.bin": b"b" * 512,
    "more-than-a-chunk.bin": b"c" * (CHUNK + 7),
    "deep/" + "d" * 120 + "/long-name-" + "n" * 150 + ".txt": b"long path",
    "unicodé/fïle ñame.txt": "héllo".encode(),
}


def test_archive_is_a_tar_of_the_folder_of_the_announced_size(tmp_path: Path) -> None:
    entries = checked_folder(write_files(tmp_path, FILES))
    data = b"".join(archive_chunks(entries))
    assert len(data) == archive_size(entries)
    assert len(data) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as archive:
        found = {}
        for member in archive:
            assert member.isreg()
            reader = archive.extractfile(member)
            assert reader is not None
            found[member.name] = reader.read()
    assert found == FILES


@pytest.mark.parametrize("change", [b"short", b"x" * 600_000])
def test_a_file_changed_after_the_check_stops_the_stream(tmp_path: Path, change: bytes) -> None:
    write_files(tmp_path, {"a.bin": b"a" * 500_000})
    entries = checked_folder(tmp_path)
    (tmp_path / "a.bin").write_bytes(change)
    with pytest.raises(FolderChanged, match=r"a\.bin"):
        b"".join(archive_chunks(entries))


def test_symlinks_are_refused_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_files(tmp_path, {"real.txt": b"x"})
    (tmp_path / "link").symlink_to(tmp_path / "real.txt")
    with pytest.raises(typer.Exit) as stopped:
        checked_folder(tmp_path)
    assert stopped.value.exit_code == 1
    assert "symlink not allowed" in capsys.readouterr().err


def test_an_empty_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit):
        checked_folder(tmp_path)
    assert "no files" in capsys.readouterr().err
