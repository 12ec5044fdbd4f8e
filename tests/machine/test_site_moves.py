"""The site server moves (another port): agents started with the new `--site` or
`PEERDP_SITE_URL` follow it and save it; the old, saved URL is reported when unreachable.
Real site, client, branch DP and standard DP processes."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.api import ok, wait_for
from tests.helpers.processes import SiteProcess, peerdp_cmd, start_site
from tests.machine.support import start_agent

pytestmark = pytest.mark.slow  # real site server and agent processes

# The site URL comes only from the command line here, never from the test's environment.
ENV = {k: v for k, v in os.environ.items() if k != "PEERDP_SITE_URL"}


def _client(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        peerdp_cmd("client", "run", "--once", "--data-dir", str(data_dir), *args),
        env={**ENV, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _saved_url(data_dir: Path) -> str:
    return str(json.loads((data_dir / "identity.json").read_text())["site_url"])


def _token(admin: httpx.Client, role: str, dp_id: int | None = None) -> str:
    body: dict[str, Any] = {"role": role, **({"dp_id": dp_id} if dp_id else {})}
    return str(ok(admin.post("/enrolment-tokens", json=body), 201)["token"])


def _contact(site: SiteProcess, dp_id: int) -> Callable[[], str | None]:
    def read() -> str | None:
        with site.admin() as admin:
            return ok(admin.get(f"/distribution-points/{dp_id}"))["last_seen"]  # type: ignore[no-any-return]

    return read


def test_agents_follow_the_site_to_its_new_url(db_url: str, tmp_path: Path) -> None:
    first = start_site(tmp_path / "site", db_url)
    try:
        with first.admin() as admin:
            dps = {
                kind: ok(
                    admin.post("/distribution-points", json={"name": f"{kind}-dp", "kind": kind}),
                    201,
                )["id"]
                for kind in ("standard", "branch")
            }
            client_token = _token(admin, "client")
            tokens = {kind: _token(admin, f"{kind}_dp", dps[kind]) for kind in dps}
        registered = _client(tmp_path / "pc", "--site", first.url, "--token", client_token)
        assert registered.returncode == 0, registered.stderr
        for kind, cmd in (("standard", "dp"), ("branch", "branch")):
            data = str(tmp_path / kind)
            args = ["--site", first.url, "--token", tokens[kind], "--data-dir", data]
            agent = start_agent(cmd, [*args, "--port", "0"])
            agent.stop()
    finally:
        first.stop()

    moved = start_site(tmp_path / "site", db_url)  # the same site, on another port
    try:
        assert moved.url != first.url
        # Only the saved URL: the old site is gone, and the error names it, in one line.
        stranded = _client(tmp_path / "pc")
        assert stranded.returncode == 2
        [error] = [line for line in stranded.stderr.splitlines() if line.startswith("error:")]
        assert f"cannot reach the management point at {first.url}" in error
        assert "Traceback" not in stranded.stderr

        # The new URL given: the agent works, and the URL is saved for the next runs.
        followed = _client(tmp_path / "pc", "--site", moved.url)
        assert followed.returncode == 0, followed.stderr
        assert _saved_url(tmp_path / "pc") == moved.url
        again = _client(tmp_path / "pc")  # nothing given: the saved (new) URL
        assert again.returncode == 0, again.stderr

        # The DPs, one through --site, one through PEERDP_SITE_URL: each reaches the moved
        # site (its last contact there moves on) and saves the URL.
        for kind, cmd, args, env in (
            ("standard", "dp", ["--site", moved.url], {}),
            ("branch", "branch", [], {"PEERDP_SITE_URL": moved.url}),
        ):
            read = _contact(moved, dps[kind])
            before = read()
            data = tmp_path / kind
            agent = start_agent(cmd, [*args, "--data-dir", str(data), "--port", "0"], env=env)
            try:
                wait_for(
                    f"the {kind} DP's contact with the moved site",
                    lambda r=read, b=before: (r() or "") > (b or ""),
                )
            finally:
                agent.stop()
            assert _saved_url(data) == moved.url
    finally:
        moved.stop()
