"""The standard DP: its store (verified receive, install, remove, start-up check) and the
authorisation of its receive endpoints, on a real `peerdp dp serve` process."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from peerdp.content.manifest import Manifest, ManifestError, ManifestFile
from peerdp.content.objects import DigestMismatch
from peerdp.dp.standard import StartReport
from peerdp.dp.store import (
    FOUND_BY_VALIDATION,
    FOUND_ON_READ,
    DPStore,
    MissingObjects,
    VersionCheck,
)
from peerdp.machine.mp_client import MPClient
from peerdp.security.signing import SiteKey
from tests.helpers.api import ok
from tests.helpers.processes import SiteProcess, start_site

from .standard_support import DPProcess, Site, start_dp

CREATED = "2026-01-02T03:04:05Z"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_of(package_id: str, version: int, files: dict[str, bytes]) -> Manifest:
    entries = tuple(ManifestFile(p, len(d), sha(d)) for p, d in sorted(files.items()))
    return Manifest(package_id, version, CREATED, entries)


def receive(store: DPStore, digest: str, data: bytes) -> None:
    writer = store.open_receiver(digest)
    try:
        writer.write(data)
        store.finish_receive(writer)
    finally:
        writer.close()


def install(store: DPStore, manifest: Manifest, files: dict[str, bytes]) -> None:
    for data in files.values():
        receive(store, sha(data), data)
    store.install(manifest.package_id, manifest.source_version, manifest.to_bytes())


def corrupt(path: Path) -> None:
    """Overwrite an object's bytes in place, keeping its size."""
    size = path.stat().st_size
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:
        fh.write(b"X" * min(size, 16))


# -- the store ------------------------------------------------------------------------


def test_store_keeps_only_bytes_that_hash_right(tmp_path: Path) -> None:
    store = DPStore(tmp_path)
    with pytest.raises(DigestMismatch):
        receive(store, sha(b"the real thing"), b"something else")
    assert list(store.objects.iter_objects()) == []
    assert list(store.objects.partial_dir.iterdir()) == []
    receive(store, sha(b"the real thing"), b"the real thing")
    assert store.is_verified(sha(b"the real thing"))


