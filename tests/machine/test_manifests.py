"""A manifest is used only if it is the one the signed policy names."""

from __future__ import annotations

import pytest

from peerdp.machine.manifests import ManifestRefused, checked_manifest
from tests.machine.support import manifest_of


def test_checked_manifest_refuses_another_digest_or_package() -> None:
    manifest = manifest_of("PS100001", {"a": b"a"})
    assert checked_manifest(manifest.to_json(), manifest.digest(), "PS100001", 1) == manifest
    with pytest.raises(ManifestRefused, match="signed policy says"):
        checked_manifest(manifest.to_json(), "1" * 64, "PS100001", 1)
    with pytest.raises(ManifestRefused, match="not PS100002"):
        checked_manifest(manifest.to_json(), manifest.digest(), "PS100002", 1)
    with pytest.raises(ManifestRefused, match="not valid"):
        checked_manifest({"files": []}, manifest.digest(), "PS100001", 1)
