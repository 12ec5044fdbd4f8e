"""Manifests, folder scanning, and folder/tar import into the object store."""

from __future__ import annotations

import copy
import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from peerdp.content.manifest import (
    Manifest,
    ManifestError,
    ManifestFile,
    UnsafeArchive,
    UnsafeFolder,
    import_folder,
    import_tar,
    scan_folder,
)
from peerdp.content.objects import EMPTY_SHA256, ObjectStore
from peerdp.security.signing import json_digest

NOW = "2024-05-01T12:00:00Z"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "store")


def good_json() -> dict[str, Any]:
    return {
        "package_id": "PS100001",
        "source_version": 3,
        "created_at": NOW,
        "files": [
            {"path": "setup.exe", "size": 3, "sha256": sha(b"abc")},
            {"path": "data/readme.txt", "size": 0, "sha256": EMPTY_SHA256},
        ],
    }


# -- manifest ----------------------------------------------------------------


def test_manifest_round_trips_and_digests_canonical_json() -> None:
    manifest = Manifest.from_json(good_json())
    assert manifest.files[0] == ManifestFile("setup.exe", 3, sha(b"abc"))
    assert manifest.to_json() == good_json()
    assert manifest.digest() == json_digest(good_json())
    assert manifest.total_size == 3
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(good_json())
    target: Any = data
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is KeyError:
        del target[int(last) if last.isdigit() else last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        (_with("package_id", KeyError), "missing key"),
        (_with("extra", 1), "unknown key"),
        (_with("package_id", "PS1/../x"), "package_id"),
        (_with("source_version", "3"), "source_version"),
        (_with("source_version", True), "source_version"),
        (_with("source_version", 0), "source_version"),
        (_with("created_at", "yesterday"), "created_at"),
        (_with("created_at", "2024-05-01T12:00:00+02:00"), "created_at"),
        (_with("created_at", "2024-13-01T12:00:00Z"), "created_at"),
        (_with("files", {}), "must be a list"),
        (_with("files", []), "non-empty"),
        (_with("files.0", "setup.exe"), "must be an object"),
        (_with("files.0.mode", 0o755), "unknown key"),
        (_with("files.0.path", "../setup.exe"), "'..' segment"),
        (_with("files.0.path", "a/./b"), "'.' segment"),
        (_with("files.0.path", "/etc/passwd"), "absolute"),
        (_with("files.0.path", "bin\\setup.exe"), "backslash"),
        (_with("files.0.path", "a//b"), "empty path segment"),
        (_with("files.0.path", "dir/"), "empty path segment"),
        (_with("files.0.path", ""), "path is empty"),
        (_with("files.0.path", "a\nb"), "control character"),
        (_with("files.0.path", 7), "path must be a string"),
        (_with("files.0.path", "data/readme.txt"), "duplicate path"),
        (_with("files.0.path", "data"), "both a file and a directory"),
        (_with("files.0.size", -1), "size"),
        (_with("files.0.size", 1.5), "size"),
        (_with("files.0.sha256", "ABC"), "sha256"),
        (_with("files.0.sha256", sha(b"abc").upper()), "sha256"),
        (_with("files.1.sha256", sha(b"abc")), "size 0"),
    ],
)
def test_from_json_refuses_bad_manifests(data: Any, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(data)


def test_from_bytes_refuses_non_json() -> None:
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.from_bytes(b"{not json")


# -- scan_folder ---------------------------------------------------------------


def test_scan_folder_is_sorted_and_relative(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "src", {"z.txt": b"z", "a/b/c.bin": b"c", "a/a.txt": b"a"})
    (folder / "empty-dir").mkdir()
    found = scan_folder(folder)
    assert [f.relpath for f in found] == ["a/a.txt", "a/b/c.bin", "z.txt"]
    assert found[1].abs_path == folder / "a" / "b" / "c.bin"


def test_scan_folder_refuses_symlinked_file(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "src", {"setup.exe": b"x"})
    (folder / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeFolder, match=r"symlink.*passwd"):
        scan_folder(folder)


def test_scan_folder_refuses_symlinked_dir(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "src", {"setup.exe": b"x"})
    (folder / "sub").mkdir()
    (folder / "sub" / "etc").symlink_to("/etc", target_is_directory=True)
    with pytest.raises(UnsafeFolder, match=r"symlink.*sub/etc"):
        scan_folder(folder)


def test_scan_folder_refuses_fifo(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "src", {"setup.exe": b"x"})
    os.mkfifo(folder / "pipe")
    with pytest.raises(UnsafeFolder, match=r"fifo.*pipe"):
        scan_folder(folder)


def test_scan_folder_refuses_names_a_manifest_cannot_hold(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "src", {"win\\path.txt": b"x"})
    with pytest.raises(UnsafeFolder, match="backslash"):
        scan_folder(folder)


def test_scan_folder_refuses_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "src" / "only-dirs").mkdir(parents=True)
    with pytest.raises(UnsafeFolder, match="folder has no files"):
        scan_folder(tmp_path / "src")
    with pytest.raises(UnsafeFolder, match="not a directory"):
        scan_folder(tmp_path / "missing")


# -- import_folder ---------------------------------------------------------------


