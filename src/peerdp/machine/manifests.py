"""A package manifest is used only if it is exactly the one the signed policy names."""

from __future__ import annotations

from peerdp.content.manifest import Manifest, ManifestError


class ManifestRefused(Exception):
    """A manifest that is not the one the signed policy names: never used."""


def checked_manifest(data: object, digest: str, package_id: str, version: int) -> Manifest:
    """`data` parsed as a manifest, if it is exactly the one the policy's digest names."""
    try:
        manifest = Manifest.from_json(data)
    except ManifestError as exc:
        raise ManifestRefused(f"manifest of {package_id} v{version} is not valid: {exc}") from exc
    if manifest.digest() != digest:
        raise ManifestRefused(
            f"manifest of {package_id} v{version} has digest {manifest.digest()}, "
            f"but the signed policy says {digest}"
        )
    if (manifest.package_id, manifest.source_version) != (package_id, version):
        raise ManifestRefused(
            f"manifest is for {manifest.package_id} v{manifest.source_version}, "
            f"not {package_id} v{version}"
        )
    return manifest
