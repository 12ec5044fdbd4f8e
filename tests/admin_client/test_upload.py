"""The streamed tar archive: readable by tarfile, exactly as long as announced; and the
upload of a folder to a real site server."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from peerdp.admin_client import (
    AdminClient,
    AdminError,
    FolderChanged,
    archive_chunks,
    archive_size,
    checked_folder,
    send_folder,
)
from peerdp.admin_client.upload import CHUNK
from tests.cli.support import write_files
from tests.helpers.api import unique
from tests.helpers.processes import SiteProcess

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


def test_symlinks_are_refused_before_anything_is_sent(tmp_path: Path) -> None:
    write_files(tmp_path, {"real.txt": b"x"})
    (tmp_path / "link").symlink_to(tmp_path / "real.txt")
    with pytest.raises(AdminError) as refused:
        checked_folder(tmp_path)
    assert refused.value.status is None
    assert "symlink not allowed" in refused.value.message


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AdminError) as refused:
        checked_folder(tmp_path)
    assert "no files" in refused.value.message


@pytest.fixture
def client(site_server: SiteProcess) -> Iterator[AdminClient]:
    with AdminClient(site_server.url, site_server.admin_token) as client:
        yield client


@pytest.mark.slow
def test_a_folder_becomes_the_next_source_version(client: AdminClient, tmp_path: Path) -> None:
    files = {"setup.exe": b"s" * (CHUNK + 100), "data/nested/config.ini": b"[a]\n"}
    entries = checked_folder(write_files(tmp_path, files))
    package = client.post("/packages", {"name": unique("upload")})
    seen: list[tuple[int, int]] = []
    version = send_folder(
        client, f"/packages/{package['id']}/versions", entries, lambda *p: seen.append(p)
    )
    assert version["source_version"] == 1
    assert version["file_count"] == 2
    assert version["total_size"] == sum(map(len, files.values()))
    manifest = client.get(f"/packages/{package['id']}/versions/1/manifest")
    assert "data/nested/config.ini" in str(manifest)
    sent = [done for done, _ in seen]
    assert sent == sorted(sent) and seen[-1] == (archive_size(entries), archive_size(entries))


@pytest.mark.slow
def test_a_file_changed_during_the_upload_stores_nothing(
    client: AdminClient, tmp_path: Path
) -> None:
    write_files(tmp_path, {"big.bin": b"b" * (3 * CHUNK)})
    entries = checked_folder(tmp_path)
    package = client.post("/packages", {"name": unique("changed")})

    def shrink(sent: int, total: int) -> None:
        if sent > CHUNK:  # the first megabyte is on its way: the file loses its end
            (tmp_path / "big.bin").write_bytes(b"short")

    with pytest.raises(AdminError) as stopped:
        send_folder(client, f"/packages/{package['id']}/versions", entries, shrink)
    assert stopped.value.status is None
    assert "upload stopped" in stopped.value.message and "big.bin" in stopped.value.message
    assert client.get(f"/packages/{package['id']}/versions") == []
