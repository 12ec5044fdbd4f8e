"""The branch DP: its policy worker in-process (refusals, retries), then as a real process
(on-demand pull, resume after SIGKILL, refusal, removal)."""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from peerdp.dp.branch import BranchWorker
from peerdp.dp.http.response import TransferLimiter
from peerdp.dp.store import DPStore
from peerdp.dp.transfer_limit import TransferLimit
from peerdp.machine.mp_client import MPError
from peerdp.machine.reporting import package_state
from tests.dp.branch_support import World, worlds
from tests.helpers.api import wait_for
from tests.helpers.processes import SiteProcess
from tests.machine.support import RecordingMP, manifest_of, run_client

# -- the policy worker, in-process ---------------------------------------------------------


def test_branch_refuses_a_manifest_the_digest_does_not_name(tmp_path: Path) -> None:
    mp = RecordingMP()
    worker = BranchWorker(mp, DPStore(tmp_path))  # type: ignore[arg-type]
    manifest = manifest_of("PS100001", {"a": b"a"})
    entry = {
        "id": "PS100001",
        "source_version": 1,
        "manifest_digest": "2" * 64,
        "manifest": manifest.to_json(),
        "auto_download": True,
        "state": "install_pending",
        "sources": [{"dp_id": 1, "name": "std", "url": "http://127.0.0.1:9"}],
        "access_token": "t",
    }
    worker.apply({"packages": [entry], "remove": []})
    assert [(m["type"], m["state"]) for m in mp.messages] == [("package_state", "install_failed")]
    assert "signed policy says" in mp.messages[0]["detail"]


def test_branch_takes_the_sites_transfer_limit_from_each_policy(tmp_path: Path) -> None:
    limiter = TransferLimiter(None)
    limit = TransferLimit.start(limiter, "branch", None)
    assert limiter.max_transfers == 10  # a workstation's limit until the site says otherwise
    worker = BranchWorker(RecordingMP(), DPStore(tmp_path), limit=limit)  # type: ignore[arg-type]
    worker.apply({"packages": [], "remove": [], "max_transfers": 3})
    assert limiter.max_transfers == 3
    worker.apply({"packages": [], "remove": [], "max_transfers": None})
    assert limiter.max_transfers == 10

    overridden = TransferLimiter(None)
    mine = TransferLimit.start(overridden, "branch", 2)  # started with --max-transfers 2
    worker = BranchWorker(RecordingMP(), DPStore(tmp_path / "b"), limit=mine)  # type: ignore[arg-type]
    worker.apply({"packages": [], "remove": [], "max_transfers": 50})
    assert overridden.max_transfers == 2


def test_branch_without_sources_retries_with_a_reason(tmp_path: Path) -> None:
    mp = RecordingMP()
    worker = BranchWorker(mp, DPStore(tmp_path), retry_base_s=60)  # type: ignore[arg-type]
    manifest = manifest_of("PS100001", {"a": b"a"})
    entry = {
        "id": "PS100001",
        "source_version": 1,
        "manifest_digest": manifest.digest(),
        "manifest": manifest.to_json(),
        "state": "install_pending",
        "sources": [],
    }
    worker.apply({"packages": [entry]})
    worker.apply({"packages": [entry]})  # not due again yet: no second report
    assert [m["state"] for m in mp.messages] == ["install_retrying"]
    assert "no BITS-enabled standard DP" in mp.messages[0]["detail"]
    assert 0 < worker._wait_s() <= 60


def test_branch_without_auto_download_waits_for_a_prestage_and_never_pulls(
    tmp_path: Path,
) -> None:
    mp = RecordingMP()
    worker = BranchWorker(mp, DPStore(tmp_path), retry_base_s=60)  # type: ignore[arg-type]
    manifest = manifest_of("PS100001", {"a": b"a"})
    entry = {
        "id": "PS100001",
        "source_version": 1,
        "manifest_digest": manifest.digest(),
        "manifest": manifest.to_json(),
        "auto_download": False,
        "state": "install_pending",  # e.g. after a refresh, or content found damaged
        "sources": [{"dp_id": 1, "name": "std", "url": "http://127.0.0.1:9"}],
    }
    worker.apply({"packages": [entry]})
    assert [m["state"] for m in mp.messages] == ["waiting_for_prestage"]
    assert "peerdp branch import" in mp.messages[0]["detail"]
    worker.apply({"packages": [{**entry, "state": "waiting_for_prestage"}]})
    assert len(mp.messages) == 1  # said once; no pull attempted, no retry scheduled
    assert worker._wait_s() == worker.poll_interval_s


