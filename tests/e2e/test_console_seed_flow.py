"""The console watching the seed's flow, with real processes only, without reloading.

A site server (`site_server`, SQLite and PostgreSQL), a BITS-enabled standard DP holding
the package, a branch office whose protected branch DP (`peerdp branch serve`) is not on
the package's list, and clients (`peerdp client run`, as a service: no `--once`) in the
branch's boundary, all with the product's default timings. An administrator signed in
with chromium keeps three pages open (the dashboard, the advertisement, the package) and
sees, as it happens: the first attempts waiting for content, the on-demand request in the
dashboard's queue, the branch DP installing, and every client succeeding from the branch
DP. The SQLite run saves the dashboard mid-flow to docs/console/dashboard-seed-flow.png.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.helpers.api import ok, tar_of, unique, wait_for
from tests.helpers.processes import SiteProcess, peerdp_cmd, stop_process
from tests.machine.support import AgentProcess, start_agent
from tests.site.console.conftest import (
    DESKTOP,
    browser,  # noqa: F401  (the fixture)
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.slow  # a whole site of real processes and a real browser

HQ_NET, BRANCH_NET = "192.168.73", "10.73.1"
CLIENTS = 3
PAYLOAD_MIB = 6
# The branch office's WAN link, as `peerdp demo` has one: the branch DP's pull of the
# package lasts seconds (not milliseconds over loopback), so the page shows it happening.
BRANCH_BANDWIDTH = 1024 * 1024
# Bounds on what is asynchronous. The clients try again after their default retry
# interval (60 s), so the whole flow takes a little over a minute.
WAIT_MS = 60_000
WAIT_S = 120.0  # setting up: as the other end-to-end tests, for a loaded machine
FLOW_MS = 180_000


# -- the offices and the deployment, built through the admin API -------------------------


@dataclass
class Seed:
    site: SiteProcess
    admin: httpx.Client
    tmp: Path
    branch_dp: dict[str, Any]
    package: dict[str, Any]
    advertisement: dict[str, Any]
    clients: list[str]
    client_token: str


def _post(admin: httpx.Client, path: str, **body: Any) -> dict[str, Any]:
    answer: dict[str, Any] = ok(admin.post(path, json=body), 201)
    return answer


def _serve(
    seed_site: SiteProcess, admin: httpx.Client, tmp: Path, dps: dict[str, Any]
) -> list[AgentProcess]:
    """Start the standard DP and the branch DP processes (at the same time)."""

    def args(key: str, role: str, ip: str) -> list[str]:
        token = _post(admin, "/enrolment-tokens", role=role, dp_id=dps[key]["id"], max_uses=1)
        return ["--site", seed_site.url, "--token", token["token"], "--data-dir",
                str(tmp / key), "--name", dps[key]["name"], "--ip-address", ip]  # fmt: skip

    commands = [
        ("dp", args("std", "standard_dp", f"{HQ_NET}.10")),
        ("branch", [*args("br", "branch_dp", f"{BRANCH_NET}.10"),
                    "--bandwidth-limit", str(BRANCH_BANDWIDTH)]),
    ]  # fmt: skip
    with ThreadPoolExecutor(len(commands)) as pool:
        booting = [pool.submit(start_agent, *command) for command in commands]
        started = [future.result() for future in booting if not future.exception()]
        if len(started) < len(commands):
            for agent in started:
                agent.stop()
            raise RuntimeError(f"a DP did not start: {[f.exception() for f in booting]}")
    return started


@pytest.fixture(scope="module")
def seed(site_server: SiteProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seed]:
    admin = site_server.admin()
    tmp = tmp_path_factory.mktemp("seed")
    tag = unique("cs")
    _post(admin, "/boundaries", name=f"{tag}-HQ", type="ip_subnet",
          value=f"{HQ_NET}.0/24", connection="fast")  # fmt: skip
    branch = _post(admin, "/boundaries", name=f"{tag}-BRANCH", type="ip_subnet",
                   value=f"{BRANCH_NET}.0/24", connection="fast")  # fmt: skip
    dps = {
        "std": _post(admin, "/distribution-points", name=f"{tag}-HQ-DP", kind="standard",
                     bits_enabled=True, ip_addresses=[f"{HQ_NET}.10"]),
        "br": _post(admin, "/distribution-points", name=f"{tag}-BR-DP", kind="branch",
                    bits_enabled=True, protected_boundary_ids=[branch["id"]],
                    ip_addresses=[f"{BRANCH_NET}.10"]),
    }  # fmt: skip
    agents = _serve(site_server, admin, tmp, dps)
    try:
        package = _post(admin, "/packages", name=f"{tag}-pkg", on_demand=True)
        files = {"payload.txt": b"the seed\n", "big.bin": random.randbytes(PAYLOAD_MIB << 20)}
        ok(
            admin.post(
                f"/packages/{package['id']}/versions",
                content=tar_of(files),
                headers={"Content-Type": "application/x-tar"},
            ),
            201,
        )
        _post(admin, f"/packages/{package['id']}/programs", name="install",
              command_line='cp payload.txt "$E2E_OUT"', timeout_s=60)  # fmt: skip
        clients = [f"{tag}-pc{n}" for n in range(1, CLIENTS + 1)]
        collection = _post(admin, "/collections", name=f"{tag}-col")
        members = {"member_names": clients}
        ok(admin.post(f"/collections/{collection['id']}/members", json=members))
        advertisement = _post(admin, "/advertisements", name=f"{tag}-adv",
                              package_id=package["id"], program_name="install",
                              collection_id=collection["id"], protected_only=True)  # fmt: skip
        # On the head office's standard DP only: the branch DP is not on its list.
        _post(admin, f"/packages/{package['id']}/distribution-points", dp_id=dps["std"]["id"])
        wait_for(
            "the package installed on the standard DP",
            lambda: [r["state"] for r in dp_rows(admin, package["id"])] == ["installed"],
            WAIT_S,
        )
        token = _post(admin, "/enrolment-tokens", role="client", max_uses=100)["token"]
        yield Seed(site_server, admin, tmp, dps["br"], package, advertisement, clients, token)
    finally:
        for agent in agents:
            agent.stop(signal.SIGTERM)
        admin.close()


def dp_rows(admin: httpx.Client, package_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ok(admin.get(f"/packages/{package_id}/distribution-points"))
    return rows


@contextlib.contextmanager
def running_clients(seed: Seed) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every client as a service (`peerdp client run`, default retry and poll settings),
    each in its own data directory, its log in a file there."""
    processes = []
    try:
        for host, name in enumerate(seed.clients, start=20):
            data_dir = seed.tmp / name
            data_dir.mkdir()
            args = ["client", "run", "--site", seed.site.url, "--token", seed.client_token,
                    "--data-dir", str(data_dir), "--name", name,
                    "--ip-address", f"{BRANCH_NET}.{host}"]  # fmt: skip
            with (data_dir / "agent.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        peerdp_cmd(*args),
                        env={**os.environ, "E2E_OUT": str(data_dir / "out.txt")},
                        stdout=log,
                        stderr=log,
                        stdin=subprocess.DEVNULL,
                    )
                )
        yield processes
    finally:
        for process in processes:
            stop_process(process)


