"""The client agent as a real process: registration, fallback, refusals, retries, exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from peerdp.machine.mp_client import Identity, save_identity
from peerdp.security.signing import SiteKey
from tests.dp.branch_support import World, worlds
from tests.dp.support import free_port, stalled_download, start_uvicorn, stop_uvicorn
from tests.helpers.api import wait_for
from tests.helpers.processes import SiteProcess, peerdp_cmd
from tests.machine.support import run_client

pytestmark = pytest.mark.slow  # a real site server, DPs and `peerdp client run` processes

# Content reachable straight from the standard DP (no on-demand needed).
DIRECT = {"protected_only": False, "allow_remote": True, "on_slow": "download"}


@pytest.fixture
def world(site_server: SiteProcess, tmp_path: Path) -> Iterator[Callable[..., World]]:
    yield from worlds(site_server, tmp_path)


def test_second_run_does_not_register_again(world: Callable[..., World], tmp_path: Path) -> None:
    w = world(**DIRECT)
    name = f"{w.tag}-pc1"
    w.add_member(name)
    data_dir = tmp_path / "client"
    args = w.client_args(name, data_dir)  # a single-use enrolment token, used on both runs
    first = run_client(args)
    assert first.returncode == 0, first.stdout + first.stderr
    identity = (data_dir / "identity.json").read_text()
    assert w.out.read_bytes() == w.files["payload.txt"]

    second = run_client(args)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already_done" in second.stdout
    assert (data_dir / "identity.json").read_text() == identity
    clients = [c for c in w.admin.get("/clients").json() if c["name"] == name]
    assert len(clients) == 1 and clients[0]["ip_addresses"] == [f"{w.net}.20"]
    registered = w.admin.get("/status-messages", params={"client_name": name}).json()
    assert [m["type"] for m in registered].count("machine_registered") == 1
    assert len(w.typed("program_succeeded", client_name=name)) == 1


def test_full_branch_dp_sends_client_to_next_dp(
    world: Callable[..., World], tmp_path: Path
) -> None:
    w = world(files={"big.bin": bytes(range(256)) * 32 * 1024}, **DIRECT)  # 8 MiB
    branch = w.start_branch(tmp_path / "branch", "--max-transfers", "1")
    added = w.admin.post(
        f"/packages/{w.package_id}/distribution-points", json={"dp_id": w.branch_dp["id"]}
    )
    assert added.status_code == 201, added.text
    w.wait_branch_state("installed")
    name = f"{w.tag}-pc1"
    w.add_member(name)
    path = f"/content/{w.package_id}/{w.version}/files/big.bin"
    token = w.access_token()
    with stalled_download(branch.url, path, token):  # takes the one transfer slot
        busy = httpx.get(branch.url + path, headers={"Authorization": f"Bearer {token}"})
        assert busy.status_code == 503 and busy.headers["retry-after"]
        result = run_client(w.client_args(name, tmp_path / "client"))
    assert result.returncode == 0, result.stdout + result.stderr
    detail = w.typed("program_succeeded", client_name=name)[0]["detail"]
    assert f"from {w.tag}-std:" in detail and f"{w.tag}-br-dp:" not in detail


def test_corrupt_file_is_never_run(world: Callable[..., World], tmp_path: Path) -> None:
    w = world(corrupt="payload.txt", **DIRECT)
    name = f"{w.tag}-pc1"
    w.add_member(name)
    result = run_client(w.client_args(name, tmp_path / "client"))
    assert result.returncode == 1
    failed = w.typed("content_download_failed", client_name=name)
    assert len(failed) == 1 and "sha256 mismatch" in failed[0]["detail"]
    assert not w.out.exists()
    assert not w.typed("program_started", client_name=name)
    assert not (tmp_path / "client" / "packages" / w.package_id / str(w.version)).exists()


def test_manifest_other_than_the_policys_is_refused(
    world: Callable[..., World], tmp_path: Path
) -> None:
    w = world(**DIRECT)
    assert w.standard is not None and w.manifest is not None
    served = w.standard.root / "manifests" / w.package_id / f"{w.version}.json"
    other = {**w.manifest.to_json(), "created_at": "2001-01-01T00:00:00Z"}
    served.write_text(json.dumps(other))
    name = f"{w.tag}-pc1"
    w.add_member(name)
    result = run_client(w.client_args(name, tmp_path / "client"))
    assert result.returncode == 1
    failed = w.typed("content_download_failed", client_name=name)
    assert "but the signed policy says" in failed[0]["detail"]
    assert not w.out.exists()


def test_failing_program_reports_exit_code_and_runs_again(
    world: Callable[..., World], tmp_path: Path
) -> None:
    w = world(command_line="echo trying; exit 3", **DIRECT)
    name = f"{w.tag}-pc1"
    w.add_member(name)
    data_dir = tmp_path / "client"
    for _ in range(2):
        assert run_client(w.client_args(name, data_dir)).returncode == 1
    failed = w.typed("program_failed", client_name=name)
    assert [m["exit_code"] for m in failed] == [3, 3]
    assert "exit code 3" in failed[0]["detail"] and "trying" in failed[0]["detail"]
    assert "held already" in failed[1]["detail"] or "local cache" in failed[1]["detail"]


def test_agent_retries_until_the_branch_dp_has_the_content(
    world: Callable[..., World], tmp_path: Path
) -> None:
    """Without --once: the seed's failed first attempt, then a retry that succeeds."""
    w = world()
    name = f"{w.tag}-pc1"
    w.add_member(name)
    args = w.client_args(name, tmp_path / "client")
    args.remove("--once")
    agent = subprocess.Popen(
        peerdp_cmd("client", "run", *args, "--retry-interval", "0.5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for("the first attempt", lambda: w.typed("content_location_failed", client_name=name))
        w.start_branch(tmp_path / "branch")
        wait_for("the program", lambda: w.typed("program_succeeded", client_name=name), 60)
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(20) == 0
    assert w.out.exists()
    assert len(w.typed("program_succeeded", client_name=name)) == 1


# -- a management point that signs with the wrong key ------------------------------------


@pytest.mark.parametrize("tamper", ["other_key", "altered_after_signing"])
def test_tampered_policy_is_refused(tmp_path: Path, tamper: str) -> None:
    pinned, other = SiteKey.generate(), SiteKey.generate()
    out = tmp_path / "ran"
    received: list[dict[str, Any]] = []
    app = fake_mp(pinned if tamper == "altered_after_signing" else other, out, received, tamper)
    port = free_port()
    running = start_uvicorn(app, port)
    try:
        url = f"http://127.0.0.1:{port}"
        data_dir = tmp_path / "client"
        save_identity(data_dir, Identity("m1", "cred", pinned.public_key_b64, "PS1", "client",
                                         "pc1", url, client_id=1))  # fmt: skip
        result = subprocess.run(
            peerdp_cmd("client", "run", "--site", url, "--data-dir", str(data_dir), "--once"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        stop_uvicorn(running)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "policy refused" in result.stderr
    assert [m["type"] for m in received] == ["policy_refused"]
    assert not out.exists()


def fake_mp(key: SiteKey, out: Path, received: list[dict[str, Any]], tamper: str) -> FastAPI:
    app = FastAPI()
    policy: dict[str, Any] = {
        "machine_id": "m1",
        "name": "pc1",
        "role": "client",
        "site_code": "PS1",
        "version": 1,
        "advertisements": [
            {
                "id": 1,
                "name": "adv",
                "package_id": "PS100001",
                "source_version": 1,
                "manifest_digest": "0" * 64,
                "program": {"name": "p", "command_line": f"touch '{out}'", "timeout_s": 60},
                "schedule": {"available_at": "2000-01-01T00:00:00Z", "mandatory_at": None},
                "flags": {},
            }
        ],
    }
    signature = key.sign_json(policy)
    if tamper == "altered_after_signing":
        policy["advertisements"][0]["program"]["command_line"] += " && echo altered"

    @app.get("/mp/v1/policy")
    def get_policy() -> dict[str, Any]:
        return {**policy, "signature": signature}

    @app.post("/mp/v1/status")
    def status(body: dict[str, Any]) -> dict[str, Any]:
        received.extend(body["messages"])
        return {"accepted": len(body["messages"]), "rejected": []}

    return app
