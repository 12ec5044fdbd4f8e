"""Prestage archives: one package source version carried to a branch DP by hand.

A prestage archive is a plain (uncompressed) tar:

    peerdp-prestage.json     the header: site code, package ID, source version, the version's
                             manifest and its digest, when it was exported, and the site's
                             Ed25519 signature over all of that (the key policies are signed
                             with, so a branch DP checks it offline against the key it pinned)
    objects/<sha256>         each distinct file of the manifest once, named by its SHA-256

The site writes it as a stream (`archive_chunks`), so exporting a large version needs no
temporary copy. A branch DP reads it with `import_archive`: the header must verify and come
first, every object must hash to its name and be one the manifest needs, exactly once, and
nothing else may be in it. Objects are staged while the archive is read and published only
when the whole archive has checked out, so a damaged or unsigned archive stores nothing.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from peerdp.content.fs import CHUNK_SIZE
from peerdp.content.ids import is_sha256
from peerdp.content.manifest import Manifest, ManifestError
from peerdp.content.objects import ContentError, DigestMismatch, ObjectStore, StagedObject
from peerdp.security.signing import SignatureError, SiteKey, SitePublicKey

FORMAT = "peerdp-prestage/1"
HEADER_NAME = "peerdp-prestage.json"
OBJECTS_DIR = "objects/"
PURPOSE = "prestage"
MAX_HEADER_BYTES = 256 * 1024 * 1024  # a manifest of a million files fits
_BLOCK = 512


class PrestageRefused(ContentError):
    """An archive that is damaged, unsigned, signed by another site or not a prestage archive."""


@dataclass(frozen=True)
class PrestageHeader:
    """The verified header of a prestage archive."""

    site_code: str
    manifest: Manifest
    exported_at: str

    @property
    def package_id(self) -> str:
        return self.manifest.package_id

    @property
    def source_version(self) -> int:
        return self.manifest.source_version


def signed_header(key: SiteKey, site_code: str, manifest: Manifest, exported_at: str) -> bytes:
    """The archive's header: the manifest and its facts, signed by the site."""
    body = _header_body(site_code, manifest.to_json(), manifest.digest(), exported_at)
    document = {**body, "signature": key.sign_json(body)}
    return json.dumps(document, sort_keys=True, indent=1).encode()


def _header_body(
    site_code: str, manifest: Any, manifest_digest: str, exported_at: str
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "purpose": PURPOSE,
        "site_code": site_code,
        "manifest": manifest,
        "manifest_digest": manifest_digest,
        "exported_at": exported_at,
    }


def archive_size(header: bytes, manifest: Manifest, objects: ObjectStore) -> int:
    """The exact size in bytes of the archive `archive_chunks` writes."""
    total = _BLOCK + _padded(len(header))
    for sha256 in _distinct(manifest):
        total += _BLOCK + _padded(objects.size(sha256))
    return total + 2 * _BLOCK


def archive_chunks(header: bytes, manifest: Manifest, objects: ObjectStore) -> Iterator[bytes]:
    """The archive's bytes, streamed: the header, then each distinct object once."""
    yield _member_header(HEADER_NAME, len(header))
    yield header + _padding(len(header))
    for sha256 in _distinct(manifest):
        size = objects.size(sha256)
        yield _member_header(OBJECTS_DIR + sha256, size)
        sent = 0
        with objects.open(sha256) as fh:
            while chunk := fh.read(CHUNK_SIZE):
                sent += len(chunk)
                yield chunk
        if sent != size:
            raise ContentError(f"object {sha256} changed size while it was exported")
        yield _padding(size)
    yield b"\0" * (2 * _BLOCK)


def _distinct(manifest: Manifest) -> list[str]:
    return sorted({f.sha256 for f in manifest.files})


def _member_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padded(size: int) -> int:
    return size + (-size % _BLOCK)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % _BLOCK)


# -- reading ---------------------------------------------------------------------------


