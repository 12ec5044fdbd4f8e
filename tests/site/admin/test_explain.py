"""`peerdp explain` says what the MP would answer the client now, in its trace and answer.

Each step explains, then asks the real MP: the reason explained is the reason answered,
through the seed's flow (triggered, in progress, installed) and a failed row added again.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess, peerdp_cmd
from tests.site.mp_world import World, build

pytestmark = pytest.mark.slow  # a real site-server process


def _explain(world: World, name: str) -> dict[str, Any]:
    params = {"client": name, "advertisement_id": world.advertisement["id"]}
    answer: dict[str, Any] = ok(world.admin.get("/explain", params=params))
    return answer


def _agrees(answer: dict[str, Any], reason: str | None) -> None:
    """The trace's reason line, the reason field and the answer line say the same."""
    assert answer["reason"] == reason
    if reason is None:
        assert answer["summary"].startswith("answered with 1 DP(s)")
        return
    assert answer["trace"][-1] == f"reason: {reason}"
    assert answer["summary"] == f"answered with no DP: {reason}"


def test_explain_says_what_the_mp_answers_next(site_server: SiteProcess) -> None:
    world = build(site_server)
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    world.report(std, "installed")
    name = unique("PC-EXPLAIN")
    client = world.client(name)

    for reason in ("on_demand_triggered", "on_demand_in_progress"):
        _agrees(_explain(world, name), reason)
        assert world.locate(client)["reason"] == reason

    # A failed row is added again by the next request: explain says so, and it happens.
    branch = world.register("branch_dp", world.branch_dp["name"], world.branch_dp["id"])
    world.report(branch, "install_failed")
    _agrees(_explain(world, name), "on_demand_triggered")
    assert world.locate(client)["reason"] == "on_demand_triggered"
    _agrees(_explain(world, name), "on_demand_in_progress")

    world.report(branch, "installed")
    _agrees(_explain(world, name), None)
    assert [d["dp_id"] for d in world.locate(client)["distribution_points"]] == [
        world.branch_dp["id"]
    ]


def test_the_command_prints_one_reason(site_server: SiteProcess) -> None:
    world = build(site_server)
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    world.report(std, "installed")
    name = unique("PC-EXPLAIN")
    client = world.client(name)
    world.locate(client)  # adds the branch DP: provisioning is now in progress
    shown = subprocess.run(
        peerdp_cmd("explain", "--client", name, "--advertisement", str(world.advertisement["id"])),
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PEERDP_SITE_URL": site_server.url,
            "PEERDP_ADMIN_TOKEN": site_server.admin_token,
            "COLUMNS": "200",
        },
        check=True,
    )
    mentioned = {
        word
        for word in shown.stdout.replace(":", " ").split()
        if word.startswith("on_demand_") or word == "no_content_accessible"
    }
    assert mentioned == {"on_demand_in_progress"}, shown.stdout
    assert world.locate(client)["reason"] == "on_demand_in_progress"