def test_import_folder_twice_stores_nothing_twice(store: ObjectStore, tmp_path: Path) -> None:
    folder = make_folder(
        tmp_path / "src",
        {"setup.exe": b"exe" * 50, "data/a.cab": b"cab", "data/copy.cab": b"cab"},
    )
    manifest, stats = import_folder(store, folder, "PS100001", 1, NOW)
    assert [f.path for f in manifest.files] == ["data/a.cab", "data/copy.cab", "setup.exe"]
    assert manifest.files[0].sha256 == manifest.files[1].sha256
    assert (stats.files, stats.bytes, stats.new_files, stats.new_bytes) == (3, 156, 2, 153)
    assert all(store.verify(f.sha256) for f in manifest.files)

    again, stats2 = import_folder(store, folder, "PS100001", 2, NOW)
    assert (stats2.new_files, stats2.new_bytes) == (0, 0)
    assert [f.sha256 for f in again.files] == [f.sha256 for f in manifest.files]
    assert len(list(store.iter_objects())) == 2


def test_two_packages_sharing_a_file_store_it_once(store: ObjectStore, tmp_path: Path) -> None:
    runtime = b"vc runtime" * 100
    one = make_folder(tmp_path / "one", {"vcredist.exe": runtime, "app1.msi": b"app1"})
    two = make_folder(tmp_path / "two", {"deps/vcredist.exe": runtime, "app2.msi": b"app2"})
    _, first = import_folder(store, one, "PS100001", 1, NOW)
    _, second = import_folder(store, two, "PS100002", 1, NOW)
    assert first.new_files == 2
    assert (second.new_files, second.new_bytes) == (1, 4)
    assert len(list(store.iter_objects())) == 3


def test_import_folder_checks_header_before_storing(store: ObjectStore, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "src", {"a": b"a"})
    with pytest.raises(ManifestError, match="package_id"):
        import_folder(store, folder, "../evil", 1, NOW)
    assert list(store.iter_objects()) == []


# -- import_tar -------------------------------------------------------------------


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as archive:  # type: ignore[call-overload]
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def reg(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def test_import_tar_matches_import_folder(store: ObjectStore, tmp_path: Path) -> None:
    files = {"setup.exe": b"exe" * 10, "data/a.cab": b"cab"}
    folder_manifest, _ = import_folder(
        ObjectStore(tmp_path / "other"), make_folder(tmp_path / "src", files), "PS100001", 1, NOW
    )
    archive = tar_bytes(
        [
            (special(".", tarfile.DIRTYPE), None),
            (special("./data", tarfile.DIRTYPE), None),
            (reg("./data/a.cab"), files["data/a.cab"]),
            (reg("./setup.exe"), files["setup.exe"]),
        ],
        mode="w:gz",
    )
    manifest, stats = import_tar(store, archive, "PS100001", 1, NOW)
    assert manifest == folder_manifest
    assert (stats.files, stats.new_files) == (2, 2)
    assert all(store.verify(f.sha256) for f in manifest.files)
    assert list(store.tmp_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ((reg("../x"), b"escape"), "'..' segment"),
        ((reg("data/../../x"), b"escape"), "'..' segment"),
        ((reg("/etc/cron.d/x"), b"escape"), "absolute"),
        ((special("link", tarfile.SYMTYPE, "/etc/passwd"), None), "symlink member"),
        ((special("hard", tarfile.LNKTYPE, "setup.exe"), None), "hardlink member"),
        ((special("dev", tarfile.CHRTYPE), None), "device member"),
        ((special("pipe", tarfile.FIFOTYPE), None), "fifo member"),
    ],
)
def test_import_tar_rejects_unsafe_members_and_stores_nothing(
    store: ObjectStore, bad: tuple[tarfile.TarInfo, bytes | None], message: str
) -> None:
    # A good member first: it must not survive the rejection of the archive.
    archive = tar_bytes([(reg("setup.exe"), b"fine"), bad, (reg("z.txt"), b"later")])
    with pytest.raises(UnsafeArchive, match=message):
        import_tar(store, archive, "PS100001", 1, NOW)
    assert list(store.iter_objects()) == []
    assert list(store.tmp_dir.iterdir()) == []


def test_import_tar_rejects_duplicates_and_clashes(store: ObjectStore) -> None:
    dup = tar_bytes([(reg("a"), b"1"), (reg("a"), b"2")])
    with pytest.raises(ManifestError, match="duplicate path"):
        import_tar(store, dup, "PS100001", 1, NOW)
    clash = tar_bytes([(special("a", tarfile.DIRTYPE), None), (reg("a"), b"1")])
    with pytest.raises(ManifestError, match="both a file and a directory"):
        import_tar(store, clash, "PS100001", 1, NOW)
    assert list(store.iter_objects()) == []
    assert list(store.tmp_dir.iterdir()) == []


def test_import_tar_refuses_garbage_and_empty_archives(store: ObjectStore) -> None:
    with pytest.raises(UnsafeArchive, match="not a readable tar"):
        import_tar(store, io.BytesIO(b"this is not a tar archive" * 40), "PS100001", 1, NOW)
    with pytest.raises(UnsafeArchive, match="no files"):
        import_tar(store, tar_bytes([(special("d", tarfile.DIRTYPE), None)]), "PS100001", 1, NOW)
