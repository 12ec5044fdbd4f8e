"""Package content manifests, and importing a source folder or tar archive.

A manifest names every file of one package version by relative POSIX path,
size and SHA-256. It is signed by the site and checked by every agent, so it
is parsed strictly: anything that could name a path outside a package folder
or make two files collide is refused with a message saying what is wrong.
"""

from __future__ import annotations

import json
import lzma
import os
import re
import stat
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from peerdp.content.archive_limits import ArchiveGauge, ArchiveLimits, decompressed
from peerdp.content.fs import CHUNK_SIZE
from peerdp.content.ids import is_package_id, is_sha256
from peerdp.content.objects import (
    EMPTY_SHA256,
    ContentError,
    ObjectStore,
    StagedObject,
)
from peerdp.content.space import is_disk_full
from peerdp.domain.visible_names import invisible_character
from peerdp.security.signing import canonical_json, json_digest

MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255

_RFC3339_UTC_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|\+00:00)")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_MANIFEST_KEYS = frozenset({"package_id", "source_version", "created_at", "files"})
_FILE_KEYS = frozenset({"path", "size", "sha256"})


class ManifestError(ContentError):
    """A manifest (or something that would become one) is not valid."""


class UnsafeContent(ContentError):
    """Package source content that must not be imported."""


class UnsafeFolder(UnsafeContent):
    """A source folder holds a symlink, special file, or path that cannot be packaged."""


class UnsafeArchive(UnsafeContent):
    """A tar archive holds a link, device, or a name that would leave the package."""


# -- validation helpers ------------------------------------------------------


def check_relpath(path: object) -> str:
    """Return `path` if it is a safe relative POSIX path, else raise ManifestError."""
    if not isinstance(path, str):
        raise ManifestError(f"path must be a string, not {type(path).__name__}")
    problem = _relpath_problem(path)
    if problem:
        raise ManifestError(f"{problem}: {path!r:.200}")
    return path


def _relpath_problem(path: str) -> str | None:
    if not path:
        return "path is empty"
    if path.startswith("/"):
        return "absolute path not allowed"
    if "\\" in path:
        return "backslash not allowed in path"
    if _CONTROL_RE.search(path):
        return "control character not allowed in path"
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return "path is not valid UTF-8"
    if len(encoded) > MAX_PATH_BYTES:
        return f"path longer than {MAX_PATH_BYTES} bytes"
    for segment in path.split("/"):
        if segment == "":
            return "empty path segment (leading, trailing or double slash)"
        if segment in (".", ".."):
            return f"{segment!r} segment not allowed in path"
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            return f"path segment longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def _import_path_problem(path: str) -> str | None:
    """What is wrong with a new package file's path: what a manifest refuses, and
    characters that would hide what the path is (a manifest already signed is not
    re-judged by this rule, only content coming in)."""
    problem = _relpath_problem(path)
    if problem is None and (found := invisible_character(path)) is not None:
        problem = f"invisible character {found} not allowed in path"
    return problem


def _check_header(package_id: object, source_version: object, created_at: object) -> None:
    if not is_package_id(package_id):
        raise ManifestError(
            f"package_id must be a site code plus five hex digits (e.g. PS100001), "
            f"not {package_id!r:.40}"
        )
    # bool is an int subclass; True must not pass for version 1.
    if type(source_version) is not int or source_version < 1:
        raise ManifestError(f"source_version must be an integer >= 1, not {source_version!r:.40}")
    if not isinstance(created_at, str) or not _is_rfc3339_utc(created_at):
        raise ManifestError(
            f"created_at must be an RFC 3339 UTC time like 2024-05-01T12:00:00Z, "
            f"not {created_at!r:.40}"
        )


def _is_rfc3339_utc(text: str) -> bool:
    if not _RFC3339_UTC_RE.fullmatch(text):
        return False
    try:
        # fromisoformat takes at most 6 fractional digits; the date check is what matters.
        datetime.fromisoformat(text[:19])
    except ValueError:
        return False
    return True