def agent_logs(seed: Seed) -> str:
    return "\n".join(
        (seed.tmp / name / "agent.log").read_text(errors="replace")[-2000:] for name in seed.clients
    )


# -- the pages, watched ---------------------------------------------------------------------

# Records what a page's live part showed after each of its refreshes (the console script
# replaces #live's content), so a state shown for a moment is seen even while the test
# looks at another page. `look` is a JavaScript function of no argument returning a string.
RECORDER = """look => {
  window.notReloaded = true;
  window.seen = [];
  const live = document.getElementById("live");
  const record = () => {
    const now = look();
    if (window.seen[window.seen.length - 1] !== now) window.seen.push(now);
  };
  new MutationObserver(record).observe(live, {childList: true, subtree: true});
  record();
}"""
QUEUE_ROWS = """() => Array.from(
  document.querySelectorAll("section[aria-labelledby=queue] tbody tr"),
  tr => Array.from(tr.cells, td => td.textContent.trim()).join(" | ")).join("\\n")"""


COUNTS = """() => ["waiting_for_content", "succeeded"].map(
  name => name + " " + document.querySelector(`[data-count=${name}]`).textContent).join(", ")"""


def open_followed(page: Page, path: str, look: str) -> None:
    """Open a page, wait until it follows the site's changes, start recording it."""
    page.goto(path)
    expect(page.locator("#live")).to_have_attribute("data-following", "yes")
    page.evaluate(f"({RECORDER})({look})")


