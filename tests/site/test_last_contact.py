"""Every machine's last contact with the management point: clients, standard and branch
DPs, through every MP request and while a policy long-poll waits, shown by the CLI."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from peerdp.cli.output import local_time
from tests.cli.support import Cli
from tests.helpers.api import ok
from tests.helpers.processes import SiteProcess
from tests.site.mp_world import World, build


def _wait_until_later(read: Callable[[], str | None], than: str | None) -> str:
    """The last contact once it is later than `than` (contacts are written in batches)."""
    deadline = time.monotonic() + 10
    while True:
        seen = read()
        if seen is not None and (than is None or seen > than):
            return seen
        assert time.monotonic() < deadline, f"last contact still {seen}"
        time.sleep(0.05)


def _dp_contact(world: World, dp_id: int) -> Callable[[], str | None]:
    return lambda: ok(world.admin.get(f"/distribution-points/{dp_id}"))["last_seen"]


def _client_contact(world: World, client_id: int) -> Callable[[], str | None]:
    return lambda: ok(world.admin.get(f"/clients/{client_id}"))["last_seen"]


def test_every_mp_request_moves_the_last_contact_of_clients_and_dps(
    site_server: SiteProcess,
) -> None:
    world = build(site_server)
    std, branch = world.standard_dp, world.branch_dp
    # Each machine's first request after registering is another kind of MP request.
    firsts: list[tuple[Callable[[], str | None], Callable[[], Any]]] = []
    standard = world.register("standard_dp", std["name"], dp_id=std["id"])
    firsts.append((_dp_contact(world, std["id"]), lambda: world.report(standard, "installed")))
    branch_dp = world.register("branch_dp", branch["name"], dp_id=branch["id"])
    firsts.append((_dp_contact(world, branch["id"]), lambda: ok(branch_dp.get("/policy"))))
    for name, call in (
        ("PC-PING", lambda c: ok(c.get("/ping"))),
        ("PC-POLICY", lambda c: ok(c.get("/policy"))),
        ("PC-LOCATE", world.locate),
    ):
        pc = world.client(name)
        client_id = ok(world.admin.get("/clients", params={"name": name}))[0]["id"]
        firsts.append((_client_contact(world, client_id), lambda c=pc, f=call: f(c)))

    for read, call in firsts:
        registered = read()  # registration is a contact too
        assert registered is not None
        call()
        _wait_until_later(read, registered)


def test_a_policy_long_poll_is_contact_from_its_arrival(site_server: SiteProcess) -> None:
    world = build(site_server)
    dp = world.branch_dp
    machine = world.register("branch_dp", dp["name"], dp_id=dp["id"])
    read = _dp_contact(world, dp["id"])
    registered = read()
    answers: list[httpx.Response] = []
    # Its first request is a long-poll past its first policy version (1): it waits.
    poll = threading.Thread(
        target=lambda: answers.append(
            machine.get("/policy", params={"since": 1, "wait": 120}, timeout=180)
        )
    )
    poll.start()
    try:
        _wait_until_later(read, registered)  # recorded while it waits
        assert poll.is_alive() and not answers
    finally:  # a change of its policy answers it
        ok(
            world.admin.post(
                f"/packages/{world.package['id']}/distribution-points", json={"dp_id": dp["id"]}
            ),
            201,
        )
        poll.join(timeout=120)
    assert answers and answers[0].status_code == 200 and answers[0].json()["version"] == 2


def test_dp_and_client_commands_show_the_last_contact(site_server: SiteProcess) -> None:
    world = build(site_server)
    pc = world.client("PC-SHOWN")
    ok(pc.get("/ping"))
    cli = Cli.for_site(site_server)
    client_id = ok(world.admin.get("/clients", params={"name": "PC-SHOWN"}))[0]["id"]
    seen = _wait_until_later(_client_contact(world, client_id), None)
    for args in (("client", "list"), ("client", "show", str(client_id))):
        out = cli.ok(*args)
        assert "Last contact" in out and "Last seen" not in out
    assert local_time(seen) in cli.ok("client", "show", str(client_id))
    for args in (("dp", "list"), ("dp", "show", str(world.branch_dp["id"]))):
        assert "Last contact" in cli.ok(*args)
