"""What a distribution point's store hands the ``/content`` routes: the ``ContentSource``
protocol and the ``FileEntry`` it answers with.

``FileEntry`` is a storage notion (where a verified file lies, how big it is, its digest
and date), so it lives here rather than in the HTTP code: the store implements this
contract without importing any HTTP module, and the routes read it without importing
the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class FileEntry:
    """A verified file in a DP's store, as the manifest describes it."""

    path_on_disk: Path
    size: int
    sha256: str
    last_modified: datetime
    # The store's trusted top directory: components below it are never
    # followed if they are symlinks. None: only the last component is checked.
    store_root: Path | None = None


class ContentSource(Protocol):
    """What a DP's store must offer to be served over HTTP.

    Implementations must only return verified content: a manifest whose
    files are all present, or a ``FileEntry`` whose file passed its SHA-256
    check. Methods may block (they run in a worker thread).
    """

    def manifest_bytes(self, package_id: str, source_version: int) -> bytes | None:
        """The stored manifest JSON, byte for byte as it is served, or None."""
        ...

    def file_entry(self, package_id: str, source_version: int, path: str) -> FileEntry | None:
        """The verified file at manifest path ``path``, or None."""
        ...


__all__ = ["ContentSource", "FileEntry"]