def seen(page: Page) -> list[str]:
    shown: list[str] = page.evaluate("window.seen")
    return shown


def test_the_console_shows_the_seed_flow_as_it_happens(browser: Browser, seed: Seed) -> None:  # noqa: F811
    context = browser.new_context(
        base_url=seed.site.url,
        viewport=DESKTOP,  # type: ignore[arg-type]
        locale="en-GB",
    )
    try:
        watch_the_flow(context.new_page(), context.new_page(), context.new_page(), seed)
    finally:
        context.close()


def watch_the_flow(board: Page, adv_page: Page, package_page: Page, seed: Seed) -> None:
    branch_dp = seed.branch_dp["name"]
    package_id, adv = seed.package["id"], seed.advertisement
    sign_in(board, seed.site.admin_token)
    open_followed(board, "/console/", QUEUE_ROWS)
    open_followed(adv_page, f"/console/advertisements/{adv['id']}", COUNTS)
    branch_state = f"""() => document.querySelector('#live tr[data-dp="{branch_dp}"] .state')
        ?.textContent.trim() ?? 'not listed'"""
    open_followed(package_page, f"/console/packages/{package_id}", branch_state)
    assert seen(package_page) == ["not listed"], "the branch DP is on the package's list"

    with running_clients(seed):
        # The first attempts find no DP holding the content: on-demand provisioning.
        queue = board.get_by_role("region", name="On-demand queue")
        requested = queue.get_by_role("row").filter(has_text=branch_dp)
        expect(requested).to_contain_text(package_id, timeout=WAIT_MS)
        line = board.get_by_role("region", name="Deployments").get_by_role("listitem")
        line = line.filter(has_text=adv["name"])
        expect(line.get_by_role("img")).to_have_attribute(
            "aria-label", re.compile("waiting for content"), timeout=WAIT_MS
        )
        expect(line).to_contain_text(f"of {len(seed.clients)} succeeded")  # all have reported
        screenshot(board, seed.site, "dashboard-seed-flow")

        waiting = adv_page.locator('[data-count="waiting_for_content"]')
        expect(waiting).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=WAIT_MS)
        reasons = adv_page.get_by_role(
            "cell", name=re.compile(r"^on_demand_(triggered|in_progress)$")
        )
        expect(reasons.first).to_be_visible()

        # The branch DP pulls the package over its WAN link, then serves the branch.
        state = package_page.locator(f'#live tr[data-dp="{branch_dp}"] .state')
        expect(state).to_have_text("installed", timeout=WAIT_MS)
        expect(requested).to_have_count(0, timeout=WAIT_MS)  # done: it leaves the queue

        # The clients try again after their retry interval and get it from the branch DP.
        succeeded = adv_page.locator('[data-count="succeeded"]')
        try:
            expect(succeeded).to_have_text(str(len(seed.clients)), timeout=FLOW_MS)
        except AssertionError as failed:
            raise AssertionError(agent_logs(seed)) from failed
        every = f"{len(seed.clients)} of {len(seed.clients)} succeeded"
        expect(line).to_contain_text(every, timeout=WAIT_MS)

    clients = adv_page.get_by_role("region", name=re.compile("^Clients \\("))
    source_dp = clients.get_by_role("columnheader").all_inner_texts().index("Source DP")
    for name in seed.clients:
        row = clients.get_by_role("row").filter(has_text=name)
        expect(row.get_by_role("cell").nth(source_dp)).to_have_text(branch_dp)

    # Each page followed the flow by itself, and saw the moments that passed.
    for page in (board, adv_page, package_page):
        assert page.evaluate("window.notReloaded") is True, f"{page.url} was reloaded"
    assert seen(package_page)[:1] == ["not listed"]
    assert "install pending" in seen(package_page), seen(package_page)
    assert seen(package_page)[-1] == "installed"
    assert any(branch_dp in rows and package_id in rows for rows in seen(board)), seen(board)
    counts = seen(adv_page)
    assert counts[0] == "waiting_for_content 0, succeeded 0", counts
    assert counts[-1] == f"waiting_for_content 0, succeeded {len(seed.clients)}", counts
    for name in seed.clients:  # each program really ran
        assert (seed.tmp / name / "out.txt").read_bytes() == b"the seed\n"
