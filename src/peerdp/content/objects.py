"""Single-instance object store keyed by SHA-256.

The site's content library and every DP's store are the same thing: each file
is held once under its digest, whichever packages and versions name it.

Layout under the store root::

    objects/<first 2 hex>/<sha256>   committed, verified, read-only (0o444)
    tmp/                             files being written by add_file/add_stream
    partial/<sha256>.part            resumable downloads in progress

An object becomes visible only by ``os.replace`` after its digest has been
checked, so a reader never sees a half-written or wrong file. Nothing in the
store is ever followed through a symlink: a planted link counts as absent.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from peerdp.content.fs import (
    CHUNK_SIZE,
    WRITEBACK_STEP,
    fsync_dir,
    hash_fd,
    lstat_regular,
    open_nofollow,
    start_writeback,
)
from peerdp.content.ids import is_sha256

OBJECT_MODE = 0o444
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class ContentError(Exception):
    """Something is wrong with stored or incoming content."""


class DigestMismatch(ContentError):
    """Content did not hash to the digest it was supposed to have."""

    def __init__(self, expected: str, actual: str, what: str = "content") -> None:
        super().__init__(f"{what}: expected sha256 {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


def check_sha256(value: object) -> str:
    """Return `value` if it is a lowercase hex SHA-256, else raise ValueError.

    Digests arrive from manifests and URLs; one must never be able to name a
    path outside the store, so anything but 64 lowercase hex chars is refused.
    """
    if not is_sha256(value):
        raise ValueError(f"not a lowercase hex sha256 digest: {value!r:.80}")
    assert isinstance(value, str)
    return value


@dataclass(frozen=True)
class StoredObject:
    """Result of adding content: its digest, size, and whether it was new."""

    sha256: str
    size: int
    added: bool


@dataclass
class StagedObject:
    """Content hashed and written to a temp file, not yet visible in the store."""

    sha256: str
    size: int
    temp_path: Path


class PartialWriter:
    """Append-only writer for a resumable download's partial file.

    It hashes the bytes already in the partial once when opened and then every
    byte it writes, so committing a large download needs no second read pass.
    The partial is held under an exclusive flock, so two downloads of the same
    object in one store (two packages sharing a file) never interleave.
    """

    def __init__(self, store: ObjectStore, sha256: str, fd: int) -> None:
        self._store = store
        self.sha256 = sha256
        self._fd = fd
        self._digest = hashlib.sha256()
        self.size = 0
        self._written_back = 0  # bytes whose writeback to disk has been started
        self._closed = False
        self._absorb_existing()

    def _absorb_existing(self) -> None:
        os.lseek(self._fd, 0, os.SEEK_SET)
        while chunk := os.read(self._fd, CHUNK_SIZE):
            self._digest.update(chunk)
            self.size += len(chunk)
        self._written_back = self.size

    def write(self, data: bytes | memoryview) -> None:
        """Append `data` and hash it."""
        self.append(data)
        self.hash(data)

    def append(self, data: bytes | memoryview) -> None:
        """Append `data` to the partial without hashing it (a pipeline hashes the same
        bytes with `hash` on another thread, in the same order)."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(data)
        if self.size - self._written_back >= WRITEBACK_STEP:
            start_writeback(self._fd, self._written_back, self.size - self._written_back)
            self._written_back = self.size

    def hash(self, data: bytes | memoryview) -> None:
        """Add `data`, appended with `append`, to the partial's digest."""
        self._digest.update(data)

    def hexdigest(self) -> str:
        """SHA-256 of the bytes in the partial so far."""
        return self._digest.hexdigest()

    def restart(self) -> None:
        """Throw away what is in the partial and start again from byte 0."""
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._digest = hashlib.sha256()
        self.size = 0
        self._written_back = 0

    def commit(self) -> StoredObject:
        """Check the digest and publish the object; on mismatch delete the partial."""
        actual = self._digest.hexdigest()
        path = self._store.partial_path(self.sha256)
        if actual != self.sha256:
            self._discard(path)
            raise DigestMismatch(self.sha256, actual, f"download of {self.sha256[:12]}")
        os.fsync(self._fd)
        os.fchmod(self._fd, OBJECT_MODE)
        added = self._store._publish(path, self.sha256)
        self.close()
        return StoredObject(self.sha256, self.size, added)

    def discard(self) -> None:
        """Delete the partial (e.g. it holds bytes a server should not have sent)."""
        self._discard(self._store.partial_path(self.sha256))

    def _discard(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)  # also releases the flock

    def __enter__(self) -> PartialWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ObjectStore:
    """Content-addressed store of files under `root`."""

    def __init__(self, root: Path, on_publish: Callable[[str], None] | None = None) -> None:
        """`on_publish(sha256)` is called after each object is published, its bytes just
        verified (e.g. a DP notes it as verified without hashing it a second time)."""
        self.root = Path(root)
        self.on_publish = on_publish
        self.objects_dir = self.root / "objects"
        self.tmp_dir = self.root / "tmp"
        self.partial_dir = self.root / "partial"
        for directory in (self.objects_dir, self.tmp_dir, self.partial_dir):
            directory.mkdir(parents=True, exist_ok=True)

    # -- naming ----------------------------------------------------------

    def path(self, sha256: str) -> Path:
        """Where the object `sha256` lives (whether or not it is present)."""
        check_sha256(sha256)
        return self.objects_dir / sha256[:2] / sha256

    def partial_path(self, sha256: str) -> Path:
        """Where a resumable download of `sha256` keeps its partial file."""
        check_sha256(sha256)
        return self.partial_dir / f"{sha256}.part"

    # -- queries ---------------------------------------------------------

    def _object_stat(self, sha256: str) -> os.stat_result | None:
        """lstat of a present object; None if absent or reached through a symlink."""
        path = self.path(sha256)
        if not self._prefix_dir_ok(path.parent):
            return None
        return lstat_regular(path)

    @staticmethod
    def _prefix_dir_ok(directory: Path) -> bool:
        # objects/<xx> must be a real directory: a planted link there would
        # make every object under it resolve somewhere else.
        try:
            return stat.S_ISDIR(directory.lstat().st_mode)
        except FileNotFoundError:
            return False

    def _ensure_prefix_dir(self, directory: Path) -> None:
        if self._prefix_dir_ok(directory):
            return
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            directory.unlink()  # a planted link or file; a racing mkdir is kept
        directory.mkdir(exist_ok=True)

    def has(self, sha256: str) -> bool:
        """True if the object is present as a regular file (a symlink is not)."""
        return self._object_stat(sha256) is not None

    def size(self, sha256: str) -> int:
        """Size of a present object; ContentError if it is absent."""
        st = self._object_stat(sha256)
        if st is None:
            raise ContentError(f"object {sha256} is not in the store")
        return st.st_size

    def open(self, sha256: str) -> BinaryIO:
        """Open a present object for reading, never through a symlink."""
        path = self.path(sha256)
        if not self._prefix_dir_ok(path.parent):
            raise ContentError(f"object {sha256} is not in the store (bad prefix directory)")
        try:
            fd = open_nofollow(path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise ContentError(f"object {sha256} is not in the store") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ContentError(f"object {sha256} is a symlink; refusing it") from exc
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ContentError(f"object {sha256} is not a regular file")
        return os.fdopen(fd, "rb")

    def verify(self, sha256: str) -> bool:
        """Re-hash the object: False if it is absent, not a regular file, or damaged."""
        try:
            with self.open(sha256) as fh:
                actual, _ = hash_fd(fh.fileno())
        except ContentError:
            return False
        return actual == sha256

    def iter_objects(self) -> Iterator[str]:
        """Digests of the objects present (regular files with a valid name)."""
        for prefix_dir in sorted(self.objects_dir.iterdir()):
            if prefix_dir.is_symlink() or not prefix_dir.is_dir():
                continue
            for entry in sorted(prefix_dir.iterdir()):
                name = entry.name
                if is_sha256(name) and name[:2] == prefix_dir.name and lstat_regular(entry):
                    yield name

    def total_size(self) -> int:
        """Bytes held by all present objects."""
        total = 0
        for sha256 in self.iter_objects():
            st = self._object_stat(sha256)
            total += st.st_size if st else 0
        return total

    # -- adding ----------------------------------------------------------

    def add_file(self, src: Path, expected_sha256: str | None = None) -> StoredObject:
        """Copy a regular file into the store, hashing as it goes.

        A file whose digest is already held is hashed but not written again.
        `src` must not be a symlink (it is opened with O_NOFOLLOW).
        """
        if expected_sha256 is not None:
            check_sha256(expected_sha256)
        try:
            fd = open_nofollow(Path(src), os.O_RDONLY)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ContentError(f"{src} is a symlink; refusing it") from exc
            raise
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ContentError(f"{src} is not a regular file")
            # First pass only reads: re-importing a folder the store already
            # holds must cost no writes.
            actual, size = hash_fd(fd)
            if expected_sha256 is not None and actual != expected_sha256:
                raise DigestMismatch(expected_sha256, actual, str(src))
            if self.has(actual):
                return StoredObject(actual, size, added=False)
            fh.seek(0)
            # The second pass re-checks the digest: the file may have changed.
            return self.add_stream(iter(lambda: fh.read(CHUNK_SIZE), b""), actual)

    def add_stream(
        self, chunks: Iterable[bytes], expected_sha256: str | None = None
    ) -> StoredObject:
        """Store the bytes of `chunks`; DigestMismatch if they do not hash as expected."""
        return self.commit_staged(self.stage_stream(chunks, expected_sha256))

    def stage_stream(
        self, chunks: Iterable[bytes], expected_sha256: str | None = None
    ) -> StagedObject:
        """Write `chunks` to a temp file and hash them, without publishing.

        Lets an importer check a whole archive before any of it becomes
        visible; follow with commit_staged() or discard_staged().
        """
        if expected_sha256 is not None:
            check_sha256(expected_sha256)
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="stage-")
        temp_path = Path(name)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb", closefd=True) as out:
                for chunk in chunks:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            if expected_sha256 is not None and actual != expected_sha256:
                raise DigestMismatch(expected_sha256, actual)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp_path.unlink()
            raise
        return StagedObject(actual, size, temp_path)

    def commit_staged(self, staged: StagedObject) -> StoredObject:
        """Publish a staged object (or drop it if the store already holds it)."""
        if self.has(staged.sha256):
            self.discard_staged(staged)
            return StoredObject(staged.sha256, staged.size, added=False)
        os.chmod(staged.temp_path, OBJECT_MODE)
        added = self._publish(staged.temp_path, staged.sha256)
        return StoredObject(staged.sha256, staged.size, added)

    def discard_staged(self, staged: StagedObject) -> None:
        with contextlib.suppress(FileNotFoundError):
            staged.temp_path.unlink()

    def _publish(self, src: Path, sha256: str) -> bool:
        """Rename verified `src` to the object path; False if it was already there."""
        target = self.path(sha256)
        if self._object_stat(sha256) is not None:
            src.unlink()
            return False
        self._ensure_prefix_dir(target.parent)
        # os.replace never follows a symlink at `target`: a planted link is
        # simply replaced by the real object.
        os.replace(src, target)
        fsync_dir(target.parent)
        if self.on_publish is not None:
            self.on_publish(sha256)
        return True

    # -- resumable downloads ----------------------------------------------

    def partial_size(self, sha256: str) -> int:
        """Bytes already in the partial file; 0 if none (a planted symlink is removed)."""
        path = self.partial_path(sha256)
        try:
            st = path.lstat()
        except FileNotFoundError:
            return 0
        if not stat.S_ISREG(st.st_mode):
            self._remove_entry(path)
            return 0
        return st.st_size

    def open_partial(self, sha256: str, *, wait_s: float = 3600.0) -> PartialWriter:
        """Open (creating if needed) the partial for `sha256`, locked for this caller.

        Waits up to `wait_s` for another downloader of the same object to
        finish; check `has()` afterwards, since that one may have committed it.
        """
        path = self.partial_path(sha256)
        deadline = time.monotonic() + wait_s
        while True:
            fd = self._open_partial_fd(path)
            if fd is not None and self._lock_current(fd, path, deadline):
                return PartialWriter(self, sha256, fd)
            if fd is not None:
                os.close(fd)
            if time.monotonic() > deadline:
                raise ContentError(f"partial download of {sha256} is held by another process")
            time.sleep(0.02)

    def _open_partial_fd(self, path: Path) -> int | None:
        try:
            fd = open_nofollow(path, os.O_RDWR | os.O_CREAT)
        except PermissionError:
            return None  # another writer is publishing it right now (mode 0o444)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            self._remove_entry(path)  # a planted symlink: drop it and retry
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self._remove_entry(path)
            return None
        os.lseek(fd, 0, os.SEEK_END)
        return fd

    @staticmethod
    def _lock_current(fd: int, path: Path, deadline: float) -> bool:
        """flock `fd` and confirm it is still the file at `path` (not a published one)."""
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)
        try:
            current = path.lstat()
        except FileNotFoundError:
            return False
        opened = os.fstat(fd)
        return (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino)

    def commit_partial(self, sha256: str) -> StoredObject:
        """Hash the partial file and publish it if it matches, else delete it.

        Raises DigestMismatch (partial deleted) or ContentError (no partial).
        """
        if self.partial_size(sha256) == 0 and not self.partial_path(sha256).exists():
            raise ContentError(f"no partial download of {sha256}")
        with self.open_partial(sha256, wait_s=0) as writer:
            return writer.commit()

    def discard_partial(self, sha256: str) -> None:
        self._remove_entry(self.partial_path(sha256))

    # -- removal and housekeeping ------------------------------------------

    def remove(self, sha256: str) -> None:
        """Delete an object (a missing one is fine)."""
        self._remove_entry(self.path(sha256))

    def clean_tmp(self, older_than_s: float = 3600.0) -> int:
        """Delete temp files left behind by a killed process; returns how many."""
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in self.tmp_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if entry.lstat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
        return removed

    @staticmethod
    def _remove_entry(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