def _check_layout(paths: Sequence[str], dirs: Sequence[str] = ()) -> None:
    """No duplicate paths, and no path that is both a file and a directory."""
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise ManifestError(f"duplicate path: {path!r}")
        seen.add(path)
    parents = {path.rsplit("/", i)[0] for path in paths for i in range(1, path.count("/") + 1)}
    parents.update(dirs)
    clash = sorted(seen & parents)
    if clash:
        raise ManifestError(f"path is both a file and a directory: {clash[0]!r}")


# -- the manifest ------------------------------------------------------------


@dataclass(frozen=True)
class ManifestFile:
    """One file of a package: relative POSIX path, size in bytes, SHA-256 hex."""

    path: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        check_relpath(self.path)
        if type(self.size) is not int or self.size < 0:
            raise ManifestError(f"{self.path}: size must be an integer >= 0, not {self.size!r}")
        if not is_sha256(self.sha256):
            raise ManifestError(
                f"{self.path}: sha256 must be 64 lowercase hex digits, not {self.sha256!r:.80}"
            )
        if self.size == 0 and self.sha256 != EMPTY_SHA256:
            raise ManifestError(f"{self.path}: size 0 but sha256 is not that of empty content")

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    """The content of one package source version."""

    package_id: str
    source_version: int
    created_at: str
    files: tuple[ManifestFile, ...]

    def __post_init__(self) -> None:
        _check_header(self.package_id, self.source_version, self.created_at)
        if not isinstance(self.files, tuple) or not self.files:
            raise ManifestError("files must be a non-empty tuple of ManifestFile")
        _check_layout([f.path for f in self.files])

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "package_id": self.package_id,
            "source_version": self.source_version,
            "created_at": self.created_at,
            "files": [f.to_json() for f in self.files],
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON bytes: what is signed, served and hashed."""
        return canonical_json(self.to_json())

    def digest(self) -> str:
        """SHA-256 hex of the canonical JSON form."""
        return json_digest(self.to_json())

    @classmethod
    def from_json(cls, data: object) -> Manifest:
        """Parse and strictly validate a decoded JSON manifest (unknown keys refused)."""
        if not isinstance(data, dict):
            raise ManifestError("manifest must be a JSON object")
        _check_keys(data, _MANIFEST_KEYS, "manifest")
        raw_files = data["files"]
        if not isinstance(raw_files, list):
            raise ManifestError("manifest.files must be a list")
        files = tuple(_file_from_json(i, item) for i, item in enumerate(raw_files))
        return cls(data["package_id"], data["source_version"], data["created_at"], files)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        """Parse manifest JSON bytes (as served by a DP)."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(f"manifest is not valid JSON: {exc}") from exc
        return cls.from_json(data)


def _check_keys(data: dict[Any, Any], expected: frozenset[str], where: str) -> None:
    missing = sorted(expected - data.keys())
    if missing:
        raise ManifestError(f"{where}: missing key(s) {', '.join(missing)}")
    unknown = sorted(str(k) for k in data.keys() - expected)
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _file_from_json(index: int, item: object) -> ManifestFile:
    where = f"manifest.files[{index}]"
    if not isinstance(item, dict):
        raise ManifestError(f"{where} must be an object")
    _check_keys(item, _FILE_KEYS, where)
    try:
        return ManifestFile(item["path"], item["size"], item["sha256"])
    except ManifestError as exc:
        raise ManifestError(f"{where}: {exc}") from exc


# -- scanning and importing --------------------------------------------------


@dataclass(frozen=True)
class FolderFile:
    relpath: str
    abs_path: Path


@dataclass(frozen=True)
class ImportStats:
    """Files and bytes in the package, and how many of them were new to the store."""

    files: int
    bytes: int
    new_files: int
    new_bytes: int


