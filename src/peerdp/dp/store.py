"""A distribution point's content store: verified objects and a manifest per package version.

Layout under the root::

    objects/ tmp/ partial/                          the ObjectStore (each file once, by SHA-256)
    manifests/<package_id>/<source_version>.json    canonical manifest JSON, written last
    verified.json                                   fingerprints of objects hashed and found right

A version is visible (served, listed) only once its manifest is there, and the manifest
is written only after every file it names is present and verified. An object counts as
verified while its (inode, size, mtime, ctime) are what they were when it was last hashed;
otherwise it is hashed again before it is trusted, so bytes overwritten in place are never
served, nor listed as held. A version found damaged (a read whose check fails, or content
validation, which hashes every held object again whatever its fingerprint says) stops being
offered at once: its manifest and its damaged objects are deleted, and ``on_damage`` hears
of it so the DP can tell the site. The store implements ``ContentSource`` for
``ContentService``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from peerdp.content.ids import is_package_id, is_sha256
from peerdp.content.manifest import Manifest, ManifestError, ManifestFile
from peerdp.content.objects import ObjectStore, PartialWriter, StoredObject
from peerdp.content.space import is_disk_full
from peerdp.domain.timestamps import parse_rfc3339
from peerdp.dp.source import FileEntry
from peerdp.logs import get_logger

log = get_logger("peerdp.dp.store")

_VERSION_FILE = re.compile(r"([1-9][0-9]{0,8})\.json")


class MissingObjects(ManifestError):
    """A manifest names objects the store does not hold verified."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"{len(missing)} file(s) of this version are not held verified")
        self.missing = missing


@dataclass(frozen=True)
class VersionCheck:
    """What a start-up check found about one held version."""

    package_id: str
    source_version: int
    intact: bool
    reason: str = ""
    damaged: tuple[str, ...] = ()  # the manifest paths found missing or damaged


FOUND_ON_READ = "found on read"
FOUND_BY_VALIDATION = "found by content validation"


@dataclass(frozen=True)
class _Held:
    manifest: Manifest
    files: dict[str, ManifestFile]
    last_modified: datetime


def manifest_path(manifests_dir: Path, package_id: str, source_version: int) -> Path | None:
    """Where a version's manifest lies under ``manifests_dir``; None for a key that cannot
    name one (so a request never builds a path from an unchecked package ID)."""
    if not is_package_id(package_id) or not 1 <= source_version < 10**9:
        return None
    return manifests_dir / package_id / f"{source_version}.json"


def read_manifest(manifests_dir: Path, package_id: str, source_version: int) -> bytes | None:
    """A version's manifest bytes as stored (and served), or None if it is not held."""
    path = manifest_path(manifests_dir, package_id, source_version)
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def last_modified(manifest: Manifest) -> datetime:
    """Every file's Last-Modified: the manifest's ``created_at``, so the validators do not
    change when an object is copied again."""
    return parse_rfc3339(manifest.created_at)


def _fingerprint(st: os.stat_result) -> list[int]:
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _damage_reason(paths: list[str]) -> str:
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return f"{len(paths)} file(s) missing or damaged (wrong SHA-256): {shown}"


