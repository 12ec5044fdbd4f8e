"""A real site server started with few open files: it raises its soft limit to the hard
one, holds the long-polls that leaves room for, refuses more with 503 and a jittered
Retry-After, and keeps answering everything else."""

from __future__ import annotations

import re
import resource
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.api import ok, unique, wait_for
from tests.helpers.polls import held, hold_poll, refusals
from tests.helpers.processes import SiteProcess, start_site
from tests.site.mp_world import build

pytestmark = pytest.mark.slow  # a real site-server process

SOFT, HARD = 128, 256
LIMIT = HARD - 64 - 64  # the reserve: 64 files, and 64 for the database's connections
HOLD_S = 20  # how long each held poll waits: they all end soon after the test


def _open_files(soft: int, hard: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module")
def few_files_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    data_dir = tmp_path_factory.mktemp("site")
    server = start_site(
        data_dir,
        f"sqlite:///{data_dir / 'site.db'}",
        extra_env={"PEERDP_POLICY_RETRY_AFTER_S": "10"},
        preexec_fn=_open_files(SOFT, HARD),
    )
    yield server
    server.stop()


def test_the_site_raises_its_open_files_limit_and_says_how_many_polls_it_holds(
    few_files_site: SiteProcess,
) -> None:
    [line] = [line for line in few_files_site.lines if "open files limit" in line]
    assert re.search(rf"\bopen_files={HARD}\b", line), line
    assert re.search(rf"\braised_from={SOFT}\b", line), line
    assert re.search(rf"\bpolicy_long_polls_per_process={LIMIT}\b", line), line


def test_above_the_limit_polls_get_503_and_everything_else_is_still_served(
    few_files_site: SiteProcess, tmp_path: Path
) -> None:
    site = few_files_site
    world = build(site)
    name = unique("PC-HOLD")
    client = world.client(name)
    version = ok(client.get("/policy"))["version"]
    sockets: list[socket.socket] = []
    try:
        for _ in range(LIMIT):
            sockets.append(hold_poll(site.url, client.headers["authorization"], version, HOLD_S))
        wait_for(f"{LIMIT} held long-polls", lambda: held(site.url) == LIMIT, 60)

        waits = set()
        for _ in range(8):
            refused = client.get("/policy", params={"since": version, "wait": 60})
            assert refused.status_code == 503, refused.text
            assert (
                f"as many policy long-polls as it can ({LIMIT} in this process)"
                in (refused.json()["detail"])
            )
            waits.add(int(refused.headers["retry-after"]))
        assert all(10 <= w <= 15 for w in waits) and len(waits) > 1, waits
        assert refusals(site.url) == 8

        # Everything else is answered: health, content location, a policy without waiting,
        # the admin API.
        assert ok(httpx.get(site.url + "/health"))["status"] == "ok"
        assert world.locate(client)["reason"]  # an answer (200), whatever it decides
        assert ok(client.get("/policy"))["version"] == version
        assert [c for c in ok(world.admin.get("/clients")) if c["name"] == name]
        assert held(site.url) == LIMIT
    finally:
        for sock in sockets:
            sock.close()
    assert not [line for line in site.lines if "Too many open files" in line]
    warnings = [line for line in site.lines if "policy long-polls refused" in line]
    assert len(warnings) == 1, "one warning for the wave, not one per refusal"
    assert re.search(rf"\blimit={LIMIT}\b", warnings[0]) and "refused=1" in warnings[0]

    wait_for("the held polls to end", lambda: held(site.url) == 0, HOLD_S + 30)
    again = client.get("/policy", params={"since": version, "wait": 1})
    assert ok(again)["version"] == version, "a freed place is taken again"
