"""A test-only content source over a plain directory, kept apart from the other test
helpers so the content benchmark's server imports no more than a DP does."""

from __future__ import annotations

from pathlib import Path

from peerdp.content.manifest import Manifest, ManifestError
from peerdp.dp.source import FileEntry
from peerdp.dp.store import last_modified, read_manifest


class DirectoryContentSource:
    """A directory-backed ``ContentSource`` that trusts what it finds (no hashing).

    Layout (that of a DP's store)::

        <root>/manifests/<package_id>/<source_version>.json
        <root>/objects/<sha256[:2]>/<sha256>

    Unlike ``DPStore`` it serves an object that exists without checking its digest, so
    tests can plant wrong, short or linked files and watch the HTTP layer refuse them.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def manifest_bytes(self, package_id: str, source_version: int) -> bytes | None:
        return read_manifest(self.root / "manifests", package_id, source_version)

    def file_entry(self, package_id: str, source_version: int, path: str) -> FileEntry | None:
        data = self.manifest_bytes(package_id, source_version)
        if data is None:
            return None
        try:
            manifest = Manifest.from_bytes(data)
        except ManifestError:
            return None
        item = next((f for f in manifest.files if f.path == path), None)
        if item is None:
            return None
        objects = self.root / "objects"
        object_path = objects / item.sha256[:2] / item.sha256
        if not object_path.exists():
            return None  # not yet downloaded and verified
        return FileEntry(
            object_path, item.size, item.sha256, last_modified(manifest), store_root=objects
        )