def _write_atomic(path: Path, data: bytes, tmp_dir: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class DPStore:
    """Objects and manifests of one DP; thread-safe within one process."""

    def __init__(
        self, root: Path, on_damage: Callable[[VersionCheck, str], None] | None = None
    ) -> None:
        """`on_damage(check, how)` is called for each version found damaged while serving
        or validating (not by `check`, whose caller reports what it returns)."""
        self.root = Path(root)
        self.on_damage = on_damage
        self.objects = ObjectStore(self.root, on_publish=self._published)
        self.manifests_dir = self.root / "manifests"
        self.manifests_dir.mkdir(exist_ok=True)
        self._fingerprints_path = self.root / "verified.json"
        self._lock = threading.RLock()
        self._fingerprints = self._load_fingerprints()
        self._held: dict[tuple[str, int], _Held] = {}

    # -- ContentSource ------------------------------------------------------

    def manifest_bytes(self, package_id: str, source_version: int) -> bytes | None:
        return read_manifest(self.manifests_dir, package_id, source_version)

    def file_entry(self, package_id: str, source_version: int, path: str) -> FileEntry | None:
        held = self._load(package_id, source_version)
        item = held.files.get(path) if held else None
        if held is None or item is None:
            return None
        if not self.is_verified(item.sha256):
            self.drop_damaged({item.sha256}, FOUND_ON_READ)  # stop offering the version
            return None
        return FileEntry(
            self.objects.path(item.sha256),
            item.size,
            item.sha256,
            held.last_modified,
            store_root=self.objects.objects_dir,
        )

    # -- what is held ---------------------------------------------------------

    def versions(self) -> list[tuple[str, int]]:
        """(package_id, source_version) of every version whose manifest is present."""
        found: list[tuple[str, int]] = []
        for package_dir in sorted(self.manifests_dir.iterdir()):
            if not is_package_id(package_dir.name) or package_dir.is_symlink():
                continue
            for entry in package_dir.iterdir():
                if match := _VERSION_FILE.fullmatch(entry.name):
                    found.append((package_dir.name, int(match[1])))
        return sorted(found)

    def manifest(self, package_id: str, source_version: int) -> Manifest | None:
        held = self._load(package_id, source_version)
        return held.manifest if held else None

    def inventory(self) -> dict[str, Any]:
        """Versions held (with manifest digests) and the objects held verified."""
        packages = []
        for package_id, version in self.versions():
            held = self._load(package_id, version)
            if held is not None:
                packages.append(
                    {
                        "package_id": package_id,
                        "source_version": version,
                        "manifest_digest": held.manifest.digest(),
                    }
                )
        objects = [
            {"sha256": sha, "size": self.objects.size(sha)}
            for sha in self.objects.iter_objects()
            if self.is_verified(sha)
        ]
        # No flush: listing writes nothing, so it answers even on a full disk; what it
        # learned is saved with the next change, or when the DP stops.
        return {"packages": packages, "objects": objects}

    def _published(self, sha256: str) -> None:
        """An object was just published, its bytes hashed and found right on the way in
        (a push or a pull): note its fingerprint rather than read 1 GiB again."""
        try:
            st = self.objects.path(sha256).lstat()
        except FileNotFoundError:
            return
        with self._lock:
            self._fingerprints[sha256] = _fingerprint(st)

    def is_verified(self, sha256: str) -> bool:
        """Whether the object is present with its right digest (hashed again if it changed)."""
        try:
            st = self.objects.path(sha256).lstat()
        except (FileNotFoundError, ValueError):
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        fingerprint = _fingerprint(st)
        with self._lock:
            if self._fingerprints.get(sha256) == fingerprint:
                return True
        good = self.objects.verify(sha256)
        with self._lock:
            if good:
                self._fingerprints[sha256] = fingerprint
            else:
                self._fingerprints.pop(sha256, None)
        return good

    # -- receiving --------------------------------------------------------------

    def open_receiver(self, sha256: str) -> PartialWriter:
        """A writer for a pushed object's bytes, from byte 0 (blocks while another writes it)."""
        if self.objects.has(sha256) and not self.is_verified(sha256):
            self.objects.remove(sha256)  # damaged: the new bytes replace it
        writer = self.objects.open_partial(sha256, wait_s=60)
        writer.restart()
        return writer

    def finish_receive(self, writer: PartialWriter) -> StoredObject:
        """Publish the pushed object if it hashes right; DigestMismatch (nothing kept) if not."""
        return writer.commit()  # published: its fingerprint is noted (_published)

    def install(self, package_id: str, source_version: int, raw: bytes) -> Manifest:
        """Make a version visible: its manifest, once every file it names is held verified."""
        manifest = Manifest.from_bytes(raw)
        if (manifest.package_id, manifest.source_version) != (package_id, source_version):
            raise ManifestError(
                f"manifest is for {manifest.package_id} version {manifest.source_version}, "
                f"not {package_id} version {source_version}"
            )
        path = self._manifest_path(package_id, source_version)
        if path is None:
            raise ManifestError(f"source version {source_version} is out of range")
        with self._lock:
            digests = sorted({f.sha256 for f in manifest.files})
            missing = [sha for sha in digests if not self.is_verified(sha)]
            if missing:
                raise MissingObjects(missing)
            _write_atomic(path, manifest.to_bytes(), self.objects.tmp_dir)
            self._held.pop((package_id, source_version), None)
            self.flush()
        return manifest

    def remove(self, package_id: str, source_version: int) -> bool:
        """Delete a version and the objects no other held version needs; False if not held."""
        with self._lock:
            held = self._load(package_id, source_version)
            path = self._manifest_path(package_id, source_version)
            if path is None or not path.exists():
                return False
            path.unlink()
            self._held.pop((package_id, source_version), None)
            if held is not None:
                self._drop_unneeded({f.sha256 for f in held.manifest.files})
            self.flush()
        return True

    def check(self) -> list[VersionCheck]:
        """Check every held version; delete damaged ones (and their damaged objects)."""
        self.objects.clean_tmp(older_than_s=0)
        results = []
        for package_id, version in self.versions():
            bad = self._damaged_paths(package_id, version)
            if bad is None:
                reason = "its manifest is unreadable"
            else:
                reason = _damage_reason(bad) if bad else ""
            if reason:
                self._remove_damaged(package_id, version)
            results.append(VersionCheck(package_id, version, not reason, reason, tuple(bad or ())))
        self.flush()
        return results

    def validate(self) -> list[VersionCheck]:
        """Content validation: hash every object a held version needs again, even one whose
        fingerprint is unchanged (bytes can rot on disk without their stat changing), and
        delete the damaged versions. Returns what was found damaged."""
        suspects = set()
        for sha256 in sorted(set(self._all_needed())):
            try:
                st = self.objects.path(sha256).lstat()
            except FileNotFoundError:
                suspects.add(sha256)
                continue
            good = stat.S_ISREG(st.st_mode) and self.objects.verify(sha256)
            with self._lock:
                if good:  # if the file changed while it was hashed, the next read hashes it
                    self._fingerprints[sha256] = _fingerprint(st)
                else:
                    self._fingerprints.pop(sha256, None)
                    suspects.add(sha256)
        found = self.drop_damaged(suspects, FOUND_BY_VALIDATION) if suspects else []
        self.flush()
        return found

    def flush(self) -> None:
        """Save the fingerprints, so a restart does not hash unchanged objects again."""
        with self._lock:
            data = json.dumps(self._fingerprints, sort_keys=True).encode()
            try:
                _write_atomic(self._fingerprints_path, data, self.objects.tmp_dir)
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                # Only a cache (unsaved, objects are hashed again after a restart): a full
                # disk must not fail the change or the shutdown that saves it.
                log.warning("fingerprints not saved", store=str(self.root), reason=str(exc))

    # -- internals ----------------------------------------------------------------

    def _manifest_path(self, package_id: str, source_version: int) -> Path | None:
        return manifest_path(self.manifests_dir, package_id, source_version)

    def _load(self, package_id: str, source_version: int) -> _Held | None:
        key = (package_id, source_version)
        with self._lock:
            cached = self._held.get(key)
        if cached is not None:
            return cached
        raw = self.manifest_bytes(package_id, source_version)
        if raw is None:
            return None
        try:
            manifest = Manifest.from_bytes(raw)
        except ManifestError:
            return None
        held = _Held(manifest, {f.path: f for f in manifest.files}, last_modified(manifest))
        with self._lock:
            self._held[key] = held
        return held

    def _damaged_paths(self, package_id: str, version: int) -> list[str] | None:
        """The files of a held version missing or damaged; None if its manifest is unreadable."""
        held = self._load(package_id, version)
        if held is None:
            return None
        return [f.path for f in held.manifest.files if not self.is_verified(f.sha256)]

    def drop_damaged(self, suspects: set[str], how: str) -> list[VersionCheck]:
        """Delete every held version that needs one of `suspects` still found damaged (checked
        again under the lock: a push may have replaced it, or a removal taken it meanwhile)."""
        found = []
        with self._lock:
            for package_id, version in self.versions():
                held = self._load(package_id, version)
                if held is None:
                    continue
                bad = [
                    f.path
                    for f in held.manifest.files
                    if f.sha256 in suspects and not self.is_verified(f.sha256)
                ]
                if bad:
                    self._remove_damaged(package_id, version)
                    found.append(
                        VersionCheck(package_id, version, False, _damage_reason(bad), tuple(bad))
                    )
            if found:
                self.flush()
        for check in found:
            if self.on_damage is not None:
                self.on_damage(check, how)
        return found

    def _remove_damaged(self, package_id: str, version: int) -> None:
        held = self._load(package_id, version)
        path = self._manifest_path(package_id, version)
        with self._lock:
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            self._held.pop((package_id, version), None)
            for item in held.manifest.files if held else ():
                if not self.is_verified(item.sha256):
                    self.objects.remove(item.sha256)

    def _drop_unneeded(self, digests: set[str]) -> None:
        needed = set(self._all_needed())
        for sha in digests - needed:
            self.objects.remove(sha)
            self._fingerprints.pop(sha, None)

    def _all_needed(self) -> Iterator[str]:
        for package_id, version in self.versions():
            held = self._load(package_id, version)
            for item in held.manifest.files if held else ():
                yield item.sha256

    def _load_fingerprints(self) -> dict[str, list[int]]:
        try:
            data = json.loads(self._fingerprints_path.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            k: v
            for k, v in data.items()
            if is_sha256(k) and isinstance(v, list) and all(type(n) is int for n in v)
        }