def read_header(raw: bytes, public_key: SitePublicKey) -> PrestageHeader:
    """The header if it is a prestage header signed by the pinned site key."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise PrestageRefused("its header is not valid JSON") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PrestageRefused(f"its header is not a {FORMAT} header")
    signature = document.get("signature")
    if not isinstance(signature, str) or not signature:
        raise PrestageRefused("it is not signed")
    fields = ("site_code", "manifest", "manifest_digest", "exported_at")
    if any(name not in document for name in fields) or document.get("purpose") != PURPOSE:
        raise PrestageRefused("its header lacks fields a prestage header has")
    body = _header_body(*(document[name] for name in fields))
    try:
        public_key.verify_json(body, signature)
    except SignatureError as exc:
        raise PrestageRefused(
            "its signature does not verify with the site key this branch DP pinned "
            "(exported by another site, or changed since)"
        ) from exc
    try:
        manifest = Manifest.from_json(body["manifest"])
    except ManifestError as exc:
        raise PrestageRefused(f"its manifest is not valid: {exc}") from exc
    if manifest.digest() != body["manifest_digest"]:
        raise PrestageRefused("its manifest does not match the digest it was signed with")
    return PrestageHeader(str(body["site_code"]), manifest, str(body["exported_at"]))


def archive_header(archive: IO[bytes], public_key: SitePublicKey) -> PrestageHeader:
    """Only the verified header (the archive's first member), to decide before importing."""
    try:
        with tarfile.open(fileobj=archive, mode="r|") as tar:
            member = tar.next()
            if member is None:
                raise PrestageRefused("it is empty")
            return _header_of(tar, member, public_key)
    except (tarfile.TarError, EOFError) as exc:
        raise PrestageRefused(f"it is not a complete tar archive ({exc})") from exc


def _header_of(
    tar: tarfile.TarFile, member: tarfile.TarInfo, public_key: SitePublicKey
) -> PrestageHeader:
    if member.name != HEADER_NAME or not member.isfile() or member.size > MAX_HEADER_BYTES:
        raise PrestageRefused(f"it does not start with {HEADER_NAME}")
    reader = tar.extractfile(member)
    assert reader is not None  # a regular file always has one
    return read_header(reader.read(), public_key)


def import_archive(
    archive: IO[bytes], public_key: SitePublicKey, objects: ObjectStore
) -> PrestageHeader:
    """Check a whole archive and publish its objects in `objects`; PrestageRefused (nothing
    published) if anything in it is damaged, missing, extra or not signed by the site."""
    staged: list[StagedObject] = []
    try:
        header = _read_all(archive, public_key, objects, staged)
        for item in staged:
            objects.commit_staged(item)
    finally:
        for item in staged:
            objects.discard_staged(item)  # a no-op for the committed ones
    return header


def _read_all(
    archive: IO[bytes],
    public_key: SitePublicKey,
    objects: ObjectStore,
    staged: list[StagedObject],
) -> PrestageHeader:
    try:
        with tarfile.open(fileobj=archive, mode="r|") as tar:
            return _read_members(tar, public_key, objects, staged)
    except (tarfile.TarError, EOFError) as exc:
        raise PrestageRefused(f"it is not a complete tar archive ({exc})") from exc


def _read_members(
    tar: tarfile.TarFile,
    public_key: SitePublicKey,
    objects: ObjectStore,
    staged: list[StagedObject],
) -> PrestageHeader:
    header: PrestageHeader | None = None
    wanted: set[str] = set()
    for member in tar:
        if header is None:
            header = _header_of(tar, member, public_key)
            wanted = set(_distinct(header.manifest))
            continue
        if not member.isfile():
            raise PrestageRefused(f"it holds {member.name!r:.100}, which is not a regular file")
        reader = tar.extractfile(member)
        assert reader is not None  # a regular file always has one
        sha256 = member.name.removeprefix(OBJECTS_DIR)
        if not member.name.startswith(OBJECTS_DIR) or not is_sha256(sha256):
            raise PrestageRefused(f"it holds {member.name!r:.100}, which no manifest names")
        if sha256 not in wanted:
            raise PrestageRefused(f"it holds object {sha256} twice, or one the manifest lacks")
        wanted.discard(sha256)
        try:
            staged.append(objects.stage_stream(_chunks(reader), sha256))
        except DigestMismatch as exc:
            raise PrestageRefused(f"file {sha256} is damaged: {exc}") from exc
    if header is None:
        raise PrestageRefused("it is empty")
    if wanted:
        raise PrestageRefused(f"{len(wanted)} file(s) of the manifest are missing from it")
    return header


def _chunks(reader: IO[bytes]) -> Iterable[bytes]:
    while chunk := reader.read(CHUNK_SIZE):
        yield chunk