def test_branch_waiting_for_a_source_tries_at_once_when_one_holds_it(tmp_path: Path) -> None:
    """A policy naming a source the failed attempt lacked (a standard DP came to hold the
    version, as after a package update) is tried at once, not after the retry delay."""
    mp = RecordingMP()
    mp.tls = True  # type: ignore[attr-defined]  # what download_package verifies with
    worker = BranchWorker(mp, DPStore(tmp_path), retry_base_s=60)  # type: ignore[arg-type]
    manifest = manifest_of("PS100001", {"a": b"a"})
    entry = {
        "id": "PS100001",
        "source_version": 1,
        "manifest_digest": manifest.digest(),
        "manifest": manifest.to_json(),
        "state": "install_pending",
        "sources": [],
    }
    worker.apply({"packages": [entry]})
    [waiting] = mp.messages
    assert waiting["state"] == "install_retrying"
    assert "no BITS-enabled standard DP of this site holds it yet" in waiting["detail"]
    assert waiting["detail"].startswith("waiting: ")  # not a failed attempt
    assert "it is pulled as soon as one does (looked at again in 60 s)" in waiting["detail"]

    # A source appears (nothing listens there: the attempt is made, and fails, at once).
    dead = {"dp_id": 1, "name": "HQ-DP01", "url": "http://127.0.0.1:9"}
    worker.apply({"packages": [{**entry, "state": "install_retrying", "sources": [dead]}]})
    assert [m["state"] for m in mp.messages] == ["install_retrying"] * 2
    assert "HQ-DP01" in mp.messages[1]["detail"]
    assert "attempt 1 of 10 failed" in mp.messages[1]["detail"]
    assert mp.messages[1]["detail"].endswith("next attempt in 60 s")

    # The same sources again: nothing new to try, so it waits for the delay.
    worker.apply({"packages": [{**entry, "state": "install_retrying", "sources": [dead]}]})
    assert len(mp.messages) == 2


def test_branch_waits_for_a_source_without_giving_up(tmp_path: Path) -> None:
    """Looking and finding no source is not a failed pull: however often it looks (here
    at once each time), the version is never install_failed for want of a source."""
    mp = RecordingMP()
    store = DPStore(tmp_path)
    worker = BranchWorker(mp, store, retry_base_s=0, max_attempts=2)  # type: ignore[arg-type]
    manifest = manifest_of("PS100001", {"a": b"a"})
    entry = {
        "id": "PS100001",
        "source_version": 1,
        "manifest_digest": manifest.digest(),
        "manifest": manifest.to_json(),
        "state": "install_retrying",
        "sources": [],
    }
    for _ in range(5):
        worker.apply({"packages": [entry]})
    assert [m["state"] for m in mp.messages] == ["install_retrying"] * 5
    assert all(m["detail"].startswith("waiting: ") for m in mp.messages)


# -- the branch DP as a process -------------------------------------------------------------


@pytest.fixture
def world(site_server: SiteProcess, tmp_path: Path) -> Iterator[Callable[..., World]]:
    yield from worlds(site_server, tmp_path)


def network_bytes(detail: str) -> int:
    found = re.search(r"(\d+) bytes over the network", detail)
    assert found, detail
    return int(found[1])


def test_seed_flow(world: Callable[..., World], tmp_path: Path) -> None:
    """First attempt fails and triggers on-demand; the branch DP pulls; the retry succeeds.

    The standard DP is a real `peerdp dp serve` the site's distribution manager pushed to.
    """
    w = world(real_standard_dp=True)
    client_dir = tmp_path / "client"
    name = f"{w.tag}-pc1"
    w.add_member(name)
    # A long poll interval: only a woken long-poll gets the assignment to it in time.
    branch = w.start_branch(tmp_path / "branch", "--poll-interval", "300")

    first = run_client(w.client_args(name, client_dir))
    assert first.returncode == 1, first.stderr
    failed = w.typed("content_location_failed", client_name=name)
    assert [m["state"] for m in failed] == ["on_demand_triggered"]
    assert failed[0]["detail"].startswith("on_demand_triggered: ")
    assert not w.out.exists()

    row = w.wait_branch_state("installed", timeout=60)
    assert row["origin"] == "on_demand"
    installed = w.typed("package_state", dp_id=w.branch_dp["id"], state="installed")
    assert network_bytes(installed[-1]["detail"]) == w.manifest.total_size  # type: ignore[union-attr]

    second = run_client(w.client_args(name, client_dir))
    assert second.returncode == 0, second.stdout + second.stderr
    assert w.out.read_bytes() == w.files["payload.txt"]
    succeeded = w.typed("program_succeeded", client_name=name)
    assert len(succeeded) == 1 and succeeded[0]["exit_code"] == 0
    assert f"{w.tag}-br-dp" in succeeded[0]["detail"]
    assert branch.process.poll() is None


