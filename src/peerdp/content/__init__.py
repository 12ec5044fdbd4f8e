"""Content library: the single-instance object store and package manifests.

`objects.py` keeps each distinct file once under its SHA-256 and writes partial files
that are verified before they are published; `manifest.py` describes a package version
(its files, sizes and digests) and imports folders and tar archives safely; `fs.py`
holds the OS helpers they share (no-follow opens, durable writes); `ids.py` the shapes of
package IDs and digests. May import the domain and `peerdp.security`.
"""

from peerdp.content.manifest import (
    FolderFile,
    ImportStats,
    Manifest,
    ManifestError,
    ManifestFile,
    UnsafeArchive,
    UnsafeContent,
    UnsafeFolder,
    import_folder,
    import_tar,
    scan_folder,
)
from peerdp.content.objects import (
    ContentError,
    DigestMismatch,
    ObjectStore,
    PartialWriter,
    StoredObject,
)

__all__ = [
    "ContentError",
    "DigestMismatch",
    "FolderFile",
    "ImportStats",
    "Manifest",
    "ManifestError",
    "ManifestFile",
    "ObjectStore",
    "PartialWriter",
    "StoredObject",
    "UnsafeArchive",
    "UnsafeContent",
    "UnsafeFolder",
    "import_folder",
    "import_tar",
    "scan_folder",
]
