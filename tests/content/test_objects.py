"""ObjectStore: single-instance storage, verification, partials, hostile names."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from peerdp.content.objects import (
    ContentError,
    DigestMismatch,
    ObjectStore,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "store")


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_add_file_stores_read_only_object_under_its_digest(
    store: ObjectStore, tmp_path: Path
) -> None:
    data = b"setup.exe contents" * 100
    stored = store.add_file(write(tmp_path / "setup.exe", data))

    assert stored.sha256 == sha(data)
    assert stored.size == len(data)
    assert stored.added
    path = store.path(stored.sha256)
    assert path == store.root / "objects" / stored.sha256[:2] / stored.sha256
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert store.has(stored.sha256)
    assert store.verify(stored.sha256)
    assert list(store.tmp_dir.iterdir()) == []


def test_adding_held_content_writes_nothing(store: ObjectStore, tmp_path: Path) -> None:
    data = b"shared runtime"
    first = store.add_file(write(tmp_path / "a.msi", data))
    inode = store.path(first.sha256).stat().st_ino

    again = store.add_file(write(tmp_path / "b.msi", data))
    streamed = store.add_stream([b"shared ", b"runtime"])

    assert (again.added, streamed.added) == (False, False)
    assert again.sha256 == streamed.sha256 == first.sha256
    assert store.path(first.sha256).stat().st_ino == inode
    assert list(store.iter_objects()) == [first.sha256]
    assert list(store.tmp_dir.iterdir()) == []


def test_wrong_expected_digest_stores_nothing(store: ObjectStore, tmp_path: Path) -> None:
    wrong = sha(b"something else")
    with pytest.raises(DigestMismatch) as info:
        store.add_file(write(tmp_path / "f", b"payload"), expected_sha256=wrong)
    assert info.value.expected == wrong
    assert info.value.actual == sha(b"payload")
    with pytest.raises(DigestMismatch):
        store.add_stream([b"payload"], expected_sha256=wrong)
    assert list(store.iter_objects()) == []
    assert list(store.tmp_dir.iterdir()) == []


@pytest.mark.parametrize(
    "digest",
    [
        "../../etc/passwd",
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "/" + "a" * 63,
        "a" * 62 + "/x",
        "",
    ],
)
def test_hostile_digest_never_makes_a_path(store: ObjectStore, digest: str) -> None:
    for method in (store.path, store.partial_path, store.has, store.remove):
        with pytest.raises(ValueError):
            method(digest)


def test_planted_symlink_counts_as_absent_and_is_replaced(
    store: ObjectStore, tmp_path: Path
) -> None:
    data = b"real content"
    digest = sha(data)
    outside = write(tmp_path / "outside", data)
    link = store.path(digest)
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)

    assert not store.has(digest)
    assert not store.verify(digest)
    assert list(store.iter_objects()) == []
    with pytest.raises(ContentError, match="symlink"):
        store.open(digest)

    stored = store.add_stream([data])
    assert stored.added
    assert not link.is_symlink()
    assert store.verify(digest)
    assert outside.read_bytes() == data


def test_symlink_source_is_refused(store: ObjectStore, tmp_path: Path) -> None:
    target = write(tmp_path / "target", b"x")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(ContentError, match="symlink"):
        store.add_file(tmp_path / "link")


def test_verify_detects_damage(store: ObjectStore) -> None:
    stored = store.add_stream([b"installer bytes"])
    path = store.path(stored.sha256)
    os.chmod(path, 0o644)
    path.write_bytes(b"installer bytez")
    assert store.has(stored.sha256)
    assert not store.verify(stored.sha256)
    assert not store.verify(sha(b"never stored"))


def test_remove_iter_and_total_size(store: ObjectStore) -> None:
    a = store.add_stream([b"a" * 10])
    b = store.add_stream([b"b" * 20])
    assert sorted(store.iter_objects()) == sorted([a.sha256, b.sha256])
    assert store.total_size() == 30
    store.remove(a.sha256)
    store.remove(a.sha256)  # removing twice is fine
    assert list(store.iter_objects()) == [b.sha256]
    assert store.total_size() == 20


def test_commit_partial_publishes_only_matching_content(store: ObjectStore) -> None:
    good = b"complete download"
    digest = sha(good)
    write(store.partial_path(digest), good)
    stored = store.commit_partial(digest)
    assert stored.added and store.verify(digest)
    assert not store.partial_path(digest).exists()

    other = sha(b"expected content")
    write(store.partial_path(other), b"corrupt content!")
    with pytest.raises(DigestMismatch) as info:
        store.commit_partial(other)
    assert info.value.expected == other
    assert not store.has(other)
    assert not store.partial_path(other).exists()

    with pytest.raises(ContentError, match="no partial"):
        store.commit_partial(other)


def test_partial_writer_resumes_and_hashes_prefix(store: ObjectStore) -> None:
    data = os.urandom(3000)
    digest = sha(data)
    with store.open_partial(digest) as writer:
        writer.write(data[:1000])
    assert store.partial_size(digest) == 1000

    writer = store.open_partial(digest)
    assert writer.size == 1000
    writer.write(data[1000:])
    stored = writer.commit()
    assert stored.size == 3000
    assert store.verify(digest)
    assert store.partial_size(digest) == 0


def test_partial_is_locked_against_a_second_writer(store: ObjectStore) -> None:
    digest = sha(b"x")
    first = store.open_partial(digest)
    with pytest.raises(ContentError, match="held by another"):
        store.open_partial(digest, wait_s=0)
    first.close()
    store.open_partial(digest, wait_s=0).close()


def test_planted_partial_symlink_is_not_written_through(store: ObjectStore, tmp_path: Path) -> None:
    victim = write(tmp_path / "victim", b"do not touch")
    digest = sha(b"payload")
    store.partial_path(digest).symlink_to(victim)

    assert store.partial_size(digest) == 0
    assert not store.partial_path(digest).is_symlink()
    store.partial_path(digest).symlink_to(victim)
    with store.open_partial(digest) as writer:
        writer.write(b"payload")
        writer.commit()
    assert victim.read_bytes() == b"do not touch"
    assert store.verify(digest)


def test_clean_tmp_removes_leftovers(store: ObjectStore) -> None:
    leftover = write(store.tmp_dir / "stage-dead", b"half")
    os.utime(leftover, (0, 0))
    fresh = write(store.tmp_dir / "stage-live", b"half")
    assert store.clean_tmp(older_than_s=60) == 1
    assert not leftover.exists() and fresh.exists()


def test_planted_prefix_dir_symlink_is_not_followed(store: ObjectStore, tmp_path: Path) -> None:
    data = b"object behind a linked prefix dir"
    digest = sha(data)
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / digest, data)
    (store.objects_dir / digest[:2]).symlink_to(elsewhere, target_is_directory=True)

    assert not store.has(digest)
    with pytest.raises(ContentError):
        store.open(digest)
    assert store.add_stream([data]).added
    assert not (store.objects_dir / digest[:2]).is_symlink()
    assert store.verify(digest)
