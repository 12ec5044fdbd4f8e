"""Prestage archives: written by the site, checked whole by a branch DP before anything is kept.

A damaged, unsigned, foreign-signed or incomplete archive is refused with one line and
leaves no object in the store.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from peerdp.content.manifest import Manifest, import_folder
from peerdp.content.objects import ObjectStore
from peerdp.content.prestage import (
    HEADER_NAME,
    PrestageRefused,
    archive_chunks,
    archive_size,
    import_archive,
    signed_header,
)
from peerdp.security.signing import SiteKey, SitePublicKey

NOW = "2026-12-04T12:00:00Z"
FILES = {
    "setup.sh": b"echo installing\n",
    "data/big.bin": bytes(range(256)) * 3000,
    "data/copy.bin": bytes(range(256)) * 3000,  # the same bytes: one object
    "empty.txt": b"",
}


@pytest.fixture
def key() -> SiteKey:
    return SiteKey.generate()


@pytest.fixture
def library(tmp_path: Path) -> tuple[ObjectStore, Manifest]:
    folder = tmp_path / "src"
    for rel, data in FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    store = ObjectStore(tmp_path / "library")
    manifest, _ = import_folder(store, folder, "PS100001", 3, NOW)
    return store, manifest


def export(key: SiteKey, library: tuple[ObjectStore, Manifest]) -> bytes:
    store, manifest = library
    header = signed_header(key, "PS1", manifest, NOW)
    data = b"".join(archive_chunks(header, manifest, store))
    assert len(data) == archive_size(header, manifest, store)
    return data


def public(key: SiteKey) -> SitePublicKey:
    return SitePublicKey.from_b64(key.public_key_b64)


def held(store: ObjectStore) -> list[str]:
    return sorted(store.iter_objects())


def test_an_exported_archive_imports_every_file_verified(
    key: SiteKey, library: tuple[ObjectStore, Manifest], tmp_path: Path
) -> None:
    _, manifest = library
    data = export(key, library)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:  # an ordinary tar
        names = tar.getnames()
    assert names[0] == HEADER_NAME and len(names) == 1 + len({f.sha256 for f in manifest.files})

    branch = ObjectStore(tmp_path / "branch")
    header = import_archive(io.BytesIO(data), public(key), branch)
    assert header.manifest == manifest and header.site_code == "PS1"
    assert (header.package_id, header.source_version) == ("PS100001", 3)
    assert held(branch) == sorted({f.sha256 for f in manifest.files})
    for item in manifest.files:
        assert branch.verify(item.sha256)
    assert not list(branch.tmp_dir.iterdir())


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _header_offset(data: bytes) -> int:
    return data.index(b'"manifest_digest"')


def _object_offset(data: bytes) -> int:
    return data.index(bytes(range(256)) * 4) + 1000


def _rewritten(data: bytes, change: object) -> bytes:
    """The archive with its header document changed by `change(document)`."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as source,
        tarfile.open(fileobj=out, mode="w") as target,
    ):
        for member in source:
            body = source.extractfile(member)
            assert body is not None
            raw = body.read()
            if member.name == HEADER_NAME:
                document = json.loads(raw)
                change(document)  # type: ignore[operator]
                raw = json.dumps(document).encode()
                member.size = len(raw)
            target.addfile(member, io.BytesIO(raw))
    return out.getvalue()


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda d: _flip(d, _object_offset(d)), "damaged"),
        (lambda d: _flip(d, _header_offset(d) + 3), "header"),
        (lambda d: d[: len(d) // 2], "not a complete tar"),
        (lambda d: _rewritten(d, lambda doc: doc.pop("signature")), "not signed"),
        (lambda d: _rewritten(d, lambda doc: doc.update(signature="")), "not signed"),
        (
            lambda d: _rewritten(d, lambda doc: doc["manifest"].update(source_version=4)),
            "signature does not verify",
        ),
        (lambda d: b"", "empty"),
    ],
    ids=[
        "flipped-file-byte",
        "flipped-header-byte",
        "truncated",
        "unsigned",
        "empty-sig",
        "changed-manifest",
        "empty",
    ],
)
def test_a_damaged_or_unsigned_archive_stores_nothing(
    key: SiteKey,
    library: tuple[ObjectStore, Manifest],
    tmp_path: Path,
    damage: object,
    words: str,
) -> None:
    data = damage(export(key, library))  # type: ignore[operator]
    branch = ObjectStore(tmp_path / "branch")
    with pytest.raises(PrestageRefused, match=words):
        import_archive(io.BytesIO(data), public(key), branch)
    assert held(branch) == [] and not list(branch.tmp_dir.iterdir())


def test_an_archive_of_another_site_is_refused(
    key: SiteKey, library: tuple[ObjectStore, Manifest], tmp_path: Path
) -> None:
    data = export(SiteKey.generate(), library)
    branch = ObjectStore(tmp_path / "branch")
    with pytest.raises(PrestageRefused, match="pinned"):
        import_archive(io.BytesIO(data), public(key), branch)
    assert held(branch) == []


def test_missing_and_extra_members_are_refused(
    key: SiteKey, library: tuple[ObjectStore, Manifest], tmp_path: Path
) -> None:
    data = export(key, library)
    with tarfile.open(fileobj=io.BytesIO(data)) as source:
        members = [(m, source.extractfile(m).read()) for m in source]  # type: ignore[union-attr]

    def archive(chosen: list[tuple[tarfile.TarInfo, bytes]]) -> io.BytesIO:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            for member, raw in chosen:
                tar.addfile(member, io.BytesIO(raw))
        out.seek(0)
        return out

    extra = tarfile.TarInfo("objects/" + "0" * 64)
    extra.size = 1
    cases = {
        "missing": members[:-1],
        "twice": [*members, members[-1]],
        "the manifest lacks": [*members, (extra, b"x")],
        "does not start": members[1:] + members[:1],
    }
    for words, chosen in cases.items():
        branch = ObjectStore(tmp_path / words.replace(" ", "-"))
        with pytest.raises(PrestageRefused, match=words):
            import_archive(archive(chosen), public(key), branch)
        assert held(branch) == []
