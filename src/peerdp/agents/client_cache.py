"""The client's content cache: verified files by SHA-256, package folders, LRU eviction.

Layout under `<data-dir>`::

    cache/objects/...                     the ObjectStore (partials resume across runs)
    cache/index.json                      cached package versions: manifest, last used
    packages/<package_id>/<version>/      the folder a program runs in

Before every run the folder is made afresh by copying each file out of the store
while hashing it, so what runs is verified at that moment even if a previous run
changed files in its folder. Package files get mode 0755 (manifests carry no
modes, and `./setup.sh` should work). Eviction drops the least recently used
package versions, then every object no cached version names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from peerdp.content.fs import CHUNK_SIZE
from peerdp.content.manifest import Manifest, ManifestError
from peerdp.content.objects import DigestMismatch, ObjectStore

FILE_MODE = 0o755


class PackageCache:
    def __init__(self, data_dir: Path) -> None:
        self.store = ObjectStore(data_dir / "cache")
        self.packages_dir = data_dir / "packages"
        self.index_path = data_dir / "cache" / "index.json"
        self.packages_dir.mkdir(parents=True, exist_ok=True)
        self.store.clean_tmp()
        self._index = self._load()

    # -- index ---------------------------------------------------------------------

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.index_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.index_path.parent, prefix=".index-")
        with os.fdopen(fd, "w") as out:
            json.dump(self._index, out)
        os.replace(tmp, self.index_path)

    @staticmethod
    def _key(package_id: str, version: int) -> str:
        return f"{package_id}/{version}"

    def remember(self, manifest: Manifest) -> None:
        """Record a downloaded, verified package version as used now."""
        key = self._key(manifest.package_id, manifest.source_version)
        self._index[key] = {"manifest": manifest.to_json(), "last_used": time.time()}
        self._save()

    def cached(self, package_id: str, version: int, digest: str) -> Manifest | None:
        """The cached manifest of this version if it is the one named and all files are held."""
        entry = self._index.get(self._key(package_id, version))
        if entry is None:
            return None
        try:
            manifest = Manifest.from_json(entry["manifest"])
        except (ManifestError, KeyError):
            return None
        if manifest.digest() != digest:
            return None
        if not all(self.store.has(f.sha256) for f in manifest.files):
            return None
        return manifest

    # -- package folders -------------------------------------------------------------

    def folder(self, package_id: str, version: int) -> Path:
        return self.packages_dir / package_id / str(version)

    def materialise(self, manifest: Manifest) -> Path:
        """A fresh folder with every file of `manifest`, each checked as it is copied.

        A damaged object is deleted from the store (it will be downloaded again)
        and DigestMismatch raised: nothing unverified is left to run.
        """
        final = self.folder(manifest.package_id, manifest.source_version)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
        try:
            for entry in manifest.files:
                target = staging / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                self._copy_verified(entry.sha256, target)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return final

    def _copy_verified(self, sha256: str, target: Path) -> None:
        digest = hashlib.sha256()
        with self.store.open(sha256) as src, open(target, "wb") as out:
            while chunk := src.read(CHUNK_SIZE):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            self.store.remove(sha256)
            raise DigestMismatch(sha256, digest.hexdigest(), f"cached file {target.name}")
        target.chmod(FILE_MODE)

    # -- size and eviction --------------------------------------------------------------

    def total_bytes(self) -> int:
        return self.store.total_size() + _tree_size(self.packages_dir)

    def evict(self, limit_bytes: int, keep: tuple[str, int] | None = None) -> list[str]:
        """Drop least recently used versions (never `keep`) until the cache fits; the keys."""
        evicted: list[str] = []
        keep_key = self._key(*keep) if keep else None
        by_age = sorted(self._index, key=lambda k: float(self._index[k].get("last_used", 0)))
        for key in by_age:
            if self.total_bytes() <= limit_bytes:
                break
            if key == keep_key:
                continue
            self._drop(key)
            evicted.append(key)
        if evicted:
            self._save()
        return evicted

    def _drop(self, key: str) -> None:
        package_id, _, version = key.partition("/")
        shutil.rmtree(self.folder(package_id, int(version)), ignore_errors=True)
        with contextlib.suppress(OSError):
            self.folder(package_id, int(version)).parent.rmdir()
        del self._index[key]
        self._collect_garbage()

    def _collect_garbage(self) -> None:
        wanted: set[str] = set()
        for entry in self._index.values():
            with contextlib.suppress(ManifestError, KeyError):
                wanted.update(f.sha256 for f in Manifest.from_json(entry["manifest"]).files)
        for sha256 in list(self.store.iter_objects()):
            if sha256 not in wanted:
                self.store.remove(sha256)


def _tree_size(root: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total