def test_bytes_verified_on_the_way_in_are_not_hashed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pushed or pulled file was hashed as it arrived; installing its version must not
    read it all again (for a 1 GiB file that second pass cost as much as the download)."""
    store = DPStore(tmp_path)
    pushed, pulled = b"pushed by the distribution manager", b"pulled by a branch DP"
    receive(store, sha(pushed), pushed)
    with store.objects.open_partial(sha(pulled)) as writer:  # as download_package does
        writer.write(pulled)
        writer.commit()

    def hashed_again(sha256: str) -> bool:
        raise AssertionError(f"{sha256[:12]} was hashed a second time")

    monkeypatch.setattr(store.objects, "verify", hashed_again)
    manifest = manifest_of("PS100001", 1, {"a.bin": pushed, "b.bin": pulled})
    store.install("PS100001", 1, manifest.to_bytes())
    assert store.file_entry("PS100001", 1, "b.bin") is not None

    monkeypatch.undo()  # a file changed after it was noted is hashed again, and refused
    corrupt(store.objects.path(sha(pulled)))
    assert not store.is_verified(sha(pulled))


def test_store_makes_a_version_visible_only_when_every_file_is_held(tmp_path: Path) -> None:
    store = DPStore(tmp_path)
    files = {"a.txt": b"alpha", "b/c.bin": b"\x00" * 1000, "empty": b""}
    manifest = manifest_of("PS100001", 1, files)
    receive(store, sha(b"alpha"), b"alpha")
    with pytest.raises(MissingObjects) as refused:
        store.install("PS100001", 1, manifest.to_bytes())
    assert sorted(refused.value.missing) == sorted([sha(b"\x00" * 1000), sha(b"")])
    assert store.manifest_bytes("PS100001", 1) is None
    with pytest.raises(ManifestError, match="not PS100002"):
        store.install("PS100002", 1, manifest.to_bytes())
    install(store, manifest, files)
    assert store.manifest_bytes("PS100001", 1) == manifest.to_bytes()
    entry = store.file_entry("PS100001", 1, "b/c.bin")
    assert entry is not None and entry.path_on_disk.read_bytes() == b"\x00" * 1000
    assert store.file_entry("PS100001", 1, "nope") is None
    assert store.inventory()["packages"] == [
        {"package_id": "PS100001", "source_version": 1, "manifest_digest": manifest.digest()}
    ]


def test_removal_deletes_only_objects_no_other_version_needs(tmp_path: Path) -> None:
    store = DPStore(tmp_path)
    v1 = {"shared.bin": b"shared", "old.bin": b"old"}
    v2 = {"shared.bin": b"shared", "new.bin": b"new"}
    install(store, manifest_of("PS100001", 1, v1), v1)
    install(store, manifest_of("PS100001", 2, v2), v2)
    assert store.remove("PS100001", 1)
    assert not store.remove("PS100001", 1)
    assert not store.objects.has(sha(b"old"))
    assert store.objects.has(sha(b"shared")) and store.objects.has(sha(b"new"))
    assert store.versions() == [("PS100001", 2)]


def test_damaged_object_is_never_served_and_found_at_start(tmp_path: Path) -> None:
    store = DPStore(tmp_path)
    files = {"good.bin": b"good" * 100, "bad.bin": b"bad" * 100}
    install(store, manifest_of("PS100001", 1, files), files)
    corrupt(store.objects.path(sha(b"bad" * 100)))

    restarted = DPStore(tmp_path)  # fingerprints come from disk: the good file is not rehashed
    [check] = restarted.check()
    assert not check.intact and "bad.bin" in check.reason and check.damaged == ("bad.bin",)
    assert restarted.versions() == []
    assert not restarted.objects.has(sha(b"bad" * 100))
    assert restarted.objects.has(sha(b"good" * 100))


def test_a_read_that_fails_its_check_withdraws_the_version_and_says_so(tmp_path: Path) -> None:
    found: list[tuple[VersionCheck, str]] = []
    store = DPStore(tmp_path, on_damage=lambda check, how: found.append((check, how)))
    files = {"good.bin": b"good" * 100, "bad.bin": b"bad" * 100}
    other = {"bad-too.bin": b"bad" * 100}  # the same object, in another package
    install(store, manifest_of("PS100001", 1, files), files)
    install(store, manifest_of("PS100002", 1, other), other)
    assert found == [] and store.file_entry("PS100001", 1, "good.bin") is not None
    corrupt(store.objects.path(sha(b"bad" * 100)))
    assert store.file_entry("PS100001", 1, "bad.bin") is None  # rehashed: changed on disk
    # The whole version is no longer offered (manifest too), nor is any needing that file.
    assert store.manifest_bytes("PS100001", 1) is None
    assert store.file_entry("PS100001", 1, "good.bin") is None
    assert store.versions() == [] and store.inventory()["packages"] == []
    assert [(c.package_id, c.damaged, how) for c, how in found] == [
        ("PS100001", ("bad.bin",), FOUND_ON_READ),
        ("PS100002", ("bad-too.bin",), FOUND_ON_READ),
    ]
    assert not store.objects.has(sha(b"bad" * 100))  # the good file stays: not sent again
    assert {o["sha256"] for o in store.inventory()["objects"]} == {sha(b"good" * 100)}


def test_content_validation_hashes_again_what_looks_unchanged(tmp_path: Path) -> None:
    """Bytes that rot on disk keep their size and dates: only hashing again finds them."""
    found: list[tuple[VersionCheck, str]] = []
    store = DPStore(tmp_path, on_damage=lambda check, how: found.append((check, how)))
    files = {"a.bin": b"a" * 1000, "b.bin": b"b" * 1000}
    install(store, manifest_of("PS100001", 1, files), files)
    assert store.validate() == []
    path = store.objects.path(sha(b"b" * 1000))
    before = path.stat()
    corrupt(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    store._fingerprints[sha(b"b" * 1000)] = [  # as if the change had left no trace
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
        path.stat().st_ctime_ns,
    ]
    assert store.is_verified(sha(b"b" * 1000))  # the cheap check cannot tell
    [check] = store.validate()
    assert check.damaged == ("b.bin",) and found == [(check, FOUND_BY_VALIDATION)]
    assert store.manifest_bytes("PS100001", 1) is None
    assert store.objects.has(sha(b"a" * 1000)) and not store.objects.has(sha(b"b" * 1000))


def test_a_damaged_object_is_replaced_by_the_next_push(tmp_path: Path) -> None:
    store = DPStore(tmp_path)
    receive(store, sha(b"payload"), b"payload")
    corrupt(store.objects.path(sha(b"payload")))
    receive(store, sha(b"payload"), b"payload")
    assert store.objects.path(sha(b"payload")).read_bytes() == b"payload"
    assert store.is_verified(sha(b"payload"))


# -- the process ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def site_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """A site on SQLite: the DP's receive endpoints do not depend on the database."""
    data_dir = tmp_path_factory.mktemp("site")
    server = start_site(data_dir, f"sqlite:///{data_dir / 'site.db'}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dp(site_server: SiteProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DPProcess]:
    _, token = Site.of(site_server).standard_dp()
    process = start_dp(site_server, tmp_path_factory.mktemp("dp"), token)
    yield process
    assert process.stop() == 0, "SIGTERM must end the DP cleanly"


def site_key(site_server: SiteProcess) -> SiteKey:
    return SiteKey.load_or_create(site_server.data_dir / "site-key.pem")


def put(dp: DPProcess, token: str | None, data: bytes, digest: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{dp.url}/dp/v1/objects/{digest or sha(data)}"
    return httpx.put(url, content=data, headers=headers, timeout=10).status_code


def test_only_a_distribution_token_for_this_dp_can_push(
    site_server: SiteProcess, dp: DPProcess
) -> None:
    key = site_key(site_server)
    dp_id = dp.dp_id
    data = os.urandom(1000)
    assert put(dp, None, data) == 401
    assert put(dp, SiteKey.generate().distribution_token(dp_id), data) == 403  # forged
    assert put(dp, key.access_token("PS100001", 1, "client-1"), data) == 403  # a client's
    assert put(dp, key.distribution_token(dp_id + 1000), data) == 403  # another DP's
    assert put(dp, key.distribution_token(dp_id, ttl_s=-10), data) == 403  # expired
    assert put(dp, "garbage", data) == 403
    assert not dp.object_path(sha(data)).exists()
    inventory = httpx.get(
        dp.url + "/dp/v1/inventory",
        headers={"Authorization": f"Bearer {key.access_token('PS100001', 1, 'c')}"},
    )
    assert inventory.status_code == 403
    assert put(dp, key.distribution_token(dp_id), data) == 200
    assert dp.object_path(sha(data)).read_bytes() == data


def test_wrong_bytes_are_refused_with_422_and_nothing_is_kept(
    site_server: SiteProcess, dp: DPProcess
) -> None:
    token = site_key(site_server).distribution_token(dp.dp_id)
    claimed = sha(b"what the manifest says")
    assert put(dp, token, b"what arrived instead", claimed) == 422
    assert put(dp, token, b"x", "not-a-digest") == 422
    assert not dp.object_path(claimed).exists()


def test_manifest_needs_its_files_and_a_distribution_token_cannot_read_content(
    site_server: SiteProcess, dp: DPProcess
) -> None:
    key = site_key(site_server)
    token = key.distribution_token(dp.dp_id)
    auth = {"Authorization": f"Bearer {token}"}
    files = {"setup.exe": os.urandom(5000), "readme.txt": b"read me"}
    manifest = manifest_of("PS1000AA", 3, files)
    url = f"{dp.url}/dp/v1/packages/PS1000AA/3"
    refused = httpx.put(url, content=manifest.to_bytes(), headers=auth)
    assert refused.status_code == 409
    assert sorted(refused.json()["missing"]) == sorted(sha(d) for d in files.values())
    bad = httpx.put(url, content=b'{"package_id": "PS1000AA"}', headers=auth)
    assert bad.status_code == 422
    for data in files.values():
        assert put(dp, token, data) == 200
    ok(httpx.put(url, content=manifest.to_bytes(), headers=auth))
    content = f"{dp.url}/content/PS1000AA/3/files/setup.exe"
    assert httpx.get(content, headers=auth).status_code == 403
    client = {"Authorization": f"Bearer {key.access_token('PS1000AA', 3, 'client-1')}"}
    assert httpx.get(content, headers=client).content == files["setup.exe"]
    served = httpx.get(f"{dp.url}/content/PS1000AA/3/manifest", headers=client)
    assert json.loads(served.content) == manifest.to_json()
    assert served.headers["etag"] == f'"{manifest.digest()}"'
    ok(httpx.delete(url, headers=auth), 204)
    assert httpx.get(content, headers=client).status_code == 404
    assert httpx.delete(url, headers=auth).status_code == 404


def test_start_report_says_what_is_held_damaged_lost_and_removed(tmp_path: Path) -> None:
    store = DPStore(tmp_path)
    kept, harmed, dropped = ({"k": b"kept"}, {"h": b"harmed"}, {"d": b"dropped"})
    install(store, manifest_of("PS100001", 1, kept), kept)
    install(store, manifest_of("PS100002", 4, harmed), harmed)
    install(store, manifest_of("PS100009", 2, dropped), dropped)
    corrupt(store.objects.path(sha(b"harmed")))
    checks = DPStore(tmp_path).check()
    policy: dict[str, Any] = {
        "packages": [
            {"id": "PS100001", "source_version": 1, "state": "installed"},
            {"id": "PS100002", "source_version": 4, "state": "installed"},
            {"id": "PS100003", "source_version": 1, "state": "installed"},
            {"id": "PS100004", "source_version": 1, "state": "install_pending"},
        ],
        "remove": [{"id": "PS100009", "source_version": 2}],
    }
    report = StartReport(cast(MPClient, None), store, checks)
    said = {(m["package_id"], m["state"]): m["detail"] for m in report.messages(policy)}
    assert said == {
        ("PS100001", "installed"): "held and verified at start",
        ("PS100002", "content_damaged"): (
            "content damaged: h (wrong SHA-256 or missing, found at start); "
            "this DP deleted the damaged files and no longer serves this version"
        ),
        ("PS100003", "install_retrying"): "not in this DP's store at start",
        ("PS100009", "removed"): "removed at start (to be removed from this DP)",
    }
    assert store.versions() == [("PS100001", 1)]
