"""Content library: the single-instance object store and package manifests."""

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
