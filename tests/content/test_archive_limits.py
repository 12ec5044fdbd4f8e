"""Upload limits counted on what an archive unpacks to: file bytes, members, headers."""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile
from pathlib import Path

import pytest

from peerdp.content.archive_limits import ArchiveLimits, ArchiveTooLarge
from peerdp.content.manifest import UnsafeArchive, import_tar
from peerdp.content.objects import ObjectStore

NOW = "2024-05-01T12:00:00Z"
MIB = 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "store")


def tar_of(files: dict[str, bytes], **options: object) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", **options) as archive:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def stored_nothing(store: ObjectStore) -> bool:
    return not any(p.is_file() for p in store.root.rglob("*"))


def test_gzip_bomb_is_refused_at_the_header(store: ObjectStore) -> None:
    bomb = gzip.compress(tar_of({"zeros.bin": bytes(20 * MIB)}))
    assert len(bomb) < MIB // 10  # small as sent

    with pytest.raises(ArchiveTooLarge, match=f"more than {MIB} bytes uncompressed"):
        import_tar(store, io.BytesIO(bomb), "PS100001", 1, NOW, ArchiveLimits(MIB, 100))

    assert stored_nothing(store)


def test_files_adding_up_over_the_limit_are_refused(store: ObjectStore) -> None:
    files = {f"part-{i}.bin": bytes([i]) * (MIB // 4) for i in range(5)}
    archive = lzma.compress(tar_of(files))

    with pytest.raises(ArchiveTooLarge, match="PEERDP_MAX_UPLOAD_BYTES"):
        import_tar(store, io.BytesIO(archive), "PS100001", 1, NOW, ArchiveLimits(MIB, 100))

    assert stored_nothing(store)


def test_too_many_members_are_refused(store: ObjectStore) -> None:
    archive = gzip.compress(tar_of({f"f{i}.txt": b"x" for i in range(11)}))

    with pytest.raises(ArchiveTooLarge, match="more than 10 members"):
        import_tar(store, io.BytesIO(archive), "PS100001", 1, NOW, ArchiveLimits(MIB, 10))

    assert stored_nothing(store)


def test_an_archive_at_the_limits_is_taken(store: ObjectStore) -> None:
    files = {"a.bin": b"a" * (MIB - 10), "b.bin": b"b" * 10}
    manifest, stats = import_tar(
        store, io.BytesIO(tar_of(files)), "PS100001", 1, NOW, ArchiveLimits(MIB, 2)
    )
    assert stats.bytes == MIB
    assert [f.path for f in manifest.files] == ["a.bin", "b.bin"]


def test_oversized_tar_headers_are_refused(store: ObjectStore) -> None:
    # A PAX record tar would read whole into memory: compressed, it is tiny.
    info = tarfile.TarInfo("a.txt")
    info.size = 1
    info.pax_headers = {"comment": "x" * (4 * MIB)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(b"a"))
    bomb = gzip.compress(buf.getvalue())

    with pytest.raises(ArchiveTooLarge, match="headers"):
        import_tar(store, io.BytesIO(bomb), "PS100001", 1, NOW, ArchiveLimits(16 * MIB, 100))

    assert stored_nothing(store)


def test_a_broken_compressed_stream_is_not_a_tar(store: ObjectStore) -> None:
    broken = gzip.compress(tar_of({"a.txt": b"a" * 5000}))[:-40] + b"\x00" * 40
    with pytest.raises(UnsafeArchive, match="not a readable tar"):
        import_tar(store, io.BytesIO(broken), "PS100001", 1, NOW, ArchiveLimits(MIB, 10))
    assert stored_nothing(store)


# -- names tar would cut at a NUL byte ------------------------------------------------


def test_nul_in_a_member_name_is_refused(store: ObjectStore) -> None:
    archive = tar_of({"good.txt": b"g", "a\x00b.txt": b"x"}, format=tarfile.USTAR_FORMAT)

    with pytest.raises(UnsafeArchive, match="NUL byte"):
        import_tar(store, io.BytesIO(archive), "PS100001", 1, NOW)

    assert stored_nothing(store)


def test_nul_in_a_gnu_long_name_is_refused(store: ObjectStore) -> None:
    name = "d" * 120 + "/a\x00b.txt"
    archive = tar_of({name: b"x"}, format=tarfile.GNU_FORMAT)

    with pytest.raises(UnsafeArchive, match="NUL byte"):
        import_tar(store, io.BytesIO(archive), "PS100001", 1, NOW)


def test_nul_in_a_pax_path_is_refused(store: ObjectStore) -> None:
    archive = tar_of({"é/a\x00b.txt": b"x"}, format=tarfile.PAX_FORMAT)

    with pytest.raises(UnsafeArchive):
        import_tar(store, io.BytesIO(archive), "PS100001", 1, NOW)


def test_gnu_long_names_still_import(store: ObjectStore) -> None:
    name = "d" * 120 + "/setup.cmd"
    archive = tar_of({name: b"x", "short.txt": b"y"}, format=tarfile.GNU_FORMAT)
    manifest, _ = import_tar(store, io.BytesIO(archive), "PS100001", 1, NOW)
    assert [f.path for f in manifest.files] == [name, "short.txt"]