def _kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def scan_folder(folder: Path) -> list[FolderFile]:
    """Regular files under `folder`, sorted by relative path.

    Refuses (UnsafeFolder) symlinks to files or directories, fifos, devices,
    sockets, names that cannot be a manifest path, and a folder with no files.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UnsafeFolder(f"not a directory: {root}")
    found: list[FolderFile] = []
    # An explicit stack: a deep tree must not hit the recursion limit.
    pending: list[tuple[Path, str]] = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                found.extend(_scan_entry(entry, prefix, pending))
    if not found:
        raise UnsafeFolder(f"folder has no files: {root}")
    return sorted(found, key=lambda f: f.relpath)


def _scan_entry(
    entry: os.DirEntry[str], prefix: str, pending: list[tuple[Path, str]]
) -> Iterator[FolderFile]:
    path = Path(entry.path)
    relpath = prefix + entry.name
    if entry.is_symlink():
        raise UnsafeFolder(f"symlink not allowed in a package folder: {path}")
    if entry.is_dir(follow_symlinks=False):
        pending.append((path, relpath + "/"))
        return
    if not entry.is_file(follow_symlinks=False):
        kind = _kind_of(entry.stat(follow_symlinks=False).st_mode)
        raise UnsafeFolder(f"{kind} not allowed in a package folder: {path}")
    problem = _import_path_problem(relpath)
    if problem:
        raise UnsafeFolder(f"{problem}: {path}")
    yield FolderFile(relpath, path)


def import_folder(
    store: ObjectStore,
    folder: Path,
    package_id: str,
    source_version: int,
    created_at: str,
) -> tuple[Manifest, ImportStats]:
    """Store every file of `folder` once by SHA-256 and return its manifest."""
    _check_header(package_id, source_version, created_at)
    files: list[ManifestFile] = []
    new_files = new_bytes = 0
    for item in scan_folder(folder):
        stored = store.add_file(item.abs_path)
        files.append(ManifestFile(item.relpath, stored.size, stored.sha256))
        if stored.added:
            new_files += 1
            new_bytes += stored.size
    manifest = Manifest(package_id, source_version, created_at, tuple(files))
    return manifest, ImportStats(len(files), manifest.total_size, new_files, new_bytes)


def import_tar(
    store: ObjectStore,
    fileobj: IO[bytes],
    package_id: str,
    source_version: int,
    created_at: str,
    limits: ArchiveLimits | None = None,
) -> tuple[Manifest, ImportStats]:
    """Import a tar stream (optionally gzip/bz2/xz) into the store.

    Members are hashed straight into staging files in the store, never
    extracted by name. Only regular files and directories are accepted; one
    bad member (``..``, absolute name, link, device) rejects the whole archive
    and nothing becomes visible in the store. With `limits`, reading stops at
    the first member or byte over them (ArchiveTooLarge), and again nothing is kept.
    """
    _check_header(package_id, source_version, created_at)
    staged: list[tuple[str, StagedObject]] = []
    gauge = ArchiveGauge(limits or _UNLIMITED)
    try:
        dirs = _stage_tar_members(store, decompressed(fileobj, gauge), gauge, staged)
        if not staged:
            raise UnsafeArchive("archive has no files")
        files = tuple(
            ManifestFile(path, obj.size, obj.sha256)
            for path, obj in sorted(staged, key=lambda s: s[0])
        )
        _check_layout([f.path for f in files], dirs)
        manifest = Manifest(package_id, source_version, created_at, files)
    except BaseException:
        for _, obj in staged:
            store.discard_staged(obj)
        raise
    new_files = new_bytes = 0
    for _, obj in staged:
        if store.commit_staged(obj).added:
            new_files += 1
            new_bytes += obj.size
    return manifest, ImportStats(len(files), manifest.total_size, new_files, new_bytes)


_UNLIMITED = ArchiveLimits(max_bytes=2**63, max_members=2**63)
# What a broken compressed stream raises from inside tarfile's reads.
_UNREADABLE = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


def _stage_tar_members(
    store: ObjectStore,
    tar_stream: IO[bytes],
    gauge: ArchiveGauge,
    staged: list[tuple[str, StagedObject]],
) -> list[str]:
    """Stage each regular member into `staged`; return the directory names seen."""
    dirs: list[str] = []
    try:
        with tarfile.open(fileobj=tar_stream, mode="r|", tarinfo=_WholeNameTarInfo) as archive:
            for member in archive:
                gauge.member(member.size if member.isreg() else 0)
                name = _member_path(member)
                if name is None:
                    continue
                if member.isdir():
                    dirs.append(name)
                    continue
                reader = archive.extractfile(member)
                assert reader is not None  # regular member (checked in _member_path)
                staged.append((name, store.stage_stream(_read_chunks(reader))))
    except _UNREADABLE as exc:
        if is_disk_full(exc):
            raise  # the library's disk, not the archive: the site answers 507
        raise UnsafeArchive(f"not a readable tar archive: {exc}") from exc
    return dirs


class _WholeNameTarInfo(tarfile.TarInfo):
    """A tar header whose name fields must end at their first NUL.

    tarfile cuts a name at a NUL byte, so ``a\x00b.txt`` would be stored as ``a``:
    such a member is refused instead of being renamed.
    """

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Any:
        _refuse_inner_nul(buf[0:100], "name")
        if buf[257:265] == tarfile.POSIX_MAGIC:
            _refuse_inner_nul(buf[345:500], "name prefix")
        return super().frombuf(buf, encoding, errors)

    def _proc_gnulong(self, tarfile_: tarfile.TarFile) -> Any:
        # A GNU long name (or link name) is NUL-terminated data; tarfile reads it the
        # same way, after its header: check the bytes it will cut.
        source = tarfile_.fileobj
        assert source is not None
        data = source.read(self._block(self.size))  # type: ignore[attr-defined]
        _refuse_inner_nul(data, "long name")
        tarfile_.fileobj = _Replay(data, source)  # type: ignore[assignment]
        try:
            return super()._proc_gnulong(tarfile_)  # type: ignore[misc]
        finally:
            tarfile_.fileobj = source


class _Replay:
    """Gives back bytes already read, then reads on (tarfile's stream cannot seek back)."""

    def __init__(self, data: bytes, rest: Any) -> None:
        self._data = data
        self._rest = rest

    def read(self, size: int) -> bytes:
        if self._data:
            data, self._data = self._data[:size], self._data[size:]
            if len(data) < size:
                data += self._rest.read(size - len(data))
            return data
        data = self._rest.read(size)
        assert isinstance(data, bytes)
        return data

    def tell(self) -> int:
        position = self._rest.tell()
        assert isinstance(position, int)
        return position - len(self._data)


def _refuse_inner_nul(field: bytes | bytearray, what: str) -> None:
    end = field.find(b"\x00")
    if end != -1 and field[end:].strip(b"\x00"):
        shown = field.rstrip(b"\x00").decode("utf-8", "replace")
        raise UnsafeArchive(f"NUL byte in a member's {what} not allowed: {shown!r:.200}")


def _read_chunks(reader: IO[bytes]) -> Iterator[bytes]:
    while chunk := reader.read(CHUNK_SIZE):
        yield chunk


def _member_path(member: tarfile.TarInfo) -> str | None:
    """The member's safe relative path, None for the archive root, else UnsafeArchive."""
    raw = member.name
    name = raw
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/") if member.isdir() else name
    if name in ("", "."):
        return None
    if not (member.isreg() or member.isdir()):
        raise UnsafeArchive(f"{_member_kind(member)} member not allowed: {raw!r:.200}")
    problem = _import_path_problem(name)
    if problem:
        raise UnsafeArchive(f"{problem}: {raw!r:.200}")
    return name


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "fifo"
    return "special"
