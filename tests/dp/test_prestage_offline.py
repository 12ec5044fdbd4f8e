"""`peerdp branch import` without the site: the archive is checked against the pinned key
alone; a good one is stored (the running branch DP reports it later), a bad one refused
with nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerdp.content.manifest import Manifest, import_folder
from peerdp.content.objects import ObjectStore
from peerdp.content.prestage import archive_chunks, signed_header
from peerdp.dp.prestage import ImportRefused, import_prestage
from peerdp.dp.store import DPStore
from peerdp.machine.mp_client import Identity, save_identity
from peerdp.security.signing import SiteKey

NOW = "2026-12-04T12:00:00Z"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens


def branch_dir(tmp_path: Path, key: SiteKey, role: str = "branch_dp") -> Path:
    data_dir = tmp_path / "branch"
    identity = Identity(
        machine_id="m1",
        credential="c",
        site_public_key=key.public_key_b64,
        site_code="PS1",
        role=role,
        name="BR01-DP",
        site_url=UNREACHABLE,
        dp_id=2,
    )
    save_identity(data_dir, identity)
    return data_dir


def exported(tmp_path: Path, key: SiteKey, site_code: str = "PS1") -> tuple[Path, Manifest]:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "setup.sh").write_bytes(b"echo hi\n")
    (folder / "payload.bin").write_bytes(b"x" * 100_000)
    library = ObjectStore(tmp_path / "library")
    manifest, _ = import_folder(library, folder, "PS100007", 2, NOW)
    archive = tmp_path / "PS100007.tar"
    header = signed_header(key, site_code, manifest, NOW)
    archive.write_bytes(b"".join(archive_chunks(header, manifest, library)))
    return archive, manifest


def test_offline_import_stores_the_version_for_the_branch_dp_to_report(tmp_path: Path) -> None:
    key = SiteKey.generate()
    data_dir = branch_dir(tmp_path, key)
    archive, manifest = exported(tmp_path, key)
    result = import_prestage(data_dir, archive)
    assert (result.package_id, result.source_version, result.files) == ("PS100007", 2, 2)
    assert not result.reported and "cannot reach" in result.site_problem
    store = DPStore(data_dir / "store")
    assert store.manifest("PS100007", 2) == manifest
    assert all(store.is_verified(f.sha256) for f in manifest.files)
    assert import_prestage(data_dir, archive).already_held


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("another site's key", "does not verify with the site key this branch DP pinned"),
        ("another site code", "exported by site PS2"),
        ("flipped byte", "refused, nothing stored"),
        ("not a branch DP", "holds a client identity"),
        ("no identity", "holds no branch DP identity"),
        ("no file", "cannot read"),
    ],
)
def test_bad_archives_and_places_are_refused_with_nothing_stored(
    tmp_path: Path, case: str, words: str
) -> None:
    key = SiteKey.generate()
    data_dir = branch_dir(tmp_path, key, "client" if case == "not a branch DP" else "branch_dp")
    signer = SiteKey.generate() if case == "another site's key" else key
    archive, _ = exported(tmp_path, signer, "PS2" if case == "another site code" else "PS1")
    if case == "flipped byte":
        data = bytearray(archive.read_bytes())
        data[-3000] ^= 0x01
        archive.write_bytes(bytes(data))
    if case == "no identity":
        (data_dir / "identity.json").unlink()
    if case == "no file":
        archive.unlink()
    with pytest.raises(ImportRefused, match=words) as refused:
        import_prestage(data_dir, archive)
    assert "\n" not in str(refused.value)
    objects = data_dir / "store" / "objects"
    assert [p for p in objects.rglob("*") if p.is_file()] == []
    assert not (data_dir / "store" / "manifests" / "PS100007").exists()
