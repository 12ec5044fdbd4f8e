"""Programs as SCCM handles them, with a real site server (SQLite and PostgreSQL), a DP
and `peerdp client run` as a service: a failing program is retried the configured number
of times and ends `failed`; 3010 is success with a restart required; a rerun makes it run
again, learnt through the client's policy (at default settings: no retry timer or poll
interval brings it sooner)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.dp.branch_support import World, worlds
from tests.helpers.api import wait_for
from tests.helpers.processes import SiteProcess, peerdp_cmd

pytestmark = pytest.mark.slow  # a real site server, a DP and `peerdp client run` processes

DIRECT = {"protected_only": False, "allow_remote": True, "on_slow": "download"}


@pytest.fixture
def world(site_server: SiteProcess, tmp_path: Path) -> Iterator[Callable[..., World]]:
    yield from worlds(site_server, tmp_path)


def _service(w: World, name: str, data_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    args = w.client_args(name, data_dir)
    args.remove("--once")
    return subprocess.Popen(
        peerdp_cmd("client", "run", *args, *extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(agent: subprocess.Popen[bytes]) -> None:
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(30) == 0


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def _rerun(w: World, name: str) -> None:
    """`peerdp advertisement rerun ID --client NAME`, as an administrator types it."""
    env = {**os.environ, "PEERDP_SITE_URL": w.site.url, "PEERDP_ADMIN_TOKEN": w.site.admin_token}
    command = ["advertisement", "rerun", str(w.advertisement["id"]), "--client", name]
    done = subprocess.run(peerdp_cmd(*command), capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"will run again on client {name}" in done.stdout


def test_a_failing_program_is_retried_then_failed_until_rerun(
    world: Callable[..., World], tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    w = world(command_line=f"echo run >> '{counter}'; echo failing; exit 1", **DIRECT)
    name = f"{w.tag}-pc1"
    w.add_member(name)
    agent = _service(
        w, name, tmp_path / "client", "--retry-interval", "0.2", "--program-attempts", "3"
    )
    try:
        wait_for("failed", lambda: w.typed("advertisement_failed", client_name=name), 60)
        assert _runs(counter) == 3
        failed = w.typed("program_failed", client_name=name)
        assert [(m["attempt"], m["state"], m["exit_code"]) for m in failed] == [
            (1, "retrying", 1),
            (2, "retrying", 1),
            (3, "failed", 1),
        ]
        assert (
            all(m["next_attempt_at"] for m in failed[:2]) and failed[2]["next_attempt_at"] is None
        )
        [final] = w.typed("advertisement_failed", client_name=name)
        assert final["state"] == "failed" and final["severity"] == "error"
        assert "failed after 3 of 3 runs: exit code 1" in final["detail"]

        _rerun(w, name)
        wait_for(
            "failed again", lambda: len(w.typed("advertisement_failed", client_name=name)) == 2, 60
        )
        assert _runs(counter) == 6
        attempts = [m["attempt"] for m in w.typed("program_failed", client_name=name)]
        assert attempts == [1, 2, 3, 1, 2, 3]
    finally:
        _stop(agent)
    [recorded] = w.typed("advertisement_rerun", client_name=name)
    assert recorded["component"] == "site"


def test_3010_succeeds_with_a_restart_required_and_a_rerun_runs_it_again(
    world: Callable[..., World], tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    program = f"echo run >> '{counter}'; echo 3010 > \"$PEERDP_EXIT_CODE_FILE\""
    w = world(command_line=program, **DIRECT)
    name = f"{w.tag}-pc1"
    w.add_member(name)
    agent = _service(w, name, tmp_path / "client")  # default settings
    try:
        [first] = wait_for("success", lambda: w.typed("program_succeeded", client_name=name), 60)
        assert (first["exit_code"], first["state"]) == (3010, "restart_required")
        assert first["severity"] == "info" and "restart required" in first["detail"]
        assert not w.typed("program_failed", client_name=name)

        _rerun(w, name)
        wait_for("the rerun", lambda: len(w.typed("program_succeeded", client_name=name)) == 2, 60)
        assert _runs(counter) == 2
    finally:
        _stop(agent)
    assert len(w.typed("advertisement_rerun", client_name=name)) == 1