def test_sigkill_mid_download_resumes(world: Callable[..., World], tmp_path: Path) -> None:
    size = 600_000
    w = world(files={"big.bin": bytes(range(256)) * (size // 256)})
    big = next(f for f in w.manifest.files if f.path == "big.bin")  # type: ignore[union-attr]
    data_dir = tmp_path / "branch"
    partial = data_dir / "store" / "partial" / f"{big.sha256}.part"
    first = w.start_branch(data_dir, "--bandwidth-limit", "100000")
    ok_add = w.admin.post(
        f"/packages/{w.package_id}/distribution-points", json={"dp_id": w.branch_dp["id"]}
    )
    assert ok_add.status_code == 201, ok_add.text
    wait_for("a partial of a third", lambda: partial.exists() and partial.stat().st_size > size / 3)
    first.stop(signal.SIGKILL)
    held = partial.stat().st_size
    assert 0 < held < size

    second = w.start_branch(data_dir, token=False)
    assert second.url == first.url  # the port of the last run, so the registered URL holds
    w.wait_branch_state("installed")
    installed = w.typed("package_state", dp_id=w.branch_dp["id"], state="installed")
    fetched = network_bytes(installed[-1]["detail"])
    assert fetched <= w.manifest.total_size - held  # type: ignore[union-attr]
    assert not partial.exists()
    token = w.access_token()
    got = httpx.get(
        f"{second.url}/content/{w.package_id}/{w.version}/files/big.bin",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert got.status_code == 200 and got.content == w.files["big.bin"]


def test_corrupt_source_is_refused_and_never_run(
    world: Callable[..., World], tmp_path: Path
) -> None:
    w = world(corrupt="payload.txt")
    name = f"{w.tag}-pc1"
    w.add_member(name)
    w.start_branch(tmp_path / "branch", "--max-attempts", "2")
    client_dir = tmp_path / "client"
    assert run_client(w.client_args(name, client_dir)).returncode == 1

    w.wait_branch_state("install_failed")
    reports = w.typed("package_state", dp_id=w.branch_dp["id"])
    assert [m["state"] for m in reports] == ["install_retrying", "install_failed"]
    assert all("sha256 mismatch" in m["detail"] for m in reports)
    objects = tmp_path / "branch" / "store" / "objects"
    assert not [p for p in objects.rglob("*") if p.is_file()]

    again = run_client(w.client_args(name, client_dir))
    assert again.returncode == 1
    assert not w.out.exists()
    assert not w.typed("program_started", client_name=name)


def test_removal_deletes_content_and_reports(world: Callable[..., World], tmp_path: Path) -> None:
    w = world()
    data_dir = tmp_path / "branch"
    branch = w.start_branch(data_dir)
    dp_id = w.branch_dp["id"]
    assert w.admin.post(
        f"/packages/{w.package_id}/distribution-points", json={"dp_id": dp_id}
    ).is_success
    w.wait_branch_state("installed")
    manifest = data_dir / "store" / "manifests" / w.package_id / f"{w.version}.json"
    assert manifest.exists()

    assert w.admin.delete(f"/packages/{w.package_id}/distribution-points/{dp_id}").is_success
    wait_for("the row to go", lambda: w.branch_row() is None)
    assert not manifest.exists()
    assert [m["state"] for m in w.typed("package_state", dp_id=dp_id)][-1] == "removed"
    objects = data_dir / "store" / "objects"
    assert not [p for p in objects.rglob("*") if p.is_file()]
    assert branch.stop(signal.SIGTERM) == 0  # a clean shutdown


def test_deleting_the_package_removes_it_from_the_branch_dp(
    world: Callable[..., World], tmp_path: Path
) -> None:
    w = world()
    data_dir = tmp_path / "branch"
    w.start_branch(data_dir)
    dp_id = w.branch_dp["id"]
    assert w.admin.post(
        f"/packages/{w.package_id}/distribution-points", json={"dp_id": dp_id}
    ).is_success
    w.wait_branch_state("installed")
    manifest = data_dir / "store" / "manifests" / w.package_id / f"{w.version}.json"
    assert manifest.exists()

    assert w.admin.delete(f"/packages/{w.package_id}").status_code == 202
    wait_for("the branch DP's row to go", lambda: w.branch_row() is None)
    assert not manifest.exists()
    objects = data_dir / "store" / "objects"
    assert not [p for p in objects.rglob("*") if p.is_file()]
    assert [m["state"] for m in w.typed("package_state", dp_id=dp_id)][-1] == "removed"
    # The standard DP still holds it (this one takes no pushes): the package waits for it.
    assert w.admin.get(f"/packages/{w.package_id}").json()["deleted_at"] is not None
    assert w.standard_mp is not None
    w.standard_mp.status(package_state(w.package_id, w.version, "removed", "deleted"))
    assert w.admin.get(f"/packages/{w.package_id}").status_code == 404


class StoppingMP(RecordingMP):
    """A policy long-poll that fails: on call `stop_on`, because everything is stopping."""

    def __init__(self, stop: threading.Event, stop_on: int) -> None:
        super().__init__()
        self.stop, self.stop_on, self.calls = stop, stop_on, 0

    def policy(self, since: int | None = None, wait: float = 0) -> dict[str, Any]:
        self.calls += 1
        if self.calls == self.stop_on:
            self.stop.set()
        raise MPError("cannot reach the management point: Server disconnected")


@pytest.mark.parametrize("failures_before_stop", [0, 1])
def test_a_stopping_branch_dp_does_not_report_the_site_unreachable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, failures_before_stop: int
) -> None:
    stop = threading.Event()
    mp = StoppingMP(stop, stop_on=failures_before_stop + 1)
    worker = BranchWorker(mp, DPStore(tmp_path))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="peerdp.branch"):
        worker.run(stop)
    unreachable = [r for r in caplog.records if "cannot reach" in r.getMessage()]
    # A failure while running is reported; the one as it stops is not.
    assert len(unreachable) == failures_before_stop
