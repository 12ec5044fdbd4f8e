"""In-process tests of the client agent's parts: cache, schedule, program runner, refusals."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from peerdp.agents.client import Advertisement, run_program
from peerdp.agents.client_cache import PackageCache
from peerdp.content.manifest import Manifest
from peerdp.content.objects import DigestMismatch
from tests.machine.support import RecordingMP, manifest_of


def cache_with(cache: PackageCache, manifest: Manifest, files: dict[str, bytes]) -> None:
    for data in files.values():
        cache.store.add_stream([data])
    cache.remember(manifest)


def advertisement(**overrides: Any) -> Advertisement:
    fields: dict[str, Any] = {
        "id": 1,
        "name": "adv",
        "package_id": "PS100001",
        "source_version": 1,
        "manifest_digest": "0" * 64,
        "program_name": "install",
        "command_line": "true",
        "timeout_s": 60,
        "available_at": datetime.now(UTC) - timedelta(minutes=1),
        "mandatory_at": None,
        **overrides,
    }
    return Advertisement(**fields)


# -- the client's cache ----------------------------------------------------------------


def test_materialise_copies_verified_files_and_refuses_damaged_ones(tmp_path: Path) -> None:
    cache = PackageCache(tmp_path)
    files = {"setup.sh": b"echo hi\n", "dir/data.bin": os.urandom(1000)}
    manifest = manifest_of("PS100001", files)
    cache_with(cache, manifest, files)
    folder = cache.materialise(manifest)
    assert folder == tmp_path / "packages" / "PS100001" / "1"
    assert (folder / "dir" / "data.bin").read_bytes() == files["dir/data.bin"]
    (folder / "setup.sh").write_bytes(b"changed by a previous run")
    assert (cache.materialise(manifest) / "setup.sh").read_bytes() == files["setup.sh"]

    damaged = cache.store.path(manifest.files[0].sha256)
    damaged.chmod(0o644)
    damaged.write_bytes(b"x" * manifest.files[0].size)
    with pytest.raises(DigestMismatch):
        cache.materialise(manifest)
    assert not cache.store.has(manifest.files[0].sha256)  # to be downloaded again
    assert cache.cached("PS100001", 1, manifest.digest()) is None


def test_cache_evicts_least_recently_used_versions(tmp_path: Path) -> None:
    cache = PackageCache(tmp_path)
    shared = os.urandom(10_000)
    versions = {}
    for n, package_id in enumerate(["PS100001", "PS100002", "PS100003"]):
        files = {"shared.bin": shared, "own.bin": os.urandom(10_000)}
        versions[package_id] = manifest_of(package_id, files)
        cache_with(cache, versions[package_id], files)
        cache.materialise(versions[package_id])
        time.sleep(0.01 * (n + 1))
    cache.remember(versions["PS100001"])  # used again: now the most recent
    evicted = cache.evict(limit_bytes=70_000, keep=("PS100003", 1))
    assert evicted == ["PS100002/1"]
    assert not (tmp_path / "packages" / "PS100002").exists()
    assert cache.store.has(hashlib.sha256(shared).hexdigest())  # still named by the others
    for package_id in ("PS100001", "PS100003"):
        assert cache.cached(package_id, 1, versions[package_id].digest()) is not None
    assert cache.evict(limit_bytes=0, keep=("PS100003", 1)) == ["PS100001/1"]
    assert cache.cached("PS100003", 1, versions["PS100003"].digest()) is not None


# -- schedule and program ----------------------------------------------------------------


def test_due_time_is_the_later_of_available_and_mandatory() -> None:
    now = datetime.now(UTC)
    assert advertisement().due_at() < now
    later = now + timedelta(hours=1)
    assert advertisement(mandatory_at=later).due_at() == later
    assert advertisement(available_at=later).due_at() == later


def test_program_timeout_kills_it(tmp_path: Path) -> None:
    adv = advertisement(command_line="echo started; sleep 30", timeout_s=1)
    started = time.monotonic()
    exit_code, output = run_program(adv, tmp_path, tmp_path / "log")
    assert exit_code is None and output == "started"
    assert time.monotonic() - started < 10


def test_program_runs_in_its_folder_with_package_facts(tmp_path: Path) -> None:
    adv = advertisement(command_line='echo "$PEERDP_PACKAGE_ID $(pwd)"; exit 4')
    exit_code, output = run_program(adv, tmp_path, tmp_path / "log")
    assert exit_code == 4 and output == f"PS100001 {tmp_path}"


# -- the client against damaged content ------------------------------------------------


def test_client_never_runs_a_damaged_cached_file(tmp_path: Path) -> None:
    from peerdp.agents.client import FAILED, ClientAgent, ClientOptions
    from peerdp.machine.mp_client import Identity, MachineFacts

    files = {"setup.sh": b"echo hi\n"}
    manifest = manifest_of("PS100001", files)
    cache_with(PackageCache(tmp_path), manifest, files)
    damaged = PackageCache(tmp_path).store.path(manifest.files[0].sha256)
    damaged.chmod(0o644)
    damaged.write_bytes(b"echo no\n")
    mp = RecordingMP()
    identity = Identity("m", "c", "k", "PS1", "client", "pc1", "http://127.0.0.1:9")
    agent = ClientAgent(identity, mp, MachineFacts("pc1", (), None), tmp_path, ClientOptions())  # type: ignore[arg-type]
    ran = tmp_path / "ran"
    adv = advertisement(manifest_digest=manifest.digest(), command_line=f"touch '{ran}'")
    outcome = agent.evaluate(adv)
    assert outcome.result == FAILED and "downloaded again" in outcome.detail
    assert [m["type"] for m in mp.messages] == ["advertisement_received", "content_refused"]
    assert not ran.exists()
