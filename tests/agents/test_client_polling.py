"""`peerdp client run` as a service against a real site server (SQLite and PostgreSQL):
in interval mode it polls without waiting, naming the version it holds, gets 304s and
picks a change up at its next poll; refused a long-poll (503, the site holds all it may)
it waits for the site's Retry-After and gets its policy once a place frees.

The site here holds one long-poll at most, asks refused callers back after a second, and
lets intervals be as short as a second, so the tests run in seconds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from peerdp.machine.mp_client import Identity, MPClient, MPError
from tests.dp.branch_support import World, worlds
from tests.helpers.api import ok, wait_for
from tests.helpers.polls import answers, held, hold_poll, refusals
from tests.helpers.processes import SiteProcess, peerdp_cmd
from tests.helpers.sites import module_site

pytestmark = pytest.mark.slow  # a real site server, a DP and `peerdp client run` processes

DIRECT = {"protected_only": False, "allow_remote": True, "on_slow": "download"}
SITE_ENV = {
    "PEERDP_POLICY_MAX_HELD": "1",
    "PEERDP_POLICY_RETRY_AFTER_S": "1",
    "PEERDP_POLICY_INTERVAL_MIN_S": "1",
}
POLLING = "/site/policy-polling"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SiteProcess]:
    with module_site(request.param, tmp_path_factory, SITE_ENV) as server:
        yield server


@pytest.fixture
def world(site_server: SiteProcess, tmp_path: Path) -> Iterator[Callable[..., World]]:
    yield from worlds(site_server, tmp_path)


class Agent:
    """`peerdp client run` as a service, and the lines it logs."""

    def __init__(self, w: World, name: str, data_dir: Path) -> None:
        args = w.client_args(name, data_dir)
        args.remove("--once")
        self.process = subprocess.Popen(
            peerdp_cmd("client", "run", *args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace"))
            if os.environ.get("PEERDP_TEST_VERBOSE"):
                print(self.lines[-1], end="")

    def logged(self, event: str) -> list[str]:
        return [line for line in self.lines if re.search(rf"\] {re.escape(event)}\s", line)]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(30) == 0


def test_the_mp_client_gets_the_held_policy_on_304_and_the_retry_after_of_a_503(
    world: Callable[..., World], site_server: SiteProcess
) -> None:
    # First in this module: the poll held here ends within seconds, before the next test.
    w = world(**DIRECT)
    mp = MPClient(_identity(w, f"{w.tag}-pc3"))
    try:
        policy = mp.policy()
        assert mp.policy(held=policy) is policy
        assert mp.policy(since=policy["version"], wait=1, held=policy) is policy
        sock = hold_poll(site_server.url, f"Bearer {mp.identity.credential}", policy["version"], 3)
        try:
            wait_for("the one place taken", lambda: held(site_server.url) == 1)
            with pytest.raises(MPError) as refused:
                mp.policy(since=policy["version"], wait=30, held=policy)
            assert refused.value.status == 503
            assert refused.value.retry_after_s in (1.0, 2.0)  # 1 s, stretched and rounded up
        finally:
            sock.close()
        wait_for("the place freed", lambda: held(site_server.url) == 0)
    finally:
        mp.close()


def test_in_interval_mode_a_client_gets_304s_and_a_change_at_its_next_poll(
    world: Callable[..., World], site_server: SiteProcess, tmp_path: Path
) -> None:
    w = world(**DIRECT)
    name = f"{w.tag}-pc1"
    ok(w.admin.put(POLLING, json={"mode": "interval", "interval_s": 1, "randomise_s": 1}))
    unchanged_before = answers(site_server.url, 304)
    agent = Agent(w, name, tmp_path / "client")
    try:
        wait_for("three polls answered 304", lambda: len(agent.logged("policy unchanged")) >= 3)
        assert answers(site_server.url, 304) >= unchanged_before + 3
        assert held(site_server.url) == 0, "no connection is held in interval mode"
        [received] = agent.logged("policy received")
        assert "polling=interval" in received

        w.add_member(name)  # its policy changes: it learns of it at its next poll
        wait_for("the program", lambda: w.typed("program_succeeded", client_name=name), 60)
        assert len(agent.logged("policy received")) == 2
    finally:
        agent.stop()
        ok(w.admin.put(POLLING, json={"mode": "long_poll"}))
    assert w.out.exists()


def test_a_refused_long_poll_is_retried_after_retry_after_until_a_place_frees(
    world: Callable[..., World], site_server: SiteProcess, tmp_path: Path
) -> None:
    w = world(**DIRECT)
    name, other = f"{w.tag}-pc1", f"{w.tag}-pc2"
    blocker = _registered(w, other)
    version = ok(blocker.get("/policy"))["version"]
    sock = hold_poll(site_server.url, blocker.headers["authorization"], version)
    wait_for("the one place taken", lambda: held(site_server.url) == 1)
    first = refusals(site_server.url)
    agent = Agent(w, name, tmp_path / "client")
    try:
        wait_for("the agent refused", lambda: refusals(site_server.url) >= first + 2)
        w.add_member(name)  # its policy changes, but it cannot long-poll to hear of it
        now = refusals(site_server.url)
        wait_for("two more refusals", lambda: refusals(site_server.url) >= now + 2)
        assert not w.typed("program_succeeded", client_name=name)
        refused = agent.logged("policy not received")
        assert refused and all("503" in line and "ask again after" in line for line in refused)

        w.add_member(other)  # the held poll is answered: its place frees
        wait_for("the program", lambda: w.typed("program_succeeded", client_name=name), 60)
    finally:
        sock.close()
        agent.stop()
    assert w.out.exists()


def _registered(w: World, name: str) -> httpx.Client:
    answer = ok(
        httpx.post(
            w.site.url + "/mp/v1/register",
            json={"token": w.token("client"), "name": name, "ip_addresses": [f"{w.net}.21"]},
        ),
        201,
    )
    return httpx.Client(
        base_url=w.site.url + "/mp/v1",
        headers={"Authorization": f"Bearer {answer['credential']}"},
        timeout=60,
    )


def _identity(w: World, name: str) -> Identity:
    answer = ok(
        httpx.post(
            w.site.url + "/mp/v1/register",
            json={"token": w.token("client"), "name": name, "ip_addresses": [f"{w.net}.22"]},
        ),
        201,
    )
    return Identity(
        answer["machine_id"],
        answer["credential"],
        answer["site_public_key"],
        answer["site_code"],
        answer["role"],
        name,
        w.site.url,
        client_id=answer["client_id"],
    )
